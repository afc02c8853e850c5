// The shell: sign in / register (also through an invite link /?ref=CODE),
// sign out, and one card per enabled plugin widget (GET /api/plugins).
import '../styles.css';
import { createApi } from '../lib/api.js';
import { createRealtime } from '../lib/realtime.js';
import { createChrome } from '../lib/chrome.js';
import { h, replace, loading, errorBox, describeError, capitalize } from '../lib/dom.js';
import { currentUser, signIn, register, signOut, errorField } from '../lib/session.js';
import { listWidgets, mountWidget } from '../lib/widgets.js';

const state = {
  user: undefined, // undefined: not known yet; null: signed out
  tab: 'signin',
  ref: null, // invite code from ?ref=
  mounted: [],
};

const api = createApi({ onAuthLost });
const realtime = createRealtime({ api });
const chrome = createChrome(document.getElementById('app'));
realtime.onStatus((s) => chrome.setStatus(s));

const params = new URLSearchParams(location.search);
if (params.get('ref')) {
  state.ref = params.get('ref').trim().slice(0, 32);
  state.tab = 'register';
}

boot();

async function boot() {
  replace(chrome.main, loading('Loading…', 'shell-loading'));
  try {
    state.user = await currentUser(api);
  } catch (e) {
    replace(chrome.main, errorBox('Weft is not reachable.', describeError(e), boot, 'shell-error'));
    return;
  }
  render();
}

function onAuthLost() {
  if (!state.user) return;
  state.user = null;
  state.tab = 'signin';
  render(); // unmounts the widgets (and their subscriptions) first
  realtime.reconnect();
  showBanner('Your session has ended. Please sign in again.');
}

function unmountAll() {
  for (const m of state.mounted) m.unmount();
  state.mounted = [];
}

function render() {
  unmountAll();
  chrome.banner.replaceChildren();
  chrome.setAccount(state.user, { onSignOut: doSignOut });
  if (state.user) renderDashboard();
  else renderAuth();
}

function showBanner(text, tone = 'amber') {
  const cls = tone === 'amber'
    ? 'mt-4 rounded-lg border border-amber-200 bg-amber-50 px-4 py-2 text-sm text-amber-800'
    : 'mt-4 rounded-lg border border-indigo-200 bg-indigo-50 px-4 py-2 text-sm text-indigo-800';
  replace(chrome.banner, h('div', { class: cls, role: 'status', 'data-testid': 'banner' }, text));
}

async function doSignOut() {
  unmountAll();
  await signOut(api);
  state.user = null;
  state.tab = 'signin';
  realtime.reconnect();
  render();
}

function signedIn(user) {
  // Back to the standalone page that sent the user here (/?next=/p/x/).
  const next = params.get('next');
  if (next && /^\/p\/[A-Za-z0-9_.-]+\/$/.test(next)) {
    location.assign(next);
    return;
  }
  state.user = user;
  if (state.ref) {
    state.ref = null;
    history.replaceState(null, '', '/');
  }
  realtime.reconnect();
  render();
}

/* ---- dashboard ---------------------------------------------------------- */

async function renderDashboard() {
  const grid = h('div', { class: 'grid grid-cols-1 items-start gap-6 lg:grid-cols-2', 'data-testid': 'widgets' });
  const notices = h('div', { class: 'space-y-2' });
  const body = h('div', { class: 'space-y-6' }, notices, grid);
  replace(chrome.main,
    h('div', { class: 'mb-6' },
      h('h1', { class: 'text-2xl font-semibold tracking-tight' }, `Hello, ${state.user.display_name}`),
      h('p', { class: 'mt-1 text-sm text-slate-500' }, 'Everything your plugins offer, live.')),
    body);
  if (state.ref) showBanner('You are already signed in, so the invite link was not used.');

  replace(grid, loading('Loading your plugins…', 'plugins-loading'));
  let list;
  try {
    list = await listWidgets(api);
  } catch (e) {
    replace(grid, errorBox('The list of plugins could not be loaded.', describeError(e), () => renderDashboard(), 'plugins-error'));
    return;
  }
  if (!state.user || !grid.isConnected) return;
  grid.replaceChildren();
  for (const p of list.failed) {
    notices.appendChild(h('div', { class: 'rounded-lg border border-amber-200 bg-amber-50 px-4 py-2 text-sm text-amber-800', 'data-testid': `plugin-failed-${p.name}` },
      `The ${p.name} plugin is not running${p.error || p.last_error ? `: ${p.error || p.last_error}` : '.'}`));
  }
  if (list.widgets.length === 0) {
    grid.appendChild(h('div', { class: 'card text-sm text-slate-500 lg:col-span-2', 'data-testid': 'no-widgets' }, 'No plugin with a widget is enabled.'));
    return;
  }
  for (const p of list.widgets) {
    const slot = h('div', { class: 'min-w-0' });
    const card = h('section', {
      class: 'card min-w-0',
      'data-testid': `widget-${p.name}`,
      'data-plugin': p.name,
      'aria-label': p.name,
    },
    slot,
    h('div', { class: 'mt-4 flex justify-end border-t border-slate-100 pt-2' },
      h('a', { href: `/p/${encodeURIComponent(p.name)}/`, class: 'text-xs text-slate-400 hover:text-indigo-600', title: 'Open this widget on its own page' }, `Open ${p.name} on its own page ↗`)));
    grid.appendChild(card);
    state.mounted.push(mountWidget(slot, p, { api, realtime, user: state.user }));
  }
}

/* ---- sign in and register ----------------------------------------------- */

