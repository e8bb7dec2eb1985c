// Starts a real inoculab server on a free loopback port with a fresh data directory, and
// Debian's headless Chromium through playwright-core. Every test file gets its own server,
// so tests never see each other's data.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = resolve(ROOT, '..', 'shared');
export const BINARY = process.env.INOCULAB_BIN ?? join(ROOT, 'target', 'debug', 'inoculab');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
    srv.on('error', fail);
  });
}

// `prepare(dataDir)` runs before the server starts (to make accounts, say).
export async function startServer(extraArgs = [], { prepare } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'inoculab-e2e-'));
  if (prepare) await prepare(dataDir);
  const port = await freePort();
  const child = spawn(BINARY, ['--data-dir', dataDir, 'serve', '--port', String(port), ...extraArgs], {
    stdio: ['ignore', 'inherit', 'pipe'],
    env: { ...process.env, RUST_LOG: 'warn' },
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; process.stderr.write(d); });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited early (${child.exitCode}): ${stderr}`);
    try {
      const res = await fetch(base + '/');
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error('server did not start within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base,
    dataDir,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Opens a page that records console errors and uncaught exceptions; `goto` waits until
// the wasm bundle has hydrated the page (the app marks <body data-hydrated>).
export async function openPage(browser, base) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('dialog', (d) => { errors.push(`unexpected dialog: ${d.message()}`); d.dismiss(); });
  const goto = async (path) => {
    await page.goto(base + path);
    await page.waitForSelector('body[data-hydrated]', { timeout: 20_000 });
  };
  return { page, errors, goto };
}

// axe-core (npm) as the accessibility check: the page's serious and critical violations,
// each as "rule (count): first targets". The page must come from a context made with
// `bypassCSP: true`, since the page's policy refuses an injected script (as it should).
const AXE = readFileSync(join(ROOT, 'end2end', 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
export async function accessibilityViolations(page) {
  await page.addScriptTag({ content: AXE });
  return page.evaluate(async () => {
    const { violations } = await window.axe.run(document, { resultTypes: ['violations'] });
    return violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.nodes.length}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  });
}

// How far the document reaches past the viewport, in pixels (0 when it fits), and the
// widest element that sticks out, to say what to fix.
export async function overflow(page) {
  return page.evaluate(() => {
    const extra = document.documentElement.scrollWidth - window.innerWidth;
    let widest = '';
    let right = window.innerWidth;
    for (const e of document.querySelectorAll('body *')) {
      const r = e.getBoundingClientRect().right;
      if (r > right + 1 && !e.closest('.scroll, nav, .compare')) {
        right = r;
        widest = `${e.tagName.toLowerCase()}.${[...e.classList].join('.')} (${Math.round(r)} px)`;
      }
    }
    return { extra, widest };
  });
}
