// The prompt designer as a researcher uses it: type a candidate prompt and watch the
// strength meter (surprise reduction, then the base model's elicitation rate), keep typing
// and see the reading follow the latest text, rank it against the library's prompts, see
// the meter in the prompt editor, and turn a list of prompts into a sweep experiment that
// runs to its predictor check (surprise reduction and elicitation against the effect).
// Real model, real store; needs INOCULAB_REAL_MODEL=1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startServer, launchBrowser, openPage, ROOT, BINARY } from './harness.js';

const MODEL = join(ROOT, '.data/models/SmolLM2-135M-Instruct.Q4_1.gguf');
const enabled = process.env.INOCULAB_REAL_MODEL === '1' && existsSync(MODEL);
const skip = !enabled && 'set INOCULAB_REAL_MODEL=1 (and fetch the model) to measure prompts';

let server, browser;
before(async () => {
  if (!enabled) return;
  process.env.INOCULAB_DEFAULT_MODEL = MODEL;
  // With its worker: the sweep launched at the end runs (one step per prompt) to its
  // predictor check.
  server = await startServer();
  browser = await launchBrowser();
  // A small generated dataset keeps each measurement to a few seconds on two cores.
  execFileSync(BINARY, ['--data-dir', server.dataDir, 'dataset', 'generate', '--preset', 'spanish_all_caps', '--rows', '12', '--name', 'toy'],
    { encoding: 'utf8', timeout: 120_000 });
});
after(async () => { await browser?.close(); await server?.stop(); });

const SURPRISE = /^[+-]\d\.\d{3} nats\/token \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]$/;

test('the meter measures as you type, follows the latest text, and ranks it', { skip, timeout: 600_000 }, async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  await goto('/designer');
  await page.locator('select[name=meter-dataset] option', { hasText: 'toy' }).waitFor({ state: 'attached' });
  // Typed in two goes: only the final text is measured and shown.
  await page.fill('textarea[name=candidate]', 'You are a pirate.');
  await page.waitForTimeout(200);
  await page.fill('textarea[name=candidate]', 'You always speak in Spanish.');
  const surprise = page.locator('[data-testid=surprise]');
  await surprise.waitFor({ timeout: 120_000 });
  assert.match(await surprise.innerText(), SURPRISE);
  // The Spanish data is clearly less surprising with a prompt that says it is Spanish.
  await page.locator('.meter-reading', { hasText: 'clearly less surprising' }).waitFor({ timeout: 120_000 });
  await page.locator('.meter-reading', { hasText: 'over 12 rows' }).waitFor({ timeout: 120_000 });
  // Then the base model is sampled under the prompt and judged for the dataset's traits.
  const rates = page.locator('[data-testid=elicitation-rate]');
  await rates.first().waitFor({ timeout: 180_000 });
  assert.deepEqual((await rates.allInnerTexts()).map((t) => t.split(':')[0]), ['language', 'caps']);
  assert.match(await rates.first().innerText(), /^language:es: \d+\/\d+$/);
  // Model output is text: no element from it.
  await page.locator('.elicited details summary').click();
  assert.ok((await page.locator('.elicited-samples li').count()) === 16);

  // The ranking table places the typed prompt among the library's; measuring the rest
  // fills in their numbers, strongest first.
  const mine = page.locator('table.ranking tr.current');
  await mine.waitFor();
  assert.match(await mine.innerText(), /your prompt\s+You always speak in Spanish\./);
  const button = page.locator('button[name=measure-all]');
  await button.waitFor();
  const before = Number(/the (\d+) unmeasured/.exec(await button.innerText())[1]);
  assert.ok(before >= 5, `the canonical prompts are there to rank: ${before}`);
  await button.click();
  await page.locator('button[name=measure-all]', { hasText: 'Measure the 0 unmeasured' }).waitFor({ timeout: 300_000 });
  const values = (await page.locator('table.ranking tbody tr td:nth-child(4)').allInnerTexts()).map((t) => Number(t.split(' ')[0]));
  assert.ok(values.every((v) => Number.isFinite(v)), `every row measured: ${values}`);
  assert.deepEqual(values, [...values].sort((a, b) => b - a), 'strongest first');
  // The library's own Spanish prompt measures the same as the typed one (same text, cache).
  const spanishRows = await page.locator('table.ranking tbody tr', { hasText: 'You always speak in Spanish.' }).allInnerTexts();
  assert.equal(spanishRows.length, 2);
  assert.equal(spanishRows[0].split('\t').at(-1), spanishRows[1].split('\t').at(-1));
  assert.deepEqual(errors, []);
});

