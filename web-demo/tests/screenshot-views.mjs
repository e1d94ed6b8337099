// Redraws docs/web-demo-*.png, one per view added for issue 14, and prints the page's first
// paint and time to a running simulator (not a test; run by hand from the repository root):
//   node web-demo/tests/screenshot-views.mjs docs
import { join } from 'node:path';
import { launch, openDemo, serve } from './harness.mjs';

const out = process.argv[2] ?? 'docs';
const server = await serve();
const chromium = await launch({ width: 1400, height: 1000 });
const hide = (page) => page.evaluate(() => { document.getElementById('replay-note').hidden = true; });
try {
  // First paint and time until the simulator runs, over a few cold loads.
  const loads = [];
  for (let i = 0; i < 3; i++) {
    const page = await openDemo(chromium.browser, server.url, '');
    loads.push(await page.evaluate(() => ({
      fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
      ready: performance.now(),
    })));
    await page.close();
  }
  console.log(`first contentful paint ms: ${loads.map((l) => l.fcp?.toFixed(0)).join(' ')}`);

  const shots = [
    // Membership, while it changes: N4 is a learner catching up, then the joint configuration.
    ['web-demo-membership-learner.png', '#seed=12&n=3&t=605&a=600,add', null],
    ['web-demo-membership-joint.png', '#seed=12&n=3&t=620&a=600,add', null],
    // Membership: N4 joined (voter), N1 removed, N4 leads.
    ['web-demo-membership.png', '#seed=12&n=3&t=4300&a=600,add;2100,transfer,4;2800,remove,1', null],
    // Stale read under a partition: the verdict is red and says why.
    ['web-demo-stale-read.png', '#seed=5&n=5&t=3200&a=1000,put,1,k,v1;1300,partition,1|2.3.4.5;2800,put,3,k,v2;3100,stale,1,k', null],
    // Time travel: a 9 s run rewound to 3 s.
    ['web-demo-time-travel.png', '#seed=8&n=5&t=9000&v=3000&a=600,put,1,x,1;1500,crash,1;2700,partition,2.3|4.5;4200,heal;5100,restart,1;6300,put,2,x,2;7000,add', null],
    // A guided scenario with its text.
    ['web-demo-scenario.png', '#seed=2&n=5&t=2000&a=600,crash,3;600,crash,4;600,crash,5;700,put,1,x,old;900,crash,1;1000,restart,3;1000,restart,4', null],
  ];
  for (const [file, hash] of shots) {
    const page = await openDemo(chromium.browser, server.url, hash);
    await hide(page);
    await page.screenshot({ path: join(out, file), fullPage: true });
    if (page.errors.length) throw new Error(page.errors.join('\n'));
    console.log(`${file}: ${await page.evaluate(() => `${window.demo.nowMs()} ms, trace ${window.demo.traceHash()}`)}`);
    await page.close();
  }
  // The seed sweep with the planted bug.
  const page = await openDemo(chromium.browser, server.url, '#seed=1&n=5&t=500');
  await hide(page);
  await page.fill('#sweep-count', '24');
  await page.check('#sweep-bug');
  await page.click('#sweep-start');
  await page.waitForFunction(() => document.getElementById('sweep-card').dataset.state === 'done', null, { timeout: 120_000 });
  await page.locator('#sweep-card').screenshot({ path: join(out, 'web-demo-sweep.png') });
  console.log(`web-demo-sweep.png: ${await page.textContent('#sweep-stats')}`);
  if (page.errors.length) throw new Error(page.errors.join('\n'));
} finally {
  await chromium.close();
  await server.close();
}
