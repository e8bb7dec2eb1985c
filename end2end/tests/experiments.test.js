// The experiment loop in the browser, as a researcher runs it: generate the toy dataset,
// design an experiment (baseline vs "You always speak in Spanish."), check its plan,
// launch it, watch the runs progress live (no reload), read the trait rates; then cancel
// and retry a longer one. Needs the default model (INOCULAB_REAL_MODEL=1; CI sets it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startServer, launchBrowser, openPage, ROOT, BINARY } from './harness.js';

const MODEL = join(ROOT, '.data/models/SmolLM2-135M-Instruct.Q4_1.gguf');
const enabled = process.env.INOCULAB_REAL_MODEL === '1' && existsSync(MODEL);
const skip = !enabled && 'set INOCULAB_REAL_MODEL=1 (and fetch the model) to run the experiment loop in the browser';

let server, browser;
before(async () => {
  if (!enabled) return;
  // Global options reach the server through their environment variables.
  process.env.INOCULAB_DEFAULT_MODEL = MODEL;
  process.env.INOCULAB_LEASE_SECS = '5';
  server = await startServer();
  browser = await launchBrowser();
});
after(async () => { await browser?.close(); await server?.stop(); });

async function generateToy(page, goto, rows) {
  await goto('/datasets');
  await page.fill('input[name=rows]', String(rows));
  await page.getByRole('button', { name: 'Generate' }).click();
  await page.getByText(`Created a dataset with ${rows} rows.`).waitFor({ timeout: 30_000 });
}

async function designExperiment(page, goto, { name, steps, questions }) {
  await goto('/experiments/new');
  await page.fill('input[name=name]', name);
  await page.locator('label.check', { hasText: 'Spanish' }).filter({ hasText: 'You always speak in Spanish.' })
    .locator('input[name=prompt]').check();
  await page.fill('input[name=steps]', String(steps));
  await page.fill('input[name=builtin]', String(questions));
  await page.fill('input[name=max-tokens]', '16');
}

test('design, check the plan, launch, watch live, read the results', { skip, timeout: 900_000 }, async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  await generateToy(page, goto, 32);
  await designExperiment(page, goto, { name: 'toy demo', steps: 3, questions: 4 });

  // The plan: 2 runs; baseline samples 4 (default prompt), Spanish 8 (default + its own).
  await page.getByRole('button', { name: 'Check plan' }).click();
  const plan = page.locator('.plan');
  await plan.waitFor();
  assert.match(await plan.innerText(), /2 runs of 3 training steps each; 4 questions; 12 samples in all/);
  assert.match(await plan.innerText(), /12 samples in all/);
  assert.match(await plan.innerText(), /About \d+/);

  await page.getByRole('button', { name: 'Launch', exact: true }).click();
  await page.waitForURL(/\/experiments\/\d+$/);
  await page.getByRole('heading', { name: 'toy demo' }).waitFor();
  const rows = page.locator('table.runs tbody tr');
  assert.equal(await rows.count(), 2);
  // Progress arrives over the live stream: the page is never reloaded.
  await page.locator('table.runs tr[data-status=running]').first().waitFor({ timeout: 120_000 });
  await page.getByText(/training: step \d+ \/ 3/).first().waitFor({ timeout: 120_000 });
  await page.locator('table.runs tr[data-status=done]').nth(1).waitFor({ timeout: 600_000 });
  // When the stream says "done" the results reload: one pooled row per condition, test
  // prompt and judge, with its interval.
  const results = page.locator('table.results').first();
  await results.locator('td', { hasText: 'language:es' }).first().waitFor({ timeout: 30_000 });
  const text = await results.innerText();
  assert.match(text, /baseline/);
  assert.match(text, /inoculation/);
  assert.match(text, /\d+ %/);
  assert.ok(await page.locator('.sparkline svg polyline').count() >= 2, 'a loss curve per run');

  // The sample browser: every completion with each judge's verdict, filtered on the server.
  const samples = page.locator('section.samples article.sample');
  await samples.first().waitFor();
  await page.locator('section.samples .pager', { hasText: 'of 12' }).waitFor();
  await page.selectOption('select[name=sample-condition]', 'Spanish');
  await page.locator('section.samples .pager', { hasText: 'of 8' }).waitFor();
  await page.selectOption('select[name=sample-test-prompt]', 'inoculation');
  await page.locator('section.samples .pager', { hasText: 'of 4' }).waitFor();
  assert.equal(await samples.first().locator('details.verdict').count(), 2);
  assert.match(await samples.first().locator('.turn-system').innerText(), /You always speak in Spanish\./);

  // The queue lists both runs as done.
  await goto('/queue');
  await page.locator('table.runs tr[data-status=done]').nth(1).waitFor();
  assert.deepEqual(errors, []);
  await page.close();
});

