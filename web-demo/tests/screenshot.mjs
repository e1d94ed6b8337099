// Saves a screenshot of the demo replaying a link (not a test; run by hand):
//   node web-demo/tests/screenshot.mjs docs/web-demo.png ['#seed=…&n=5&t=…&a=…'] [width] [height]
import { launch, openDemo, serve } from './harness.mjs';

/** A 5-node cluster at work: writes committed and in flight, one node down, a history. */
const SCENE = '#seed=1&n=5&t=452.1&a=300,put,1,x,1;320,put,3,y,2;340,get,2,x;350,crash,4;380,put,1,x,3;449,put,5,z,9';

const [out = 'web-demo.png', hash = SCENE, width = '1400', height = '1000'] = process.argv.slice(2);
const server = await serve();
const chromium = await launch({ width: Number(width), height: Number(height) });
try {
  const page = await openDemo(chromium.browser, server.url, hash);
  await page.evaluate(() => { document.getElementById('replay-note').hidden = true; });
  await page.screenshot({ path: out, fullPage: true });
  if (page.errors.length) throw new Error(page.errors.join('\n'));
  console.log(`${out}: ${await page.evaluate(() => `${window.demo.nowMs()} ms, trace ${window.demo.traceHash()}`)}`);
} finally {
  await chromium.close();
  await server.close();
}
