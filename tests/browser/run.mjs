// Browser tests of the web client: playwright-core drives Debian's Chromium
// (headless) against a weftd started here with hello, todo and referral.
//
//   node run.mjs referral   invite link, live referral list and leaderboard
//   node run.mjs todo       a todo is live across tabs of one user only
//   node run.mjs disable    a broken widget stays alone; disabling todo +
//                           SIGHUP removes its widget, the rest works
//
// Environment: WEFTD (the binary), WEFT_BUILD_DIR (plugins/, web/; the
// screenshots go to its test-artifacts/browser/), CHROMIUM (default
// /usr/bin/chromium). weftd must exit with status 0 on SIGTERM.
import assert from 'node:assert/strict';
import test from 'node:test';
import { ARTIFACTS, Weftd, launchBrowser, preflight, screenshots, until, uniq, watchPage } from './lib.mjs';

const scenario = process.argv[2];
const SCENARIOS = { referral, todo, disable };
if (!SCENARIOS[scenario]) {
  console.error(`usage: node run.mjs ${Object.keys(SCENARIOS).join('|')}`);
  process.exit(2);
}

test(`browser: ${scenario}`, { timeout: 280000 }, async () => {
  preflight();
  const weftd = new Weftd(scenario);
  const sink = { pageErrors: [], console: [] };
  const shot = screenshots(scenario);
  let browser = null;
  let failed = null;
  try {
    await weftd.start();
    await pluginsServeWidgets(weftd);
    browser = await launchBrowser();
    await SCENARIOS[scenario]({ weftd, browser, shot, sink });
    assert.deepEqual(sink.pageErrors, [], 'no uncaught errors in the pages');
  } catch (e) {
    failed = e;
    // A picture of every open page at the moment of failure.
    for (const ctx of browser ? browser.contexts() : []) {
      for (const page of ctx.pages()) {
        try {
          await shot(page, 'FAILED');
        } catch {
          /* page gone */
        }
      }
    }
    console.log(`--- console errors ---\n${sink.console.join('\n') || '(none)'}`);
    console.log(`--- uncaught page errors ---\n${sink.pageErrors.join('\n') || '(none)'}`);
    console.log(`--- weftd log (tail) ---\n${weftd.logTail()}`);
  } finally {
    if (browser) await browser.close().catch(() => {});
    const status = await weftd.stop();
    console.log(`screenshots in ${ARTIFACTS}:\n  ${shot.taken.map((f) => f.slice(ARTIFACTS.length + 1)).join('\n  ')}`);
    if (!failed && status !== 0) {
      console.log(`--- weftd log (tail) ---\n${weftd.logTail()}`);
      failed = new Error(`weftd exited with ${status} on SIGTERM (expected 0)`);
    }
    if (!failed) weftd.cleanup();
    else console.log(`weftd's files kept in ${weftd.tmp}`);
  }
  if (failed) throw failed;
});

/* ---- helpers ----------------------------------------------------------------- */

/** The host side of the contract, checked first for a clear failure. */
async function pluginsServeWidgets(weftd) {
  const { plugins } = await weftd.json('GET', '/api/plugins');
  for (const name of ['hello', 'todo', 'referral']) {
    const p = plugins.find((x) => x.name === name);
    assert.ok(p && p.state === 'running', `plugin ${name} is running (GET /api/plugins: ${JSON.stringify(p)})`);
  }
  for (const name of ['todo', 'referral']) {
    const p = plugins.find((x) => x.name === name);
    assert.equal(p.widget, `/p/${name}/widget.js`,
      `GET /api/plugins names ${name}'s widget (the plugin must declare .assets = "${name}.web" and ${name}.web/widget.js must be built)`);
    const r = await fetch(`${weftd.base}${p.widget}`);
    assert.equal(r.status, 200, `GET ${p.widget}`);
    assert.match(r.headers.get('content-type') || '', /javascript/, `${p.widget} is served as JavaScript`);
    assert.ok(r.headers.get('etag'), `${p.widget} has an ETag`);
    const again = await fetch(`${weftd.base}${p.widget}`, { headers: { 'If-None-Match': r.headers.get('etag') } });
    assert.equal(again.status, 304, `${p.widget} answers 304 to its ETag`);
  }
}

async function newPage(browser, sink, label) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = watchPage(await context.newPage(), label, sink);
  return { context, page };
}

