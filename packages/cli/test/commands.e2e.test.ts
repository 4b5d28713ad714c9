// End-to-end through the built binary: error messages and exit codes (0 ok, 1 runtime, 2 usage), help texts,
// calibrate → policy file → eval, inspect, bench, train, generate on a tiny Mamba LM, and the policy scaffold.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  buildModel,
  type CnnClassifierConfig,
  createDevice,
  type EncoderClassifierConfig,
  parseDecoderConfig,
  Runner,
  randomDecoderWeights,
  writeSafetensors,
} from '@offramp/core';
import { loadModelDir } from '@offramp/core/node';
import { parseMambaConfig, randomMambaWeights } from '@offramp/mamba';
import { createPolicy, loadPolicyFile, parseTraceFile, simulate } from '@offramp/policies';
import { CharTokenizer, WordTokenizer } from '@offramp/train';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calibrateResultSchema, evalResultSchema } from '../src/schema.js';
import { cli, ensureBuilt, makeJsonl, makeModel, ROOT, tempDir } from './helpers.js';

let dir: string;
let model: string;
let data: string;

beforeAll(async () => {
  ensureBuilt();
  dir = tempDir('commands');
  model = await makeModel(join(dir, 'mlp'));
  data = makeJsonl(join(dir, 'data.jsonl'), 120);
});

const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at .+:\d+:\d+/);

