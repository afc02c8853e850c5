// Helpers of the browser tests: a weftd of their own (temp config, data dir,
// free port), Debian's Chromium through playwright-core, screenshots, and
// polling with readable failures.
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export const BUILD = resolve(process.env.WEFT_BUILD_DIR || join(here, '../../build'));
export const WEFTD = resolve(process.env.WEFTD || join(BUILD, 'weftd'));
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = join(BUILD, 'test-artifacts', 'browser');
export const PLUGINS = ['hello', 'todo', 'referral'];

/** Everything the tests need, or an error that says what to run. */
export function preflight() {
  const missing = [];
  const need = (path, how) => { if (!existsSync(path)) missing.push(`${path} (${how})`); };
  need(WEFTD, 'build weftd: cmake --build build');
  for (const p of PLUGINS) need(join(BUILD, 'plugins', `${p}.so`), 'build the plugins');
  need(join(BUILD, 'web', 'index.html'), 'build the web client: make web');
  need(join(BUILD, 'web', 'standalone.html'), 'build the web client: make web');
  for (const p of ['todo', 'referral']) need(join(BUILD, 'plugins', `${p}.web`, 'widget.js'), 'build the web client: make web');
  need(CHROMIUM, 'apt-get install chromium (deps/debian-packages.txt)');
  need(join(here, 'node_modules', 'playwright-core'), 'npm ci in tests/browser (make web does it)');
  if (missing.length) throw new Error(`browser tests cannot run; missing:\n  ${missing.join('\n  ')}`);
}

export async function loadPlaywright() {
  try {
    return await import('playwright-core');
  } catch (e) {
    throw new Error(`playwright-core is not installed in tests/browser (run: make web, or npm ci in tests/browser): ${e.message}`);
  }
}

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One weftd with a generated config in a temp dir. */
export class Weftd {
  constructor(name) {
    this.name = name;
    this.tmp = mkdtempSync(join(tmpdir(), `weft-browser-${name}-`));
    // As root the embedded PostgreSQL runs as `postgres`, which must pass
    // through (not list) this directory.
    chmodSync(this.tmp, 0o711);
    this.ini = join(this.tmp, 'weft.ini');
    this.logFile = join(this.tmp, 'weftd.log');
    this.enabled = Object.fromEntries(PLUGINS.map((p) => [p, true]));
    this.proc = null;
    this.exit = null;
  }

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  writeConfig() {
    const plugins = PLUGINS.map((p) => `[plugin.${p}]
path = ${join(BUILD, 'plugins', `${p}.so`)}
enabled = ${this.enabled[p] ? 'true' : 'false'}
`).join('\n');
    writeFileSync(this.ini, `; written by tests/browser/lib.mjs
[server]
listen = 127.0.0.1:${this.port}
threads = 2
workers = 4
data_dir = ${join(this.tmp, 'data')}
web_root = ${join(BUILD, 'web')}
shutdown_timeout = 5s
max_connections_per_address = 0
max_streams_per_address = 0
connection_rate_per_address = 0
[log]
level = info
[database]
enabled = true
[auth]
register_rate = 1000
login_rate = 1000
login_account_rate = 1000
refresh_rate = 1000
[realtime]
heartbeat = 2s
[plugins]
watch = false

${plugins}`);
  }

  async start() {
    this.port = await freePort();
    this.writeConfig();
    const fd = openSync(this.logFile, 'a');
    this.proc = spawn(WEFTD, ['--config', this.ini], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.exited = new Promise((res) => {
      this.proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        res(this.exit);
      });
    });
    const deadline = Date.now() + 120000;
    while (Date.now() < deadline) {
      if (this.exit) throw new Error(`weftd exited (${JSON.stringify(this.exit)}) while starting:\n${this.logTail()}`);
      try {
        const r = await fetch(`${this.base}/readyz`);
        if (r.status === 200) return this;
      } catch {
        /* not listening yet */
      }
      await sleep(200);
    }
    throw new Error(`weftd did not become ready in 120 s:\n${this.logTail()}`);
  }

  /** Turn a plugin on or off and tell weftd (SIGHUP); waits until /api/plugins agrees. */
  async setEnabled(plugin, on) {
    this.enabled[plugin] = on;
    this.writeConfig();
    this.proc.kill('SIGHUP');
    await until(async () => {
      const { plugins } = await this.json('GET', '/api/plugins');
      const p = plugins.find((x) => x.name === plugin);
      return on ? p && p.state === 'running' : !p || p.state !== 'running';
    }, `weftd reports ${plugin} ${on ? 'running' : 'not running'} after SIGHUP`, 30000);
  }

  /** Plain HTTP for set-up (no browser); returns parsed JSON or throws. */
  async json(method, path, body, headers = {}) {
    const r = await fetch(`${this.base}${path}`, {
      method,
      headers: { 'Content-Type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  /** SIGTERM; resolves to the exit status (null when it was killed). */
  async stop() {
    if (!this.proc) return 0;
    if (!this.exit) this.proc.kill('SIGTERM');
    const t = setTimeout(() => { if (!this.exit) this.proc.kill('SIGKILL'); }, 30000);
    const { code, signal } = await this.exited;
    clearTimeout(t);
    this.proc = null;
    return signal ? `signal ${signal}` : code;
  }

  logTail(n = 6000) {
    try {
      const s = readFileSync(this.logFile, 'utf8');
      return s.slice(-n);
    } catch {
      return '(no log)';
    }
  }

  cleanup() {
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** Chromium as these machines need it (see shared LIBRARY-NOTES). */
export async function launchBrowser() {
  const { chromium } = await loadPlaywright();
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Screenshots named <scenario>-<nn>-<step>.png, numbered in order. */
export function screenshots(scenario) {
  mkdirSync(ARTIFACTS, { recursive: true });
  // This scenario's pictures from an earlier run would only confuse.
  for (const f of readdirSync(ARTIFACTS)) {
    if (f.startsWith(`${scenario}-`) && f.endsWith('.png')) rmSync(join(ARTIFACTS, f), { force: true });
  }
  let n = 0;
  const taken = [];
  const shot = async (page, step) => {
    n += 1;
    const file = join(ARTIFACTS, `${scenario}-${String(n).padStart(2, '0')}-${step}.png`);
    await page.screenshot({ path: file, fullPage: true });
    taken.push(file);
    return file;
  };
  shot.taken = taken;
  return shot;
}

/** Poll fn until it returns something truthy; fail with `what` on timeout. */
export async function until(fn, what, timeout = 15000, every = 100) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? ` (last error: ${last.message})` : last !== undefined ? ` (last value: ${JSON.stringify(last)})` : '';
      throw new Error(`timed out after ${timeout} ms waiting until ${what}${why}`);
    }
    await sleep(every);
  }
}

/** Record uncaught errors and console errors of a page. */
export function watchPage(page, label, sink) {
  page.on('pageerror', (e) => sink.pageErrors.push(`${label}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') sink.console.push(`${label}: ${m.text()}`);
  });
  return page;
}

export function uniq() {
  return `${Date.now().toString(36).slice(-4)}${Math.random().toString(36).slice(2, 5)}`;
}