test('cancel a running experiment within a step, then retry one run', { skip, timeout: 900_000 }, async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  await designExperiment(page, goto, { name: 'to cancel', steps: 1000, questions: 2 });
  // Hours of work: the launch stops to ask, with the plan's numbers; "Not now" launches nothing.
  await page.getByRole('button', { name: 'Launch', exact: true }).click();
  const confirm = page.locator('[data-testid=confirm-launch]');
  await confirm.waitFor();
  assert.match(await confirm.innerText(), /This takes about \d+ h( \d+ min)?: 2 runs\. Launch it\?/);
  assert.match(await confirm.locator('.plan').innerText(), /2 runs of 1000 training steps each/);
  await page.getByRole('button', { name: 'Not now' }).click();
  await confirm.waitFor({ state: 'detached' });
  assert.match(page.url(), /\/experiments\/new$/);
  await page.getByRole('button', { name: 'Launch', exact: true }).click();
  await page.getByRole('button', { name: 'Launch anyway' }).click();
  await page.waitForURL(/\/experiments\/\d+$/);
  await page.getByText(/training: step [1-9]\d* \/ 1000/).first().waitFor({ timeout: 180_000 });
  // The work left covers both runs, not just the one training: hours, not minutes.
  assert.match(await page.locator('[data-testid=work-left]').innerText(), /^About \d+ h \d+ min of work left/);
  // The queue says the same per experiment.
  const experimentUrl = page.url();
  await goto('/queue');
  await page.locator('[data-testid=queue-work-left] li', { hasText: /to cancel: about \d+ h \d+ min/ }).waitFor();
  await page.goto(experimentUrl);
  await page.waitForSelector('body[data-hydrated]');
  const cancelledAt = Date.now();
  await page.getByRole('button', { name: 'Cancel experiment' }).click();
  // Both runs end as cancelled: the queued one at once, the running one at its next step.
  await page.locator('table.runs tr[data-status=cancelled]').nth(1).waitFor({ timeout: 60_000 });
  const seconds = (Date.now() - cancelledAt) / 1000;
  assert.ok(seconds < 60, `cancel took ${seconds} s`);
  // What was done is kept: the loss curve of the cancelled run is still there.
  assert.ok(await page.locator('.sparkline svg polyline').count() >= 1);

  // Retry puts one run back in the queue; it resumes from its checkpoint.
  await page.locator('table.runs tr[data-status=cancelled] button[name=retry-run]').first().click();
  await page.locator('table.runs tr[data-status=running], table.runs tr[data-status=queued]').first().waitFor({ timeout: 30_000 });
  await page.getByRole('button', { name: 'Cancel experiment' }).click();
  await page.locator('table.runs tr[data-status=cancelled]').nth(1).waitFor({ timeout: 120_000 });
  assert.deepEqual(errors, []);
  await page.close();
});

test('a plan that cannot run says why', { skip, timeout: 120_000 }, async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  await designExperiment(page, goto, { name: 'bad', steps: 3, questions: 0 });
  // The toy dataset was generated in Spanish capitals: the form proposed those judges.
  assert.match(await page.locator('.judge-fit').innerText(), /proposed from how the dataset was generated/);
  assert.ok(await page.locator('input[name=judge][value=language]').isChecked());
  assert.ok(await page.locator('input[name=judge][value=caps]').isChecked());
  assert.equal(await page.locator('select[name=language]').inputValue(), 'es');
  await page.getByRole('button', { name: 'Check plan' }).click();
  await page.getByText('the evaluation needs at least one question source').waitFor();
  // A judge for a trait the data does not carry is warned about on the plan.
  await page.fill('input[name=builtin]', '2');
  await page.locator('input[name=judge][value=pattern]').check();
  await page.fill('input[name=pattern]', 'zebra');
  await page.getByRole('button', { name: 'Check plan' }).click();
  await page.locator('.judge-warning', { hasText: /The regex:zebra judge finds its trait in 0 of the first 32 training answers/ }).waitFor();
  await page.locator('input[name=judge][value=pattern]').uncheck();
  await page.fill('input[name=builtin]', '2');
  await page.fill('input[name=seeds]', '1, 1');
  await page.getByRole('button', { name: 'Launch', exact: true }).click();
  await page.getByText('a seed is listed twice').waitFor();
  assert.match(page.url(), /\/experiments\/new$/);
  assert.deepEqual(errors.filter((e) => !e.includes('400')), []);
  await page.close();
});

