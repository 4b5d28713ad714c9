import { mulberry32 } from '@offramp/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { TfEmbedder } from './model.js';
import { embedLoss, lengthBuckets, scheduledLr, trainEmbedder, unitBuckets } from './train.js';

describe('batch orders', () => {
  const rand = mulberry32(9);
  const units = [
    ...Array(70).fill('a'), // 2 whole batches of 32 + 6 left over
    ...Array(40).fill('b'), // 1 whole batch + 8
    ...Array(20).fill('c'), // too small: pooled
    ...Array(30).fill('d'),
  ];
  const codes = units.map(() => Array.from({ length: 1 + Math.floor(rand() * 200) }, () => 0));

  it('unitBuckets: whole batches come from one unit, the rest are pooled, no pair twice', () => {
    const order = unitBuckets(units, codes, 32, mulberry32(1));
    expect(order.length % 32).toBe(0);
    expect(new Set(order).size).toBe(order.length);
    const batches = Array.from({ length: order.length / 32 }, (_, b) => order.slice(32 * b, 32 * b + 32));
    const single = batches.filter((b) => new Set(b.map((i) => units[i])).size === 1);
    // a: 2, b: 1 whole batches; c and d (20 + 30) and the remainders (6 + 8) are pooled: 64 pairs → 2 batches
    expect(single.map((b) => units[b[0]]).sort()).toEqual(['a', 'a', 'b']);
    expect(batches.length).toBe(5);
    // every pair of a whole unit batch is from that unit; pooled batches mix units
    expect(batches.filter((b) => new Set(b.map((i) => units[i])).size > 1).length).toBe(2);
  });

  it('lengthBuckets: every pair once per epoch, batches of similar lengths', () => {
    const order = lengthBuckets(codes, 16, mulberry32(2));
    expect(new Set(order).size).toBe(order.length);
    expect(order.length).toBe(160);
    const spread = (b: number[]) =>
      Math.max(...b.map((i) => codes[i].length)) - Math.min(...b.map((i) => codes[i].length));
    const batches = Array.from({ length: 10 }, (_, b) => order.slice(16 * b, 16 * b + 16));
    const mean = batches.reduce((s, b) => s + spread(b), 0) / batches.length;
    expect(mean).toBeLessThan(100); // random batches of 16 lengths in 1..200 spread ~180
  });
});

describe('losses and schedule', () => {
  it('InfoNCE of a perfectly separated batch is near zero, of a uniform one log B', () => {
    const sharp = tf.mul(tf.eye(4), 100) as tf.Tensor2D;
    expect(embedLoss('last', [sharp]).dataSync()[0]).toBeLessThan(1e-6);
    const flat = tf.zeros([4, 4]) as tf.Tensor2D;
    expect(embedLoss('last', [flat]).dataSync()[0]).toBeCloseTo(Math.log(4), 5);
    // independent averages the exits; mose adds KL to the last exit, zero when the exits agree
    expect(embedLoss('independent', [flat, sharp]).dataSync()[0]).toBeCloseTo(Math.log(4) / 2, 4);
    expect(embedLoss('mose', [sharp, sharp]).dataSync()[0]).toBeLessThan(1e-6);
    expect(embedLoss('mose', [flat, sharp]).dataSync()[0]).toBeGreaterThan(
      embedLoss('independent', [flat, sharp]).dataSync()[0],
    );
  });

  it('scheduledLr: warm-up to lr, cosine down to 10 %', () => {
    expect(scheduledLr(1, 0, 100, 10)).toBeCloseTo(0.1);
    expect(scheduledLr(1, 9, 100, 10)).toBeCloseTo(1);
    expect(scheduledLr(1, 10, 100, 10)).toBeCloseTo(1);
    expect(scheduledLr(1, 100, 100, 10)).toBeCloseTo(0.1);
    expect(scheduledLr(0.5, 50, 100, 0)).toBe(0.5);
  });
});

describe('trainEmbedder', () => {
  const config = {
    architecture: 'encoder_embedder' as const,
    vocab_size: 20,
    max_position: 16,
    hidden_size: 8,
    num_layers: 2,
    num_heads: 2,
    intermediate_size: 16,
    layer_norm_eps: 1e-5,
    pad_token_id: 19,
    exit_blocks: [0, 1],
    embedding_dim: 8,
    exit_embedding_dim: 2,
    pooling: 'mean' as const,
  };
  const r = mulberry32(3);
  const rows = (n: number, len: number) =>
    Array.from({ length: n }, () => Array.from({ length: 1 + Math.floor(r() * len) }, () => Math.floor(r() * 19)));
  const queries = rows(16, 5);
  const codes = rows(16, 12);
  const tableAfter = async (tableLrScale: number) => {
    await tf.setBackend('cpu');
    const m = new TfEmbedder(config, { seed: 5 });
    const before = m.params.get('embeddings.token.weight')!.dataSync().slice();
    const block = m.params.get('blocks.0.mlp.fc1.weight')!.dataSync().slice();
    const res = await trainEmbedder(m, {
      variant: 'mose',
      queries,
      codes,
      padId: 19,
      steps: 3,
      batchSize: 8,
      lr: 0.01,
      seed: 1,
      tableLrScale,
      padMultiple: 4,
      units: codes.map((_, i) => (i < 8 ? 'x' : 'y')),
    });
    const table = m.params.get('embeddings.token.weight')!.dataSync();
    const moved = (a: ArrayLike<number>, b: ArrayLike<number>) =>
      Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i])));
    const out = {
      table: moved(table, before),
      block: moved(m.params.get('blocks.0.mlp.fc1.weight')!.dataSync(), block),
      res,
    };
    m.dispose();
    return out;
  };

  it('a table scale of 0 freezes the token table, other scales move it in proportion; the blocks always train', async () => {
    const frozen = await tableAfter(0);
    expect(frozen.table).toBe(0);
    expect(frozen.block).toBeGreaterThan(1e-4);
    expect(frozen.res.lossCurve.every(Number.isFinite)).toBe(true);
    const full = await tableAfter(1);
    const tenth = await tableAfter(0.1);
    expect(full.table).toBeGreaterThan(1e-3);
    // Adam's first steps move each weight by about lr: a tenth of the rate moves the table about a tenth as far
    expect(tenth.table / full.table).toBeGreaterThan(0.05);
    expect(tenth.table / full.table).toBeLessThan(0.2);
  });
});
