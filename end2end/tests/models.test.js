// The model registry as a researcher uses it: the built-in default is listed with its
// hash, a small Hugging Face folder under an allowed root registers and shows as ready,
// and a folder outside the roots is refused with a message that says how to allow it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser, openPage, ROOT } from './harness.js';

// The same file the engine's real-model tests use; INOCULAB_MODEL points elsewhere.
const DEFAULT_MODEL = process.env.INOCULAB_MODEL ?? join(ROOT, '.data/models/SmolLM2-135M-Instruct.Q4_1.gguf');
const DEFAULT_SHA256 = 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53';
const haveDefault = existsSync(DEFAULT_MODEL);

const scratch = mkdtempSync(join(tmpdir(), 'inoculab-models-'));
const modelRoot = join(scratch, 'root');
const outside = join(scratch, 'outside');

let server, browser;
before(async () => {
  mkdirSync(modelRoot);
  mkdirSync(outside);
  // --model-root and --default-model are global options; clap accepts them after `serve`.
  const args = ['--model-root', modelRoot];
  if (haveDefault) args.push('--default-model', DEFAULT_MODEL);
  server = await startServer(args);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

// A one-layer llama small enough to write by hand: hidden 8, 2 heads of 4 (1 kv head),
// MLP 16, vocabulary 10, tied embeddings. The registry reads only the headers, so the
// weights are a simple ramp and the tokenizer a minimal word-level one.
const TINY_SHAPES = {
  'model.embed_tokens.weight': [10, 8],
  'model.layers.0.self_attn.q_proj.weight': [8, 8],
  'model.layers.0.self_attn.k_proj.weight': [4, 8],
  'model.layers.0.self_attn.v_proj.weight': [4, 8],
  'model.layers.0.self_attn.o_proj.weight': [8, 8],
  'model.layers.0.mlp.gate_proj.weight': [16, 8],
  'model.layers.0.mlp.up_proj.weight': [16, 8],
  'model.layers.0.mlp.down_proj.weight': [8, 16],
  'model.layers.0.input_layernorm.weight': [8],
  'model.layers.0.post_attention_layernorm.weight': [8],
  'model.norm.weight': [8],
};
const TINY_PARAMS = Object.values(TINY_SHAPES).reduce((sum, s) => sum + s.reduce((a, b) => a * b, 1), 0);

// safetensors: an 8-byte little-endian header length, a JSON header (padded with spaces to
// a multiple of 8) mapping each tensor to dtype, shape and byte range, then the raw data.
function safetensors(shapes) {
  const header = {};
  const chunks = [];
  let offset = 0;
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n).map((_, i) => (i % 7) / 7 - 0.5);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    chunks.push(Buffer.from(data.buffer));
    offset += data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([len, Buffer.from(json), ...chunks]);
}

function writeTinyFolder(dir) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 10, hidden_size: 8,
    intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1,
    rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 64, tie_word_embeddings: true,
  }));
  const vocab = Object.fromEntries(['<unk>', '<|im_start|>', '<|im_end|>', 'a', 'b', 'c', 'd', 'e', 'f', 'g'].map((t, i) => [t, i]));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({
    version: '1.0', model: { type: 'WordLevel', vocab, unk_token: '<unk>' }, pre_tokenizer: { type: 'Whitespace' },
  }));
  writeFileSync(join(dir, 'model.safetensors'), safetensors(TINY_SHAPES));
  return dir;
}

async function openModels() {
  const opened = await openPage(browser, server.base);
  await opened.goto('/models');
  await opened.page.waitForSelector('table.models, p.empty');
  return opened;
}

const rowOf = (page, name) => page.locator('table.models tbody tr', { has: page.locator('strong', { hasText: name }) });

