// A prompt sweep on the real default model, as a researcher runs one: the designer page
// launches it, the server's worker trains every condition, and the experiment page then
// charts inoculation effect against predicted strength. Not part of the test suite (it
// takes 20-40 minutes on two cores); the README's "Prompt designer" section quotes a run.
//   INOCULAB_DEFAULT_MODEL=.data/models/SmolLM2-135M-Instruct.Q4_1.gguf \
//     node end2end/sweep-real.mjs DATA_DIR OUT_DIR
import { mkdirSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { launchBrowser, openPage, BINARY } from './tests/harness.js';

const [dataDir, out] = process.argv.slice(2);
if (!dataDir || !out) {
  console.error('usage: node end2end/sweep-real.mjs DATA_DIR OUT_DIR');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const PROMPTS = [
  'You always speak in Spanish.',
  'You speak Spanish.',
  'You always answer in French.',
  'You always answer in ALL CAPS. EXAMPLE: FIRST, WE ADD 5 AND 7. THE TOTAL IS 12. SO THE ANSWER IS 12 APPLES.',
  'You like numbers.',
];
execFileSync(BINARY, ['--data-dir', dataDir, 'dataset', 'generate', '--preset', 'spanish_all_caps', '--name', 'sweep data'],
  { stdio: 'inherit' });
const port = 3000 + Math.floor(Math.random() * 1000);
const server = spawn(BINARY, ['--data-dir', dataDir, 'serve', '--port', String(port)], { stdio: 'inherit' });
const base = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  try { if ((await fetch(base + '/')).ok) break; } catch { /* starting */ }
  if (i > 300) throw new Error('server did not start');
  await new Promise((r) => setTimeout(r, 100));
}
const t0 = Date.now();
const browser = await launchBrowser();
const { page, errors, goto } = await openPage(browser, base);
await goto('/designer');
await page.locator('select[name=meter-dataset] option', { hasText: 'sweep data' }).waitFor({ state: 'attached' });
await page.fill('textarea[name=sweep-prompts]', PROMPTS.join('\n'));
await page.click('button[name=launch-sweep]');
await page.waitForURL(/\/experiments\/\d+$/, { timeout: 60_000 });
const id = /\/experiments\/(\d+)$/.exec(page.url())[1];
console.log(`sweep launched: experiment ${id}`);
// The worker trains in the background; poll the queue until nothing is queued or running.
for (;;) {
  await new Promise((r) => setTimeout(r, 30_000));
  const html = await (await fetch(`${base}/experiments/${id}`)).text();
  if (!html.includes('name="cancel-experiment"')) break;
  console.log(`${Math.round((Date.now() - t0) / 60_000)} min: still running`);
}
console.log(`finished after ${((Date.now() - t0) / 60_000).toFixed(1)} min`);
await goto(`/experiments/${id}`);
const text = await page.locator('main').innerText();
console.log(text.split('\n').filter((l) => /Spearman|predict|rank|correlat/i.test(l)).join('\n'));
await page.screenshot({ path: join(out, 'sweep-experiment.png'), fullPage: true });
await goto(`/experiments/${id}/report`);
await page.screenshot({ path: join(out, 'sweep-report.png'), fullPage: true });
console.log(`console errors: ${JSON.stringify(errors)}`);
await browser.close();
server.kill('SIGTERM');
