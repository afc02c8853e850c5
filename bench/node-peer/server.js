// server.js - the Node.js peer of bench/db_read.sh.
//
// fastify + pg (node-postgres) serving the route of weftd's dbtest plugin:
//
//   GET /api/dbtest/items/:id  -> 200 {"id":N,"name":"..."}
//                                 404 {"error":{"code":"not_found","message":"no such item"}}
//
// with the same statement (SELECT id, name FROM dbtest_items WHERE id = $1),
// run as a named prepared statement (prepared once per pooled connection,
// like weftd's pool does), and the same bytes in the body.
//
// Environment:
//   PORT        TCP port on 127.0.0.1 (required)
//   PGHOST      PostgreSQL host or Unix socket directory (required)
//   PGPORT      port (the socket's number) [5432]
//   PGDATABASE  database [bench]
//   PGUSER      user [postgres]
//   POOL_TOTAL  connections over all processes [8] (weftd: pool_size x threads)
//   WORKERS     0 or 1: one process, no cluster; N > 1: node's cluster module
//               with N worker processes, each with POOL_TOTAL / N connections
//               (rounded up) [0]
'use strict';

const cluster = require('node:cluster');

const PORT = Number(process.env.PORT);
const WORKERS = Number(process.env.WORKERS || 0);
const POOL_TOTAL = Number(process.env.POOL_TOTAL || 8);

if (!Number.isInteger(PORT) || PORT <= 0 || !process.env.PGHOST) {
  console.error('server.js: set PORT and PGHOST');
  process.exit(2);
}

if (WORKERS > 1 && cluster.isPrimary) {
  // The primary only forks and watches: it accepts the connections and
  // hands them out round-robin (node's default scheduling on Linux).
  let ready = 0;
  let stopping = false;
  for (let i = 0; i < WORKERS; i++) cluster.fork();
  cluster.on('message', (w, msg) => {
    if (msg === 'listening' && ++ready === WORKERS)
      console.log(`node-peer: ${WORKERS} workers listening on 127.0.0.1:${PORT}`);
  });
  cluster.on('exit', (w, code, sig) => {
    if (stopping) return;
    console.error(`node-peer: worker ${w.process.pid} exited (${sig || code})`);
    process.exitCode = 1;
  });
  const stop = () => {
    stopping = true;
    for (const id in cluster.workers) cluster.workers[id].process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  serve();
}

function serve() {
  const pg = require('pg');
  const fastify = require('fastify');

  // bigint (int8) arrives as a string by default; weftd writes a JSON
  // number. Every id here fits a double exactly (< 2^53).
  pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

  const procs = WORKERS > 1 ? WORKERS : 1;
  const pool = new pg.Pool({
    host: process.env.PGHOST,
    port: Number(process.env.PGPORT || 5432),
    database: process.env.PGDATABASE || 'bench',
    user: process.env.PGUSER || 'postgres',
    max: Math.ceil(POOL_TOTAL / procs),
    idleTimeoutMillis: 0, // keep connections open, like weftd's pool
  });
  pool.on('error', (err) => console.error('node-peer: pool:', err.message));

  const app = fastify({ logger: false });
  const notFound = { error: { code: 'not_found', message: 'no such item' } };
  const DIGITS = /^[0-9]{1,18}$/;

  app.get('/api/dbtest/items/:id', {
    schema: {
      // fastify's compiled serializer (fast-json-stringify): the idiomatic
      // fast path. Property order id, name, as weftd writes them.
      response: {
        200: {
          type: 'object',
          properties: { id: { type: 'integer' }, name: { type: 'string' } },
        },
        404: {
          type: 'object',
          properties: {
            error: {
              type: 'object',
              properties: { code: { type: 'string' }, message: { type: 'string' } },
            },
          },
        },
      },
    },
  }, async (req, reply) => {
    const id = req.params.id;
    if (!DIGITS.test(id)) return reply.code(404).send(notFound);
    const res = await pool.query({
      name: 'dbtest_item',
      text: 'SELECT id, name FROM dbtest_items WHERE id = $1',
      values: [id],
    });
    if (res.rows.length === 0) return reply.code(404).send(notFound);
    return res.rows[0];
  });

  app.listen({ host: '127.0.0.1', port: PORT }).then(() => {
    if (cluster.isWorker) process.send('listening');
    else console.log(`node-peer: one process listening on 127.0.0.1:${PORT}`);
  }, (err) => {
    console.error('node-peer: listen:', err.message);
    process.exit(1);
  });

  const stop = () => {
    app.close().then(() => pool.end()).then(() => process.exit(0),
      () => process.exit(1));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
