// The Mamba LM's device decode loop against the host loop (MambaLM.step per token, its exits decided on the
// host by compaction, the same device sampler): identical tokens, exit blocks and blocks run, and identical
// final conv / SSM states, for greedy and sampled decoding, batch 1 and 8, rules never / fixed / maxProb /
// entropy, skip freeze and partial, N = 1, 4, 16 steps per submission; one readback per N tokens. Greedy
// host-loop output is also checked against MambaLM.generate (its own host sampler). On random weights and
// on the shipped Austen checkpoint.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createGpuDevice, type GpuDevice, mulberry32 } from '@offramp/core';
import { CharTokenizer } from '@offramp/train';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { MambaConfig } from './config.js';
import {
  gateLogitThreshold,
  type MambaLoopOptions,
  mambaGenerateHostLoop,
  mambaGenerateOnDevice,
} from './device-loop.js';
import { type ExitClassifierConfig, ExitClassifiers, readExitClassifiers } from './exit-classifier.js';
import { mambaScore } from './generation.js';
import type { ExitRule, MambaCache, MambaLM as MambaLMType } from './model.js';
import { MambaLM } from './model.js';
import { loadMambaLM } from './node.js';
import { randomMambaWeights } from './random-weights.js';
import { classifiersToTensors, initClassifiers } from './train/classifier-train.js';
import { normalizeMambaTensors } from './weights.js';

const cfg: MambaConfig = {
  vocabSize: 29,
  hiddenSize: 16,
  numLayers: 4,
  intermediateSize: 32,
  expand: 2,
  stateSize: 4,
  convKernel: 4,
  timeStepRank: 2,
  layerNormEpsilon: 1e-5,
  useBias: false,
  useConvBias: true,
  tieWordEmbeddings: true,
};

let gpu: GpuDevice;
let lm: MambaLM;
beforeAll(async () => {
  gpu = await createGpuDevice();
  const { tensors } = normalizeMambaTensors(cfg, randomMambaWeights(cfg, { seed: 8 }));
  lm = new MambaLM(gpu, cfg, tensors, { exits: [0, 1, 2] });
});
afterAll(() => {
  lm?.dispose();
  gpu?.destroy();
});

function promptsOf(B: number, V: number, seed: number): number[][] {
  const rand = mulberry32(seed);
  return Array.from({ length: B }, (_, b) => Array.from({ length: 1 + ((b * 3) % 7) }, () => Math.floor(rand() * V)));
}

/** A threshold halfway between two neighbouring teacher-forced values of `signal` at exit e (none sits on it). */
async function midThreshold(m: MambaLMType, signal: 'maxProb' | 'entropy', e: number, seqs: number[][]) {
  const sc = await mambaScore(m, seqs);
  const xs = Array.from(sc.signals[e][signal]).sort((a, b) => a - b);
  const i = Math.floor(xs.length / 2);
  return (xs[i] + xs[i + 1]) / 2;
}

/** Every block's conv and SSM state, then every stateful exit classifier's. */
async function states(c: MambaCache): Promise<Float32Array[]> {
  const all = [...c.layers, ...c.classifierStates.filter((x) => x !== null)];
  return Promise.all(all.flatMap((l) => [l.conv.read(), l.ssm.read()])) as Promise<Float32Array[]>;
}

/** Command submissions made while f runs (flushes of a pending command encoder). */
async function submissions<T>(f: () => Promise<T>): Promise<{ value: T; count: number }> {
  const dev = gpu as unknown as { flush(): void; encoder: unknown };
  const flush = dev.flush;
  let count = 0;
  dev.flush = function (this: typeof dev) {
    if (this.encoder) count++;
    flush.call(this);
  };
  try {
    return { value: await f(), count };
  } finally {
    delete (dev as { flush?: unknown }).flush;
  }
}

