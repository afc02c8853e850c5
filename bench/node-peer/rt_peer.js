// rt_peer.js - the Node.js peer of bench/rt_fanout.sh: realtime fan-out.
//
// One process, node's http module plus the `ws` package, speaking the same
// protocol as weftd's realtime endpoints:
//
//   GET  /api/realtime?topic=T   Server-Sent Events: 200 text/event-stream,
//                                `event: connected`, `event: subscribed`, then
//                                one `id:/event: message/data:` event per
//                                publish; `: ping` comment lines as heartbeat
//   GET  /api/ws                 WebSocket; the client sends
//                                {"type":"subscribe","topic":T}, gets
//                                {"type":"subscribed","topic":T}, then one
//                                text frame per publish; server pings
//   POST /admin/publish          Authorization: Bearer <ADMIN_TOKEN>,
//                                body {"topic":T,"data":{...}} -> 202
//                                {"offset":N}
//
// A message is {"type":"message","topic":T,"epoch":E,"offset":N,"data":D}:
// serialised once per publish (JSON.stringify), the SSE event string built
// once and the WebSocket payload converted to a Buffer once; the same
// string / Buffer is then written to every subscriber. No compression
// (ws's server default). Slow consumers: a connection whose unsent output
// exceeds MAX_BUFFERED bytes is dropped instead of buffering without bound.
// Heartbeat period and that bound default to weftd's ([realtime] heartbeat
// = 15s, send_buffer = 1m).
//
// Environment:
//   PORT           TCP port on 127.0.0.1 (required)
//   ADMIN_TOKEN    bearer token for /admin/publish (required)
//   PUBLIC_PREFIX  topics anyone may subscribe to start with this [bench.]
//   HEARTBEAT_MS   SSE `: ping` and WebSocket ping period [15000]
//   MAX_BUFFERED   bytes of unsent output before a subscriber is dropped
//                  [1048576]
//   BACKLOG        listen backlog [1024] (weftd's)
'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { WebSocketServer } = require('ws');

const PORT = Number(process.env.PORT);
const TOKEN = process.env.ADMIN_TOKEN || '';
const PUBLIC_PREFIX = process.env.PUBLIC_PREFIX || 'bench.';
const HEARTBEAT_MS = Number(process.env.HEARTBEAT_MS || 15000);
const MAX_BUFFERED = Number(process.env.MAX_BUFFERED || 1024 * 1024);
const BACKLOG = Number(process.env.BACKLOG || 1024);

if (!Number.isInteger(PORT) || PORT <= 0 || TOKEN === '') {
  console.error('rt_peer.js: set PORT and ADMIN_TOKEN');
  process.exit(2);
}

// Same token syntax as weftd's topics (NATS-like), no wildcards here.
const TOPIC_RE = /^[A-Za-z0-9_\-:@~]+(\.[A-Za-z0-9_\-:@~]+)*$/;
const topicOk = (t) => typeof t === 'string' && t.length <= 200 && TOPIC_RE.test(t);
const topicPublic = (t) => topicOk(t) && t.startsWith(PUBLIC_PREFIX);

const EPOCH = crypto.randomBytes(8).toString('hex');
const offsets = new Map(); // topic -> last offset
const sseSubs = new Map(); // topic -> Set of http.ServerResponse
const wsSubs = new Map(); // topic -> Set of WebSocket

function subsOf(map, topic) {
  let s = map.get(topic);
  if (s === undefined) {
    s = new Set();
    map.set(topic, s);
  }
  return s;
}

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

function errorJson(res, status, code, message) {
  sendJson(res, status, { error: { code, message } });
}

// ------------------------------------------------------------------ SSE ---

function serveSse(req, res, url) {
  const topic = url.searchParams.get('topic');
  if (!topicOk(topic)) return errorJson(res, 400, 'bad_topic', 'invalid topic');
  if (!topicPublic(topic)) return errorJson(res, 403, 'forbidden', 'topic is not public');
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    'X-Accel-Buffering': 'no',
  });
  res.write(`event: connected\ndata: {"type":"connected","epoch":"${EPOCH}"}\n\n`);
  res.write(`event: subscribed\ndata: ${JSON.stringify({ type: 'subscribed', topic })}\n\n`);
  const set = subsOf(sseSubs, topic);
  set.add(res);
  res.on('close', () => set.delete(res));
}

// ------------------------------------------------------------ WebSocket ---

const wss = new WebSocketServer({ noServer: true, clientTracking: true });

