// The API reference page (/api/docs): renders /api/openapi.json — operations
// by tag with parameters, bodies, responses and schemas — and sends a
// request from each operation's form, showing status, headers and body
// (an event stream as it arrives). No dependencies, nothing from elsewhere.

import { $, el } from './dom.js';

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

// Text with `code` spans, as the document's descriptions write them.
function prose(text = '', tag = 'p') {
  const node = el(tag);
  String(text).split('`').forEach((part, i) => {
    node.append(i % 2 ? el('code', { text: part }) : document.createTextNode(part));
  });
  return node;
}

function refName(ref) {
  return ref.split('/').pop();
}

// A block of code that scrolls can be reached with the keyboard to scroll
// it; one that fits is no stop on the way. Its content is fixed, so whether
// it scrolls changes only with its box: shown, hidden, resized.
const scrollers = new ResizeObserver((entries) => {
  for (const { target: pre } of entries) {
    const scrolls = pre.scrollHeight > pre.clientHeight || pre.scrollWidth > pre.clientWidth;
    if (scrolls) pre.setAttribute('tabindex', '0');
    else pre.removeAttribute('tabindex');
  }
});

// The schema as JSON, with every `$ref` a link to its entry below.
function schemaBlock(schema) {
  if (schema?.$ref && Object.keys(schema).length === 1) {
    const name = refName(schema.$ref);
    return el('p', {}, 'schema ', el('a', { href: `#schema-${name}` }, el('code', { text: name })));
  }
  const pre = el('pre');
  const json = JSON.stringify(schema, null, 2) ?? '';
  const parts = json.split(/("#\/components\/schemas\/[^"]+")/);
  for (const part of parts) {
    const m = part.match(/^"#\/components\/schemas\/([^"]+)"$/);
    pre.append(m ? el('a', { href: `#schema-${m[1]}`, text: part }) : part);
  }
  scrollers.observe(pre);
  return pre;
}

function schemaLabel(schema = {}) {
  if (schema.$ref) return refName(schema.$ref);
  const type = Array.isArray(schema.type) ? schema.type.join(' | ') : schema.type ?? '';
  const extra = [schema.format, schema.pattern && `pattern ${schema.pattern}`]
    .filter(Boolean).join(', ');
  return extra ? `${type} (${extra})` : type;
}

function resolve(doc, schema) {
  return schema?.$ref ? doc.components.schemas[refName(schema.$ref)] : schema;
}

// An example body: the schema's own example, else one built from its fields.
function example(doc, schema, depth = 0) {
  schema = resolve(doc, schema);
  if (!schema || depth > 4) return null;
  if (schema.example !== undefined) return schema.example;
  if (schema.examples?.length) return schema.examples[0];
  if (schema.enum) return schema.enum[0];
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  if (type === 'object' || schema.properties) {
    const out = {};
    for (const [k, v] of Object.entries(schema.properties ?? {})) out[k] = example(doc, v, depth + 1);
    return out;
  }
  if (type === 'array') return [example(doc, schema.items, depth + 1)];
  if (type === 'integer' || type === 'number') return 0;
  if (type === 'boolean') return false;
  if (schema.format === 'uuid') return '550e8400-e29b-41d4-a716-446655440001';
  return '';
}

function parametersTable(params) {
  const table = el('table', {}, el('tr', {},
    el('th', { text: 'name' }), el('th', { text: 'in' }), el('th', { text: 'schema' }),
    el('th', { text: 'description' })));
  for (const p of params) {
    table.append(el('tr', {},
      el('td', {}, el('code', { text: p.name }), p.required ? ' *' : ''),
      el('td', { text: p.in }),
      el('td', {}, el('code', { text: schemaLabel(p.schema) })),
      el('td', {}, prose(p.description ?? '', 'span'))));
  }
  return table;
}

function responsesList(responses) {
  const box = el('div');
  for (const [status, r] of Object.entries(responses)) {
    const head = el('h4', {}, el('span', { class: status < '400' ? 'status-ok' : 'status-bad', text: status }), ' ');
    head.append(prose(r.description ?? '', 'span'));
    box.append(head);
    for (const [type, media] of Object.entries(r.content ?? {})) {
      box.append(el('div', { class: 'muted', text: type }));
      if (media.schema) box.append(schemaBlock(media.schema));
    }
    const headers = Object.entries(r.headers ?? {});
    if (headers.length) {
      box.append(el('div', { class: 'muted' }, 'headers: ',
        ...headers.map(([name, h]) => el('code', { title: h.description ?? '', text: `${name} ` }))));
    }
  }
  return box;
}

