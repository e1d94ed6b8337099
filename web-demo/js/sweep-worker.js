// The seed sweep's Web Worker: runs seeds of the seeded fault workload (kv-sim's, with the
// project's checkers) one after another with its own copy of the wasm module, and posts each
// result. The page stays responsive; `stop` ends the sweep after the seed in progress.
import { loadWasm } from './wasm.js';

let stopped = false;
const channel = new MessageChannel();
/** Yields to the worker's event loop (so a `stop` message gets in) without timer clamping. */
const pause = () => new Promise((resume) => {
  channel.port1.onmessage = () => resume();
  channel.port2.postMessage(null);
});

self.onmessage = async ({ data }) => {
  if (data.type === 'stop') {
    stopped = true;
    return;
  }
  const wasm = await loadWasm();
  stopped = false;
  const { from, count, durationMs, bug } = data;
  const began = performance.now();
  for (let i = 0; i < count && !stopped; i++) {
    const seed = from + i;
    const nodes = 3 + (seed % 3);
    let result;
    try {
      result = wasm.runSeed(seed, nodes, durationMs, bug);
    } catch (e) {
      result = { ok: false, problem: `the run stopped: ${e.message ?? e}`, traceHash: '', events: 0, operations: 0, faults: 0, endMs: 0 };
    }
    self.postMessage({ type: 'result', seed, nodes, durationMs, bug, ...result, done: i + 1, count, elapsedMs: performance.now() - began });
    await pause();
  }
  self.postMessage({ type: 'end', stopped, elapsedMs: performance.now() - began });
};
