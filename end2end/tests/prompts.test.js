// The prompt library as a researcher uses it: create, edit into versions, diff, tag
// filter, search, paraphrase import, delete.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launchBrowser, openPage, SHARED } from './harness.js';

let server, browser;
before(async () => { server = await startServer(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); await server?.stop(); });

test('create a prompt, edit it twice, see versions and a diff', async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  await goto('/prompts');
  await page.getByRole('button', { name: 'New prompt' }).click();
  await page.fill('input[name=name]', 'French');
  await page.fill('textarea[name=text]', 'You always speak in French.');
  await page.fill('input[name=tags]', 'inoculation, toy');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL(/\/prompts\/\d+$/);
  await page.getByRole('heading', { name: 'French' }).waitFor();

  await page.fill('textarea[name=text]', 'You always answer in French.');
  await page.fill('input[name=note]', 'say answer');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('2 versions').waitFor();
  await page.fill('textarea[name=text]', 'You always answer in French, whatever the question.');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('3 versions').waitFor();

  // The oldest version is still viewable as it was.
  await page.locator('tr', { hasText: 'v1' }).getByRole('button', { name: 'view' }).click();
  await page.locator('.version-view pre', { hasText: 'You always speak in French.' }).waitFor();
  // Diff v1 → v3.
  await page.selectOption('select[name=from]', '1');
  await page.selectOption('select[name=to]', '3');
  await page.locator('.diff .removed', { hasText: 'You always speak in French.' }).waitFor();
  await page.locator('.diff .added', { hasText: 'whatever the question' }).waitFor();
  assert.deepEqual(errors, []);
  await page.close();
});

test('search and tag filter narrow the list', async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  await goto('/prompts');
  await page.fill('input[name=search]', 'capitalise');
  await page.locator('.prompt-list li').first().waitFor();
  await page.waitForFunction(() => document.querySelectorAll('.prompt-list li').length === 1);
  assert.match(await page.textContent('.prompt-list'), /You always capitalise your responses\./);
  await page.fill('input[name=search]', '');
  await page.getByRole('group', { name: 'Filter by tag' }).getByRole('button', { name: 'toy', exact: true }).click();
  await page.waitForFunction(() => [...document.querySelectorAll('.prompt-list li')].every((li) => li.textContent.includes('toy')));
  assert.deepEqual(errors, []);
  await page.close();
});

test('a paraphrase set imported from a text file becomes a new version', { skip: !existsSync(join(SHARED, 'data/tan2025/evil_paraphrases.txt')) && 'shared data absent' }, async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  await goto('/prompts');
  await page.locator('.prompt-list a', { hasText: 'Evil assistant' }).click();
  await page.waitForURL(/\/prompts\/\d+$/);
  await page.getByRole('heading', { name: /Evil assistant/ }).waitFor();
  const file = join(SHARED, 'data/tan2025/evil_paraphrases.txt');
  const n = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).length;
  await page.setInputFiles('input[name=paraphrase-file]', file);
  await page.getByText(`one variant per line (${n} now)`).waitFor();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByText('2 versions').waitFor();
  await page.getByText(`${n} paraphrases`).waitFor();
  assert.deepEqual(errors, []);
  await page.close();
});

test('model-looking text in a prompt renders as text, and delete removes it from the list', async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  await goto('/prompts');
  await page.getByRole('button', { name: 'New prompt' }).click();
  await page.fill('input[name=name]', 'Escaping');
  await page.fill('textarea[name=text]', '<script>alert(1)</script><b>not bold</b>');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL(/\/prompts\/\d+$/);
  await page.locator('.version-view pre', { hasText: '<script>alert(1)</script><b>not bold</b>' }).waitFor();
  assert.equal(await page.locator('.version-view b').count(), 0);
  await page.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('button', { name: 'Really delete' }).click();
  await page.waitForURL(/\/prompts$/);
  await page.locator('.prompt-list li').first().waitFor();
  assert.equal(await page.locator('.prompt-list a', { hasText: 'Escaping' }).count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});
