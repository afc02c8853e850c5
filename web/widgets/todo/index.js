// The todo widget: lists (add, rename, delete), items (add, edit, done/undo,
// delete, reorder by drag and drop or buttons, clear completed), a filter,
// live across tabs and devices through todo.user.<id>.
//
// Live rule (simple and always right): any event re-fetches the lists (for
// their counts) and the shown list's items; fetches are serialised and
// coalesced, so a burst of events costs one or two round trips.
import { h, replace, icon, ICONS, loading, errorBox, describeError } from '../../src/lib/dom.js';

const TITLE_MAX = 100;
const TEXT_MAX = 500;

export async function mount(el, ctx) {
  if (!ctx.user) {
    replace(el,
      h('h2', { class: 'text-lg font-semibold' }, 'Todo'),
      h('p', { class: 'mt-2 text-sm text-slate-500', 'data-testid': 'todo-signed-out' },
        'Sign in to keep your todo lists. ', h('a', { href: '/', class: 'font-medium text-indigo-600 hover:underline' }, 'Sign in')));
    return () => {};
  }

  const storeKey = `weft.todo.list.${ctx.user.id}`;
  const state = {
    lists: null,
    items: null,
    selectedId: readStored(storeKey),
    filter: 'all',
    editingId: null,
    draft: '',
    renaming: false,
    confirmDelete: false,
    creatingList: false,
    dragId: null,
    fatal: null, // the first load failed
  };
  let disposed = false;

  /* ---- persistent frame ------------------------------------------------ */
  const summary = h('span', { class: 'text-sm text-slate-500', 'data-testid': 'todo-summary' });
  const notice = h('div', { 'aria-live': 'polite' });
  const listsBar = h('div', { class: 'flex flex-wrap items-center gap-2', role: 'tablist', 'aria-label': 'Lists', 'data-testid': 'todo-lists' });
  const newListBox = h('div');
  const titleRow = h('div', { class: 'flex flex-wrap items-center gap-2' });
  const addInput = h('input', { class: 'input', name: 'text', placeholder: 'What needs doing?', maxlength: TEXT_MAX, autocomplete: 'off', 'aria-label': 'New item', 'data-testid': 'todo-new-item' });
  const addButton = h('button', { type: 'submit', class: 'btn-primary shrink-0', 'data-testid': 'todo-add' }, icon(ICONS.plus), 'Add');
  const addForm = h('form', { class: 'flex gap-2', onsubmit: onAddItem }, addInput, addButton);
  const toolbar = h('div', { class: 'flex flex-wrap items-center justify-between gap-2 text-sm' });
  const itemsBox = h('div', { 'data-testid': 'todo-items' });
  const body = h('div', { class: 'space-y-4' }, listsBar, newListBox, titleRow, addForm, toolbar, itemsBox);
  const content = h('div', { class: 'mt-4' });

  replace(el,
    h('div', { class: 'flex items-baseline justify-between gap-2' },
      h('h2', { class: 'text-lg font-semibold' }, 'Todo'),
      summary),
    notice,
    content);

  /* ---- loading --------------------------------------------------------- */
  let running = null;
  let again = false;

  function refresh() {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await load();
        } while (again && !disposed);
        state.fatal = null;
      } catch (e) {
        if (state.lists === null) state.fatal = e;
        else say(`Could not refresh: ${describeError(e)}`);
      } finally {
        running = null;
        if (!disposed) render();
      }
    })();
    return running;
  }

  async function load() {
    const res = await ctx.api('/api/todo/lists');
    if (disposed) return;
    state.lists = Array.isArray(res && res.lists) ? res.lists : [];
    if (!state.lists.some((l) => l.id === state.selectedId)) {
      state.selectedId = state.lists.length ? state.lists[0].id : null;
      state.renaming = state.confirmDelete = false;
    }
    const id = state.selectedId;
    if (id == null) {
      state.items = [];
      return;
    }
    try {
      const r = await ctx.api(`/api/todo/lists/${id}/items`);
      if (disposed || state.selectedId !== id) return;
      state.items = Array.isArray(r && r.items) ? r.items : [];
      if (r && r.list) state.lists = state.lists.map((l) => (l.id === id ? { ...l, ...r.list } : l));
    } catch (e) {
      if (e.status === 404) {
        again = true; // the list went away meanwhile: load the lists again
        state.items = null;
        return;
      }
      throw e;
    }
  }

  /* ---- messages -------------------------------------------------------- */
  let noticeTimer = null;
  function say(text, tone = 'error') {
    clearTimeout(noticeTimer);
    const cls = tone === 'error'
      ? 'mt-3 flex items-start justify-between gap-2 rounded-md bg-red-50 px-3 py-2 text-sm text-red-700'
      : 'mt-3 rounded-md bg-slate-100 px-3 py-2 text-sm text-slate-700';
    replace(notice, h('div', { class: cls, role: tone === 'error' ? 'alert' : 'status', 'data-testid': 'todo-notice' },
      h('span', {}, text),
      h('button', { type: 'button', class: 'btn-ghost -my-1 py-0.5', 'aria-label': 'Dismiss', onclick: () => notice.replaceChildren() }, icon(ICONS.x))));
    noticeTimer = setTimeout(() => notice.replaceChildren(), 8000);
  }

  async function act(what, fn) {
    try {
      await fn();
      return true;
    } catch (e) {
      if (disposed) return false;
      if (e.code === 'conflict') say('The list changed meanwhile; it has been reloaded.');
      else say(`${what}: ${describeError(e)}`);
      return false;
    } finally {
      if (!disposed) refresh();
    }
  }

  /* ---- actions --------------------------------------------------------- */
  async function onAddItem(ev) {
    ev.preventDefault();
    const text = addInput.value.trim();
    if (!text || state.selectedId == null) {
      addInput.focus();
      return;
    }
    addButton.disabled = true;
    const ok = await act('Could not add the item', async () => {
      const item = await ctx.api(`/api/todo/lists/${state.selectedId}/items`, { method: 'POST', body: { text } });
      if (state.items && item && item.list_id === state.selectedId && !state.items.some((i) => i.id === item.id)) {
        state.items = [...state.items, item];
        render();
      }
    });
    addButton.disabled = false;
    if (ok) addInput.value = '';
    addInput.focus();
  }

  function toggle(item) {
    state.items = state.items.map((i) => (i.id === item.id ? { ...i, done: !item.done } : i));
    render();
    act('Could not update the item', () => ctx.api(`/api/todo/items/${item.id}`, { method: 'PATCH', body: { done: !item.done } }));
  }

  function startEdit(item) {
    state.editingId = item.id;
    state.draft = item.text;
    render();
    const input = itemsBox.querySelector('[data-focus-key="edit"]');
    if (input) {
      input.focus();
      input.select();
    }
  }

  async function saveEdit() {
    const id = state.editingId;
    if (id == null) return;
    const text = state.draft.trim();
    const item = state.items && state.items.find((i) => i.id === id);
    state.editingId = null;
    render();
    if (!item || !text || text === item.text) return;
    state.items = state.items.map((i) => (i.id === id ? { ...i, text } : i));
    render();
    await act('Could not save the item', () => ctx.api(`/api/todo/items/${id}`, { method: 'PATCH', body: { text } }));
  }

  function removeItem(item) {
    state.items = state.items.filter((i) => i.id !== item.id);
    render();
    act('Could not delete the item', () => ctx.api(`/api/todo/items/${item.id}`, { method: 'DELETE' }));
  }

  function reorder(ids) {
    const byId = new Map(state.items.map((i) => [i.id, i]));
    state.items = ids.map((id) => byId.get(id));
    render();
    act('Could not reorder', () => ctx.api(`/api/todo/lists/${state.selectedId}/reorder`, { method: 'POST', body: { ids } }));
  }

  function move(item, dir) {
    const visible = shownItems();
    const j = visible.findIndex((i) => i.id === item.id);
    const other = visible[j + dir];
    if (!other) return;
    reorder(placed(item.id, other.id, dir > 0));
    const btn = itemsBox.querySelector(`[data-item-id="${item.id}"] [data-move="${dir > 0 ? 'down' : 'up'}"]`);
    if (btn && !btn.disabled) btn.focus();
  }

  // All ids with `id` moved next to `target` (after it when `after`).
  function placed(id, target, after) {
    const ids = state.items.map((i) => i.id).filter((x) => x !== id);
    const k = ids.indexOf(target);
    ids.splice(after ? k + 1 : k, 0, id);
    return ids;
  }

  function clearCompleted() {
    act('Could not clear the completed items', async () => {
      const r = await ctx.api(`/api/todo/lists/${state.selectedId}/clear-completed`, { method: 'POST', body: {} });
      if (r && typeof r.removed === 'number') say(`Removed ${r.removed} completed item${r.removed === 1 ? '' : 's'}.`, 'info');
    });
  }

  function select(id) {
    if (id === state.selectedId) return;
    state.selectedId = id;
    state.items = null;
    state.editingId = null;
    state.renaming = state.confirmDelete = false;
    writeStored(storeKey, id);
    render();
    refresh();
  }

  async function createList(title) {
    const ok = await act('Could not create the list', async () => {
      const list = await ctx.api('/api/todo/lists', { method: 'POST', body: { title } });
      if (list && list.id != null) {
        state.selectedId = list.id;
        state.items = [];
        writeStored(storeKey, list.id);
      }
    });
    if (ok) {
      state.creatingList = false;
      render();
      addInput.focus();
    }
    return ok;
  }

  async function renameList(title) {
    const id = state.selectedId;
    const ok = await act('Could not rename the list', () => ctx.api(`/api/todo/lists/${id}`, { method: 'PATCH', body: { title } }));
    if (ok) {
      state.renaming = false;
      render();
    }
    return ok;
  }

  function deleteList() {
    const id = state.selectedId;
    state.confirmDelete = false;
    state.lists = state.lists.filter((l) => l.id !== id);
    state.selectedId = state.lists.length ? state.lists[0].id : null;
    state.items = null;
    render();
    act('Could not delete the list', () => ctx.api(`/api/todo/lists/${id}`, { method: 'DELETE' }));
  }

  /* ---- rendering --------------------------------------------------------- */
  function shownItems() {
    const items = state.items || [];
    if (state.filter === 'open') return items.filter((i) => !i.done);
    if (state.filter === 'done') return items.filter((i) => i.done);
    return items;
  }

  function render() {
    if (disposed) return;
    if (state.lists === null) {
      summary.textContent = '';
      replace(content, state.fatal
        ? errorBox('Your todo lists could not be loaded.', describeError(state.fatal), () => { state.fatal = null; render(); refresh(); }, 'todo-error')
        : loading('Loading your lists…', 'todo-loading'));
      return;
    }
    if (!content.contains(body)) replace(content, body);
    keepFocus(() => {
      renderLists();
      renderTitle();
      renderToolbar();
      renderItems();
    });
    const list = current();
    summary.textContent = list ? `${list.open} open · ${list.done} done` : '';
    addForm.hidden = state.selectedId == null;
  }

  function current() {
    const list = state.lists && state.lists.find((l) => l.id === state.selectedId);
    if (!list) return null;
    if (!state.items) return list;
    const done = state.items.filter((i) => i.done).length;
    return { ...list, open: state.items.length - done, done };
  }

  function renderLists() {
    replace(listsBar,
      state.lists.map((l) => {
        const on = l.id === state.selectedId;
        const open = on && state.items ? state.items.filter((i) => !i.done).length : l.open;
        return h('button', {
          type: 'button', role: 'tab', 'aria-selected': String(on), 'data-testid': 'todo-list-tab', 'data-list-id': l.id,
          'data-focus-key': `tab-${l.id}`,
          class: on
            ? 'inline-flex max-w-full items-center gap-2 rounded-full bg-indigo-600 px-3 py-1 text-sm font-medium text-white'
            : 'inline-flex max-w-full items-center gap-2 rounded-full bg-slate-100 px-3 py-1 text-sm text-slate-700 hover:bg-slate-200',
          onclick: () => select(l.id),
        }, h('span', { class: 'truncate' }, l.title),
        h('span', { class: on ? 'rounded-full bg-white/20 px-1.5 text-xs' : 'rounded-full bg-white px-1.5 text-xs text-slate-500' }, String(open)));
      }),
      state.creatingList ? null : h('button', { type: 'button', class: 'btn-ghost text-sm', 'data-testid': 'todo-new-list', 'data-focus-key': 'new-list', onclick: () => { state.creatingList = true; render(); newListBox.querySelector('input')?.focus(); } }, icon(ICONS.plus), 'New list'));

    if (!state.creatingList) {
      newListBox.replaceChildren();
      return;
    }
    if (newListBox.firstChild) return; // keep what is being typed
    const input = h('input', { class: 'input', maxlength: TITLE_MAX, placeholder: 'List name', 'aria-label': 'New list name', 'data-testid': 'todo-new-list-title' });
    const cancel = () => { state.creatingList = false; render(); };
    replace(newListBox, h('form', {
      class: 'flex gap-2',
      onsubmit: async (ev) => {
        ev.preventDefault();
        const title = input.value.trim();
        if (!title) return input.focus();
        await createList(title);
      },
      onkeydown: (ev) => { if (ev.key === 'Escape') cancel(); },
    }, input,
    h('button', { type: 'submit', class: 'btn-primary shrink-0', 'data-testid': 'todo-create-list' }, 'Create'),
    h('button', { type: 'button', class: 'btn-secondary shrink-0', onclick: cancel }, 'Cancel')));
  }

  function renderTitle() {
    const list = current();
    if (!list) {
      replace(titleRow, h('p', { class: 'text-sm text-slate-500' }, 'You have no list. Create one to get started.'));
      return;
    }
    if (state.renaming) {
      if (titleRow.querySelector('[data-focus-key="rename"]')) return; // keep the draft
      const input = h('input', { class: 'input min-w-0 flex-1', value: list.title, maxlength: TITLE_MAX, 'aria-label': 'List name', 'data-focus-key': 'rename', 'data-testid': 'todo-rename-input' });
      replace(titleRow, h('form', {
        class: 'flex w-full gap-2',
        onsubmit: async (ev) => {
          ev.preventDefault();
          const title = input.value.trim();
          if (!title) return input.focus();
          if (title === list.title) { state.renaming = false; render(); return; }
          await renameList(title);
        },
        onkeydown: (ev) => { if (ev.key === 'Escape') { state.renaming = false; render(); } },
      }, input,
      h('button', { type: 'submit', class: 'btn-primary shrink-0', 'data-testid': 'todo-rename-save' }, 'Save'),
      h('button', { type: 'button', class: 'btn-secondary shrink-0', onclick: () => { state.renaming = false; render(); } }, 'Cancel')));
      input.focus();
      input.select();
      return;
    }
    replace(titleRow,
      h('h3', { class: 'min-w-0 flex-1 truncate text-base font-medium', 'data-testid': 'todo-list-title' }, list.title),
      state.confirmDelete
        ? h('span', { class: 'flex items-center gap-2 text-sm text-red-700' }, 'Delete this list and its items?',
          h('button', { type: 'button', class: 'btn-danger', 'data-testid': 'todo-delete-list-confirm', 'data-focus-key': 'del-yes', onclick: deleteList }, 'Delete'),
          h('button', { type: 'button', class: 'btn-secondary', onclick: () => { state.confirmDelete = false; render(); } }, 'Keep'))
        : [
          h('button', { type: 'button', class: 'btn-ghost', 'data-testid': 'todo-rename-list', title: 'Rename list', onclick: () => { state.renaming = true; render(); } }, icon(ICONS.pencil), h('span', { class: 'sr-only sm:not-sr-only' }, 'Rename')),
          h('button', { type: 'button', class: 'btn-ghost hover:text-red-700', 'data-testid': 'todo-delete-list', title: 'Delete list', onclick: () => { state.confirmDelete = true; render(); } }, icon(ICONS.trash), h('span', { class: 'sr-only sm:not-sr-only' }, 'Delete')),
        ]);
  }

  function renderToolbar() {
    if (state.selectedId == null) {
      toolbar.replaceChildren();
      return;
    }
    const items = state.items || [];
    const done = items.filter((i) => i.done).length;
    const filters = [['all', 'All'], ['open', 'Open'], ['done', 'Done']];
    replace(toolbar,
      h('div', { class: 'inline-flex rounded-md bg-slate-100 p-0.5', role: 'group', 'aria-label': 'Show' },
        filters.map(([key, label]) => h('button', {
          type: 'button', 'aria-pressed': String(state.filter === key), 'data-testid': `todo-filter-${key}`, 'data-focus-key': `filter-${key}`,
          class: state.filter === key ? 'rounded px-2.5 py-1 font-medium text-slate-900 bg-white shadow-sm' : 'rounded px-2.5 py-1 text-slate-500 hover:text-slate-800',
          onclick: () => { state.filter = key; render(); },
        }, label))),
      h('button', { type: 'button', class: 'btn-ghost text-sm', disabled: done === 0, 'data-testid': 'todo-clear-completed', 'data-focus-key': 'clear', onclick: clearCompleted }, `Clear completed (${done})`));
  }

  function renderItems() {
    if (state.selectedId == null) {
      itemsBox.replaceChildren();
      return;
    }
    if (state.items === null) {
      replace(itemsBox, loading('Loading items…', 'todo-items-loading'));
      return;
    }
    const shown = shownItems();
    if (shown.length === 0) {
      const text = state.items.length === 0
        ? 'Nothing here yet. Add your first item above.'
        : state.filter === 'open' ? 'All done. Nice!' : 'Nothing is done yet.';
      replace(itemsBox, h('p', { class: 'rounded-lg border border-dashed border-slate-300 px-4 py-6 text-center text-sm text-slate-500', 'data-testid': 'todo-empty' }, text));
      return;
    }
    replace(itemsBox, h('ul', { class: 'divide-y divide-slate-100 rounded-lg ring-1 ring-slate-200' },
      shown.map((item, j) => itemRow(item, j, shown.length))));
  }

  function itemRow(item, j, n) {
    const editing = state.editingId === item.id;
    const row = h('li', {
      class: 'group flex items-center gap-2 px-3 py-2',
      'data-testid': 'todo-item', 'data-item-id': item.id, 'data-done': String(!!item.done),
      draggable: editing ? null : 'true',
      ondragstart: (ev) => {
        state.dragId = item.id;
        ev.dataTransfer.effectAllowed = 'move';
        ev.dataTransfer.setData('text/plain', String(item.id));
        row.classList.add('opacity-50');
      },
      ondragend: () => { state.dragId = null; row.classList.remove('opacity-50'); },
      ondragover: (ev) => {
        if (state.dragId == null || state.dragId === item.id) return;
        ev.preventDefault();
        ev.dataTransfer.dropEffect = 'move';
        row.classList.add('bg-indigo-50');
      },
      ondragleave: () => row.classList.remove('bg-indigo-50'),
      ondrop: (ev) => {
        ev.preventDefault();
        row.classList.remove('bg-indigo-50');
        const id = state.dragId;
        state.dragId = null;
        if (id == null || id === item.id) return;
        const ids = state.items.map((i) => i.id);
        const after = ids.indexOf(id) < ids.indexOf(item.id);
        reorder(placed(id, item.id, after));
      },
    },
    h('span', { class: 'cursor-grab text-slate-300', 'aria-hidden': 'true' }, icon(ICONS.grip)),
    h('input', {
      type: 'checkbox', checked: !!item.done, class: 'size-4 shrink-0 accent-indigo-600',
      'aria-label': `${item.done ? 'Mark not done' : 'Mark done'}: ${item.text}`,
      'data-testid': 'todo-item-toggle', 'data-focus-key': `toggle-${item.id}`,
      onchange: () => toggle(item),
    }),
    editing
      ? h('input', {
        class: 'input min-w-0 flex-1 py-1', value: state.draft, maxlength: TEXT_MAX, 'aria-label': 'Edit item',
        'data-focus-key': 'edit', 'data-testid': 'todo-item-edit',
        oninput: (ev) => { state.draft = ev.target.value; },
        onkeydown: (ev) => {
          if (ev.key === 'Enter') { ev.preventDefault(); saveEdit(); }
          if (ev.key === 'Escape') { state.editingId = null; render(); }
        },
        onblur: () => { if (state.editingId === item.id) saveEdit(); },
      })
      : h('span', {
        class: `min-w-0 flex-1 break-words text-sm ${item.done ? 'text-slate-400 line-through' : 'text-slate-800'}`,
        'data-testid': 'todo-item-text',
        ondblclick: () => startEdit(item),
      }, item.text),
    editing ? null : h('div', { class: 'flex shrink-0 items-center opacity-60 transition group-hover:opacity-100 focus-within:opacity-100' },
      h('button', { type: 'button', class: 'btn-ghost', 'aria-label': 'Move up', title: 'Move up', disabled: j === 0, 'data-move': 'up', 'data-focus-key': `up-${item.id}`, onclick: () => move(item, -1) }, icon(ICONS.up)),
      h('button', { type: 'button', class: 'btn-ghost', 'aria-label': 'Move down', title: 'Move down', disabled: j === n - 1, 'data-move': 'down', 'data-focus-key': `down-${item.id}`, onclick: () => move(item, 1) }, icon(ICONS.down)),
      h('button', { type: 'button', class: 'btn-ghost', 'aria-label': `Edit: ${item.text}`, title: 'Edit', 'data-testid': 'todo-item-edit-button', onclick: () => startEdit(item) }, icon(ICONS.pencil)),
      h('button', { type: 'button', class: 'btn-ghost hover:text-red-700', 'aria-label': `Delete: ${item.text}`, title: 'Delete', 'data-testid': 'todo-item-delete', onclick: () => removeItem(item) }, icon(ICONS.trash))));
    return row;
  }

  // Re-rendering replaces elements: give focus (and the caret) back to the
  // element with the same data-focus-key.
  function keepFocus(fn) {
    const a = document.activeElement;
    const key = a && el.contains(a) ? a.getAttribute('data-focus-key') : null;
    const sel = key && typeof a.selectionStart === 'number' ? [a.selectionStart, a.selectionEnd] : null;
    fn();
    if (!key) return;
    const b = el.querySelector(`[data-focus-key="${key}"]`);
    if (b && b !== document.activeElement) {
      b.focus();
      if (sel && typeof b.setSelectionRange === 'function') b.setSelectionRange(sel[0], sel[1]);
    }
  }

  /* ---- live -------------------------------------------------------------- */
  const unsubscribe = ctx.realtime.subscribe(`todo.user.${ctx.user.id}`, () => refresh(), {
    onReset: () => refresh(),
    onError: (e) => say(`Live updates are off: ${describeError(e)}`),
  });

  render();
  // Load once the subscription is confirmed (or could not be), so no change
  // made between the first fetch and the subscription is missed.
  unsubscribe.ready.then(() => {
    if (!disposed) refresh();
  });

  return () => {
    disposed = true;
    clearTimeout(noticeTimer);
    unsubscribe();
  };
}

function readStored(key) {
  try {
    const v = localStorage.getItem(key);
    return v == null ? null : JSON.parse(v);
  } catch {
    return null;
  }
}

function writeStored(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    /* private mode: the choice lasts this page only */
  }
}
