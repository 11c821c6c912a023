// Small DOM helpers. Everything the page shows that came from the server
// (customer data, rule text, error messages) goes through textContent and
// setAttribute here, never through innerHTML: rule files and customer
// records are not trusted to be free of markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

// h builds an element: h('button', {class: 'btn', onclick: fn}, 'Save').
// Attributes starting with "on" become listeners; false, null and undefined
// attributes are left out; children may be strings, nodes, arrays or
// null (skipped), so callers can write conditional children inline.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

// s builds an SVG element, for the few icons the page draws.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

function applyAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) if (dv != null) el.dataset[dk] = String(dv);
    } else if (k === 'value' && 'value' in el) {
      el.value = v;
    } else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'hidden') {
      el[k] = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// replace empties el and fills it with children.
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function $(sel, root = document) {
  return root.querySelector(sel);
}

export function $$(sel, root = document) {
  return [...root.querySelectorAll(sel)];
}

// Icons are drawn as inline SVG paths so the page needs no icon font or
// image requests.
const ICONS = {
  check: 'M4 10.5l4 4 8-9',
  x: 'M5 5l10 10M15 5L5 15',
  dot: '',
  chevron: 'M7 5l5 5-5 5',
  search: 'M9 15a6 6 0 1 0 0-12 6 6 0 0 0 0 12zM13.5 13.5L17 17',
  download: 'M10 3v10M6 9l4 4 4-4M4 16h12',
  undo: 'M7 5L3 9l4 4M3 9h9a5 5 0 0 1 0 10h-2',
  play: 'M6 4l10 6-10 6z',
  image: 'M3 4h14v12H3zM3 13l4-4 4 4 2-2 4 4M13 8.5a1 1 0 1 0 0-.01',
  file: 'M5 2h7l4 4v12H5zM12 2v4h4',
  info: 'M10 18a8 8 0 1 0 0-16 8 8 0 0 0 0 16zM10 9v5M10 6v.5',
  alert: 'M10 3l8 14H2zM10 8v4M10 14.5v.5',
  refresh: 'M16 10a6 6 0 1 1-2-4.5M16 3v4h-4',
  logout: 'M8 4H4v12h4M12 6l4 4-4 4M16 10H8',
};

export function icon(name, cls = '') {
  const svg = s('svg', { viewBox: '0 0 20 20', class: ('icon ' + cls).trim(), 'aria-hidden': 'true', focusable: 'false' });
  if (name === 'dot') {
    svg.append(s('circle', { cx: 10, cy: 10, r: 4 }));
  } else {
    svg.append(s('path', { d: ICONS[name] || '' }));
  }
  return svg;
}

// pill is a small status label; tone is one of ok, muted, warn, bad,
// accent, neutral.
export function pill(text, tone = 'neutral', attrs = {}) {
  return h('span', { ...attrs, class: `pill pill-${tone} ${attrs.class || ''}`.trim() }, text);
}

// toast shows a message that does not block the page; errors stay longer
// and are announced assertively.
export function toast(message, { tone = 'info', title = '', timeout } = {}) {
  const host = document.getElementById('toasts');
  if (!host) return;
  // The same failure reported twice in a row (say, by two requests that
  // both found the server gone) is one message.
  for (const t of host.children) {
    if (t.dataset.message === title + '\n' + message) return;
  }
  const close = h('button', { type: 'button', class: 'toast-close', 'aria-label': 'Dismiss' }, icon('x'));
  const el = h('div', { class: `toast toast-${tone}`, role: tone === 'error' ? 'alert' : 'status' },
    icon(tone === 'error' ? 'alert' : 'info', 'toast-icon'),
    h('div', { class: 'toast-body' }, title ? h('strong', null, title) : null, h('span', null, message)),
    close);
  el.dataset.message = title + '\n' + message;
  const remove = () => el.remove();
  close.addEventListener('click', remove);
  host.append(el);
  // Keep at most a handful, so a burst of failures does not cover the page.
  while (host.children.length > 4) host.firstElementChild.remove();
  setTimeout(remove, timeout ?? (tone === 'error' ? 10000 : 5000));
}

// fmtNumber shows scores and values compactly: integers as is, others with
// up to 4 significant decimals.
export function fmtNumber(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return n == null ? '' : String(n);
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  const abs = Math.abs(n);
  if (abs >= 1000) return n.toLocaleString('en-US', { maximumFractionDigits: 1 });
  if (abs >= 1) return n.toLocaleString('en-US', { maximumFractionDigits: 2 });
  return n.toLocaleString('en-US', { maximumSignificantDigits: 3 });
}

// fmtValue renders any JSON value a feature or content field may hold.
export function fmtValue(v) {
  if (v == null) return '—';
  if (Array.isArray(v)) return v.length ? v.map(fmtValue).join(', ') : '[]';
  if (typeof v === 'number') return fmtNumber(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// ident renders an identifier such as cart_abandon_coupon with break
// opportunities after each underscore, dot and slash, so narrow table
// columns wrap ids between words instead of overflowing.
export function ident(id) {
  const frag = document.createDocumentFragment();
  for (const part of String(id ?? '').split(/(?<=[_./])/)) {
    frag.append(part, document.createElement('wbr'));
  }
  frag.lastChild?.remove();
  return frag;
}

// humanize turns an identifier such as condition_false into words.
export function humanize(id) {
  return String(id || '').replace(/_/g, ' ');
}

// uid hands out ids for label/aria wiring of generated controls.
let seq = 0;
export function uid(prefix = 'f') {
  seq += 1;
  return `${prefix}-${seq}`;
}