test('the built-in default model is listed with its architecture, size and hash', { skip: !haveDefault && `${DEFAULT_MODEL} absent (scripts/fetch-model)` }, async () => {
  const { page, errors } = await openModels();
  const row = rowOf(page, 'SmolLM2-135M-Instruct');
  await row.waitFor();
  const cells = await row.locator('td').allTextContents();
  assert.match(cells[0], /built-in/);
  assert.equal(cells[1], 'GGUF file');
  assert.equal(cells[2], 'llama');
  assert.match(cells[3], /^13[45]\.\d M$/);
  assert.match(cells[4], /^\d+\.\d MB$/);
  assert.equal(cells[5], DEFAULT_SHA256.slice(0, 12));
  assert.equal(await row.locator('td.hash').getAttribute('title'), DEFAULT_SHA256);
  assert.equal(cells[6], 'Ready');
  assert.equal(await row.getByRole('button', { name: 'Remove' }).count(), 0, 'the built-in cannot be removed');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a small Hugging Face folder under an allowed root registers and shows as ready', async () => {
  const folder = writeTinyFolder(join(modelRoot, 'tiny-llama'));
  const { page, errors } = await openModels();
  await page.getByText('Allowed model roots:').waitFor();
  assert.match(await page.textContent('p.roots'), new RegExp(modelRoot.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  await page.fill('input[name=model-name]', 'tiny llama');
  await page.fill('input[name=model-path]', folder);
  await page.getByRole('button', { name: 'Register' }).click();
  await page.getByText(`Registered “tiny llama”: LlamaForCausalLM, ${TINY_PARAMS} parameters.`).waitFor();
  const row = rowOf(page, 'tiny llama');
  await row.waitFor();
  const cells = await row.locator('td').allTextContents();
  assert.equal(cells[1], 'HF folder');
  assert.equal(cells[2], 'LlamaForCausalLM');
  assert.equal(cells[3], String(TINY_PARAMS));
  assert.match(await row.locator('td.hash').getAttribute('title'), /^[0-9a-f]{64}$/);
  assert.equal(cells[6], 'Ready');

  // The files move away: the row stays and says so.
  renameSync(folder, folder + '-moved');
  await page.reload();
  await page.waitForSelector('body[data-hydrated]');
  await rowOf(page, 'tiny llama').locator('.tag-missing').waitFor();
  renameSync(folder + '-moved', folder);

  // Removing forgets the row and leaves the files.
  await page.reload();
  await page.waitForSelector('body[data-hydrated]');
  await rowOf(page, 'tiny llama').getByRole('button', { name: 'Remove' }).click();
  await rowOf(page, 'tiny llama').waitFor({ state: 'detached' });
  assert.ok(existsSync(join(folder, 'model.safetensors')), 'the files stay');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a folder outside the allowed roots is refused with a clear message and creates nothing', async () => {
  const folder = writeTinyFolder(join(outside, 'tiny'));
  const { page, errors } = await openModels();
  const before = await page.locator('table.models tbody tr').count();
  // Straight outside, and outside by way of `..` from inside the root (spelt by hand:
  // path.join would resolve the `..` before the server sees it).
  for (const path of [folder, `${modelRoot}/../outside/tiny`]) {
    await page.fill('input[name=model-name]', 'escapee');
    await page.fill('input[name=model-path]', path);
    await page.getByRole('button', { name: 'Register' }).click();
    const alert = page.locator('form .error strong');
    await alert.waitFor();
    const message = await alert.textContent();
    assert.match(message, /is outside the allowed model roots/);
    assert.match(message, /start the server with --model-root to allow another folder/);
    await page.reload();
    await page.waitForSelector('body[data-hydrated]');
  }
  await page.waitForSelector('table.models, p.empty');
  assert.equal(await page.locator('table.models tbody tr').count(), before, 'nothing was registered');
  assert.equal(await rowOf(page, 'escapee').count(), 0);
  // The browser logs the refused request's status as a console error; that one is expected.
  assert.deepEqual(errors.filter((e) => !/status of 400/.test(e)), []);
  await page.close();
});