function person(first, tag) {
  const username = `${first.toLowerCase()}_${tag}`;
  return { email: `${username}@example.com`, username, display_name: `${first} ${tag}`, password: `${first}-secret-pass-1` };
}

/** Register through the shell's form (the page is on the register tab). */
async function fillRegister(page, p) {
  await page.getByTestId('input-email').fill(p.email);
  await page.getByTestId('input-username').fill(p.username);
  await page.getByTestId('input-display_name').fill(p.display_name);
  await page.getByTestId('input-password').fill(p.password);
  await page.getByTestId('register-form-submit').click();
  await until(async () => (await page.getByTestId('account-name').textContent()) === p.display_name,
    `${p.username} is signed in (the header shows the display name)`, 30000);
}

/** Register through the API in a browser context: the cookies land in it. */
async function registerIn(context, base, p, extra = {}) {
  const r = await context.request.post(`${base}/api/auth/register`, { data: { ...p, session: 'cookie', ...extra } });
  assert.equal(r.status(), 201, `register ${p.username}: ${r.status()} ${await r.text()}`);
  return (await r.json()).user;
}

const text = async (loc) => ((await loc.count()) ? (await loc.first().textContent()) : null);
const texts = (loc) => loc.allTextContents();

async function widgetReady(page, name) {
  const w = page.getByTestId(`widget-${name}`);
  if (name === 'todo') {
    await until(async () => (await w.getByTestId('todo-list-title').count()) > 0, `the todo widget has loaded (${page.url()})`, 30000);
  } else if (name === 'referral') {
    await until(async () => (await w.getByTestId('leaderboard-table').count()) > 0, `the referral leaderboard has loaded (${page.url()})`, 30000);
  }
  return w;
}

async function live(page) {
  await until(async () => (await page.getByTestId('realtime-status').getAttribute('data-status')) === 'live', 'the realtime stream is live', 15000);
}

/* ---- referral: invite link, live list and leaderboard ------------------------- */

