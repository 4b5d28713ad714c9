// Tests of config.json validation, the expected tensor table and the tensor check.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.js';
import type {
  CnnClassifierConfig,
  ConfigEnvelope,
  EncoderClassifierConfig,
  MlpClassifierConfig,
} from '../models/config.js';
import {
  assertTensors,
  CONFIG_LIMITS,
  checkTensors,
  configIssues,
  formatTensorReport,
  modelTensorSpec,
  parseModelConfig,
  TensorMismatchError,
} from './config.js';

const encoder: EncoderClassifierConfig = {
  architecture: 'encoder_classifier',
  vocab_size: 30,
  max_position: 16,
  hidden_size: 8,
  num_layers: 3,
  num_heads: 2,
  intermediate_size: 32,
  num_classes: 4,
  layer_norm_eps: 1e-5,
  pad_token_id: 0,
  exits: { blocks: [0, 2], head: 'pooler', gate: true, gate_hidden: 5 },
};
const mlp: MlpClassifierConfig = {
  architecture: 'mlp_classifier',
  input_size: 784,
  hidden_size: 64,
  num_layers: 4,
  num_classes: 10,
  exits: { blocks: [1, 3], head: 'linear' },
};
const cnn: CnnClassifierConfig = {
  architecture: 'cnn_classifier',
  image_size: 32,
  in_channels: 3,
  channels: [8, 16, 32],
  strides: [1, 2, 2],
  stem_channels: 4,
  num_classes: 10,
  exits: { blocks: [0, 1, 2], head: 'linear', gate: true },
};
const env = (model: unknown, extra: Record<string, unknown> = {}) => ({ offramp_format: 1, model, ...extra });
const clone = <T>(v: T): T => structuredClone(v);

/** The message of the FormatError that parseModelConfig throws. */
function errorOf(json: unknown): string {
  try {
    parseModelConfig(json, { source: 'm/config.json' });
  } catch (e) {
    expect(e).toBeInstanceOf(FormatError);
    return (e as Error).message;
  }
  throw new Error('expected parseModelConfig to throw');
}