function field({ name, label, type = 'text', autocomplete, value = '', hint, required = true, minlength, maxlength, pattern }) {
  const id = `f-${name}`;
  const input = h('input', {
    id, name, type, autocomplete, required, minlength, maxlength, pattern,
    value, class: 'input', 'data-testid': `input-${name}`,
    'aria-describedby': `${id}-msg`,
  });
  const msg = h('p', { id: `${id}-msg`, class: 'mt-1 text-xs text-slate-500' }, hint || '');
  const wrap = h('div', {}, h('label', { for: id, class: 'label' }, label), input, msg);
  return {
    wrap, input,
    setError(text) {
      if (text) {
        input.setAttribute('aria-invalid', 'true');
        msg.className = 'mt-1 text-xs text-red-600';
        msg.textContent = text;
      } else {
        input.removeAttribute('aria-invalid');
        msg.className = 'mt-1 text-xs text-slate-500';
        msg.textContent = hint || '';
      }
    },
  };
}

function authForm({ fields, submitLabel, pendingLabel, onSubmit, testid }) {
  const error = h('div', { class: 'hidden rounded-md bg-red-50 px-3 py-2 text-sm text-red-700', role: 'alert', 'data-testid': `${testid}-error` });
  const submit = h('button', { type: 'submit', class: 'btn-primary w-full py-2', 'data-testid': `${testid}-submit` }, submitLabel);
  const byName = Object.fromEntries(fields.map((f) => [f.input.name, f]));
  const form = h('form', {
    class: 'space-y-4', novalidate: true, 'data-testid': testid,
    onsubmit: async (ev) => {
      ev.preventDefault();
      for (const f of fields) f.setError(null);
      error.classList.add('hidden');
      // The browser's checks first (shown on the field).
      for (const f of fields) {
        if (!f.input.checkValidity()) {
          f.setError(f.input.validationMessage);
          f.input.focus();
          return;
        }
      }
      const values = Object.fromEntries(fields.map((f) => [f.input.name, f.input.value.trim()]));
      if (byName.password) values.password = byName.password.input.value; // untrimmed
      submit.disabled = true;
      submit.textContent = pendingLabel;
      try {
        await onSubmit(values);
      } catch (e) {
        const name = errorField(e);
        const text = describeError(e);
        if (name && byName[name]) {
          byName[name].setError(capitalize(text.replace(/^[a-z_]+:\s*/i, '')));
          byName[name].input.focus();
        } else {
          error.textContent = text;
          error.classList.remove('hidden');
        }
      } finally {
        if (submit.isConnected) {
          submit.disabled = false;
          submit.textContent = submitLabel;
        }
      }
    },
  }, error, fields.map((f) => f.wrap), submit);
  return form;
}

function renderAuth() {
  const tabs = [
    ['signin', 'Sign in'],
    ['register', 'Create account'],
  ];
  const tabBar = h('div', { class: 'mb-6 grid grid-cols-2 rounded-lg bg-slate-100 p-1 text-sm', role: 'tablist' },
    tabs.map(([key, label]) => h('button', {
      type: 'button', role: 'tab', 'aria-selected': String(state.tab === key),
      'data-testid': `tab-${key}`,
      class: state.tab === key ? 'rounded-md bg-white px-3 py-1.5 font-medium text-slate-900 shadow-sm' : 'rounded-md px-3 py-1.5 text-slate-500 hover:text-slate-800',
      onclick: () => { state.tab = key; renderAuth(); },
    }, label)));

  let form;
  if (state.tab === 'signin') {
    form = authForm({
      testid: 'signin-form',
      submitLabel: 'Sign in',
      pendingLabel: 'Signing in…',
      fields: [
        field({ name: 'email', label: 'Email', type: 'email', autocomplete: 'email' }),
        field({ name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password' }),
      ],
      onSubmit: async (v) => signedIn(await signIn(api, v)),
    });
  } else {
    const fields = [
      field({ name: 'email', label: 'Email', type: 'email', autocomplete: 'email', maxlength: 254 }),
      field({ name: 'username', label: 'Username', autocomplete: 'username', minlength: 3, maxlength: 32, pattern: '[^\\s]{3,32}', hint: '3 to 32 letters, digits, _ . - (no spaces)' }),
      field({ name: 'display_name', label: 'Display name', autocomplete: 'name', maxlength: 64 }),
      field({ name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', minlength: 8, hint: 'At least 8 characters' }),
      field({ name: 'referral_code', label: 'Invite code (optional)', required: false, value: state.ref || '', maxlength: 32, autocomplete: 'off' }),
    ];
    form = authForm({
      testid: 'register-form',
      submitLabel: 'Create account',
      pendingLabel: 'Creating your account…',
      fields,
      onSubmit: async (v) => signedIn(await register(api, { ...v, referral_code: v.referral_code || undefined })),
    });
  }

  replace(chrome.main,
    h('div', { class: 'mx-auto max-w-md' },
      h('div', { class: 'mb-6 text-center' },
        h('h1', { class: 'text-2xl font-semibold tracking-tight' }, state.tab === 'signin' ? 'Welcome back' : 'Join Weft'),
        h('p', { class: 'mt-1 text-sm text-slate-500' }, 'Your plugins, in one place.')),
      state.ref && state.tab === 'register'
        ? h('div', { class: 'mb-4 rounded-lg border border-indigo-200 bg-indigo-50 px-4 py-3 text-sm text-indigo-800', 'data-testid': 'invite-notice' },
          'You were invited with the code ', h('span', { class: 'font-mono font-semibold' }, state.ref), '. Create your account to accept.')
        : null,
      h('div', { class: 'card' }, tabBar, form)));
  const first = form.querySelector('input');
  if (first) first.focus();
}
