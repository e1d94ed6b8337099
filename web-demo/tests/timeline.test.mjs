// The timeline's explanation of a linearizability violation, without the wasm build or a
// browser: which earlier operations it names as writes the bad one must follow.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { whyNot } from '../js/timeline.js';

const op = (id, kind, call, invokedMs, returnedMs, result = 'OK') => ({
  id, kind, call, node: 1, state: 'ok', invokedMs, returnedMs, result,
});

test('only writes that returned before the bad read was sent are named, reads never', () => {
  const bad = op(9, 'get', 'get x', 500, 520, 'nil');
  const put = op(1, 'put', 'put x=1', 100, 150);
  // Reads that returned earlier, each kind the wasm binding names: none of them is a write.
  const reads = [op(2, 'get', 'get x', 160, 170, '1'), op(3, 'local-get', 'get x (stale)', 180, 190, '1'),
    op(4, 'get-revision', 'get-revision x', 200, 300, '1 @ 2')];
  const text = whyNot(bad, [put, ...reads, bad]);
  assert.match(text, /But #1 put x=1 \(N1\) had already returned at 0\.150 s/);
  assert.doesNotMatch(text, /and after \d+ earlier write/);
  // Without the put, no write came first: the get-revision is not taken for one.
  assert.match(whyNot(bad, [...reads, bad]), /No order of these operations that respects real time/);
});