wss.on('connection', (ws) => {
  ws.isAlive = true;
  ws.topics = new Set();
  ws.on('pong', () => { ws.isAlive = true; });
  ws.on('message', (raw, isBinary) => {
    let msg;
    try {
      msg = JSON.parse(isBinary ? raw.toString() : raw);
    } catch {
      ws.send('{"type":"error","error":{"code":"bad_json","message":"invalid JSON"}}');
      return;
    }
    if (msg === null || typeof msg !== 'object') return;
    if (msg.type === 'subscribe') {
      if (!topicPublic(msg.topic)) {
        ws.send(JSON.stringify({ type: 'error', topic: msg.topic,
          error: { code: 'forbidden', message: 'topic is not public' } }));
        return;
      }
      subsOf(wsSubs, msg.topic).add(ws);
      ws.topics.add(msg.topic);
      ws.send(JSON.stringify({ type: 'subscribed', topic: msg.topic }));
    } else if (msg.type === 'unsubscribe' && typeof msg.topic === 'string') {
      const s = wsSubs.get(msg.topic);
      if (s) s.delete(ws);
      ws.topics.delete(msg.topic);
      ws.send(JSON.stringify({ type: 'unsubscribed', topic: msg.topic }));
    }
  });
  ws.on('close', () => {
    for (const t of ws.topics) {
      const s = wsSubs.get(t);
      if (s) s.delete(ws);
    }
  });
});

// ------------------------------------------------------------- publish ---

function publish(topic, data) {
  const offset = (offsets.get(topic) || 0) + 1;
  offsets.set(topic, offset);
  const json = JSON.stringify({ type: 'message', topic, epoch: EPOCH, offset, data });
  const s1 = sseSubs.get(topic);
  if (s1 !== undefined && s1.size > 0) {
    const sse = `id: ${EPOCH}-${offset}\nevent: message\ndata: ${json}\n\n`;
    for (const res of s1) {
      if (res.socket !== null && res.socket.writableLength > MAX_BUFFERED) {
        s1.delete(res);
        res.destroy();
        continue;
      }
      res.write(sse);
    }
  }
  const s2 = wsSubs.get(topic);
  if (s2 !== undefined && s2.size > 0) {
    const buf = Buffer.from(json);
    for (const ws of s2) {
      if (ws.bufferedAmount > MAX_BUFFERED) {
        s2.delete(ws);
        ws.terminate();
        continue;
      }
      ws.send(buf, { binary: false });
    }
  }
  return offset;
}

function servePublish(req, res) {
  if (req.headers.authorization !== `Bearer ${TOKEN}`) {
    return errorJson(res, 401, 'unauthorized', 'admin token required');
  }
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > 1048576) {
      errorJson(res, 413, 'too_large', 'body too large');
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString());
    } catch {
      return errorJson(res, 400, 'bad_json', 'invalid JSON');
    }
    if (body === null || typeof body !== 'object' || !topicOk(body.topic) || !('data' in body)) {
      return errorJson(res, 400, 'bad_request', 'need topic and data');
    }
    const offset = publish(body.topic, body.data);
    sendJson(res, 202, { offset });
  });
}

// -------------------------------------------------------------- server ---

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/api/realtime') return serveSse(req, res, url);
  if (req.method === 'POST' && url.pathname === '/admin/publish') return servePublish(req, res);
  if (req.method === 'GET' && url.pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
  errorJson(res, 404, 'not_found', 'no such route');
});

server.on('upgrade', (req, socket, head) => {
  const path = req.url.split('?', 1)[0];
  if (path !== '/api/ws') {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

// Heartbeat: a comment line to every SSE stream; a ping to every
// WebSocket, dropping those that did not answer the previous one (the
// usual `ws` pattern).
const heartbeat = setInterval(() => {
  for (const set of sseSubs.values()) {
    for (const res of set) res.write(': ping\n\n');
  }
  for (const ws of wss.clients) {
    if (ws.isAlive === false) {
      ws.terminate();
      continue;
    }
    ws.isAlive = false;
    ws.ping();
  }
}, HEARTBEAT_MS);

server.listen({ host: '127.0.0.1', port: PORT, backlog: BACKLOG }, () => {
  console.log(`rt_peer: listening on 127.0.0.1:${PORT}, epoch ${EPOCH}`);
});
server.on('error', (err) => {
  console.error('rt_peer: listen:', err.message);
  process.exit(1);
});

const stop = () => {
  clearInterval(heartbeat);
  for (const ws of wss.clients) ws.terminate();
  for (const set of sseSubs.values()) for (const res of set) res.destroy();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
