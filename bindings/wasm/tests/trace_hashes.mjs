// Prints "seed hash" for each seed, like `kv-sim --hashes`, but from the wasm build under node.
// Usage: node trace_hashes.mjs <pkg dir> <seed,seed,...> [duration-ms]
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [pkgDir, seedList, duration = '5000'] = process.argv.slice(2);
const pkg = resolve(pkgDir);
const wasm = await import(pathToFileURL(join(pkg, 'quorumkv_wasm.js')).href);
wasm.initSync({ module: readFileSync(join(pkg, 'quorumkv_wasm_bg.wasm')) });
for (const seed of seedList.split(',').map(Number)) {
  const report = wasm.runSeed(seed, 3 + (seed % 3), Number(duration));
  if (!report.ok) {
    console.error(`seed ${seed} failed its checks in wasm`);
    process.exit(1);
  }
  console.log(`${seed} ${report.traceHash}`);
}
