// The bridge to the simulator compiled to WebAssembly (built into ./pkg by scripts/build-web.sh).
import init, * as wasm from '../pkg/quorumkv_wasm.js';

/** Loads and instantiates the module once; resolves to its exports (Simulation, runSeed). */
let loading;
export function loadWasm() {
  loading ??= init().then(() => wasm);
  return loading;
}