/** Runs host and device loops for every N and checks that they agree; returns the host run. */
async function compare(m: MambaLMType, prompts: number[][], o: MambaLoopOptions, Ns: number[], what: string) {
  const host = await mambaGenerateHostLoop(m, prompts, { ...o, keepCache: true });
  const prefill = await submissions(async () => (await m.prefill(prompts)).cache.dispose());
  const hostStates = await states(host.cache!);
  host.cache!.dispose();
  for (const N of Ns) {
    const w = `${what} N=${N}`;
    const streamed: number[][] = prompts.map(() => []);
    const reads = vi.spyOn(gpu, 'readRange');
    const { value: dev, count: submitted } = await submissions(() =>
      mambaGenerateOnDevice(m, prompts, {
        ...o,
        stepsPerSubmit: N,
        keepCache: true,
        onTokens: (row, toks) => streamed[row].push(...toks),
      }),
    );
    const readCalls = reads.mock.calls.length;
    reads.mockRestore();
    try {
      expect(dev.tokens, w).toEqual(host.tokens);
      expect(dev.exitBlocks, w).toEqual(host.exitBlocks);
      expect(dev.blocksRun, w).toBe(host.blocksRun);
      // the device runs every block on every row, except after a fixed exit (the step ends there)
      const rule = o.exit?.rule;
      const depth = rule?.kind === 'fixed' ? rule.block + 1 : m.L;
      expect(dev.blocksComputed, w).toBe(depth * (dev.tokens.flat().length - prompts.length));
      expect(streamed, w).toEqual(host.tokens);
      // one readback per N tokens (+ the prefill's logits), whatever the batch
      expect(dev.readbacks, w).toBe(Math.ceil(o.maxNewTokens / N));
      expect(readCalls, w).toBe(dev.readbacks + 1);
      // and one command submission per N tokens: the decode steps never flush on their own
      expect(submitted, w).toBe(prefill.count + dev.readbacks);
      const ds = await states(dev.cache!);
      ds.forEach((x, i) => {
        expect(x, `${w} state ${i}`).toEqual(hostStates[i]);
      });
    } finally {
      dev.cache!.dispose();
    }
  }
  return host;
}

