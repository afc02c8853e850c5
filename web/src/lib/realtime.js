// The page's one realtime client: a single EventSource on /api/realtime
// shared by every widget (protocol: docs/realtime.md).
//
// - The stream is opened with one topic (the "anchor"); every other topic is
//   added to the open stream with POST /api/realtime/subscriptions, so a
//   topic that is refused (403, 404, ...) fails alone and is reported to its
//   own subscribers (onError) instead of refusing the whole stream.
// - The last event id is remembered. After a reconnect (the browser's own,
//   or ours with ?last_event_id=) every topic is subscribed again with it, so
//   the server replays what was missed; when it answers recovered:false the
//   subscribers' onReset() is called and they reload their state.
// - A stream refused with 401 (access cookie expired) refreshes the session
//   once and reopens.
//
// subscribe(topic, onMessage, {onReset, onError, onSubscribed}) -> unsubscribe
//   onMessage(data, message) gets the message's "data" and the whole message
//   {type, topic, epoch, offset, data}. The returned function has a .ready
//   promise that resolves true once the server confirmed the subscription,
//   false when it was refused or took longer than readyTimeout ms.

const MAX_BACKOFF = 30000;

/** NATS-style match: "*" one token, ">" the rest (at least one token). */
export function topicMatches(pattern, topic) {
  if (pattern === topic) return true;
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return t.length > i;
    if (i >= t.length) return false;
    if (p[i] !== '*' && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

export function createRealtime({ api, url = '/api/realtime', readyTimeout = 5000 } = {}) {
  // topic -> {subs: Set, status: 'new'|'pending'|'active'|'failed', wasActive, error}
  const topics = new Map();
  const statusListeners = new Set();
  let es = null;
  let anchor = null; // the topic in the stream's URL
  let client = null; // id from the "connected" event
  let lastId = null; // last message id (epoch-offset)
  let backoff = 1000;
  let timer = null;
  let status = 'idle';
  let generation = 0; // bumps whenever the stream is replaced
  let authRetries = 0; // session refreshes since the stream was last up

  function setStatus(s) {
    if (s === status) return;
    status = s;
    for (const fn of statusListeners) safe(fn, s);
  }

  function safe(fn, ...args) {
    if (typeof fn !== 'function') return;
    try {
      fn(...args);
    } catch (e) {
      console.error('realtime: a subscriber threw', e);
    }
  }

  function settle(sub, ok) {
    if (sub.settle) {
      sub.settle(ok);
      sub.settle = null;
      clearTimeout(sub.readyTimer);
    }
  }

  function markFailed(topic, err) {
    const t = topics.get(topic);
    if (!t) return;
    t.status = 'failed';
    t.error = err;
    for (const sub of t.subs) {
      settle(sub, false);
      safe(sub.onError, err);
    }
  }

  function live() {
    return [...topics].filter(([, t]) => t.status !== 'failed' && t.subs.size > 0);
  }

  function schedule(delay) {
    if (timer || es) return;
    setStatus(delay > 0 ? 'offline' : 'connecting');
    timer = setTimeout(() => {
      timer = null;
      open();
    }, delay);
  }

  function close() {
    generation++;
    if (es) {
      es.close();
      es = null;
    }
    client = null;
    anchor = null;
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
  }

  function open() {
    const want = live();
    if (es || want.length === 0) {
      if (!es) setStatus('idle');
      return;
    }
    // Prefer a topic that was live before: its replay comes with the open.
    const pick = want.find(([, t]) => t.wasActive) || want[0];
    anchor = pick[0];
    for (const [, t] of want) t.status = 'pending';
    const gen = ++generation;
    const q = new URLSearchParams({ topic: anchor });
    if (lastId) q.set('last_event_id', lastId);
    const streamUrl = `${url}?${q}`;
    setStatus('connecting');
    const source = new EventSource(streamUrl);
    es = source;

    source.addEventListener('connected', (ev) => {
      if (gen !== generation) return;
      const info = parseJson(ev.data);
      if (!info) return;
      client = info.client;
      backoff = 1000;
      authRetries = 0;
      setStatus('live');
      // The stream's own URL topic comes back in a "subscribed" event; add
      // the others (again, after a reconnect, with the last position).
      for (const [topic, t] of live()) {
        if (topic === anchor) continue;
        t.status = 'pending';
        add(topic, gen, t.wasActive);
      }
    });

    source.addEventListener('subscribed', (ev) => {
      if (gen !== generation) return;
      const info = parseJson(ev.data);
      if (!info) return;
      const t = topics.get(info.topic);
      if (!t || t.subs.size === 0) {
        // Nobody wants it any more (the anchor after its last unsubscribe).
        remove(info.topic);
        return;
      }
      const reset = t.wasActive && info.recovered === false;
      t.status = 'active';
      t.wasActive = true;
      for (const sub of t.subs) {
        settle(sub, true);
        safe(sub.onSubscribed, info);
        if (reset && sub.seen) safe(sub.onReset, info);
        sub.seen = true;
      }
    });

    source.addEventListener('message', (ev) => {
      if (gen !== generation) return;
      if (ev.lastEventId) lastId = ev.lastEventId;
      const msg = parseJson(ev.data);
      if (!msg || typeof msg.topic !== 'string') return;
      for (const [pattern, t] of topics) {
        if (t.status !== 'active' || !topicMatches(pattern, msg.topic)) continue;
        for (const sub of [...t.subs]) safe(sub.onMessage, msg.data, msg);
      }
    });

    source.onerror = () => {
      if (gen !== generation) return;
      client = null;
      if (source.readyState === EventSource.CONNECTING) {
        // The browser reconnects by itself (with Last-Event-ID); topics are
        // added again on its "connected".
        for (const [, t] of live()) t.status = 'pending';
        setStatus('connecting');
        return;
      }
      // Closed for good: the server refused the stream, or answered
      // something that is not a stream. Find out why.
      source.close();
      es = null;
      diagnose(streamUrl, anchor, gen);
    };
  }

  // Ask the same URL with fetch to learn the status and error code that
  // EventSource does not show.
  async function diagnose(streamUrl, topic, gen) {
    const ctl = new AbortController();
    let status = 0;
    let err = null;
    try {
      const res = await fetch(streamUrl, {
        credentials: 'same-origin',
        headers: { Accept: 'text/event-stream' },
        cache: 'no-store',
        signal: ctl.signal,
      });
      status = res.status;
      if (!res.ok) {
        const body = parseJson(await res.text());
        const e = body && body.error;
        err = Object.assign(new Error((e && e.message) || `HTTP ${res.status}`), {
          status: res.status,
          code: (e && e.code) || `http_${res.status}`,
        });
      }
    } catch {
      status = 0;
    } finally {
      ctl.abort();
    }
    if (gen !== generation) return;
    if (status === 401 && authRetries < 2 && api && api.refresh && (await api.refresh())) {
      authRetries += 1; // reset by the next "connected"
      if (gen === generation) schedule(0);
      return;
    }
    if (err && status >= 400 && status < 500 && status !== 408 && status !== 429) {
      markFailed(topic, err);
      schedule(0); // the others go on without it
      return;
    }
    // Network trouble or the server restarting: retry, slower each time.
    schedule(backoff);
    backoff = Math.min(backoff * 2, MAX_BACKOFF);
  }

  async function add(topic, gen, replay) {
    const body = { client, topic, action: 'subscribe' };
    if (replay && lastId) body.last_event_id = lastId;
    try {
      await api('/api/realtime/subscriptions', { method: 'POST', body });
    } catch (e) {
      if (gen !== generation) return;
      if (e.code === 'unknown_client' || e.status === 0 || e.status >= 500) return; // the stream reconnects and adds it again
      markFailed(topic, e);
    }
  }

  function remove(topic) {
    if (!client) return;
    api('/api/realtime/subscriptions', {
      method: 'POST',
      body: { client, topic, action: 'unsubscribe' },
    }).catch(() => {});
  }

  function subscribe(topic, onMessage, opts = {}) {
    const sub = {
      onMessage,
      onReset: opts.onReset,
      onError: opts.onError,
      onSubscribed: opts.onSubscribed,
      seen: false,
      settle: null,
      readyTimer: null,
    };
    const ready = new Promise((resolve) => {
      sub.settle = resolve;
    });
    sub.readyTimer = setTimeout(() => settle(sub, false), readyTimeout);

    let t = topics.get(topic);
    if (!t) {
      t = { subs: new Set(), status: 'new', wasActive: false, error: null };
      topics.set(topic, t);
    }
    if (t.status === 'failed') {
      t.status = 'new'; // someone new asks: try again
      t.error = null;
    }
    t.subs.add(sub);
    if (t.status === 'active') {
      settle(sub, true);
      sub.seen = true;
    } else if (!es) {
      if (!timer) open();
    } else if (client && t.status === 'new') {
      t.status = 'pending';
      add(topic, generation, false);
    }

    let done = false;
    const unsubscribe = () => {
      if (done) return;
      done = true;
      settle(sub, false);
      const cur = topics.get(topic);
      if (!cur) return;
      cur.subs.delete(sub);
      if (cur.subs.size > 0) return;
      topics.delete(topic);
      if (cur.status === 'active' || cur.status === 'pending') remove(topic);
      if (live().length === 0) {
        close();
        setStatus('idle');
      }
    };
    unsubscribe.ready = ready;
    return unsubscribe;
  }

  /** Drop the stream and open a fresh one (e.g. after sign-in or sign-out). */
  function reconnect() {
    close();
    lastId = null;
    for (const [, t] of topics) {
      if (t.status !== 'failed') t.status = 'new';
      t.wasActive = false;
    }
    backoff = 1000;
    open();
  }

  function onStatus(fn) {
    statusListeners.add(fn);
    safe(fn, status);
    return () => statusListeners.delete(fn);
  }

  return { subscribe, reconnect, onStatus, get status() { return status; } };
}

function parseJson(s) {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}
