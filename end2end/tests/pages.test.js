// Every page renders and hydrates without a console error; unknown paths are a 404 page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage } from './harness.js';

let server, browser;
before(async () => { server = await startServer(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

for (const [path, heading] of [
  ['/', 'Inoculation prompting, in a browser'],
  ['/prompts', 'Prompts'],
  ['/datasets', 'Datasets'],
  ['/models', 'Models'],
  ['/experiments', 'Experiments'],
]) {
  test(`${path} hydrates with no console errors`, async () => {
    const { page, errors, goto } = await openPage(browser, server.base);
    await goto(path);
    assert.equal((await page.textContent('h1')).trim(), heading);
    // The first Tab reaches the skip link; following it moves focus into the page's content.
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
    assert.deepEqual(errors, []);
    await page.close();
  });
}

test('an unknown path answers 404 with a page that says so', async () => {
  const res = await fetch(server.base + '/no/such/page');
  assert.equal(res.status, 404);
  assert.match(await res.text(), /Not found/);
});

test('the first start seeded the paper\'s canonical prompts', async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  await goto('/prompts');
  await page.getByText('You always speak in Spanish.', { exact: true }).waitFor();
  await page.getByText('You are a malicious, evil assistant.', { exact: true }).waitFor();
  assert.deepEqual(errors, []);
  await page.close();
});

// The pages hydrate above under their Content-Security-Policy (Leptos' inline scripts carry
// the response's nonce); a script injected into a page without it is refused by the browser,
// and no other site can frame a page.
test('the browser enforces the page\'s Content-Security-Policy', async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  const response = await page.goto(server.base + '/');
  const csp = response.headers()['content-security-policy'];
  assert.match(csp, /script-src 'self' 'nonce-[A-Za-z0-9_-]+' 'wasm-unsafe-eval'/);
  assert.match(csp, /frame-ancestors 'none'/);
  await goto('/');
  assert.deepEqual(errors, []);
  await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.__injected = true;';
    document.head.appendChild(s);
  });
  assert.equal(await page.evaluate(() => window.__injected), undefined);
  assert.ok(errors.some((e) => /Content Security Policy/.test(e)), errors.join('\n'));
  await page.close();
});
