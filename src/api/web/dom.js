// DOM helpers shared by the UI modules.

export const $ = (id) => document.getElementById(id);

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  node.append(...children);
  return node;
}

// Writes only what changed, so a render every tick costs nothing and does
// not disturb screen readers or selections.
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function setAttr(node, name, value) {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

// Redraw `box`'s children (`children()`) only when `key`, what they are
// drawn from, changed; says whether it did.
export function keyed(box, key, children) {
  if (box.dataset.key === key) return false;
  box.dataset.key = key;
  box.replaceChildren(...children());
  return true;
}

export function show(node, visible) {
  if (node.hidden === visible) node.hidden = !visible;
}

// A field's error (`msg`, '' for none) in `box`, said with the field: its
// aria-invalid and aria-describedby (`hint`: the id of what always
// describes it, if anything).
export function fieldError(input, box, msg, hint = '') {
  setText(box, msg);
  show(box, Boolean(msg));
  setAttr(input, 'aria-invalid', String(Boolean(msg)));
  const ids = [hint, msg ? box.id : ''].filter(Boolean).join(' ');
  if (ids) setAttr(input, 'aria-describedby', ids);
  else input.removeAttribute('aria-describedby');
}

export function focusHeading(id) {
  requestAnimationFrame(() => {
    const h = $(id);
    h.focus({ preventScroll: true });
    h.scrollIntoView({ behavior: 'smooth', block: 'center' });
  });
}
