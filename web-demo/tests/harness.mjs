// Test harness: a static server for web-demo/ on a free 127.0.0.1 port and headless Chromium
// (the system's /usr/bin/chromium, driven by playwright-core; no browser is downloaded).
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.png': 'image/png',
};

/** Serves web-demo/ read-only; resolves to `{ url, close }`. */
export async function serve() {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = join(ROOT, path.endsWith('/') ? `${path}index.html` : path);
    if (!file.startsWith(ROOT) || file.includes('node_modules')) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((ok) => server.close(ok)) };
}

/**
 * Launches headless Chromium with a fresh profile (its --user-data-dir, which playwright takes
 * as the persistent context's directory); resolves to `{ browser, close }`, `browser` being
 * the browser context pages open in.
 */
export async function launch({ width = 1400, height = 1000 } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'quorumkv-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width, height },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Opens the demo at `hash` in a new page and waits until it is ready. Collects console errors
 * and page errors in `page.errors`.
 */
export async function openDemo(browser, baseUrl, hash = '') {
  const page = await browser.newPage();
  page.errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') page.errors.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => page.errors.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => page.errors.push(`request failed: ${r.url()}`));
  await page.goto(baseUrl + hash);
  await page.waitForFunction(() => window.demo?.ready === true, null, { timeout: 30_000 });
  return page;
}
