// Takes the README's screenshots from a running server:
//   node end2end/screenshots.mjs http://127.0.0.1:3000 EXPERIMENT_ID docs/screenshots
// Use a finished experiment (the demo's, for instance) so the pages show real results.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launchBrowser } from './tests/harness.js';

const [base, id, out] = process.argv.slice(2);
if (!base || !id || !out) {
  console.error('usage: node end2end/screenshots.mjs BASE_URL EXPERIMENT_ID OUT_DIR');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const browser = await launchBrowser();
const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
const shots = [
  ['home', '/', false],
  ['experiment', `/experiments/${id}`, false],
  ['samples', `/experiments/${id}#samples`, false],
  ['compare', `/experiments/${id}/compare`, false],
  ['report', `/experiments/${id}/report`, true],
];
for (const [name, path, full] of shots) {
  await page.goto(base + path);
  await page.waitForSelector('body[data-hydrated]', { timeout: 20_000 });
  // Charts are lazy-loaded images: scroll through the page so every one is requested,
  // then wait until all have loaded.
  for (let y = 0; y < 10_000; y += 600) {
    await page.mouse.wheel(0, 600);
    await page.waitForTimeout(100);
  }
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.waitForFunction(() => [...document.images].every((i) => i.complete), null, { timeout: 30_000 });
  if (path.includes('#samples')) await page.locator('#samples').scrollIntoViewIfNeeded();
  const file = join(out, `${name}.png`);
  await page.screenshot({ path: file, fullPage: full });
  console.log(file);
}
// The report's first screens on a phone (390 px wide): the headline and the table.
const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
await phone.goto(`${base}/experiments/${id}/report`);
await phone.waitForSelector('body[data-hydrated]', { timeout: 20_000 });
const file = join(out, 'report-phone.png');
await phone.screenshot({ path: file, clip: { x: 0, y: 0, width: 390, height: 1400 }, fullPage: true });
console.log(file);
await browser.close();
