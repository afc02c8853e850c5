// The page frame shared by the shell and the standalone page: a header with
// the brand, the realtime status and the account, and a main area.
import { h, replace } from './dom.js';

const STATUS = {
  live: ['bg-emerald-500', 'Live'],
  connecting: ['bg-amber-400 animate-pulse', 'Connecting…'],
  offline: ['bg-red-500', 'Offline, retrying…'],
  idle: ['bg-slate-300', 'Idle'],
};

export function createChrome(root, { title = 'Weft', subtitle = null } = {}) {
  const dot = h('span', { class: 'size-2 rounded-full bg-slate-300', 'aria-hidden': 'true' });
  const statusText = h('span', {}, 'Idle');
  const status = h('span', { class: 'hidden items-center gap-1.5 text-xs text-slate-500 sm:flex', 'data-testid': 'realtime-status', 'data-status': 'idle', title: 'Live updates', hidden: true }, dot, statusText);
  const account = h('div', { class: 'flex items-center gap-3', 'data-testid': 'account' });
  const main = h('main', { class: 'mx-auto w-full max-w-6xl px-4 py-8 sm:px-6' });
  const banner = h('div', { class: 'mx-auto w-full max-w-6xl px-4 sm:px-6' });

  replace(root,
    h('header', { class: 'border-b border-slate-200 bg-white' },
      h('div', { class: 'mx-auto flex w-full max-w-6xl items-center justify-between gap-4 px-4 py-3 sm:px-6' },
        h('div', { class: 'flex items-center gap-3' },
          h('a', { href: '/', class: 'flex items-center gap-2 text-lg font-semibold tracking-tight text-slate-900' },
            h('span', { class: 'grid size-7 place-items-center rounded-md bg-indigo-600 text-sm font-bold text-white', 'aria-hidden': 'true' }, 'W'),
            title),
          subtitle ? h('span', { class: 'text-sm text-slate-400' }, '/') : null,
          subtitle ? h('span', { class: 'text-sm font-medium text-slate-600' }, subtitle) : null,
          status),
        account)),
    banner,
    main);

  return {
    main,
    banner,
    setStatus(s) {
      const [cls, text] = STATUS[s] || STATUS.idle;
      dot.setAttribute('class', `size-2 rounded-full ${cls}`);
      statusText.textContent = text;
      status.dataset.status = s;
      status.hidden = s === 'idle';
    },
    /** user: the signed-in user or null; onSignOut: the button's action. */
    setAccount(user, { onSignOut, signInHref } = {}) {
      if (user) {
        replace(account,
          h('div', { class: 'text-right leading-tight' },
            h('div', { class: 'text-sm font-medium text-slate-900', 'data-testid': 'account-name' }, user.display_name),
            h('div', { class: 'text-xs text-slate-500' }, `@${user.username}`)),
          onSignOut ? h('button', { type: 'button', class: 'btn-secondary', onclick: onSignOut, 'data-testid': 'sign-out' }, 'Sign out') : null);
      } else if (signInHref) {
        replace(account, h('a', { href: signInHref, class: 'btn-primary', 'data-testid': 'sign-in-link' }, 'Sign in'));
      } else {
        account.replaceChildren();
      }
    },
  };
}
