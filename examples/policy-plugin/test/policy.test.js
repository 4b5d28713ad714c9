// The example policy against the Offramp conformance kit (host/device agreement on the GPU, lavapipe on a
// machine without one), plus its options, sweep grid and a decision worked by hand. Run: npm test
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createGpuDevice, sweepOptions } from '@offramp/core';
import { expectPolicyConformance } from '@offramp/policies/testing';
import descendingConfidence, { thresholdAt } from '../index.js';

/** @type {import('@offramp/core').GpuDevice | undefined} */
let gpu;
before(async () => {
  gpu = await createGpuDevice();
});
after(() => gpu?.destroy());

test('passes the conformance kit, host/device agreement included', async () => {
  const report = await expectPolicyConformance(descendingConfidence, {
    validOptions: [{}, { t0: 0.9, step: 0.1 }, { t0: 0.8, step: 0.03, floor: 0.5, agree: false }],
    invalidOptions: [
      { options: { t0: 0 }, message: "option 't0' must be a number in (0, 1]" },
      { options: { step: -0.1 }, message: "option 'step'" },
      { options: { t0: 0.7, floor: 0.8 }, message: "option 'floor' must be a number in [0, t0]" },
      { options: { agree: 'yes' }, message: "option 'agree'" },
      { options: { tO: 0.9 }, message: "unknown option 'tO' (did you mean 't0'?)" },
    ],
    numClasses: 10,
    gpu,
  });
  const device = report.checks.find((c) => c.name === 'host/device agreement');
  assert.equal(device?.ok, true);
  assert.equal(device?.skipped, undefined);
});

test('fills in defaults and refuses unknown options', () => {
  assert.deepEqual(descendingConfidence({ step: 0.1 }).options, { t0: 0.95, step: 0.1, floor: 0.6, agree: true });
  // @ts-expect-error: a mistyped option name, on purpose (the JSDoc types catch it too)
  assert.throws(() => descendingConfidence({ tO: 0.5 }), {
    name: 'ValidationError',
    message:
      "policy 'descending-confidence': unknown option 'tO' (did you mean 't0'?); allowed options: t0, step, floor, agree",
  });
});

test('declares a sweep grid of 9 settings', () => {
  const grid = sweepOptions(descendingConfidence.sweep ?? {});
  assert.equal(grid.length, 9);
  assert.deepEqual(grid.slice(0, 3), [
    { t0: 0.85, step: 0 },
    { t0: 0.85, step: 0.05 },
    { t0: 0.85, step: 0.1 },
  ]);
});

test('decides by hand: lower thresholds at later exits, the argmax must agree', () => {
  const o = { t0: 0.9, step: 0.1, floor: 0.6, agree: true };
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((j) => thresholdAt(o, j)),
    [0.9, 0.8, 0.7, 0.6, 0.6].map(Math.fround),
  );
  const p = descendingConfidence(o);
  const prev = p.init({
    batchSize: 2,
    numExits: 3,
    numClasses: 10,
    exitBlocks: [0, 1, 2],
    costFractions: [0.4, 0.7, 1],
  });
  const ctx = (/** @type {number} */ j) => ({
    exitIndex: j,
    numExits: 3,
    block: j,
    numBlocks: 3,
    isLast: j === 2,
    costFraction: [0.4, 0.7, 1][j],
    numClasses: 10,
  });
  const signals = (/** @type {number[]} */ maxProb, /** @type {number[]} */ argmax) => ({
    count: 2,
    sampleIds: Int32Array.from([0, 1]),
    maxProb: Float32Array.from(maxProb),
    entropy: new Float32Array(2),
    margin: new Float32Array(2),
    argmax: Int32Array.from(argmax),
    gate: new Float32Array(2).fill(Number.NaN),
    similarity: new Float32Array(2).fill(Number.NaN),
  });
  // exit 0: sure but no previous argmax to agree with, so nobody leaves
  assert.deepEqual(Array.from(p.decide(ctx(0), signals([0.95, 0.5], [3, 1]), prev)), [0, 0]);
  // exit 1: τ = 0.8; row 0 agrees (3 = 3) and is sure; row 1 is sure but changed its mind
  assert.deepEqual(Array.from(p.decide(ctx(1), signals([0.85, 0.99], [3, 2]), prev)), [1, 0]);
});