describe('mambaGenerateOnDevice on random weights', () => {
  it('equals the host loop: tokens, exit blocks, final states; greedy and sampled, batch 1 and 8, never / fixed / maxProb / entropy, freeze and partial, N = 1, 4, 16 (greedy), 16 (sampled)', async () => {
    const seqs = promptsOf(4, cfg.vocabSize, 3).map((p, b) => [...p, ...promptsOf(1, cfg.vocabSize, 10 + b)[0], 1, 2]);
    const mp = await midThreshold(lm, 'maxProb', 1, seqs);
    const en = await midThreshold(lm, 'entropy', 0, seqs);
    const rules: ExitRule[] = [
      { kind: 'never' },
      { kind: 'fixed', block: 1 },
      { kind: 'maxProb', threshold: mp },
      { kind: 'entropy', threshold: en },
    ];
    const depth = new Map<string, Set<number>>();
    for (const B of [1, 8]) {
      const prompts = promptsOf(B, cfg.vocabSize, B);
      for (const sampling of [{}, { temperature: 0.8, topK: 12, topP: 0.95, seed: 5 }])
        for (const rule of rules)
          for (const skip of rule.kind === 'never' ? (['freeze'] as const) : (['freeze', 'partial'] as const)) {
            const o: MambaLoopOptions = { maxNewTokens: 13, sampling, exit: { rule, skip } };
            const what = `B=${B} ${JSON.stringify(sampling)} ${rule.kind} ${skip}`;
            const Ns = B === 1 ? [4] : Object.keys(sampling).length === 0 ? [1, 4, 16] : [16];
            const host = await compare(lm, prompts, o, Ns, what);
            const seen = depth.get(rule.kind) ?? new Set();
            for (const e of host.exitBlocks.flatMap((x) => x.slice(1))) seen.add(e);
            depth.set(rule.kind, seen);
            if (Object.keys(sampling).length === 0) {
              // the host loop's greedy tokens are MambaLM.generate's (its own host sampler)
              const own = await lm.generate(prompts, { maxNewTokens: 13, exit: { rule, skip } });
              expect(host.tokens, what).toEqual(own.tokens);
              expect(host.exitBlocks, what).toEqual(own.exitBlocks);
            }
          }
    }
    // the rules really exit: fixed at block 1 only, the thresholds at early and late exits
    expect([...depth.get('never')!]).toEqual([3]);
    expect([...depth.get('fixed')!]).toEqual([1]);
    for (const k of ['maxProb', 'entropy']) {
      const s = depth.get(k)!;
      expect(s.has(3), k).toBe(true);
      expect(
        [0, 1, 2].some((e) => s.has(e)),
        k,
      ).toBe(true);
    }
  });

  it('stop tokens end rows as in the host loop, and ended rows are not streamed again', async () => {
    const prompts = promptsOf(8, cfg.vocabSize, 21);
    const stop = [3, 7, 11];
    const o: MambaLoopOptions = {
      maxNewTokens: 20,
      stop,
      sampling: { temperature: 1, seed: 2 },
      exit: { rule: { kind: 'fixed', block: 2 } },
    };
    const host = await mambaGenerateHostLoop(lm, prompts, o);
    const dev = await mambaGenerateOnDevice(lm, prompts, { ...o, stepsPerSubmit: 4 });
    expect(dev.tokens).toEqual(host.tokens);
    expect(dev.exitBlocks).toEqual(host.exitBlocks);
    const ended = host.tokens.filter((t) => stop.includes(t[t.length - 1]));
    expect(ended.length).toBeGreaterThan(0);
    expect(host.tokens.some((t) => t.length < 20)).toBe(true);
  });

  it('equals the host loop when the embedding and LM head run over row windows of the table', async () => {
    const big: MambaConfig = { ...cfg, vocabSize: 150 };
    const { tensors } = normalizeMambaTensors(big, randomMambaWeights(big, { seed: 13 }));
    const split = new MambaLM(gpu, big, tensors, { exits: [0, 1, 2], maxBindingBytes: 64 * big.hiddenSize * 4 });
    try {
      expect(split.windows.length).toBeGreaterThan(2);
      const prompts = promptsOf(8, big.vocabSize, 31);
      for (const rule of [{ kind: 'never' }, { kind: 'fixed', block: 2 }] as ExitRule[])
        await compare(
          split,
          prompts,
          { maxNewTokens: 9, sampling: { temperature: 1, seed: 4 }, exit: { rule } },
          [4],
          `windows ${rule.kind}`,
        );
    } finally {
      split.dispose();
    }
  });

  it.each(['mamba', 'ffn'] as const)(
    "%s exit classifiers: the 'classifier' rule on the device equals the host loop (tokens, exits, block and classifier states)",
    async (kind) => {
      const c: ExitClassifierConfig = {
        kind,
        exits: [0, 1, 2],
        hiddenSize: cfg.hiddenSize,
        inner: 16,
        stateSize: 4,
        rank: 1,
        convKernel: 3,
        hidden: 10,
      };
      const p = initClassifiers(c, 4);
      const rand = mulberry32(9);
      const arrays =
        p.kind === 'mamba' ? p.blocks.flatMap((b) => Object.values(b)) : p.ffns.flatMap((f) => Object.values(f));
      for (const a of arrays) if (a) for (let i = 0; i < a.length; i++) a[i] += (rand() - 0.5) * 0.6;
      const cls = new ExitClassifiers(gpu, c, classifiersToTensors(c, p));
      try {
        const seqs = promptsOf(4, cfg.vocabSize, 5).map((q, b) => [...q, ...promptsOf(1, cfg.vocabSize, 40 + b)[0], 3]);
        const sc = await mambaScore(lm, seqs, cls);
        // a row reaches full depth when every exit's gate is below t: t at the median of their maximum
        const gates = Array.from(sc.signals[0].gate, (g, i) =>
          Math.max(g, sc.signals[1].gate[i], sc.signals[2].gate[i]),
        ).sort((a, b) => a - b);
        const t = (gates[Math.floor(gates.length / 2)] + gates[Math.floor(gates.length / 2) + 1]) / 2;
        const prompts = promptsOf(8, cfg.vocabSize, 8);
        const seen = new Set<number>();
        for (const skip of ['freeze', 'partial'] as const)
          for (const sampling of [{}, { temperature: 0.9, seed: 6 }]) {
            const host = await compare(
              lm,
              prompts,
              {
                maxNewTokens: 11,
                sampling,
                classifiers: cls,
                exit: { rule: { kind: 'classifier', threshold: t }, skip },
              },
              [4],
              `${kind} classifier ${skip} ${JSON.stringify(sampling)}`,
            );
            for (const e of host.exitBlocks.flatMap((x) => x.slice(1))) seen.add(e);
          }
        expect(seen.has(3)).toBe(true);
        expect([0, 1, 2].some((e) => seen.has(e))).toBe(true);
      } finally {
        cls.dispose();
      }
    },
  );

  it('gateLogitThreshold: g ≥ it exactly when σ(g) ≥ t in float64', () => {
    const sig = (g: number) => 1 / (1 + Math.exp(-g));
    const rand = mulberry32(1);
    for (const t of [0, 1e-9, 0.1, 0.5, 0.73, 0.999, 1 - 1e-12, 1, rand(), rand()]) {
      const th = gateLogitThreshold(t);
      const below = new Float32Array([th]);
      const u = new Uint32Array(below.buffer);
      if (Number.isFinite(th)) {
        // the f32 just below fails, the threshold passes
        if (th > 0) u[0] -= 1;
        else if (th < 0) u[0] += 1;
        else u[0] = 0x80000001;
        expect(sig(th) >= t, `t=${t}`).toBe(true);
        expect(sig(below[0]) >= t, `t=${t}`).toBe(false);
      } else expect(th, `t=${t}`).toBe(Number.NEGATIVE_INFINITY);
    }
    expect(gateLogitThreshold(0)).toBe(Number.NEGATIVE_INFINITY);
  });

  it('refuses host-only rules and bad options with clear errors', async () => {
    const p = [[1, 2]];
    await expect(
      mambaGenerateOnDevice(lm, p, { maxNewTokens: 3, exit: { rule: { kind: 'classifier', threshold: 0.5 } } }),
    ).rejects.toThrow(/'classifier' needs the exit classifiers: pass \{ classifiers \}/);
    await expect(
      mambaGenerateOnDevice(lm, p, { maxNewTokens: 3, exit: { rule: { kind: 'custom', decide: () => [] } } }),
    ).rejects.toThrow(/'custom' runs on the host only.*mambaGenerateHostLoop/);
    await expect(mambaGenerateOnDevice(lm, p, { maxNewTokens: 3, stepsPerSubmit: 0 })).rejects.toThrow(
      /stepsPerSubmit must be an integer in \[1, 1024\], got 0/,
    );
    await expect(
      mambaGenerateOnDevice(lm, p, {
        maxNewTokens: 3,
        exit: { rule: { kind: 'fixed', block: 3 }, skip: 'drop' as 'freeze' },
      }),
    ).rejects.toThrow(/skip strategy 'drop' is not one of freeze, partial/);
    await expect(
      mambaGenerateOnDevice(lm, p, { maxNewTokens: 3, exit: { rule: { kind: 'fixed', block: 2.5 } } }),
    ).rejects.toThrow(/block 2.5 is not an exit block/);
    await expect(mambaGenerateOnDevice(lm, p, { maxNewTokens: 3, stop: [29] })).rejects.toThrow(
      /stop token 29 is outside \[0, 29\)/,
    );
    await expect(mambaGenerateOnDevice(lm, [], { maxNewTokens: 3 })).rejects.toThrow(/no prompts/);
  });
});