async function referral({ weftd, browser, shot, sink }) {
  const tag = uniq();
  const ann = person('Ann', tag);
  const ben = person('Ben', tag);
  // Someone else on the board whom the search must keep hidden; a name
  // that is not ASCII (Refwave crashed on those).
  const zed = { ...person('Zed', `x${uniq()}`), display_name: 'Žofie Ünicode' };
  zed.username = `žofie_${zed.username.slice(4)}`;
  await weftd.json('POST', '/api/auth/register', zed);

  const A = await newPage(browser, sink, 'A');
  await A.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: weftd.base });
  await A.page.goto(`${weftd.base}/`);
  await A.page.getByTestId('signin-form').waitFor();
  await shot(A.page, 'signed-out');

  await A.page.getByTestId('tab-register').click();
  await fillRegister(A.page, ann);
  const wA = await widgetReady(A.page, 'referral');
  await until(async () => (await text(wA.getByTestId('referral-code'))) !== null, 'A sees an invite code', 20000);
  await live(A.page);
  const code = (await text(wA.getByTestId('referral-code'))).trim();
  const link = await wA.getByTestId('referral-invite-link').inputValue();
  assert.equal(link, `${weftd.base}/?ref=${code}`, 'the invite link is absolute and carries the code');

  await wA.getByTestId('referral-copy').click();
  await until(async () => (await text(wA.getByTestId('referral-copy'))).includes('Copied'), 'the copy button says Copied');
  const clip = await A.page.evaluate(() => navigator.clipboard.readText());
  assert.equal(clip, link, 'the copy button put the invite link on the clipboard');
  await shot(A.page, 'a-registered');

  // A narrows the leaderboard to this run's two people and sorts by points.
  const search = wA.getByTestId('leaderboard-search');
  await search.fill(`_${tag}`);
  await wA.getByTestId('leaderboard-sort-points').click();
  const table = wA.getByTestId('leaderboard-table');
  assert.equal(await table.getAttribute('data-sort'), 'points:desc');
  await until(async () => (await texts(wA.getByTestId('leaderboard-name'))).join('|') === ann.display_name, 'the search shows only A');
  await A.page.evaluate(() => { window.__noReload = true; });
  await shot(A.page, 'a-search-filter');

  // B opens A's invite link in another browser context and registers.
  const B = await newPage(browser, sink, 'B');
  await B.page.goto(link);
  await B.page.getByTestId('register-form').waitFor();
  assert.equal(await B.page.getByTestId('input-referral_code').inputValue(), code, 'the invite code is filled in');
  assert.ok((await text(B.page.getByTestId('invite-notice'))).includes(code), 'the form says it is an invite');
  await shot(B.page, 'b-invite-form');
  await fillRegister(B.page, ben);
  assert.equal(new URL(B.page.url()).search, '', 'the ?ref= is gone from the address after registering');
  const wB = await widgetReady(B.page, 'referral');
  await until(async () => ((await text(wB.getByTestId('referral-referrer'))) || '').includes(ann.display_name), 'B sees that A invited them', 20000);
  await shot(B.page, 'b-registered');

  // A's page, without a reload: the toast, the referral, the points, the board.
  await until(async () => (await texts(wA.getByTestId('referral-toast'))).some((t) => t.includes(`${ben.display_name} joined`)), 'A gets a toast that B joined', 20000);
  await until(async () => (await texts(wA.getByTestId('referral-direct-item'))).some((t) => t.includes(ben.display_name)), 'A sees B among their referrals', 20000);
  await until(async () => (await text(wA.getByTestId('referral-stat-points'))) === '10', 'A has 10 points');
  await until(async () => (await text(wA.getByTestId('referral-stat-direct'))) === '1', 'A has 1 direct referral');
  await until(async () => {
    const names = await texts(wA.getByTestId('leaderboard-name'));
    const points = await texts(wA.getByTestId('leaderboard-points'));
    return names.join('|') === `${ann.display_name}|${ben.display_name}` && points.join('|') === '10|0';
  }, 'the filtered leaderboard shows A (10) above B (0), live', 20000);
  assert.equal(await search.inputValue(), `_${tag}`, 'the search text survived the live update');
  assert.equal(await table.getAttribute('data-sort'), 'points:desc', 'the sort order survived the live update');
  assert.ok(!(await texts(wA.getByTestId('leaderboard-name'))).includes(zed.display_name), 'the filter still hides others');
  assert.equal(await A.page.evaluate(() => window.__noReload), true, "A's page was not reloaded");
  await shot(A.page, 'a-live-update');

  // Clearing the search shows everyone again, still ranked by points.
  await search.fill('');
  await until(async () => (await texts(wA.getByTestId('leaderboard-name'))).length === 3, 'all three are on the board');
  const all = await texts(wA.getByTestId('leaderboard-name'));
  assert.equal(all[0], ann.display_name, 'A leads the board');
  assert.ok(all.includes(zed.display_name), 'a non-ASCII name is on the board');
  await shot(A.page, 'a-board-unfiltered');

  // The same widget on its own page.
  await A.page.goto(`${weftd.base}/p/referral/`);
  const standalone = await widgetReady(A.page, 'referral');
  await until(async () => (await text(standalone.getByTestId('referral-stat-points'))) === '10', 'the standalone page shows the same stats');
  await shot(A.page, 'a-standalone');
}

/* ---- todo: live across tabs of one user, never across users ------------------------ */

