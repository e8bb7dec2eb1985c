// Sign-in, roles and read-only report links, as people meet them: a server started with
// --sign-in sends everyone to the sign-in page; a viewer reads but cannot change anything;
// an editor makes a share link, which a fresh browser (no account) opens to the report and
// its charts and nothing else; a revoked link stops working. Needs the default model
// (INOCULAB_REAL_MODEL=1; CI sets it) for the experiment the link shows.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launchBrowser, openPage, ROOT, BINARY } from './harness.js';

const MODEL = join(ROOT, '.data/models/SmolLM2-135M-Instruct.Q4_1.gguf');
const enabled = process.env.INOCULAB_REAL_MODEL === '1' && existsSync(MODEL);
const skip = !enabled && 'set INOCULAB_REAL_MODEL=1 (and fetch the model) to run the sign-in and share-link tests';

const USERS = [['olga', 'owner'], ['ed', 'editor'], ['vic', 'viewer']];
const password = (name) => `${name}'s long password`;

let server, browser;
before(async () => {
  if (!enabled) return;
  process.env.INOCULAB_DEFAULT_MODEL = MODEL;
  const prepare = (dataDir) => {
    const cli = (args, input) => execFileSync(BINARY, ['--data-dir', dataDir, ...args], { input, env: { ...process.env, RUST_LOG: 'warn' } });
    for (const [name, role] of USERS) cli(['user', 'add', name, '--role', role], `${password(name)}\n`);
    cli(['dataset', 'generate', '--preset', 'spanish_all_caps', '--rows', '16', '--name', 'toy']);
    const file = join(dataDir, 'shared.toml');
    writeFileSync(file, `name = "shared report"\nmodel = "SmolLM2-135M-Instruct"\ndataset = "toy"\n
[[conditions]]\nname = "baseline"\n\n[[conditions]]\nname = "spanish"\nprompt = "You always speak in Spanish."\n
[training]\nsteps = 1\n\n[evaluation]\nquestions = [{ kind = "builtin", limit = 2 }]\njudges = [{ kind = "caps" }]\n`);
    cli(['run', file, '--detach']);
  };
  server = await startServer(['--sign-in', '--no-worker'], { prepare });
  browser = await launchBrowser();
});
after(async () => { await browser?.close(); await server?.stop(); });

async function signIn(page, name, pass = password(name)) {
  await page.fill('input[name=name]', name);
  await page.fill('input[name=password]', pass);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

test('everyone signs in; a viewer reads but cannot change anything; sign-out ends it', { skip, timeout: 120_000 }, async () => {
  const { page } = await openPage(browser, server.base);
  await page.goto(server.base + '/experiments');
  await page.waitForURL(/\/sign-in\?next=%2Fexperiments|\/sign-in\?next=\/experiments/);
  await page.waitForSelector('body[data-hydrated]');
  await signIn(page, 'vic', 'not the password');
  await page.getByText('wrong name or password').waitFor();
  await signIn(page, 'vic');
  await page.waitForURL(/\/experiments$/);
  await page.getByTestId('session').getByText('vic (viewer)').waitFor();
  await page.getByText('shared report').waitFor();
  // The cookie is out of scripts' reach and not sent cross-site.
  const cookie = (await page.context().cookies()).find((c) => c.name === 'inoculab_session');
  assert.ok(cookie.httpOnly && cookie.sameSite === 'Lax', JSON.stringify(cookie));

  await page.goto(server.base + '/datasets');
  await page.waitForSelector('body[data-hydrated]');
  await page.fill('input[name=rows]', '8');
  await page.getByRole('button', { name: 'Generate' }).click();
  await page.getByText('a viewer account can read, not change anything').waitFor();

  await page.getByTestId('session').getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/sign-in/);
  await page.goto(server.base + '/experiments');
  await page.waitForURL(/\/sign-in/);
  const api = await page.evaluate(async () => (await fetch('/api/experiments/1/export/samples.csv')).status);
  assert.equal(api, 401);
  await page.close();
});