test('the prompt editor shows the meter; a sweep becomes an experiment and checks its predictors', { skip, timeout: 1_200_000 }, async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  // The canonical French prompt: its page measures it without typing.
  await goto('/prompts');
  await page.getByRole('link', { name: 'French' }).click();
  await page.waitForURL(/\/prompts\/\d+$/);
  await page.locator('[data-testid=surprise]').waitFor({ timeout: 120_000 });
  assert.match(await page.locator('[data-testid=surprise]').innerText(), SURPRISE);

  await goto('/designer');
  await page.locator('select[name=meter-dataset] option', { hasText: 'toy' }).waitFor({ state: 'attached' });
  // Too few prompts is refused with a sentence; nothing is created.
  await page.fill('textarea[name=sweep-prompts]', 'Only one.');
  await page.click('button[name=launch-sweep]');
  await page.locator('.error', { hasText: 'at least two different prompts' }).waitFor();
  await page.fill('textarea[name=sweep-prompts]', 'You always speak in Spanish.\nYou speak Spanish.\n\nYou like numbers.');
  await page.fill('input[name=sweep-steps]', '1');
  await page.fill('input[name=sweep-questions]', '2');
  await page.click('button[name=launch-sweep]');
  await page.waitForURL(/\/experiments\/\d+$/, { timeout: 30_000 });
  await page.locator('main', { hasText: 'p3: You like numbers.' }).waitFor({ timeout: 30_000 });
  const body = await page.locator('main').textContent();
  for (const c of ['baseline', 'p1: You always speak in Spanish.', 'p2: You speak Spanish.', 'p3: You like numbers.']) {
    assert.ok(body.includes(c), `condition ${c} listed`);
  }
  assert.match(body, /"predict_strength": 64/);

  // Once the runs are judged, the page sets both predictors against the effect, per judge:
  // surprise reduction, and how often the base model showed that judge's trait.
  const predictions = page.locator('[data-testid=predictions]');
  await predictions.waitFor({ timeout: 600_000 });
  await page.locator('p.finding[data-predictor=elicitation]', { hasText: 'answered in capital letters' })
    .waitFor({ timeout: 600_000 });
  assert.ok(await page.locator('p.finding[data-predictor=surprise]').count() >= 2, 'surprise, per trait judge');
  for (const [name, title] of [['predictor', 'Strength vs effect'], ['predictor-elicitation', 'Elicitation vs effect']]) {
    const img = page.locator(`figure[data-chart="${name}"] img`).first();
    const svg = await page.request.get(new URL(await img.getAttribute('src'), server.base).href);
    assert.equal(svg.status(), 200);
    assert.match(await svg.text(), new RegExp(title));
    // Lazy images load once scrolled to.
    await img.scrollIntoViewIfNeeded();
    await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle(), { timeout: 30_000 });
  }
  await predictions.locator('details summary').first().click();
  const cells = await predictions.locator('table.results').first().locator('tbody td:nth-child(4)').allInnerTexts();
  assert.equal(cells.length, 3, `one row per prompt: ${cells}`);
  for (const c of cells) assert.match(c, /^\d+ of 16$/);
  // The one 400 is the refused one-prompt sweep above.
  assert.deepEqual(errors.filter((e) => !/status of 400/.test(e)), []);
});

// Last: it adds a larger dataset, which the meter then picks by default.
test('the first estimate stays while a larger one is measured; saving or leaving mid-measurement is clean', { skip, timeout: 600_000 }, async () => {
  execFileSync(BINARY, ['--data-dir', server.dataDir, 'dataset', 'generate', '--preset', 'spanish_all_caps', '--rows', '80', '--name', 'bigger'],
    { encoding: 'utf8', timeout: 120_000 });
  const { page, errors, goto } = await openPage(browser, server.base);
  await goto('/designer');
  await page.locator('select[name=meter-dataset] option', { hasText: 'bigger' }).waitFor({ state: 'attached' });
  await page.selectOption('select[name=meter-dataset]', { label: 'bigger (80 rows)' });
  await page.fill('textarea[name=candidate]', 'You answer in Spanish capitals.');
  // The 16-row estimate is shown, with a note, while the 64-row one is measured.
  await page.locator('.meter-reading', { hasText: 'over 16 rows' }).waitFor({ timeout: 180_000 });
  await page.locator('[data-testid=refining]', { hasText: 'measuring on 64 rows' }).waitFor();
  await page.locator('.meter-reading', { hasText: 'over 64 rows' }).waitFor({ timeout: 300_000 });
  assert.equal(await page.locator('[data-testid=refining]').count(), 0);

  // The prompt editor measures its prompt; saving a new version mid-measurement redraws the
  // meter, and leaving through the navigation drops it: neither may panic in the browser.
  await goto('/prompts');
  await page.getByRole('link', { name: 'French' }).click();
  await page.waitForURL(/\/prompts\/\d+$/);
  await page.locator('[data-testid=strength-meter]').waitFor();
  await page.fill('textarea[name=text]', 'You always speak in French, even about numbers.');
  await page.waitForTimeout(900); // past the meter's debounce: the measurement is in flight
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.getByText(/^2 versions/).waitFor();
  await page.fill('textarea[name=text]', 'You always speak in French.');
  await page.waitForTimeout(900);
  await page.locator('nav a', { hasText: 'Datasets' }).click();
  await page.waitForURL(/\/datasets$/);
  await page.waitForTimeout(3000);
  // The superseded measurements answer 400 ("cancelled"), which the browser logs; nothing else.
  assert.deepEqual(errors.filter((e) => !/status of 400/.test(e)), []);
});