async function todo({ weftd, browser, shot, sink }) {
  const tag = uniq();
  const ann = person('Ann', tag);
  const ben = person('Ben', tag);

  const A = await newPage(browser, sink, 'A-tab1');
  const annUser = await registerIn(A.context, weftd.base, ann);
  const tab1 = A.page;
  const tab2 = watchPage(await A.context.newPage(), 'A-tab2', sink);
  await tab1.goto(`${weftd.base}/`);
  await tab2.goto(`${weftd.base}/`);
  const t1 = await widgetReady(tab1, 'todo');
  const t2 = await widgetReady(tab2, 'todo');
  await live(tab1);
  await live(tab2);
  assert.equal(await text(t1.getByTestId('todo-list-title')), 'My list', 'a new user gets "My list"');
  await shot(tab1, 'a-tab1-empty');

  const items = (w) => texts(w.getByTestId('todo-item-text'));

  // Added in tab 1, appears in tab 2.
  await t1.getByTestId('todo-new-item').fill('Buy milk');
  await t1.getByTestId('todo-add').click();
  await until(async () => (await items(t1)).includes('Buy milk'), 'tab 1 shows its new item');
  await until(async () => (await items(t2)).includes('Buy milk'), 'tab 2 shows the item added in tab 1, without a reload', 15000);
  await shot(tab1, 'a-tab1-added');
  await shot(tab2, 'a-tab2-live');

  // Done in tab 2, done in tab 1; a second item from tab 2.
  await t2.getByTestId('todo-item').filter({ hasText: 'Buy milk' }).getByTestId('todo-item-toggle').check();
  await until(async () => (await t1.getByTestId('todo-item').filter({ hasText: 'Buy milk' }).getAttribute('data-done')) === 'true', 'tab 1 sees the item done');
  await t2.getByTestId('todo-new-item').fill('Call Ben');
  await t2.getByTestId('todo-new-item').press('Enter');
  await until(async () => (await items(t1)).join('|') === 'Buy milk|Call Ben', 'tab 1 sees the item added in tab 2');

  // Reorder in tab 1 (move "Call Ben" up): tab 2 follows.
  await t1.getByTestId('todo-item').filter({ hasText: 'Call Ben' }).locator('[data-move="up"]').click();
  await until(async () => (await items(t2)).join('|') === 'Call Ben|Buy milk', 'tab 2 sees the new order');

  // A new list in tab 1 appears in tab 2's list tabs.
  await t1.getByTestId('todo-new-list').click();
  await t1.getByTestId('todo-new-list-title').fill('Groceries');
  await t1.getByTestId('todo-create-list').click();
  await until(async () => (await texts(t2.getByTestId('todo-list-tab'))).some((t) => t.startsWith('Groceries')), 'tab 2 sees the new list');
  await shot(tab2, 'a-tab2-new-list');

  // Another user: their own list only, and no live updates from A.
  const B = await newPage(browser, sink, 'B');
  await registerIn(B.context, weftd.base, ben);
  await B.page.goto(`${weftd.base}/`);
  const tb = await widgetReady(B.page, 'todo');
  await live(B.page);
  assert.deepEqual(await texts(tb.getByTestId('todo-list-tab')).then((l) => l.map((t) => t.replace(/\d+$/, ''))), ['My list'], 'B has only their own list');
  assert.deepEqual(await items(tb), [], "B sees none of A's items");
  await tb.getByTestId('todo-new-item').fill("Ben's own thing");
  await tb.getByTestId('todo-add').click();
  await until(async () => (await items(tb)).includes("Ben's own thing"), 'B sees their own item');

  // A adds one more in tab 1 (on "My list"); tab 2 gets it, B does not.
  await t1.getByTestId('todo-list-tab').filter({ hasText: 'My list' }).click();
  await until(async () => (await items(t1)).length === 2, 'tab 1 is back on My list');
  await t1.getByTestId('todo-new-item').fill('Secret plan');
  await t1.getByTestId('todo-add').click();
  await until(async () => (await items(t2)).includes('Secret plan'), "A's tab 2 gets the new item");
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await items(tb), ["Ben's own thing"], "B's page never shows A's items");
  assert.ok(!(await items(t1)).includes("Ben's own thing") && !(await items(t2)).includes("Ben's own thing"), "A never sees B's item");

  // B cannot follow A's topic, nor read A's list by id.
  const refused = await B.page.evaluate(async (id) => {
    const ctl = new AbortController();
    const r = await fetch(`/api/realtime?topic=todo.user.${id}`, { signal: ctl.signal });
    ctl.abort();
    return r.status;
  }, annUser.id);
  assert.equal(refused, 403, "B's stream for A's todo topic is refused");
  await shot(B.page, 'b-own-list');
  await shot(tab1, 'a-tab1-final');

  // B signs out and in again through the shell: the list is still theirs.
  await B.page.getByTestId('sign-out').click();
  await B.page.getByTestId('signin-form').waitFor();
  assert.equal(await B.page.getByTestId('widget-todo').count(), 0, 'no widget after signing out');
  await B.page.getByTestId('input-email').fill(ben.email);
  await B.page.getByTestId('input-password').fill('not-the-password');
  await B.page.getByTestId('signin-form-submit').click();
  await until(async () => /wrong email or password/i.test((await text(B.page.getByTestId('signin-form-error'))) || ''), 'a wrong password is refused with a message');
  await B.page.getByTestId('input-password').fill(ben.password);
  await B.page.getByTestId('signin-form-submit').click();
  const tb2 = await widgetReady(B.page, 'todo');
  await until(async () => (await items(tb2)).join('|') === "Ben's own thing", "B's list is back after signing in");
  await shot(B.page, 'b-signed-in-again');
}

