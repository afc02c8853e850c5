// The referral widget: my code and invite link (copy button), who invited
// me (or claim a code), my points and badges, my referrals on two levels,
// and a live leaderboard whose search and sort survive live updates.
//
// Leaderboard rule: subscribe to referral.leaderboard FIRST, then load the
// snapshot; changes that arrive before it are buffered; a change is applied
// only when its rev is newer than the row held; rows are re-sorted with the
// server's order (points desc, direct desc, user_id asc) for the ranks.
import { h, replace, icon, ICONS, loading, errorBox, describeError, shortDate } from '../../src/lib/dom.js';

const PAGE = 50;

export async function mount(el, ctx) {
  const user = ctx.user;
  let disposed = false;
  const timers = new Set();
  const later = (fn, ms) => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!disposed) fn();
    }, ms);
    timers.add(t);
  };

  /* ---- frame ------------------------------------------------------------- */
  const headerPoints = h('span', { class: 'text-sm text-slate-500', 'data-testid': 'referral-points-summary' });
  const meBox = h('div', { 'data-testid': 'referral-me' });
  const refsBox = h('div', { 'data-testid': 'referral-referrals' });
  const boardBox = h('div', { 'data-testid': 'referral-leaderboard' });
  const toasts = h('div', { class: 'pointer-events-none fixed right-4 bottom-4 z-50 flex w-72 flex-col gap-2', role: 'status', 'aria-live': 'polite', 'data-testid': 'referral-toasts' });

  replace(el,
    h('div', { class: 'flex items-baseline justify-between gap-2' },
      h('h2', { class: 'text-lg font-semibold' }, 'Referrals'),
      headerPoints),
    h('div', { class: 'mt-4 space-y-6' },
      user ? meBox : h('p', { class: 'rounded-lg bg-slate-50 px-4 py-3 text-sm text-slate-600', 'data-testid': 'referral-signed-out' },
        'Sign in to get your invite link and see who joined through you. ', h('a', { href: '/', class: 'font-medium text-indigo-600 hover:underline' }, 'Sign in')),
      user ? refsBox : null,
      boardBox),
    toasts);

  /* ---- me: code, link, rewards, referrer ---------------------------------- */
  const me = { data: null, error: null };
  const refs = { data: null, error: null };

  async function loadMe() {
    try {
      me.data = await ctx.api('/api/referral/me');
      me.error = null;
    } catch (e) {
      if (!me.data) me.error = e;
    }
    if (!disposed) renderMe();
  }

  async function loadRefs() {
    try {
      refs.data = await ctx.api('/api/referral/referrals');
      refs.error = null;
    } catch (e) {
      if (!refs.data) refs.error = e;
    }
    if (!disposed) renderRefs();
  }

  function inviteUrl() {
    return new URL(me.data.invite_path || `/?ref=${encodeURIComponent(me.data.code)}`, location.origin).href;
  }

  function renderMe() {
    if (me.error) {
      replace(meBox, errorBox('Your invite link could not be loaded.', describeError(me.error), () => { me.error = null; renderMe(); loadMe(); }, 'referral-me-error'));
      return;
    }
    if (!me.data) {
      replace(meBox, loading('Loading your invite link…', 'referral-me-loading'));
      return;
    }
    const d = me.data;
    const stats = d.stats || {};
    headerPoints.textContent = `${stats.points ?? 0} points`;
    const url = inviteUrl();
    const copyLabel = h('span', {}, 'Copy link');
    const copyBtn = h('button', {
      type: 'button', class: 'btn-primary shrink-0', 'data-testid': 'referral-copy',
      onclick: async () => {
        const ok = await copyText(url, linkInput);
        copyLabel.textContent = ok ? 'Copied!' : 'Press Ctrl+C';
        copyBtn.dataset.copied = String(ok);
        later(() => { copyLabel.textContent = 'Copy link'; delete copyBtn.dataset.copied; }, 2000);
      },
    }, icon(ICONS.copy), copyLabel);
    const linkInput = h('input', { class: 'input font-mono text-xs', readOnly: true, value: url, 'aria-label': 'Your invite link', 'data-testid': 'referral-invite-link', onfocus: (ev) => ev.target.select() });

    const badges = Array.isArray(stats.badges) ? stats.badges : [];
    const next = stats.next_badge;
    replace(meBox,
      h('div', { class: 'rounded-lg bg-indigo-50 p-4' },
        h('div', { class: 'flex flex-wrap items-baseline justify-between gap-2' },
          h('span', { class: 'text-sm font-medium text-indigo-900' }, 'Your invite code'),
          h('span', { class: 'font-mono text-lg font-semibold tracking-wider text-indigo-700', 'data-testid': 'referral-code' }, d.code)),
        h('div', { class: 'mt-3 flex gap-2' }, linkInput, copyBtn),
        h('p', { class: 'mt-2 text-xs text-indigo-800/70' }, 'Friends who sign up with this link are linked to you. You earn points for them and for the friends they invite.')),
      h('dl', { class: 'mt-4 grid grid-cols-3 gap-3 text-center' },
        stat('Points', stats.points ?? 0, 'referral-stat-points'),
        stat('Direct', stats.direct ?? 0, 'referral-stat-direct'),
        stat('Second level', stats.second ?? 0, 'referral-stat-second')),
      h('div', { class: 'mt-4' },
        h('h3', { class: 'text-sm font-medium text-slate-700' }, 'Rewards'),
        h('div', { class: 'mt-2 flex flex-wrap gap-2', 'data-testid': 'referral-badges' },
          badges.length
            ? badges.map((b) => h('span', { class: 'inline-flex items-center gap-1 rounded-full bg-amber-100 px-2.5 py-0.5 text-xs font-medium text-amber-800', title: `${b.threshold} direct referral${b.threshold === 1 ? '' : 's'}` }, '★ ', b.name))
            : h('span', { class: 'text-xs text-slate-500' }, 'No badge yet.')),
        next ? nextBadge(next, stats.direct ?? 0) : h('p', { class: 'mt-2 text-xs text-slate-500' }, badges.length ? 'You have every badge. Legendary!' : '')),
      d.referrer
        ? h('p', { class: 'mt-4 text-sm text-slate-600', 'data-testid': 'referral-referrer' }, 'Invited by ', h('span', { class: 'font-medium text-slate-900' }, d.referrer.display_name), ` (@${d.referrer.username})`)
        : claimForm());
  }

  function stat(label, value, testid) {
    return h('div', { class: 'rounded-lg bg-slate-50 px-2 py-3' },
      h('dt', { class: 'text-xs text-slate-500' }, label),
      h('dd', { class: 'mt-1 text-xl font-semibold tabular-nums', 'data-testid': testid }, String(value)));
  }

  function nextBadge(next, direct) {
    const pct = Math.max(0, Math.min(100, Math.round((direct / Math.max(1, next.threshold)) * 100)));
    return h('div', { class: 'mt-3', 'data-testid': 'referral-next-badge' },
      h('div', { class: 'flex justify-between text-xs text-slate-600' },
        h('span', {}, `Next: ${next.name}`),
        h('span', {}, `${next.missing} more direct referral${next.missing === 1 ? '' : 's'}`)),
      h('div', { class: 'mt-1 h-2 overflow-hidden rounded-full bg-slate-100', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': String(next.threshold), 'aria-valuenow': String(direct), 'aria-label': `Progress to ${next.name}` },
        h('div', { class: 'h-full rounded-full bg-amber-400', style: `width: ${pct}%` })));
  }

  function claimForm() {
    const input = h('input', { class: 'input font-mono uppercase', maxlength: 32, placeholder: 'Invite code', 'aria-label': 'Invite code', 'data-testid': 'referral-claim-code', autocomplete: 'off' });
    const msg = h('p', { class: 'mt-1 text-xs text-red-600', role: 'alert' });
    const btn = h('button', { type: 'submit', class: 'btn-secondary shrink-0', 'data-testid': 'referral-claim' }, 'Claim');
    return h('form', {
      class: 'mt-4',
      onsubmit: async (ev) => {
        ev.preventDefault();
        const code = input.value.trim();
        if (!code) return input.focus();
        btn.disabled = true;
        msg.textContent = '';
        try {
          await ctx.api('/api/referral/claim', { method: 'POST', body: { code } });
          await loadMe();
        } catch (e) {
          msg.textContent = describeError(e);
        } finally {
          btn.disabled = false;
        }
      },
    },
    h('label', { class: 'label' }, 'Were you invited? Enter the code you got'),
    h('div', { class: 'flex gap-2' }, input, btn), msg);
  }

  /* ---- my referrals --------------------------------------------------------- */
  function renderRefs() {
    if (refs.error) {
      replace(refsBox, errorBox('Your referrals could not be loaded.', describeError(refs.error), () => { refs.error = null; renderRefs(); loadRefs(); }, 'referral-referrals-error'));
      return;
    }
    if (!refs.data) {
      replace(refsBox, loading('Loading your referrals…', 'referral-referrals-loading'));
      return;
    }
    const d = refs.data;
    const direct = Array.isArray(d.direct) ? d.direct : [];
    const second = Array.isArray(d.second) ? d.second : [];
    replace(refsBox,
      h('h3', { class: 'text-sm font-medium text-slate-700' }, 'Your referrals'),
      h('div', { class: 'mt-2 grid gap-4 sm:grid-cols-2' },
        people('Invited by you', direct, d.direct_total ?? direct.length, 'referral-direct', 'No one yet. Share your link!'),
        people('Invited by your friends', second, d.second_total ?? second.length, 'referral-second', 'No one yet.')));
  }

  function people(title, list, total, testid, empty) {
    return h('div', { class: 'rounded-lg ring-1 ring-slate-200' },
      h('div', { class: 'flex justify-between border-b border-slate-100 px-3 py-2 text-xs font-medium text-slate-500' },
        h('span', {}, title), h('span', { 'data-testid': `${testid}-total` }, String(total))),
      list.length === 0
        ? h('p', { class: 'px-3 py-3 text-sm text-slate-500' }, empty)
        : h('ul', { class: 'max-h-48 divide-y divide-slate-100 overflow-y-auto', 'data-testid': testid },
          list.map((p) => h('li', { class: 'flex items-center justify-between gap-2 px-3 py-1.5 text-sm', 'data-testid': `${testid}-item`, 'data-user-id': p.id },
            h('span', { class: 'min-w-0 truncate', title: `${p.display_name} @${p.username}` },
              h('span', { class: 'font-medium' }, p.display_name), h('span', { class: 'text-slate-500' }, ` @${p.username}`),
              p.via ? h('span', { class: 'block truncate text-xs text-slate-400' }, `via ${p.via.display_name}`) : null),
            h('span', { class: 'shrink-0 text-xs text-slate-400' }, shortDate(p.joined_at))))),
      total > list.length ? h('p', { class: 'px-3 py-1.5 text-xs text-slate-500' }, `and ${total - list.length} more`) : null);
  }

  /* ---- toasts ---------------------------------------------------------------- */
  const toasted = new Set();
  function toast(text) {
    const t = h('div', { class: 'pointer-events-auto rounded-lg bg-slate-900 px-4 py-3 text-sm text-white shadow-lg', 'data-testid': 'referral-toast' }, text);
    toasts.appendChild(t);
    later(() => t.remove(), 6000);
  }

  function onMine(data) {
    if (!data || data.type !== 'friend_joined') return;
    if (data.id) {
      if (toasted.has(data.id)) return; // delivered again: already shown
      toasted.add(data.id);
    }
    const who = (data.user && (data.user.display_name || data.user.username)) || 'Someone';
    const via = data.via && (data.via.display_name || data.via.username);
    toast(data.level === 2 ? `${who} joined${via ? ` through ${via}` : ' through a friend of yours'}` : `${who} joined`);
    loadMe();
    loadRefs();
  }

  /* ---- leaderboard ------------------------------------------------------------ */
  const board = {
    rows: new Map(), // user_id -> row
    state: 'loading', // loading | ready | error
    error: null,
    fetching: false,
    seq: 0,
    moreError: null,
    buffer: [], // changes that came while a snapshot was loading
    fetched: 0,
    total: 0,
    complete: false,
    query: '',
    sort: { key: 'rank', dir: 1 },
    shownRev: new Map(), // user_id -> rev last drawn (to flash changed rows)
  };

  const canonical = (a, b) => (b.points - a.points) || (b.direct - a.direct) || (a.user_id - b.user_id);

  function applyChanges(changes) {
    let changed = false;
    const ordered = [...board.rows.values()].sort(canonical);
    const last = ordered[ordered.length - 1];
    for (const c of changes) {
      if (!c || c.user_id == null || typeof c.rev !== 'number') continue;
      const cur = board.rows.get(c.user_id);
      if (cur) {
        if (c.rev <= cur.rev) continue; // old news (or delivered twice)
        board.rows.set(c.user_id, { ...cur, ...c });
        changed = true;
      } else if (board.complete || (last && canonical(c, last) < 0)) {
        // Someone new, or someone from below the part we hold who now
        // ranks inside it.
        board.rows.set(c.user_id, { ...c });
        if (board.complete) board.total += 1;
        changed = true;
      }
    }
    return changed;
  }

  async function loadBoard(more = false) {
    if (more && board.fetching) return;
    const seq = more ? board.seq : ++board.seq; // a newer snapshot wins
    board.fetching = true;
    board.moreError = null;
    if (!more && board.state !== 'ready') renderBoard();
    else renderTable();
    try {
      const offset = more ? board.fetched : 0;
      const res = await ctx.api(`/api/referral/leaderboard?limit=${PAGE}&offset=${offset}`);
      if (disposed || seq !== board.seq) return;
      const items = Array.isArray(res && res.items) ? res.items : [];
      if (!more) board.rows = new Map();
      for (const it of items) {
        const cur = board.rows.get(it.user_id);
        if (!cur || it.rev > cur.rev) board.rows.set(it.user_id, it);
      }
      board.fetched = offset + items.length;
      board.total = typeof res.total === 'number' ? res.total : board.rows.size;
      board.complete = board.fetched >= board.total;
      board.state = 'ready';
      board.error = null;
      board.fetching = false;
      const buffered = board.buffer;
      board.buffer = [];
      applyChanges(buffered);
    } catch (e) {
      if (disposed || seq !== board.seq) return;
      board.fetching = false;
      if (board.state !== 'ready') {
        board.state = 'error';
        board.error = e;
      } else {
        board.moreError = e;
      }
    }
    renderBoard();
  }

  function onBoard(data) {
    if (!data || data.type !== 'changes' || !Array.isArray(data.changes)) return;
    if (board.state !== 'ready' || board.fetching) {
      board.buffer.push(...data.changes);
      return;
    }
    if (applyChanges(data.changes)) renderBoard();
  }

  function resetBoard() {
    // The stream could not replay what we missed: take a new snapshot
    // (changes keep being buffered while it loads).
    loadBoard(false);
  }

  // Persistent controls: never re-created, so typing and focus survive.
  const search = h('input', {
    type: 'search', class: 'input', placeholder: 'Search by name', 'aria-label': 'Search the leaderboard',
    'data-testid': 'leaderboard-search', autocomplete: 'off',
    oninput: () => { board.query = search.value; renderTable(); },
  });
  const tableBox = h('div', {});
  const boardFoot = h('div', { class: 'mt-2 flex items-center justify-between text-xs text-slate-500' });
  const boardFrame = h('div', {},
    h('div', { class: 'flex flex-wrap items-center justify-between gap-2' },
      h('h3', { class: 'text-sm font-medium text-slate-700' }, 'Leaderboard ', h('span', { class: 'ml-1 inline-block size-1.5 rounded-full bg-emerald-500 align-middle', title: 'Live', 'aria-hidden': 'true' })),
      h('div', { class: 'w-full sm:w-56' }, search)),
    h('div', { class: 'mt-2' }, tableBox),
    boardFoot);

  function renderBoard() {
    if (disposed) return;
    if (board.state === 'error') {
      replace(boardBox, errorBox('The leaderboard could not be loaded.', describeError(board.error), () => { board.state = 'loading'; loadBoard(false); }, 'leaderboard-error'));
      return;
    }
    if (board.state === 'loading') {
      replace(boardBox, loading('Loading the leaderboard…', 'leaderboard-loading'));
      return;
    }
    if (!boardBox.contains(boardFrame)) replace(boardBox, boardFrame);
    renderTable();
  }

  function sortHeader(key, label, cls) {
    const on = board.sort.key === key;
    const arrow = on ? (board.sort.dir > 0 ? ' ▲' : ' ▼') : '';
    return h('th', { scope: 'col', class: cls, 'aria-sort': on ? (board.sort.dir > 0 ? 'ascending' : 'descending') : 'none' },
      h('button', {
        type: 'button', class: 'font-medium hover:text-slate-900', 'data-testid': `leaderboard-sort-${key}`,
        onclick: () => {
          board.sort = on ? { key, dir: -board.sort.dir } : { key, dir: key === 'name' || key === 'rank' ? 1 : -1 };
          renderTable();
        },
      }, label, arrow));
  }

  function renderTable() {
    const ranked = [...board.rows.values()].sort(canonical);
    const rank = new Map(ranked.map((r, i) => [r.user_id, i + 1]));
    const q = board.query.trim().toLowerCase();
    let shown = q
      ? ranked.filter((r) => `${r.display_name}\n${r.username}`.toLowerCase().includes(q))
      : ranked;
    const { key, dir } = board.sort;
    if (key !== 'rank' || dir !== 1) {
      const val = {
        rank: (r) => rank.get(r.user_id),
        name: (r) => (r.display_name || r.username || '').toLowerCase(),
        direct: (r) => r.direct,
        points: (r) => r.points,
      }[key];
      shown = [...shown].sort((a, b) => {
        const x = val(a);
        const y = val(b);
        const c = typeof x === 'string' ? x.localeCompare(y) : x - y;
        return c * dir || canonical(a, b);
      });
    }
    const previous = board.shownRev;
    board.shownRev = new Map(ranked.map((r) => [r.user_id, r.rev]));

    replace(tableBox,
      h('div', { class: 'overflow-x-auto rounded-lg ring-1 ring-slate-200' },
        h('table', { class: 'w-full table-fixed text-sm', 'data-testid': 'leaderboard-table', 'data-sort': `${key}:${dir > 0 ? 'asc' : 'desc'}` },
          h('thead', { class: 'bg-slate-50 text-left text-xs text-slate-500' },
            h('tr', {},
              sortHeader('rank', '#', 'w-14 px-3 py-2'),
              sortHeader('name', 'Name', 'px-3 py-2'),
              sortHeader('direct', 'Direct', 'w-20 px-3 py-2 text-right'),
              h('th', { scope: 'col', class: 'w-14 px-3 py-2 text-right font-medium' }, '2nd'),
              sortHeader('points', 'Points', 'w-20 px-3 py-2 text-right'))),
          h('tbody', { class: 'divide-y divide-slate-100' },
            shown.length === 0
              ? h('tr', {}, h('td', { colspan: '5', class: 'px-3 py-6 text-center text-slate-500', 'data-testid': 'leaderboard-empty' },
                q ? `No one matches “${board.query.trim()}”.` : 'No one is on the board yet.'))
              : shown.map((r) => {
                const mine = user && r.user_id === user.id;
                const before = previous.get(r.user_id);
                const flash = before !== undefined && before !== r.rev;
                return h('tr', {
                  class: `${mine ? 'bg-indigo-50/70 font-medium' : ''} ${flash ? 'flash' : ''}`,
                  'data-testid': 'leaderboard-row', 'data-user-id': r.user_id, 'data-rank': rank.get(r.user_id), 'data-rev': r.rev,
                },
                h('td', { class: 'px-3 py-2 tabular-nums text-slate-500' }, String(rank.get(r.user_id))),
                h('td', { class: 'truncate px-3 py-2', title: `${r.display_name} @${r.username}` },
                  h('span', { 'data-testid': 'leaderboard-name' }, r.display_name),
                  h('span', { class: 'text-slate-400' }, ` @${r.username}`),
                  mine ? h('span', { class: 'ml-1 text-xs text-indigo-600' }, '(you)') : null),
                h('td', { class: 'px-3 py-2 text-right tabular-nums' }, String(r.direct)),
                h('td', { class: 'px-3 py-2 text-right tabular-nums' }, String(r.second)),
                h('td', { class: 'px-3 py-2 text-right font-semibold tabular-nums', 'data-testid': 'leaderboard-points' }, String(r.points)));
              })))));

    replace(boardFoot,
      h('span', { 'data-testid': 'leaderboard-count' }, q ? `${shown.length} of ${board.rows.size} shown` : `${board.total} on the board`),
      board.complete ? null : h('button', {
        type: 'button', class: 'btn-ghost text-xs', disabled: board.fetching, 'data-testid': 'leaderboard-more',
        onclick: () => loadBoard(true),
      }, board.moreError ? 'Could not load more; try again' : 'Show more'));
  }

  /* ---- start ------------------------------------------------------------------- */
  const unsubs = [];
  // Leaderboard: subscribe first, then take the snapshot.
  const boardSub = ctx.realtime.subscribe('referral.leaderboard', onBoard, {
    onReset: resetBoard,
    onError: () => toast('Live leaderboard updates are unavailable.'),
  });
  unsubs.push(boardSub);
  renderBoard();
  boardSub.ready.then(() => { if (!disposed) loadBoard(false); });

  if (user) {
    renderMe();
    renderRefs();
    const mine = ctx.realtime.subscribe(`referral.user.${user.id}`, onMine, {
      onReset: () => { loadMe(); loadRefs(); },
    });
    unsubs.push(mine);
    mine.ready.then(() => {
      if (disposed) return;
      loadMe();
      loadRefs();
    });
  }

  return () => {
    disposed = true;
    for (const t of timers) clearTimeout(t);
    for (const u of unsubs) u();
    toasts.remove();
  };
}

async function copyText(text, input) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall back below */
  }
  try {
    input.focus();
    input.select();
    return document.execCommand('copy');
  } catch {
    return false;
  }
}
