// Safe defaults: an upload over the configured limit is refused with a clear message, and
// the server answers on loopback only unless told otherwise.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser, openPage } from './harness.js';

let server, browser;
before(async () => { server = await startServer(['--max-upload-mb', '1']); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

test('an upload over --max-upload-mb is refused with a message that names the limit', async () => {
  const big = join(mkdtempSync(join(tmpdir(), 'inoculab-big-')), 'big.jsonl');
  const line = JSON.stringify({ prompt: 'x'.repeat(1000), completion: 'y' }) + '\n';
  writeFileSync(big, line.repeat(1500)); // ~1.5 MB
  const { page, errors, goto } = await openPage(browser, server.base);
  await goto('/datasets');
  await page.setInputFiles('input[name=import-file]', big);
  await page.getByRole('button', { name: 'Import' }).click();
  await page.getByText(/the server accepts at most 1 MiB/).waitFor();
  assert.equal(await page.locator('table.datasets').count(), 0, 'nothing was imported');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the server listens on 127.0.0.1 by default', async () => {
  assert.match(server.base, /^http:\/\/127\.0\.0\.1:/);
  const res = await fetch(server.base + '/datasets');
  assert.equal(res.status, 200);
});