/* ---- disable: a broken widget stays alone; SIGHUP removes the todo widget ---------- */

async function disable({ weftd, browser, shot, sink }) {
  const tag = uniq();
  const ann = person('Ann', tag);
  const A = await newPage(browser, sink, 'A');
  await registerIn(A.context, weftd.base, ann);
  await A.page.goto(`${weftd.base}/`);
  await widgetReady(A.page, 'todo');
  const wr = await widgetReady(A.page, 'referral');
  await live(A.page);
  await shot(A.page, 'both-widgets');

  // A widget whose module fails to load, or whose mount() throws, shows an
  // error card; the other widget works.
  const broken = watchPage(await A.context.newPage(), 'A-broken', sink);
  await broken.route('**/p/todo/widget.js*', (route) => route.fulfill({ status: 500, contentType: 'application/json', body: '{"error":{"code":"internal","message":"boom"}}' }));
  await broken.goto(`${weftd.base}/`);
  await broken.getByTestId('widget-error-todo').waitFor({ timeout: 15000 });
  await widgetReady(broken, 'referral');
  assert.match(await text(broken.getByTestId('widget-error-todo')), /could not be loaded/, 'the error card says the module could not be loaded');
  await shot(broken, 'todo-import-fails');
  await broken.unroute('**/p/todo/widget.js*');
  await broken.route('**/p/todo/widget.js*', (route) => route.fulfill({
    status: 200, contentType: 'text/javascript', body: "export async function mount() { throw new Error('kaput'); }",
  }));
  await broken.reload();
  await broken.getByTestId('widget-error-todo').waitFor({ timeout: 15000 });
  await widgetReady(broken, 'referral');
  assert.match(await text(broken.getByTestId('widget-error-todo')), /failed to start.*kaput/is, 'the error card says what mount() threw');
  await shot(broken, 'todo-mount-throws');
  // Fixed on the server: "Try again" loads it without a page reload.
  await broken.unroute('**/p/todo/widget.js*');
  await broken.getByTestId('widget-error-todo-retry').click();
  await widgetReady(broken, 'todo');
  await shot(broken, 'todo-retry-works');
  await broken.close();

  // Disable todo in the config and send SIGHUP.
  await weftd.setEnabled('todo', false);
  await A.page.reload();
  await widgetReady(A.page, 'referral');
  assert.equal(await A.page.getByTestId('widget-todo').count(), 0, 'the todo widget is gone after the reload');
  assert.equal(await A.page.getByTestId('widget-error-todo').count(), 0);
  await live(A.page);
  const code = (await text(A.page.getByTestId('referral-code'))).trim();
  await shot(A.page, 'todo-disabled');

  // The rest keeps working, live: someone registers with A's code.
  const cat = person('Cat', tag);
  await weftd.json('POST', '/api/auth/register', { ...cat, referral_code: code });
  await until(async () => (await texts(A.page.getByTestId('referral-direct-item'))).some((t) => t.includes(cat.display_name)), 'A sees the new referral live after the SIGHUP', 20000);
  await until(async () => (await text(A.page.getByTestId('referral-stat-points'))) === '10', 'A has 10 points');
  await shot(A.page, 'referral-still-live');

  // The disabled plugin's files are not served any more, and its
  // standalone page says it is off instead of showing raw JSON.
  const r = await A.context.request.get(`${weftd.base}/p/todo/widget.js`);
  assert.equal(r.status(), 404, '/p/todo/widget.js is gone while todo is disabled');
  const alone = await A.context.newPage();
  await alone.goto(`${weftd.base}/p/todo/`);
  await until(async () => (await alone.getByTestId('standalone-error').count()) > 0 &&
    (await alone.getByTestId('standalone-error').innerText()).includes('disabled'),
    'the standalone page of a disabled plugin says so', 15000);
  await shot(alone, 'todo-standalone-disabled');
  await alone.close();

  // Enabled again: the widget is back on the next load.
  await weftd.setEnabled('todo', true);
  await A.page.reload();
  await widgetReady(A.page, 'todo');
  await widgetReady(A.page, 'referral');
  await shot(A.page, 'todo-enabled-again');
  void wr;
}
