// A tiny DOM builder shared (at build time) by the shell and the widgets.
// Text always goes in as text nodes: nothing here parses HTML.

const PROPS = new Set(['value', 'checked', 'disabled', 'selected', 'indeterminate', 'readOnly']);

/**
 * h('button', {class: 'btn', onclick: fn, 'data-testid': 'x'}, 'Label', child, [more])
 * Attributes that are null, undefined or false are left out; on* functions
 * become listeners; value/checked/disabled/... are set as properties.
 */
export function h(tag, props, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') {
        el.addEventListener(k.slice(2).toLowerCase(), v);
      } else if (k === 'class') {
        el.setAttribute('class', v);
      } else if (k === 'ref' && typeof v === 'function') {
        v(el);
      } else if (PROPS.has(k)) {
        el[k] = v;
      } else {
        el.setAttribute(k, v === true ? '' : String(v));
      }
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false || c === true) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replace every child of el with the given children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A small SVG icon from path data (24x24 viewBox, stroked). */
export function icon(d, cls = 'size-4') {
  const svg = h('svg:svg', {
    class: cls, viewBox: '0 0 24 24', fill: 'none', stroke: 'currentColor',
    'stroke-width': '2', 'stroke-linecap': 'round', 'stroke-linejoin': 'round',
    'aria-hidden': 'true',
  });
  for (const part of [].concat(d)) svg.appendChild(h('svg:path', { d: part }));
  return svg;
}

export const ICONS = {
  copy: ['M8 8h12v12H8z', 'M16 8V4H4v12h4'],
  check: 'M5 12l5 5L20 7',
  x: ['M6 6l12 12', 'M18 6L6 18'],
  up: 'M12 19V5M5 12l7-7 7 7',
  down: 'M12 5v14M19 12l-7 7-7-7',
  pencil: ['M4 20h4L19 9l-4-4L4 16z', 'M14 6l4 4'],
  trash: ['M4 7h16', 'M10 11v6', 'M14 11v6', 'M6 7l1 13h10l1-13', 'M9 7V4h6v3'],
  plus: ['M12 5v14', 'M5 12h14'],
  refresh: ['M20 11a8 8 0 1 0-2.3 5.7', 'M20 4v7h-7'],
  alert: ['M12 9v4', 'M12 17h.01', 'M10.3 3.9L2.4 18a2 2 0 0 0 1.7 3h15.8a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z'],
  grip: ['M9 6h.01', 'M15 6h.01', 'M9 12h.01', 'M15 12h.01', 'M9 18h.01', 'M15 18h.01'],
};

/** A spinner with a label, for loading states (role=status). */
export function loading(label, testid) {
  return h('div', { class: 'flex items-center gap-3 py-6 text-sm text-slate-500', role: 'status', 'data-testid': testid },
    h('span', { class: 'size-4 animate-spin rounded-full border-2 border-slate-300 border-t-indigo-600', 'aria-hidden': 'true' }),
    label);
}

/** An error box with an optional retry button (role=alert). */
export function errorBox(title, message, onRetry, testid) {
  return h('div', { class: 'rounded-lg border border-red-200 bg-red-50 p-4 text-sm text-red-800', role: 'alert', 'data-testid': testid },
    h('div', { class: 'flex items-start gap-2' },
      icon(ICONS.alert, 'mt-0.5 size-4 shrink-0'),
      h('div', { class: 'min-w-0 flex-1' },
        h('p', { class: 'font-medium' }, title),
        message ? h('p', { class: 'mt-1 break-words text-red-700' }, message) : null,
        onRetry ? h('button', { type: 'button', class: 'btn-secondary mt-3', onclick: onRetry, 'data-testid': testid ? `${testid}-retry` : null }, icon(ICONS.refresh), 'Try again') : null)));
}

/** Human text for an Error thrown by ctx.api (or anything else). */
export function describeError(e) {
  if (!e) return 'Something went wrong.';
  if (e.status === 0) return 'Cannot reach the server. Check your connection.';
  const msg = capitalize(e.message || String(e));
  if (e.status === 429 && e.retryAfter) return `${msg} (try again in ${e.retryAfter} s)`;
  return msg;
}

export function capitalize(s) {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : s;
}

/** Format an ISO date as a short local date. */
export function shortDate(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
}