describe('usage errors exit 2 with a helpful message', () => {
  it('an unknown policy suggests the nearest built-in', () => {
    const r = cli(['eval', '-m', model, '-d', data, '-p', 'entropi']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown policy 'entropi' (did you mean 'entropy'?)");
    noStack(r.stderr);
  });
  it('an option out of range names the policy, the option and the allowed range', () => {
    const r = cli(['eval', '-m', model, '-d', data, '-p', 'confidence:threshold=2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/policy 'confidence'.*'threshold'.*\[0, ?1\]/);
    // a range that depends on the model (ln C for C = 4 classes) is checked before anything runs
    const e = cli(['eval', '-m', model, '-d', data, '-p', 'entropy:threshold=2']);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/policy 'entropy'.*'threshold'.*ln C.*1\.38/);
  });
  it('an unknown dataset suggests the nearest one', () => {
    const r = cli(['eval', '-m', model, '-d', 'fashon-mnist']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown dataset 'fashon-mnist' (did you mean 'fashion-mnist'?)");
  });
  it('bad options and values are refused by the parser', () => {
    for (const args of [
      ['eval', '-m', model, '-d', data, '--bogus'],
      ['eval', '-m', model, '-d', data, '--batch', '0'],
      ['eval', '-m', model, '-d', data, '--mode', 'fast'],
      ['eval', '-d', data],
      ['evaluate'],
      ['calibrate', '-m', model, '-d', data, '-p', 'entropy'],
      ['calibrate', '-m', model, '-d', data, '-p', 'patience', '--max-drop', '0.01'],
      ['calibrate', '-m', model, '-d', data, '-p', 'entropy', '--risk', '0.05'],
    ]) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.length, args.join(' ')).toBeGreaterThan(10);
      noStack(r.stderr);
    }
    expect(cli(['evaluate']).stderr).toContain('eval');
  });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('runtime errors exit 1 and say how to fix them', () => {
  it('a missing model directory', () => {
    const r = cli(['eval', '-m', join(dir, 'nope'), '-d', data]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('does not exist');
    expect(r.stderr).toContain('checkpoints');
    noStack(r.stderr);
    const v = cli(['eval', '-m', join(dir, 'nope'), '-d', data, '--verbose']);
    expect(v.code).toBe(1);
    expect(v.stderr).toMatch(/\n\s+at .+:\d+:\d+/);
  });
  it('a shipped model name that is not there says how to train it', () => {
    const r = cli(['inspect', 'no-such-model-here']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("model directory 'no-such-model-here' does not exist");
  });
  it('a dataset missing from the cache (matching model) says to run pnpm data', async () => {
    const cnnDir = join(dir, 'cnn');
    const core = await import('@offramp/core');
    const { saveModelDir } = await import('@offramp/core/node');
    const cfg: CnnClassifierConfig = {
      architecture: 'cnn_classifier',
      image_size: 28,
      in_channels: 1,
      stem_channels: 4,
      channels: [4, 8],
      strides: [2, 2],
      num_classes: 10,
      exits: { blocks: [0, 1], head: 'linear' },
    };
    await saveModelDir(cnnDir, { offramp_format: 1, model: cfg }, core.randomWeights(cfg, 1));
    const r = cli(['eval', '-m', cnnDir, '-d', 'mnist'], { env: { OFFRAMP_DATA_DIR: join(dir, 'empty-cache') } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('pnpm data');
    noStack(r.stderr);
  });
});

describe('help', () => {
  it('every command has --help with examples; the top level documents the exit codes', () => {
    const top = cli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('Exit codes:');
    expect(cli([]).code).toBe(2); // no command: help on stderr, usage error
    for (const c of ['eval', 'calibrate', 'trace', 'bench', 'train', 'generate', 'inspect', 'demo']) {
      const r = cli([c, '--help']);
      expect(r.code, c).toBe(0);
      expect(r.stdout, c).toContain('Examples:');
      expect(r.stdout, c).toContain(`offramp ${c}`);
    }
    const np = cli(['new', 'policy', '--help']);
    expect(np.code).toBe(0);
    expect(np.stdout).toContain('offramp new policy');
  });
});

describe('offramp trace', () => {
  it('writes a trace file whose replay matches a real run of eval', () => {
    const file = join(dir, 'traces', 'mlp.trace.json');
    const r = cli(['trace', '-m', model, '-d', data, '-b', '16', '-n', '100', '-o', file, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ file, samples: 100, split: 'file' });
    const { trace, meta } = parseTraceFile(readFileSync(file, 'utf8'), file);
    expect(meta).toMatchObject({ data: data });
    expect(trace.samples).toHaveLength(100);
    const E = trace.numExits;
    expect(out.accuracy).toHaveLength(E);
    for (let e = 0; e < E; e++) {
      const acc = trace.samples.filter((s) => s.argmax[e] === s.label).length / 100;
      expect(out.accuracy[e]).toBeCloseTo(acc, 12);
    }
    expect(out.agreement[E - 1]).toBe(1);
    // the replay of a policy on the file equals what eval measures in a real run of that policy
    const sim = simulate(createPolicy('confidence', { threshold: 0.4 }), trace);
    const e = cli([
      'eval',
      '-m',
      model,
      '-d',
      data,
      '-n',
      '100',
      '-b',
      '16',
      '-p',
      'confidence:threshold=0.4',
      '-o',
      join(dir, 'trace-eval'),
      '--json',
    ]);
    expect(e.code, e.stderr).toBe(0);
    const point = evalResultSchema.parse(JSON.parse(e.stdout)).policies[0].points[0];
    expect(point.measured!.exitsMatch).toBe(true);
    expect(point.computeFraction).toBeCloseTo(sim.meanCost, 12);
    expect(point.accuracy!).toBeCloseTo(sim.accuracy!, 12);
  });

  it('eval --trace replays the file instead of recording, with the same results, and refuses a foreign one', () => {
    const file = join(dir, 'traces', 'mlp-all.trace.json');
    expect(cli(['trace', '-m', model, '-d', data, '-b', '16', '-n', '80', '-o', file]).code).toBe(0);
    const args = [
      'eval',
      '-m',
      model,
      '-d',
      data,
      '-n',
      '80',
      '-b',
      '16',
      '-p',
      'confidence,entropy',
      '--measure',
      'chosen',
    ];
    const a = cli([...args, '-o', join(dir, 'ev-a'), '--json']);
    const b = cli([...args, '--trace', file, '-o', join(dir, 'ev-b'), '--json']);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toContain('not recorded again');
    const ra = evalResultSchema.parse(JSON.parse(a.stdout));
    const rb = evalResultSchema.parse(JSON.parse(b.stdout));
    const strip = (r: typeof ra) =>
      r.policies.map((f) => f.points.map((p) => [p.label, p.accuracy, p.computeFraction, p.measured?.exitsMatch]));
    expect(strip(rb)).toEqual(strip(ra));
    // a different slice of the data is refused, with what differs
    const c = cli([
      'eval',
      '-m',
      model,
      '-d',
      data,
      '-n',
      '60',
      '-p',
      'confidence',
      '--trace',
      file,
      '-o',
      join(dir, 'ev-c'),
    ]);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('it holds 80 samples, the data 60');
  });

  it('needs --out', () => {
    const r = cli(['trace', '-m', model, '-d', data]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--out/);
  });
});

describe('offramp calibrate', () => {
  it('writes a policy file that eval accepts (file:PATH)', () => {
    const file = join(dir, 'entropy.policy.json');
    const r = cli([
      'calibrate',
      '-m',
      model,
      '-d',
      data,
      '-p',
      'entropy',
      '--max-drop',
      '0.05',
      '-b',
      '32',
      '-o',
      file,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const out = calibrateResultSchema.parse(JSON.parse(r.stdout));
    expect(out.file).toBe(file);
    expect(out.feasible).toBe(true);
    expect(out.metrics.accuracyDrop!).toBeLessThanOrEqual(0.05);
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    expect(doc).toMatchObject({
      offramp_policy: 1,
      name: 'entropy',
      calibration: { method: 'max-drop', maxDrop: 0.05 },
    });
    const e = cli([
      'eval',
      '-m',
      model,
      '-d',
      data,
      '-p',
      `file:${file}`,
      '-b',
      '32',
      '-o',
      join(dir, 'cal-eval'),
      '--json',
    ]);
    expect(e.code).toBe(0);
    const res = evalResultSchema.parse(JSON.parse(e.stdout));
    expect(res.policies).toHaveLength(1);
    expect(res.policies[0].family).toBe('entropy (file)');
    const p = res.policies[0].points[0];
    expect(p.computeFraction).toBeCloseTo(out.metrics.computeFraction, 12);
    expect(p.accuracyDrop!).toBeCloseTo(out.metrics.accuracyDrop!, 12);
    expect(p.measured!.exitsMatch).toBe(true);
  });
  it('budget and risk targets', async () => {
    const b = cli([
      'calibrate',
      '-m',
      model,
      '-d',
      data,
      '-p',
      'confidence',
      '--budget',
      '0.6',
      '--per-exit',
      '-o',
      join(dir, 'b.json'),
      '--json',
    ]);
    expect(b.code).toBe(0);
    const ob = calibrateResultSchema.parse(JSON.parse(b.stdout));
    expect(ob.metrics.computeFraction).toBeLessThanOrEqual(0.6 + 1e-9);
    expect(Array.isArray(ob.options.threshold)).toBe(true);
    const { policy } = await loadPolicyFile(join(dir, 'b.json'));
    expect(policy.name).toBe('confidence');
    const r = cli([
      'calibrate',
      '-m',
      model,
      '-d',
      data,
      '-p',
      'confidence',
      '--risk',
      '0.5,0.2',
      '-o',
      join(dir, 'r.json'),
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).method).toBe('learn-then-test');
  });
});

describe('text models', () => {
  it('eval tokenizes {text, label} rows with the tokenizer saved beside an encoder', async () => {
    const enc = join(dir, 'encoder');
    const texts = Array.from(
      { length: 40 },
      (_, i) => `${i % 2 ? 'good fine great' : 'bad awful poor'} movie number ${i} ${'x '.repeat(i % 7)}`,
    );
    const tok = WordTokenizer.fromTexts(texts, { vocabSize: 64 });
    const cfg: EncoderClassifierConfig = {
      architecture: 'encoder_classifier',
      vocab_size: 64,
      max_position: 32,
      hidden_size: 16,
      num_layers: 3,
      num_heads: 2,
      intermediate_size: 32,
      num_classes: 2,
      exits: { blocks: [0, 1, 2], head: 'linear', gate: true, gate_hidden: 8 },
    };
    const core = await import('@offramp/core');
    const { saveModelDir } = await import('@offramp/core/node');
    await saveModelDir(
      enc,
      {
        offramp_format: 1,
        model: cfg,
        // string labels of a data file map through the model's class names
        meta: { dataset: 'synthetic text', tokenizer: 'vocab.json', max_length: 24, class_names: ['neg', 'pos'] },
      },
      core.randomWeights(cfg, 5),
    );
    tok.save(join(enc, 'vocab.json'));
    const file = join(dir, 'text.jsonl');
    writeFileSync(file, texts.map((t, i) => JSON.stringify({ text: t, label: i % 2 ? 'pos' : 'neg' })).join('\n'));
    const r = cli([
      'eval',
      '-m',
      enc,
      '-d',
      file,
      '-p',
      'confidence,gate,ponder,saturation',
      '-b',
      '16',
      '-o',
      join(dir, 'enc-eval'),
      '--json',
    ]);
    expect(r.code).toBe(0);
    const res = evalResultSchema.parse(JSON.parse(r.stdout));
    expect(res.policies.map((p) => p.family)).toEqual(['confidence', 'gate', 'ponder', 'saturation']);
    expect(res.checks.exitsMatch).toBe(true);
    expect(res.data.classNames).toEqual(['neg', 'pos']);
    const img = cli(['eval', '-m', enc, '-d', data]);
    expect(img.code).toBe(2);
    expect(img.stderr).toContain('text data');
  });
});

describe('offramp inspect', () => {
  it('validates the files and reports exits, parameters, FLOPs per block and tensors', async () => {
    const r = cli(['inspect', model, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    const { config, tensors } = await loadModelDir(model);
    let params = 0;
    for (const t of tensors.values()) params += t.shape.reduce((a, b) => a * b, 1);
    expect(j.parameters).toBe(params);
    expect(j.tensors).toHaveLength(tensors.size);
    expect(j.exitBlocks).toEqual([0, 1, 2, 3]);
    const device = await createDevice({ backend: 'cpu' });
    const m = buildModel(device, config.model, tensors as never);
    const runner = new Runner(device, m, { maxBatch: 1 });
    expect(j.flops.blocks).toEqual(runner.program(1).flops.blocks);
    expect(j.flops.full).toBe(runner.costs(1).full);
    runner.dispose();
    m.dispose();
    device.destroy();
    const t = cli(['inspect', model]);
    expect(t.stdout).toContain('exits        after blocks 0, 1, 2, 3');
    expect(t.stdout).toContain('blocks.0.fc.weight');
    expect(t.stdout).toContain('valid');
  });
  it('a damaged weights file is a runtime error naming the file', () => {
    const bad = join(dir, 'bad');
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, 'config.json'), readFileSync(join(model, 'config.json')));
    writeFileSync(join(bad, 'model.safetensors'), readFileSync(join(model, 'model.safetensors')).subarray(0, 200));
    const r = cli(['inspect', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('model.safetensors');
    noStack(r.stderr);
  });
});

describe('offramp bench', () => {
  it('prints the summary of saved results', () => {
    const res = join(dir, 'bench');
    mkdirSync(res, { recursive: true });
    writeFileSync(
      join(res, 'kernels.json'),
      JSON.stringify({
        benchmark: 'kernels',
        date: 'd',
        adapter: 'a',
        cases: { 'matmul 1024': { offramp_ms: 10, tfjs_webgpu_ms: 25, ratio: 2.5, gflops: 200 } },
        targets: { matmul_1024_met: true },
      }),
    );
    writeFileSync(
      join(res, 'engine.json'),
      JSON.stringify({
        benchmark: 'engine',
        offramp_ms: 100,
        tfjs_webgpu_ms: 250,
        ratio_vs_tfjs: 2.5,
        halving_device_ms: 40,
        targets: { ratio_vs_tfjs: { target: '>= 2', met: true } },
      }),
    );
    const r = cli(['bench', '--no-run', '--results', res]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('matmul 1024');
    expect(r.stdout).toContain('2.50×');
    expect(r.stdout).toContain('target ratio_vs_tfjs: met');
    const j = cli(['bench', 'engine', '--no-run', '--results', res, '--json']);
    expect(JSON.parse(j.stdout).results[0].rows.length).toBeGreaterThan(2);
    const u = cli(['bench', 'kernel', '--no-run']);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain("did you mean 'kernels'");
    const m = cli(['bench', 'kernels', '--no-run', '--results', join(dir, 'empty')]);
    expect(m.code).toBe(1);
    expect(m.stderr).toContain('offramp bench kernels');
  });
});

describe('offramp train', () => {
  it('lists recipes and checks the recipe, data and options', () => {
    const l = cli(['train', '--list']);
    expect(l.code).toBe(0);
    expect(l.stdout).toContain('fashion-cnn');
    // every listed recipe is a program of this checkout
    const listed = JSON.parse(cli(['train', '--json']).stdout).recipes as string[];
    expect(listed).toEqual(expect.arrayContaining(['imdb-two-stage', 'imdb-self-distill', 'imdb-dual-head']));
    const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<string, string>;
    for (const r of listed) expect(scripts[`train:${r}`], r).toBeDefined();
    const u = cli(['train', 'fashion-cnnn']);
    expect(u.code).toBe(2);
    expect(u.stderr).toContain("did you mean 'fashion-cnn'");
    const d = cli(['train', 'fashion-cnn', '--data', 'imdb']);
    expect(d.code).toBe(2);
    expect(d.stderr).toContain('trains on fashion-mnist');
    const o = cli(['train', 'austen-mamba', '--epochs', '2']);
    expect(o.code).toBe(2);
    expect(o.stderr).toContain('does not take --epochs');
  });
});

describe('offramp generate', () => {
  it("streams tokens from a Mamba LM with each token's exit block", async () => {
    const lm = join(dir, 'lm');
    mkdirSync(lm, { recursive: true });
    const tok = CharTokenizer.fromCorpus('abcdefghij klmnop.');
    const hf = {
      model_type: 'mamba',
      vocab_size: tok.vocabSize,
      hidden_size: 16,
      num_hidden_layers: 3,
      state_size: 4,
      expand: 2,
      intermediate_size: 32,
      conv_kernel: 4,
      time_step_rank: 2,
      layer_norm_epsilon: 1e-5,
      use_bias: false,
      use_conv_bias: true,
      tie_word_embeddings: true,
      offramp: { exits: [1, 2] },
    };
    writeFileSync(join(lm, 'config.json'), JSON.stringify(hf));
    writeFileSync(
      join(lm, 'model.safetensors'),
      writeSafetensors(randomMambaWeights(parseMambaConfig(hf), { seed: 2 })),
    );
    tok.save(join(lm, 'char-tokenizer.json'));
    const r = cli([
      'generate',
      '-m',
      lm,
      '--prompt',
      'abc',
      '--max-tokens',
      '12',
      '-p',
      'confidence:threshold=0.05',
      '--json',
    ]);
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.tokens).toHaveLength(12);
    expect(j.exitBlocks).toEqual([1, 2]);
    for (const t of j.tokens) expect([1, 2]).toContain(t.exitBlock);
    expect(j.tokens.slice(1).some((t: { exitBlock: number }) => t.exitBlock === 1)).toBe(true);
    expect(j.depthFraction).toBeLessThan(1);
    const txt = cli(['generate', '-m', lm, '--prompt', 'abc', '--max-tokens', '5', '-p', 'never']);
    expect(txt.code).toBe(0);
    expect(txt.stdout).toMatch(/\nabc/);
    expect(txt.stdout).toContain('block 2');
    // any policy of the grammar runs per token; a decoder strategy is refused for Mamba
    const pat = cli([
      'generate',
      '-m',
      lm,
      '--prompt',
      'abc',
      '--max-tokens',
      '6',
      '-p',
      'patience:patience=1',
      '--json',
    ]);
    expect(pat.code, pat.stderr).toBe(0);
    expect(JSON.parse(pat.stdout).tokens).toHaveLength(6);
    const bad = cli(['generate', '-m', lm, '--prompt', 'abc', '-p', 'patiense']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("did you mean 'patience'");
    const spec = cli(['generate', '-m', lm, '--prompt', 'abc', '--strategy', 'speculative']);
    expect(spec.code).toBe(2);
    expect(spec.stderr).toContain('decoder strategy');
    const skip = cli(['generate', '-m', lm, '--prompt', 'abc', '--skip', 'propagate']);
    expect(skip.code).toBe(2);
    expect(skip.stderr).toContain('freeze or partial');
    const cls = cli(['generate', '-m', model, '--prompt', 'abc']);
    expect(cls.code).toBe(2);
  });

  it('streams tokens from a Llama-style decoder folder with per-token policies and bracketed depths', async () => {
    const lm = join(dir, 'decoder');
    mkdirSync(lm, { recursive: true });
    const tok = CharTokenizer.fromCorpus('abcdefghij klmnop.');
    const hf = {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      vocab_size: tok.vocabSize,
      hidden_size: 16,
      num_hidden_layers: 3,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      intermediate_size: 24,
      max_position_embeddings: 64,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      tie_word_embeddings: true,
      offramp: { exits: [0, 1], tokenizer: 'char-tokenizer.json' },
    };
    writeFileSync(join(lm, 'config.json'), JSON.stringify(hf));
    writeFileSync(join(lm, 'model.safetensors'), writeSafetensors(randomDecoderWeights(parseDecoderConfig(hf), 3)));
    tok.save(join(lm, 'char-tokenizer.json'));
    const args = ['generate', '-m', lm, '--prompt', 'abc', '--max-tokens', '10'];
    const r = cli([...args, '-p', 'confidence:threshold=0.05', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.kind).toBe('decoder');
    expect(j.strategy).toBe('calm');
    expect(j.skip).toBe('propagate');
    expect(j.tokens).toHaveLength(10);
    expect(j.exitBlocks).toEqual([0, 1, 2]);
    expect(j.tokens[0].exitBlock).toBe(2);
    expect(j.tokens.slice(1).some((t: { exitBlock: number }) => t.exitBlock < 2)).toBe(true);
    expect(j.depthFraction).toBeLessThan(1);
    // auto on a software adapter takes the ONNX Runtime CPU path (when it loads): the same tokens and exit
    // blocks as the decoder on WebGPU
    expect(j.path).toBe(j.device.includes('run on ort-cpu') ? 'ort-cpu' : 'webgpu');
    const onGpu = cli([...args, '-p', 'confidence:threshold=0.05', '--json', '--device', 'gpu']);
    expect(onGpu.code, onGpu.stderr).toBe(0);
    const gj = JSON.parse(onGpu.stdout);
    expect(gj.path).toBe('webgpu');
    expect(j.tokens).toEqual(gj.tokens);
    // bracketed depth after each token, decaying threshold, plain text
    const br = cli([...args, '-p', 'decaying:threshold=0.05,tau=2', '--depth', 'brackets']);
    expect(br.code, br.stderr).toBe(0);
    expect(br.stdout).toMatch(/^abc(.\[[012]\]){10}$/m);
    const never = cli([...args, '-p', 'never', '--json']);
    expect(JSON.parse(never.stdout).depthFraction).toBe(1);
    const none = cli([...args, '--skip', 'none', '--json']);
    expect(none.code, none.stderr).toBe(0);
    // speculative decoding is lossless: the same tokens as full depth (greedy), at any draft exit / k
    const full = JSON.parse(never.stdout).tokens.map((t: { id: number }) => t.id);
    for (const extra of [[], ['--draft-exit', '1', '--draft-tokens', '3']]) {
      const x = cli([...args, '--strategy', 'speculative', ...extra, '--json']);
      expect(x.code, x.stderr).toBe(0);
      const xj = JSON.parse(x.stdout);
      expect(xj.strategy).toBe('speculative');
      expect(xj.tokens.map((t: { id: number }) => t.id)).toEqual(full);
    }
    const specPolicy = cli([...args, '--strategy', 'speculative', '-p', 'confidence:threshold=0.5']);
    expect(specPolicy.code).toBe(2);
    expect(specPolicy.stderr).toContain('lossless');
    const badDraft = cli([...args, '--strategy', 'speculative', '--draft-exit', '2']);
    expect(badDraft.code).toBe(2);
    expect(badDraft.stderr).toContain('early exit of this model: 0, 1');
    // recompute: same exit decisions as CALM need not hold (different K/V), but it runs with the policy
    const rc = cli([...args, '--strategy', 'recompute', '-p', 'confidence:threshold=0.05', '--json']);
    expect(rc.code, rc.stderr).toBe(0);
    const rj = JSON.parse(rc.stdout);
    expect(rj.tokens).toHaveLength(10);
    expect(rj.tokens.slice(1).some((t: { exitBlock: number }) => t.exitBlock < 2)).toBe(true);
    // skipdecode: every token from the top block, fewer blocks than full depth once the schedule decays
    const sd = cli([...args, '--strategy', 'skipdecode', '--h-min', '1', '--json']);
    expect(sd.code, sd.stderr).toBe(0);
    const sj = JSON.parse(sd.stdout);
    expect(sj.tokens.every((t: { exitBlock: number }) => t.exitBlock === 2)).toBe(true);
    expect(sj.depthFraction).toBeLessThan(1);
    const sdPolicy = cli([...args, '--strategy', 'skipdecode', '-p', 'confidence:threshold=0.5']);
    expect(sdPolicy.code).toBe(2);
    expect(sdPolicy.stderr).toContain('--h-min');
    const logits = cli([...args, '-p', 'oracle']);
    expect(logits.code).toBe(2);
  });
});

describe('offramp new policy', () => {
  let target: string;
  afterAll(() => target && rmSync(target, { recursive: true, force: true }));

  it('scaffolds a plugin outside the workspace: its own test passes the kit, eval loads it from its folder', () => {
    // outside the repository: nothing resolves from a workspace above it, only from its own node_modules
    target = join(tempDir('scaffold'), 'steady-confidence');
    const r = cli(['new', 'policy', 'steady-confidence', '--dir', target]);
    expect(r.code, r.stderr).toBe(0);
    for (const f of ['package.json', 'index.js', 'test/policy.test.js', 'README.md'])
      expect(existsSync(join(target, f)), f).toBe(true);
    // registry ranges of the current versions, never workspace: specifiers
    const pkg = JSON.parse(readFileSync(join(target, 'package.json'), 'utf8'));
    const version = (p: string) => JSON.parse(readFileSync(join(ROOT, 'packages', p, 'package.json'), 'utf8')).version;
    expect(pkg.dependencies).toEqual({ '@offramp/core': `^${version('core')}` });
    expect(pkg.devDependencies).toEqual({ '@offramp/policies': `^${version('policies')}` });
    // what `npm install` would put there once published: the workspace packages (their dist) in its node_modules
    mkdirSync(join(target, 'node_modules', '@offramp'), { recursive: true });
    for (const p of ['core', 'policies'])
      symlinkSync(join(ROOT, 'packages', p), join(target, 'node_modules', '@offramp', p), 'dir');
    // its generated test, with node's own runner as `npm test` runs it
    const t = spawnSync(process.execPath, ['--test', 'test/policy.test.js'], {
      cwd: target,
      encoding: 'utf8',
      timeout: 300_000,
    });
    expect(t.stdout + t.stderr).toMatch(/# pass 1\n/);
    expect(t.status, t.stdout + t.stderr).toBe(0);
    // eval from another folder takes the plugin's folder; the plugin's imports resolve from its own folder
    const elsewhere = tempDir('scaffold-cwd');
    const rel = relative(elsewhere, target);
    const e = cli(
      [
        'eval',
        '-m',
        model,
        '-d',
        data,
        '-p',
        `module:${rel}:threshold=0.3`,
        '-b',
        '32',
        '-o',
        join(dir, 'plugin-eval'),
        '--json',
      ],
      { cwd: elsewhere },
    );
    expect(e.code, e.stderr).toBe(0);
    const res = evalResultSchema.parse(JSON.parse(e.stdout));
    expect(res.policies[0].source).toBe('module');
    // the table shows the options the plugin resolved (streak's default filled in), not the spec as typed
    expect(res.policies[0].points.map((p) => p.label)).toEqual(['threshold=0.3, streak=2']);
    expect(res.policies[0].points[0].measured!.exitsMatch).toBe(true);
    // named without options, the plugin is swept over the grid it declares (3 × 3)
    const sweep = cli(
      [
        'eval',
        '-m',
        model,
        '-d',
        data,
        '-p',
        `module:${target}`,
        '-b',
        '32',
        '-o',
        join(dir, 'plugin-sweep'),
        '--json',
      ],
      {
        cwd: elsewhere,
      },
    );
    expect(sweep.code, sweep.stderr).toBe(0);
    expect(evalResultSchema.parse(JSON.parse(sweep.stdout)).policies[0].points).toHaveLength(9);
    // a mistyped option is refused, naming the policy, the option and the closest allowed name
    const typo = cli(['eval', '-m', model, '-d', data, '-p', `module:${target}:treshold=0.3`, '--json'], {
      cwd: elsewhere,
    });
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain(
      "policy 'steady-confidence': unknown option 'treshold' (did you mean 'threshold'?); allowed options: threshold, streak",
    );
    const again = cli(['new', 'policy', 'steady-confidence', '--dir', target]);
    expect(again.code).toBe(1);
    expect(cli(['new', 'policy', 'Bad_Name']).code).toBe(2);
    expect(cli(['new', 'policy', 'entropy']).code).toBe(2);
  });
});

describe('resolved options in tables', () => {
  it("shows a policy file's options with the policy's defaults filled in", () => {
    const file = join(dir, 'patience.policy.json');
    writeFileSync(file, JSON.stringify({ offramp_policy: 1, name: 'patience', options: { patience: 2 } }));
    const e = cli([
      'eval',
      '-m',
      model,
      '-d',
      data,
      '-p',
      `file:${file}`,
      '-b',
      '32',
      '-o',
      join(dir, 'pf-eval'),
      '--json',
    ]);
    expect(e.code, e.stderr).toBe(0);
    const res = evalResultSchema.parse(JSON.parse(e.stdout));
    expect(res.policies[0].points.map((p) => p.label)).toEqual(['patience=2, mode=argmax, delta=0.1, signal=maxProb']);
  });
});
