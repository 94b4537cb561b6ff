// Formatting of money, times, seat ids and labels.

const money = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
export const fmtMoney = (cents) => money.format((cents ?? 0) / 100);

// Times are shown in the visitor's local time zone, named.
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', month: 'short', day: 'numeric' });
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', timeZoneName: 'short' });
const clockFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit', second: '2-digit' });

export function fmtDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : `${dayFmt.format(d)} · ${timeFmt.format(d)}`;
}

export function fmtDuration(fromIso, toIso) {
  const mins = Math.round((Date.parse(toIso) - Date.parse(fromIso)) / 60000);
  if (!Number.isFinite(mins) || mins <= 0) return '';
  const h = Math.floor(mins / 60);
  const m = mins % 60;
  return m ? `${h} h ${m} min` : `${h} h`;
}

export const fmtClock = (date) => clockFmt.format(date);

// Hours and minutes of an instant (Unix ms), on the visitor's clock.
const hourMinuteFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
export const fmtHourMinute = (ms) => hourMinuteFmt.format(new Date(ms));

export function mmss(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const m = Math.floor(total / 60);
  const s = total % 60;
  return `${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}

export const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

export const capitalise = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

export const flightLabel = (f) => (f ? `${f.flightNumber} · ${f.origin} → ${f.destination}` : '');

export const sameSet = (a, b) => a.length === b.length && a.every((x) => b.includes(x));

// Sort seat ids by row then column: 2A, 2C, 10B.
export function sortSeats(ids) {
  const key = (id) => {
    const m = /^(\d+)([A-Z]+)$/i.exec(id);
    return m ? [Number(m[1]), m[2]] : [Infinity, id];
  };
  return [...ids].sort((a, b) => {
    const [ra, ca] = key(a);
    const [rb, cb] = key(b);
    return ra - rb || ca.localeCompare(cb);
  });
}