describe('parseModelConfig', () => {
  it('accepts valid configs of all three architectures and returns them unchanged', () => {
    for (const model of [encoder, mlp, cnn]) {
      const json = env(model, { meta: { dataset: 'x', seed: 3 } });
      expect(parseModelConfig(clone(json))).toEqual(json);
    }
    expect(parseModelConfig(JSON.parse(JSON.stringify(env(mlp))))).toEqual(env(mlp));
  });

  it('names the allowed architectures', () => {
    expect(errorOf(env({ ...mlp, architecture: 'transformer' }))).toContain(
      'model.architecture: unknown architecture "transformer"; allowed: encoder_classifier, mlp_classifier, cnn_classifier',
    );
    expect(errorOf(env({ hidden_size: 3 }))).toContain('model.architecture: unknown architecture (missing)');
    expect(errorOf(env(7))).toContain('model: must be an object with an "architecture" key, got 7');
  });

  it('envelope: format version, unknown keys, meta', () => {
    expect(errorOf({ ...env(mlp), offramp_format: 2 })).toContain(
      'offramp_format: must be 1 (the only config format version), got 2',
    );
    expect(errorOf({ model: mlp })).toContain('offramp_format: missing; must be 1');
    expect(errorOf(env(mlp, { extra: 1 }))).toContain(
      '(root): unknown key "extra"; allowed keys: offramp_format, model, meta',
    );
    expect(errorOf(env(mlp, { meta: [1] }))).toContain('meta: must be an object, got [1]');
    expect(errorOf(null)).toContain('(root): must be an object, got null');
    expect(errorOf('{}')).toMatch(
      /^m\/config\.json: invalid model config \(1 problem\):\n {2}\(root\): must be an object, got "\{\}"$/,
    );
  });

  it('numeric fields: positive integers within their stated ranges', () => {
    const [, maxHidden] = CONFIG_LIMITS.hidden_size;
    expect(errorOf(env({ ...mlp, hidden_size: 0 }))).toContain(
      `model.hidden_size: must be an integer in [1, ${maxHidden}], got 0`,
    );
    expect(errorOf(env({ ...mlp, hidden_size: maxHidden + 1 }))).toContain(`got ${maxHidden + 1}`);
    expect(errorOf(env({ ...mlp, num_layers: 2.5 }))).toContain(
      'model.num_layers: must be an integer in [1, 1024], got 2.5',
    );
    expect(errorOf(env({ ...mlp, num_classes: '10' }))).toContain(
      'model.num_classes: must be an integer in [1, 1000000], got "10"',
    );
    expect(errorOf(env({ ...mlp, input_size: -784 }))).toContain('model.input_size: must be an integer in');
    const { num_classes: _, ...noClasses } = mlp;
    expect(errorOf(env(noClasses))).toContain('model.num_classes: missing; must be an integer in [1, 1000000]');
    expect(errorOf(env({ ...encoder, layer_norm_eps: 0 }))).toContain(
      'model.layer_norm_eps: must be a number in (0, 1), got 0',
    );
    expect(errorOf(env({ ...encoder, pad_token_id: 30 }))).toContain(
      'model.pad_token_id: must be below vocab_size 30, got 30',
    );
    expect(errorOf(env({ ...mlp, dropout: 0.1 }))).toContain(
      'model: unknown key "dropout"; allowed keys: architecture, input_size',
    );
  });

  it('encoder: hidden_size divisible by num_heads', () => {
    expect(errorOf(env({ ...encoder, num_heads: 3 }))).toContain(
      'model.num_heads: hidden_size 8 is not divisible by num_heads 3; the head size d/h must be an integer',
    );
  });

  it('exits: sorted, unique, in range, containing the last block; head and gate values', () => {
    const ex = (exits: unknown, model: object = mlp) => errorOf(env({ ...model, exits }));
    expect(ex({ blocks: [1, 3, 2, 3], head: 'linear' })).toContain(
      'model.exits.blocks[2]: 2 does not come after 3; blocks must be sorted ascending without duplicates',
    );
    expect(ex({ blocks: [1, 3, 3], head: 'linear' })).toContain('model.exits.blocks[2]: 3 does not come after 3');
    expect(ex({ blocks: [1, 4], head: 'linear' })).toContain(
      'model.exits.blocks[1]: block 4 is outside [0, 4) (num_layers = 4)',
    );
    expect(ex({ blocks: [0, 1], head: 'linear' })).toContain(
      'model.exits.blocks: must include the last block 3 (the final exit; num_layers = 4), got [0,1]',
    );
    expect(ex({ blocks: [0, 1], head: 'linear' }, cnn)).toContain(
      'model.exits.blocks: must include the last block 2 (the final exit; channels has 3 entries)',
    );
    expect(ex({ blocks: [-1, 3], head: 'linear' })).toContain(
      'model.exits.blocks[0]: must be a non-negative integer, got -1',
    );
    expect(ex({ blocks: [], head: 'linear' })).toContain(
      'model.exits.blocks: must list at least one block (the last one), got []',
    );
    expect(ex({ blocks: [3], head: 'attention' })).toContain(
      "model.exits.head: must be 'linear' or 'pooler', got \"attention\"",
    );
    expect(ex({ blocks: [3], head: 'linear', gate: 'yes' })).toContain(
      'model.exits.gate: must be true or false, got "yes"',
    );
    expect(ex({ blocks: [3], head: 'linear', gate_hidden: 0 })).toContain(
      'model.exits.gate_hidden: must be an integer in [1, 65536], got 0',
    );
    expect(ex({ blocks: [3], head: 'linear', threshold: 0.5 })).toContain(
      'model.exits: unknown key "threshold"; allowed keys: blocks, head, gate, gate_hidden',
    );
    expect(ex(undefined)).toContain('model.exits: missing; must be an object');
  });

  it('a huge exits list is refused by its length, and the message lists at most 25 problems', () => {
    const blocks = Array.from({ length: 200_000 }, (_, i) => 200_000 - i);
    const msg = errorOf(env({ ...mlp, exits: { blocks, head: 'linear' } }));
    expect(msg).toContain('model.exits.blocks: must list at most 1024 blocks (one exit per block at most)');
    // every problem is counted, a bounded number is shown
    const count = Number(/invalid model config \((\d+) problems\)/.exec(msg)?.[1]);
    expect(count).toBeGreaterThan(200_000);
    expect(msg).toContain(`… and ${count - 25} more`);
    expect(msg.split('\n')).toHaveLength(1 + 25 + 1);
  });

  it('cnn: channels and strides, one per block, strides 1 or 2', () => {
    expect(errorOf(env({ ...cnn, strides: [1, 2] }))).toContain(
      'model.strides: has 2 entries but channels has 3; give one stride per block',
    );
    expect(errorOf(env({ ...cnn, strides: [1, 3, 2] }))).toContain('model.strides[1]: must be 1 or 2, got 3');
    expect(errorOf(env({ ...cnn, channels: [8, 0, 32] }))).toContain(
      'model.channels[1]: must be an integer in [1, 16384], got 0',
    );
    expect(errorOf(env({ ...cnn, channels: [], strides: [], exits: { blocks: [0], head: 'linear' } }))).toContain(
      'model.channels: must list between 1 and 1024 blocks, got []',
    );
  });

  it('reports every problem at once', () => {
    const msg = errorOf(
      env({ ...encoder, vocab_size: 0, num_heads: 3, exits: { blocks: [1, 0], head: 'x' }, extra: true }),
    );
    expect(msg).toMatch(/invalid model config \(6 problems\)/);
    for (const path of [
      'model.vocab_size',
      'model.num_heads',
      'model.exits.blocks[1]',
      'model.exits.blocks:',
      'model.exits.head',
      'model: unknown key "extra"',
    ])
      expect(msg).toContain(path);
  });

  it('random valid configs parse; random edits parse or throw FormatError, nothing else', () => {
    const arb = fc.oneof(
      fc
        .record({
          layers: fc.integer({ min: 1, max: 12 }),
          heads: fc.integer({ min: 1, max: 8 }),
          headDim: fc.integer({ min: 1, max: 16 }),
          exitsMask: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
          head: fc.constantFrom('linear' as const, 'pooler' as const),
          gate: fc.boolean(),
        })
        .map(
          (r): EncoderClassifierConfig => ({
            ...encoder,
            num_layers: r.layers,
            num_heads: r.heads,
            hidden_size: r.heads * r.headDim,
            exits: {
              blocks: [...Array(r.layers).keys()].filter((i) => i === r.layers - 1 || r.exitsMask[i]),
              head: r.head,
              gate: r.gate,
            },
          }),
        ),
      fc
        .array(fc.tuple(fc.integer({ min: 1, max: 64 }), fc.constantFrom(1 as const, 2 as const)), {
          minLength: 1,
          maxLength: 6,
        })
        .map(
          (bl): CnnClassifierConfig => ({
            ...cnn,
            channels: bl.map((b) => b[0]),
            strides: bl.map((b) => b[1]),
            exits: { blocks: [bl.length - 1], head: 'linear' },
          }),
        ),
    );
    fc.assert(
      fc.property(
        arb,
        fc.boolean(),
        fc.nat(),
        fc.option(fc.string()),
        fc.jsonValue(),
        (model, inExits, pick, key, value) => {
          const json = env(model) as Record<string, any>;
          expect(parseModelConfig(clone(json))).toEqual(json);
          // Edit one place: an existing or a new key of model or model.exits gets a random JSON value.
          const target = inExits ? json.model.exits : json.model;
          const keys = Object.keys(target);
          target[key ?? keys[pick % keys.length]] = value;
          try {
            parseModelConfig(json);
          } catch (e) {
            expect(e).toBeInstanceOf(FormatError);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('configIssues returns the list without throwing', () => {
    expect(configIssues(env(mlp))).toEqual([]);
    expect(configIssues(env({ ...mlp, num_layers: 0 }))).toEqual([
      { path: 'model.num_layers', message: 'must be an integer in [1, 1024], got 0' },
    ]);
  });
});

describe('modelTensorSpec', () => {
  const params = (spec: Map<string, number[]>) =>
    [...spec.values()].reduce((s, shape) => s + shape.reduce((a, b) => a * b, 1), 0);

  it('encoder: names, shapes and the parameter count of the naming table', () => {
    const spec = modelTensorSpec(encoder);
    const d = 8;
    const ff = 32;
    const g = 5;
    const C = 4;
    expect(spec.get('embeddings.token.weight')).toEqual([30, d]);
    expect(spec.get('embeddings.position.weight')).toEqual([16, d]);
    expect(spec.get('blocks.2.attn.qkv.weight')).toEqual([d, 3 * d]);
    expect(spec.get('blocks.2.attn.qkv.bias')).toEqual([3 * d]);
    expect(spec.get('blocks.0.mlp.fc2.weight')).toEqual([ff, d]);
    expect(spec.get('exits.1.ln.bias')).toEqual([d]);
    expect(spec.get('exits.1.pooler.weight')).toEqual([d, d]);
    expect(spec.get('exits.0.classifier.weight')).toEqual([d, C]);
    expect(spec.get('exits.1.gate.fc1.weight')).toEqual([d, g]);
    expect(spec.get('exits.1.gate.fc2.weight')).toEqual([g, 1]);
    expect(spec.get('exits.1.gate.fc2.bias')).toEqual([1]);
    expect(spec.has('blocks.3.ln1.weight')).toBe(false);
    expect(spec.has('exits.2.classifier.weight')).toBe(false);
    const block = 4 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d);
    const exit = 2 * d + (d * d + d) + (d * C + C) + (d * g + g) + (g + 1);
    expect(params(spec)).toBe(30 * d + 16 * d + 3 * block + 2 * exit);
    expect(spec.size).toBe(2 + 3 * 12 + 2 * 10);
  });

  it('encoder without gate or pooler has neither; gate_hidden defaults to 64', () => {
    const plain = modelTensorSpec({ ...encoder, exits: { blocks: [2], head: 'linear' } });
    expect([...plain.keys()].filter((k) => k.startsWith('exits.'))).toEqual([
      'exits.0.ln.weight',
      'exits.0.ln.bias',
      'exits.0.classifier.weight',
      'exits.0.classifier.bias',
    ]);
    const gated = modelTensorSpec({ ...encoder, exits: { blocks: [2], head: 'linear', gate: true } });
    expect(gated.get('exits.0.gate.fc1.weight')).toEqual([8, 64]);
  });

  it('mlp: first block reads the input, no LayerNorm in the exits', () => {
    const spec = modelTensorSpec(mlp);
    expect(spec.get('blocks.0.fc.weight')).toEqual([784, 64]);
    expect(spec.get('blocks.3.fc.weight')).toEqual([64, 64]);
    expect(spec.get('exits.1.classifier.weight')).toEqual([64, 10]);
    expect([...spec.keys()].some((k) => k.includes('.ln') || k.includes('gate') || k.includes('pooler'))).toBe(false);
    expect(params(spec)).toBe(784 * 64 + 64 + 3 * (64 * 64 + 64) + 2 * (64 * 10 + 10));
  });

  it("cnn with exit_pool 'flatten': heads read C·H·W features of each block's map", () => {
    // image 32 → block 0 (stride 1) 32×32, block 1 (stride 2) 16×16, block 2 (stride 2) 8×8
    const spec = modelTensorSpec({ ...cnn, exit_pool: 'flatten' });
    expect(spec.get('exits.0.classifier.weight')).toEqual([8 * 32 * 32, 10]);
    expect(spec.get('exits.1.classifier.weight')).toEqual([16 * 16 * 16, 10]);
    expect(spec.get('exits.2.classifier.weight')).toEqual([32 * 8 * 8, 10]);
    expect(spec.get('exits.1.gate.fc1.weight')).toEqual([16 * 16 * 16, 64]);
    expect(spec.get('blocks.2.conv2.weight')).toEqual([32, 32, 3, 3]);
    // odd sizes round like the convolution: 7 → 4 with stride 2
    const odd = modelTensorSpec({ ...cnn, image_size: 28, strides: [2, 2, 2], exit_pool: 'flatten' });
    expect(odd.get('exits.2.classifier.weight')).toEqual([32 * 4 * 4, 10]);
    expect(modelTensorSpec({ ...cnn, exit_pool: 'global' })).toEqual(modelTensorSpec(cnn));
    expect(errorOf(env({ ...cnn, exit_pool: 'max' }))).toContain("model.exit_pool: must be 'global' or 'flatten'");
  });

  it('cnn: stem, conv1/conv2 per block with the previous width, exits on the block width', () => {
    const spec = modelTensorSpec(cnn);
    expect(spec.get('stem.conv.weight')).toEqual([4, 3, 3, 3]);
    expect(spec.get('stem.conv.bias')).toEqual([4]);
    expect(spec.get('blocks.0.conv1.weight')).toEqual([8, 4, 3, 3]);
    expect(spec.get('blocks.1.conv1.weight')).toEqual([16, 8, 3, 3]);
    expect(spec.get('blocks.2.conv2.weight')).toEqual([32, 32, 3, 3]);
    expect(spec.get('exits.0.classifier.weight')).toEqual([8, 10]);
    expect(spec.get('exits.2.classifier.weight')).toEqual([32, 10]);
    expect(spec.get('exits.1.gate.fc1.weight')).toEqual([16, 64]);
    expect([...spec.keys()].some((k) => k.includes('.ln'))).toBe(false);
    const conv = (i: number, o: number) => o * i * 9 + o;
    const exit = (c: number) => c * 10 + 10 + (c * 64 + 64) + (64 + 1);
    expect(params(spec)).toBe(
      conv(3, 4) +
        conv(4, 8) +
        conv(8, 8) +
        conv(8, 16) +
        conv(16, 16) +
        conv(16, 32) +
        conv(32, 32) +
        exit(8) +
        exit(16) +
        exit(32),
    );
  });
});

describe('checkTensors', () => {
  const expected = new Map<string, number[]>([
    ['a', [2, 3]],
    ['b', [4]],
    ['c', [1]],
    ['d', []],
  ]);

  it('passes when names and shapes agree', () => {
    const actual = new Map([...expected].map(([k, s]) => [k, { shape: s.slice() }]));
    expect(checkTensors(expected, actual)).toEqual({ ok: true, missing: [], unexpected: [], mismatched: [] });
    expect(() => assertTensors(expected, actual)).not.toThrow();
  });

  it('lists all missing, unexpected and mismatched tensors at once', () => {
    const actual = new Map<string, { shape: number[] }>([
      ['a', { shape: [3, 2] }],
      ['b', { shape: [4, 1] }],
      ['x', { shape: [7] }],
      ['y', { shape: [] }],
    ]);
    const report = checkTensors(expected, actual);
    expect(report.ok).toBe(false);
    expect(report.missing).toEqual([
      { name: 'c', shape: [1] },
      { name: 'd', shape: [] },
    ]);
    expect(report.unexpected).toEqual([
      { name: 'x', shape: [7] },
      { name: 'y', shape: [] },
    ]);
    expect(report.mismatched).toEqual([
      { name: 'a', expected: [2, 3], actual: [3, 2] },
      { name: 'b', expected: [4], actual: [4, 1] },
    ]);
    let err: unknown;
    try {
      assertTensors(expected, actual, 'm/model.safetensors');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TensorMismatchError);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as TensorMismatchError).report).toEqual(report);
    expect((err as Error).message).toBe(
      [
        'm/model.safetensors do not match the model config:',
        '2 missing tensors:',
        '  c (expected [1])',
        '  d (expected [])',
        '2 shape mismatches:',
        '  a: expected [2, 3], found [3, 2]',
        '  b: expected [4], found [4, 1]',
        '2 unexpected tensors:',
        '  x [7]',
        '  y []',
      ].join('\n'),
    );
  });

  it('shortens long lists in the text but keeps the counts and the full report', () => {
    const spec = modelTensorSpec(mlp);
    const report = checkTensors(spec, new Map());
    expect(report.missing.length).toBe(spec.size);
    const text = formatTensorReport(report, 3);
    expect(text.split('\n')).toHaveLength(5);
    expect(text).toContain(`${spec.size} missing tensors:`);
    expect(text).toContain(`… and ${spec.size - 3} more`);
  });

  it('a model written from its own spec checks clean', () => {
    for (const model of [encoder, mlp, cnn]) {
      const spec = modelTensorSpec(model);
      const actual = new Map([...spec].map(([k, s]) => [k, { shape: s }]));
      expect(checkTensors(spec, actual).ok).toBe(true);
    }
    const _typed: ConfigEnvelope = parseModelConfig(env(cnn));
    expect(_typed.model.architecture).toBe('cnn_classifier');
  });
});
