// Loading and mounting plugin widgets, each in its own failure boundary:
// a widget whose module cannot be imported, that has no mount(), or whose
// mount() throws shows an error card in its own slot; the others go on.
import { h, replace, loading, errorBox, describeError } from './dom.js';

/**
 * The plugins that have a widget to show, from GET /api/plugins.
 * Returns {widgets: [plugin], failed: [plugin]} (failed: configured plugins
 * that are not running, for a notice).
 */
export async function listWidgets(api) {
  const res = await api('/api/plugins');
  const plugins = Array.isArray(res && res.plugins) ? res.plugins : [];
  return {
    widgets: plugins.filter((p) => p.state === 'running' && typeof p.widget === 'string' && p.widget),
    failed: plugins.filter((p) => p.state === 'failed'),
    all: plugins,
  };
}

/**
 * Build the ctx a widget gets. Subscriptions the widget forgets to drop are
 * dropped when it is unmounted.
 */
export function widgetContext(plugin, { api, realtime, user }) {
  const subs = new Set();
  const ctx = {
    plugin: { name: plugin.name, version: plugin.version },
    user: user ? { id: user.id, username: user.username, display_name: user.display_name } : null,
    api,
    realtime: {
      subscribe(topic, onMessage, opts) {
        const unsub = realtime.subscribe(topic, onMessage, opts);
        const wrapped = () => {
          subs.delete(wrapped);
          unsub();
        };
        wrapped.ready = unsub.ready;
        subs.add(wrapped);
        return wrapped;
      },
    },
  };
  const dispose = () => {
    for (const u of [...subs]) u();
  };
  return { ctx, dispose };
}

/**
 * Mount plugin's widget into slot (an element the caller owns).
 * Returns a handle {unmount()}.
 */
export function mountWidget(slot, plugin, deps) {
  let attempt = 0;
  let current = null; // {unmount, dispose}
  let gone = false;

  function cleanup() {
    if (!current) return;
    const { unmount, dispose } = current;
    current = null;
    try {
      if (typeof unmount === 'function') unmount();
    } catch (e) {
      console.error(`widget ${plugin.name}: unmount threw`, e);
    }
    dispose();
  }

  async function start() {
    cleanup();
    const n = ++attempt;
    slot.setAttribute('aria-busy', 'true');
    replace(slot, loading(`Loading ${plugin.name}…`, `widget-loading-${plugin.name}`));
    let mod;
    try {
      // A retry gets a new URL: a failed import stays failed for its URL.
      const url = n === 1 ? plugin.widget : `${plugin.widget}${plugin.widget.includes('?') ? '&' : '?'}retry=${n}`;
      mod = await import(/* @vite-ignore */ url);
    } catch (e) {
      if (!gone && n === attempt) fail('could not be loaded', e);
      return;
    }
    if (gone || n !== attempt) return;
    if (!mod || typeof mod.mount !== 'function') {
      fail('is not a widget', new Error('its module does not export mount(el, ctx)'));
      return;
    }
    const el = h('div', { class: 'widget-root', 'data-widget-root': plugin.name });
    const { ctx, dispose } = widgetContext(plugin, deps);
    current = { unmount: null, dispose };
    replace(slot, el);
    try {
      const unmount = await mod.mount(el, ctx);
      if (gone || n !== attempt) {
        if (typeof unmount === 'function') unmount();
        dispose();
        return;
      }
      current.unmount = unmount;
      slot.removeAttribute('aria-busy');
    } catch (e) {
      if (!gone && n === attempt) {
        cleanup();
        fail('failed to start', e);
      }
    }
  }

  function fail(what, e) {
    console.error(`widget ${plugin.name} ${what}`, e);
    slot.removeAttribute('aria-busy');
    replace(slot, errorBox(`The ${plugin.name} widget ${what}.`, describeError(e), start, `widget-error-${plugin.name}`));
  }

  start();
  return {
    unmount() {
      gone = true;
      cleanup();
      slot.replaceChildren();
    },
  };
}