describe('mambaGenerateOnDevice on the shipped Austen checkpoint', () => {
  it('equals the host loop at batch 8: greedy and sampled, fixed and maxProb exits (freeze; maxProb also partial), the shipped exit classifiers, N = 4 and 16', async () => {
    const dir = path.resolve(import.meta.dirname, '../../../checkpoints/austen-mamba');
    const { model } = await loadMambaLM(gpu, dir);
    try {
      const text = 'It is a truth universally acknowledged, that a single man in possession of a good fortune';
      const tok = CharTokenizer.load(path.join(dir, 'char-tokenizer.json'));
      const ids = Array.from(tok.encode(text));
      const rand = mulberry32(4);
      const prompts = Array.from({ length: 8 }, () => {
        const at = Math.floor(rand() * 40);
        return ids.slice(at, at + 12 + Math.floor(rand() * 20));
      });
      let early = 0;
      for (const sampling of [{}, { temperature: 0.7, topP: 0.9, seed: 9 }])
        for (const rule of [
          { kind: 'fixed', block: 3 },
          { kind: 'maxProb', threshold: 0.55 },
        ] as ExitRule[]) {
          const host = await compare(
            model,
            prompts,
            { maxNewTokens: 16, sampling, exit: { rule } },
            [4, 16],
            `austen ${JSON.stringify(sampling)} ${rule.kind}`,
          );
          if (rule.kind === 'maxProb') early += host.exitBlocks.flatMap((x) => x.slice(1)).filter((e) => e < 5).length;
        }
      // the shipped DYNAMAX Mamba exit classifiers
      const r = readExitClassifiers(readFileSync(path.join(dir, 'exit-classifier-mamba.safetensors')));
      const cls = new ExitClassifiers(gpu, r.config, r.tensors);
      try {
        const host = await compare(
          model,
          prompts,
          { maxNewTokens: 16, classifiers: cls, exit: { rule: { kind: 'classifier', threshold: 0.97 } } },
          [16],
          'austen greedy classifier',
        );
        expect(host.exitBlocks.flatMap((x) => x.slice(1)).some((e) => e < 5)).toBe(true);
      } finally {
        cls.dispose();
      }
      // partial: the skipped blocks' state advanced from the exit's hidden state
      await compare(
        model,
        prompts,
        { maxNewTokens: 16, exit: { rule: { kind: 'maxProb', threshold: 0.55 }, skip: 'partial' } },
        [16],
        'austen greedy maxProb partial',
      );
      expect(early).toBeGreaterThan(0);
    } finally {
      model.dispose();
    }
  });
});