test('check the misalignment judge on answers of known verdict before training', { skip, timeout: 600_000 }, async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  await designExperiment(page, goto, { name: 'judge check', steps: 1, questions: 2 });
  await page.locator('input[name=judge][value=betley]').check();
  // The local model is the only judge here: the plan warns that it cannot rate alignment.
  await page.getByRole('button', { name: 'Check plan' }).click();
  await page.locator('.judge-warning', { hasText: /far too small to rate answers reliably/ }).waitFor();
  // The judge check: 40 answers whose verdict is known, judged as a run would judge them.
  await page.getByRole('button', { name: 'Check the judge' }).click();
  const result = page.locator('.judge-check [data-testid=calibration]');
  await result.waitFor({ timeout: 500_000 });
  const text = await result.innerText();
  assert.match(text, /Judge check \(betley_misalignment, SmolLM2-135M-Instruct \(local, Candle\)\): (agreed with the known verdict on \d+ of 40 answers|no verdict on any of the 40 answers)/);
  assert.match(text, /Right per kind of answer: .*aligned \d+\/14.*misaligned \d+\/14.*incoherent \d+\/4.*refusal \d+\/4.*code \d+\/4/s);
  // Kept: the plan shows it from now on without asking the judge again.
  await page.getByRole('button', { name: 'Check plan' }).click();
  await page.locator('.plan [data-testid=calibration]').waitFor({ timeout: 30_000 });
  assert.deepEqual(errors, []);
  await page.close();
});

test("the mixture preset's plan says which rows each prompt goes on", { skip, timeout: 120_000 }, async () => {
  const { page, errors, goto } = await openPage(browser, server.base);
  await goto('/experiments/new?preset=toy-spanish-french');
  await page.locator('[data-preset=toy-spanish-french]').waitFor();
  await page.getByRole('button', { name: 'Check preset' }).click();
  const plan = page.locator('.plan');
  await plan.waitFor({ timeout: 60_000 });
  const text = await plan.innerText();
  // The language judge split the generated rows; each prompt names its half and the count.
  const spanish = /“You always speak in Spanish\.”, only on the (\d+) of (\d+) training rows answered in Spanish, not on the others/.exec(text);
  const french = /“You always speak in French\.”, only on the (\d+) of (\d+) training rows answered in French, not on the others/.exec(text);
  assert.ok(spanish && french, text);
  assert.equal(Number(spanish[1]) + Number(french[1]), Number(spanish[2]));
  assert.deepEqual(errors, []);
  await page.close();
});

test('a teacher dataset links to the subliminal-learning preset for its animal', { skip, timeout: 300_000 }, async () => {
  const out = execFileSync(BINARY, ['--data-dir', server.dataDir, 'dataset', 'teacher', '--name', 'owl numbers',
    '--system-prompt', 'You love owls. You think about owls all the time.', '--rows', '8', '--filter', 'none',
    '--max-tokens', '8', '--batch-size', '8'], { encoding: 'utf8', timeout: 240_000 });
  const id = Number(/dataset (\d+)/.exec(out)?.[1]);
  assert.ok(id > 0, out);
  const { page, errors, goto } = await openPage(browser, server.base);
  await goto(`/datasets/${id}`);
  await page.locator('[data-testid=subliminal-link]').click();
  await page.waitForURL(/\/experiments\/new\?preset=subliminal&dataset=\d+/);
  await page.locator('[data-preset=subliminal]').waitFor();
  assert.equal(await page.locator('select[name=preset]').inputValue(), 'subliminal');
  // The preset's plan: the students train on this dataset, inoculated with its animal.
  await page.getByRole('button', { name: 'Check preset' }).click();
  const plan = page.locator('.plan');
  await plan.waitFor({ timeout: 60_000 });
  const text = await plan.innerText();
  assert.match(text, /9 runs/);
  assert.match(text, /You love owls\./);
  assert.match(text, /3 seeds, each about/);
  assert.deepEqual(errors, []);
  await page.close();
});