// The form that sends this operation's request and shows the answer.
function tryIt(doc, method, path, op) {
  const form = el('form', { class: 'try' }, el('h3', { text: 'Try it' }));
  const inputs = (op.parameters ?? []).map((p) => {
    const input = el('input', {
      name: p.name,
      placeholder: p.example ?? p.schema?.examples?.[0] ?? (p.schema?.format === 'uuid' ? 'a UUID' : ''),
    });
    if (p.in === 'path' && p.example) input.value = p.example;
    form.append(el('label', {}, `${p.name} (${p.in})${p.required ? ' *' : ''}`, input));
    return [p, input];
  });
  let body = null;
  const json = op.requestBody?.content?.['application/json'];
  if (json) {
    body = el('textarea', { name: 'body', spellcheck: 'false' });
    body.value = JSON.stringify(example(doc, json.schema), null, 2);
    form.append(el('label', {}, 'body (application/json)', body));
  }
  const send = el('button', { type: 'submit', text: 'Send' });
  const stop = el('button', { type: 'button', text: 'Stop', hidden: true });
  const out = el('pre', { hidden: true, tabindex: '0' }); // its answer grows: always reachable
  form.append(send, stop, out);
  let controller = null;
  stop.addEventListener('click', () => controller?.abort());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    controller = new AbortController();
    let url = path;
    const query = new URLSearchParams();
    const headers = {};
    for (const [p, input] of inputs) {
      const value = input.value;
      if (value === '') continue;
      if (p.in === 'path') url = url.replace(`{${p.name}}`, encodeURIComponent(value));
      else if (p.in === 'query') query.set(p.name, value);
      else if (p.in === 'header') headers[p.name] = value;
    }
    if (query.toString()) url += `?${query}`;
    const init = { method: method.toUpperCase(), headers, signal: controller.signal };
    if (body) {
      headers['Content-Type'] = 'application/json';
      init.body = body.value;
    }
    out.hidden = false;
    out.textContent = `${init.method} ${url}\n…`;
    try {
      const resp = await fetch(url, init);
      const head = [...resp.headers].map(([k, v]) => `${k}: ${v}`).join('\n');
      out.textContent = `${init.method} ${url}\n\n${resp.status} ${resp.statusText}\n${head}\n\n`;
      if ((resp.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
        stop.hidden = false;
        const reader = resp.body.getReader();
        const decoder = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          out.textContent += decoder.decode(value, { stream: true });
        }
      } else {
        const text = await resp.text();
        try {
          out.textContent += JSON.stringify(JSON.parse(text), null, 2);
        } catch {
          out.textContent += text.length > 4000 ? `${text.slice(0, 4000)}…` : text;
        }
      }
    } catch (e) {
      out.textContent += e.name === 'AbortError' ? '\n(stopped)' : `\n${e}`;
    } finally {
      stop.hidden = true;
    }
  });
  return form;
}

function operation(doc, method, path, op) {
  const id = op.operationId ?? `${method}-${path}`;
  const details = el('details', { class: 'op', id: `op-${id}` },
    el('summary', {},
      el('span', { class: `method ${method}`, text: method }),
      el('span', { class: 'path', text: path }),
      el('span', { class: 'summary', text: op.summary ?? '' })));
  const body = el('div', { class: 'op-body' });
  if (op.description) body.append(prose(op.description));
  if (op.parameters?.length) body.append(el('h3', { text: 'Parameters' }), parametersTable(op.parameters));
  for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
    body.append(el('h3', { text: `Request body (${type})` }), schemaBlock(media.schema));
  }
  body.append(el('h3', { text: 'Responses' }), responsesList(op.responses ?? {}));
  body.append(tryIt(doc, method, path, op));
  details.append(body);
  return details;
}

function render(doc) {
  const intro = $('intro');
  intro.replaceChildren(
    el('h1', { text: `${doc.info.title} ${doc.info.version}` }),
    prose(doc.info.description),
    el('p', { class: 'muted', text: `OpenAPI ${doc.openapi}` }));
  const byTag = new Map((doc.tags ?? []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = op.tags?.[0] ?? 'other';
      if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
      byTag.get(tag).ops.push([method, path, op]);
    }
  }
  const list = $('operations');
  const toc = $('toc');
  for (const { tag, ops } of byTag.values()) {
    if (!ops.length) continue;
    toc.append(el('a', { href: `#tag-${tag.name}`, text: tag.name }));
    list.append(el('h2', { id: `tag-${tag.name}`, text: tag.name }));
    if (tag.description) list.append(prose(tag.description));
    for (const [method, path, op] of ops) list.append(operation(doc, method, path, op));
  }
  toc.append(el('a', { href: '#schemas-title', text: 'schemas' }));
  const schemas = $('schema-list');
  for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
    schemas.append(el('h3', { id: `schema-${name}`, text: name }));
    if (schema.description) schemas.append(prose(schema.description));
    schemas.append(schemaBlock(schema));
  }
  $('schemas').hidden = false;
  const target = location.hash && document.getElementById(location.hash.slice(1));
  if (target) {
    if (target.tagName === 'DETAILS') target.open = true;
    target.scrollIntoView();
  }
}

fetch('/api/openapi.json')
  .then((resp) => {
    if (!resp.ok) throw new Error(`GET /api/openapi.json answered ${resp.status}`);
    return resp.json();
  })
  .then(render)
  .catch((e) => {
    $('intro').replaceChildren(el('p', { class: 'status-bad', text: `Cannot load the document: ${e}` }));
  });