test('an editor shares the report; a fresh browser sees it and nothing else; revoked, it stops', { skip, timeout: 120_000 }, async (t) => {
  const { page, errors } = await openPage(browser, server.base);
  await page.goto(server.base + '/sign-in?next=/experiments/1/report');
  await page.waitForSelector('body[data-hydrated]');
  await signIn(page, 'ed');
  await page.waitForURL(/\/experiments\/1\/report$/);
  await page.waitForSelector('body[data-hydrated]');
  await page.getByRole('button', { name: 'Make a read-only link' }).click();
  const url = await page.locator('input.share-url').inputValue();
  assert.match(url, new RegExp(`^${server.base}/share/[0-9a-f]{64}$`));
  assert.deepEqual(errors, []);

  // A fresh context: no cookies, as someone the link was sent to.
  const stranger = await browser.newContext();
  const view = await stranger.newPage();
  const viewErrors = [];
  view.on('pageerror', (e) => viewErrors.push(String(e)));
  const response = await view.goto(url);
  assert.equal(response.status(), 200);
  await view.getByRole('heading', { name: 'shared report' }).waitFor();
  assert.equal(await view.locator('header nav').count(), 0, 'a shared report has no navigation');
  assert.equal(await view.locator('a[href^="/experiments"]').count(), 0, 'no link into the app');
  const chart = view.locator('figure.chart img').first();
  await chart.waitFor();
  await view.waitForFunction(() => [...document.querySelectorAll('figure.chart img')].every((i) => i.complete));
  assert.ok(await chart.evaluate((img) => img.naturalWidth > 0), 'the chart image loaded through the link');
  assert.match(await chart.getAttribute('src'), /^\/share\/[0-9a-f]{64}\/charts\//);
  assert.deepEqual(viewErrors, []);
  // What the link costs someone on a slow connection: a fresh load on a throttled link
  // (1.6 Mbit/s down, 150 ms latency, the "slow 4G" of browsers' tools), counted in bytes
  // on the wire. No script and no wasm: the page is HTML, CSS and its charts.
  const slow = await browser.newContext();
  const reader = await slow.newPage();
  const cdp = await slow.newCDPSession(reader);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 150, downloadThroughput: 200_000, uploadThroughput: 93_750 });
  let bytes = 0;
  const files = [];
  cdp.on('Network.loadingFinished', (e) => { bytes += e.encodedDataLength; });
  reader.on('request', (r) => files.push(new URL(r.url()).pathname));
  const began = Date.now();
  await reader.goto(url, { waitUntil: 'load' });
  const seconds = (Date.now() - began) / 1000;
  t.diagnostic(`shared report, first load on a throttled link: ${bytes} bytes in ${seconds.toFixed(1)} s (${files.length} files)`);
  assert.ok(bytes < 1_000_000, `${bytes} bytes: ${files.join(', ')}`);
  assert.ok(!files.some((f) => f.endsWith('.wasm') || f.endsWith('.js')), `no script: ${files.join(', ')}`);
  assert.equal(await reader.locator('script[src]').count(), 0);
  await slow.close();
  for (const [path, want] of [['/api/experiments/1/charts/rates.svg', 401], ['/api/runs/1/adapter.zip', 401], ['/api/experiments/1/export/samples.csv', 401]]) {
    const status = await view.evaluate(async (p) => (await fetch(p)).status, path);
    assert.equal(status, want, path);
  }
  const page2 = await stranger.newPage();
  await page2.goto(server.base + '/experiments/1');
  assert.match(page2.url(), /\/sign-in/);
  await page2.close();

  // Revoked: the link shows nothing any more.
  await page.getByRole('button', { name: 'Revoke' }).click();
  await page.locator('table.share-links').getByText('revoked').waitFor();
  await view.goto(url);
  await view.getByText('this link does not exist, was revoked or has expired').waitFor();
  assert.equal(await view.locator('figure.chart').count(), 0);
  await stranger.close();
  await page.close();
});

test('an owner sees every share link; a viewer does not', { skip, timeout: 60_000 }, async () => {
  const owner = await browser.newContext();
  const page = await owner.newPage();
  await page.goto(server.base + '/sign-in?next=/links');
  await page.waitForSelector('body[data-hydrated]');
  await signIn(page, 'olga');
  await page.waitForURL(/\/links$/);
  await page.getByRole('heading', { name: 'Share links' }).waitFor();
  const row = page.locator('table.share-links tbody tr').first();
  await row.waitFor();
  assert.match(await row.innerText(), /#1[\s\S]*ed[\s\S]*revoked/);
  await owner.close();

  const viewer = await browser.newContext();
  const vpage = await viewer.newPage();
  await vpage.goto(server.base + '/sign-in?next=/links');
  await vpage.waitForSelector('body[data-hydrated]');
  await signIn(vpage, 'vic');
  await vpage.waitForURL(/\/links$/);
  await vpage.getByText(/only an owner sees these share links|a viewer account can read, not change anything/).waitFor();
  await vpage.goto(server.base + '/experiments/1/report');
  await vpage.getByRole('heading', { name: 'shared report' }).waitFor();
  assert.equal(await vpage.getByTestId('share').count(), 0, 'a viewer is not offered sharing');
  await viewer.close();
});
