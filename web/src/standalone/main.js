// The standalone page of one widget: /p/<plugin>/ shows that plugin's
// widget alone, with the same ctx as in the shell.
import '../styles.css';
import { createApi } from '../lib/api.js';
import { createRealtime } from '../lib/realtime.js';
import { createChrome } from '../lib/chrome.js';
import { h, replace, loading, errorBox, describeError } from '../lib/dom.js';
import { currentUser, signOut } from '../lib/session.js';
import { listWidgets, mountWidget } from '../lib/widgets.js';

const match = /^\/p\/([^/]+)\/?/.exec(location.pathname);
const name = match ? decodeURIComponent(match[1]) : '';

let user = null;
const api = createApi({
  onAuthLost: () => {
    if (!user) return;
    user = null;
    if (mounted) {
      mounted.unmount();
      mounted = null;
    }
    realtime.reconnect();
    start();
  },
});
const realtime = createRealtime({ api });
const chrome = createChrome(document.getElementById('app'), { subtitle: name || '?' });
realtime.onStatus((s) => chrome.setStatus(s));
document.title = name ? `${name} · Weft` : 'Weft';

let mounted = null;

start();

async function start() {
  if (mounted) {
    mounted.unmount();
    mounted = null;
  }
  replace(chrome.main, loading(`Loading ${name}…`, 'standalone-loading'));
  let list;
  try {
    [user, list] = await Promise.all([currentUser(api), listWidgets(api)]);
  } catch (e) {
    replace(chrome.main, errorBox('Weft is not reachable.', describeError(e), start, 'standalone-error'));
    return;
  }
  chrome.setAccount(user, {
    signInHref: `/?next=${encodeURIComponent(location.pathname)}`,
    onSignOut: async () => {
      if (mounted) {
        mounted.unmount();
        mounted = null;
      }
      await signOut(api);
      user = null;
      realtime.reconnect();
      start();
    },
  });
  const plugin = list.widgets.find((p) => p.name === name);
  if (!plugin) {
    const known = list.all.find((p) => p.name === name);
    const why = !known
      ? 'There is no such plugin.'
      : known.state !== 'running'
        ? `The plugin is ${known.state}.`
        : 'The plugin has no widget.';
    replace(chrome.main, errorBox(`Cannot show ${name || 'this widget'}.`, why, start, 'standalone-error'));
    return;
  }
  const slot = h('div', { class: 'min-w-0' });
  replace(chrome.main,
    h('section', { class: 'card mx-auto max-w-3xl', 'data-testid': `widget-${plugin.name}`, 'data-plugin': plugin.name, 'aria-label': plugin.name }, slot));
  mounted = mountWidget(slot, plugin, { api, realtime, user });
}
