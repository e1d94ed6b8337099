// Replays a demo link under node with the page's own session and URL modules and the same
// wasm build, so a test can compare node's trace hash with Chromium's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './harness.mjs';

const wasm = await import(pathToFileURL(join(ROOT, 'pkg', 'quorumkv_wasm.js')).href);
wasm.initSync({ module: readFileSync(join(ROOT, 'pkg', 'quorumkv_wasm_bg.wasm')) });
const { Session } = await import('../js/session.js');
const { decodeRun } = await import('../js/url.js');

/** `{ traceHash, nowMs }` of the run a link's `#…` names. */
export function replayLink(hash) {
  const session = Session.replay(wasm, decodeRun(hash));
  return { traceHash: session.sim.traceHash(), nowMs: session.nowMs() };
}

export { wasm };
