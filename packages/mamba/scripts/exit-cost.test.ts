// Tests of the early-exit compute accounting and the threshold selection, against counts written out by hand.
import { describe, expect, it } from 'vitest';
import {
  blockMacs,
  classifierMacs,
  headMacs,
  type LmShape,
  partialMacs,
  relativeCost,
  selectAtAgreement,
} from './exit-cost.js';

// the Austen model's shape
const m: LmShape = { d: 64, D: 128, N: 8, R: 4, K: 4, V: 82, L: 6 };

describe('multiply-adds', () => {
  it('counts a block term by term', () => {
    // in_proj 2·128·64 + conv 128·4 + x_proj 128·(4+16) + dt_proj 4·128 + scan 2·128·8 + out_proj 64·128
    expect(blockMacs(m)).toBe(16384 + 512 + 2560 + 512 + 2048 + 8192);
  });
  it('counts a partial update without the z half, C, readout or out_proj', () => {
    expect(partialMacs(m)).toBe(8192 + 512 + 128 * 12 + 512 + 1024);
    expect(partialMacs(m) / blockMacs(m)).toBeGreaterThan(0.35);
    expect(partialMacs(m) / blockMacs(m)).toBeLessThan(0.45);
  });
  it('counts the head and both classifier kinds', () => {
    expect(headMacs(m)).toBe(64 * 82 + 64);
    expect(classifierMacs(64, { kind: 'ffn', hidden: 64 })).toBe(64 * 64 + 64 + 64);
    const mc = classifierMacs(64, { kind: 'mamba', inner: 32, stateSize: 8, rank: 4, convKernel: 4 });
    expect(mc).toBe(64 + 2 * 32 * 64 + 32 * 4 + 32 * 20 + 4 * 32 + 2 * 32 * 8 + 32);
  });
});

describe('relativeCost', () => {
  const fullMacs = 6 * blockMacs(m) + headMacs(m);
  it('is 1 at full depth without decisions', () => {
    expect(relativeCost(m, { blocks: 1, partial: 0, exitShare: [0, 0, 1] }, 'none')).toBeCloseTo(1, 12);
  });
  it('charges softmax rules one head per early exit reached, plus the final head for full-depth tokens', () => {
    // all tokens at full depth: 2 early heads + the final head
    const c = relativeCost(m, { blocks: 1, partial: 0, exitShare: [0, 0, 1] }, 'softmax');
    expect(c * fullMacs).toBeCloseTo(6 * blockMacs(m) + 3 * headMacs(m), 6);
    // all tokens leave at the first exit after 4 blocks: one head, no final head
    const e = relativeCost(m, { blocks: 4 / 6, partial: 0, exitShare: [1, 0, 0] }, 'softmax');
    expect(e * fullMacs).toBeCloseTo(4 * blockMacs(m) + headMacs(m), 6);
  });
  it('charges classifier rules one classifier per early exit reached and one head', () => {
    const k = 1000;
    const c = relativeCost(m, { blocks: 5 / 6, partial: 1 / 6, exitShare: [0, 1, 0] }, 'classifier', k);
    expect(c * fullMacs).toBeCloseTo(5 * blockMacs(m) + partialMacs(m) + 2 * k + headMacs(m), 6);
  });
  it('rejects an empty exit share', () => {
    expect(() => relativeCost(m, { blocks: 1, partial: 0, exitShare: [] }, 'none')).toThrow(/exitShare is empty/);
  });
});

describe('selectAtAgreement', () => {
  it('picks the cheapest point at or above the target, preferring higher agreement at equal cost', () => {
    const pts = [
      { threshold: 0.5, agreement: 0.9, cost: 0.7 },
      { threshold: 0.8, agreement: 0.95, cost: 0.85 },
      { threshold: 0.85, agreement: 0.97, cost: 0.85 },
      { threshold: 0.9, agreement: 0.99, cost: 0.95 },
    ];
    expect(selectAtAgreement(pts, 0.95)?.threshold).toBe(0.85);
  });
  it('returns null when no point reaches the target (NaN agreement never does)', () => {
    expect(selectAtAgreement([{ threshold: 1, agreement: Number.NaN, cost: 0.1 }], 0.5)).toBeNull();
    expect(selectAtAgreement([], 0.5)).toBeNull();
  });
});
