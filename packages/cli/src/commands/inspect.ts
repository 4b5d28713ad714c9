// `offramp inspect`: a model directory's architecture, exits, parameters, FLOPs per block (from the
// compiled program's accounting) and tensors, after validating its files.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Table from 'cli-table3';
import { RuntimeError } from '../errors.js';
import { loadClassifier, modelKind, resolveModelDir } from '../model.js';
import { bytes, count, flops, pct } from '../util/format.js';
import type { Logger } from '../util/log.js';

export interface InspectOptions {
  seqLen?: number;
  tensors?: boolean;
}

interface BlockRow {
  block: number;
  flops: number;
  cumulative: number;
  exit: number | null;
  exitHeadFlops: number | null;
  costFraction: number | null;
}

export async function inspectCommand(spec: string, o: InspectOptions, log: Logger) {
  const dir = resolveModelDir(spec);
  const kind = modelKind(dir);
  // regular files only; an entry that cannot be stat'ed (a link loop, a dangling link) is left to the loader,
  // whose message names it
  const files = readdirSync(dir).flatMap((f) => {
    try {
      const st = statSync(join(dir, f));
      return st.isFile() ? [{ file: f, bytes: st.size }] : [];
    } catch {
      return [];
    }
  });
  if (kind === 'classifier') return inspectClassifier(spec, o, log, files);
  const { lmKindOf } = await import('./generate.js');
  return lmKindOf(dir) === 'decoder' ? inspectDecoder(dir, o, log, files) : inspectMamba(dir, o, log, files);
}

async function inspectDecoder(dir: string, o: InspectOptions, log: Logger, files: { file: string; bytes: number }[]) {
  const c = log.c;
  const { loadDecoderDir } = await import('@offramp/core/node');
  let loaded: Awaited<ReturnType<typeof loadDecoderDir>>;
  try {
    loaded = await loadDecoderDir(dir, { onWarning: (m) => log.warn(m) });
  } catch (e) {
    throw new RuntimeError(`${dir}: not a valid model directory: ${(e as Error).message}`, { cause: e });
  }
  const m = loaded.config;
  const { hiddenSize: d, intermediateSize: I, numHeads: H, numKvHeads: Hkv, headDim: hd, vocabSize: V } = m;
  // per token (matmuls, 2 FLOPs per multiply-add): q, k, v, o projections, SwiGLU MLP; attention itself grows
  // with the context (2·2·H·hd per cached position), counted separately
  const perBlock = 2 * d * (H * hd) + 2 * 2 * d * (Hkv * hd) + 2 * (H * hd) * d + 3 * 2 * d * I;
  const attentionPerPosition = 4 * H * hd;
  const head = 2 * d * V;
  const tensors = [...loaded.tensors].map(([name, t]) => ({
    name,
    shape: [...t.shape],
    dtype: loaded.dtypes.get(name) ?? 'F32',
    parameters: t.shape.reduce((a, b) => a * b, 1),
  }));
  const parameters = tensors.reduce((a, t) => a + t.parameters, 0);
  log.info(`${c.bold('model')}        ${dir}`);
  log.info(
    `${c.bold('architecture')} Llama-style decoder: ${m.numLayers} blocks, d=${d}, ${H} heads / ${Hkv} key-value heads of ${hd}, SwiGLU ${I}, vocabulary ${V}, RoPE θ=${m.ropeTheta}${m.ropeScaling ? ' (llama3 scaling)' : ''}, context ${m.maxPositionEmbeddings}${m.tieWordEmbeddings ? ', head tied to the embedding' : ''}`,
  );
  log.info(`${c.bold('exits')}        after blocks ${m.exits.join(', ')} (model.norm + the LM head unless own ones)`);
  log.info(`${c.bold('parameters')}   ${count(parameters)} in ${tensors.length} tensors`);
  log.info(
    `${c.bold('FLOPs')}        ≈ ${flops(perBlock)} per token per block (+ ${attentionPerPosition} per cached position), ${flops(head)} per exit head (analytic count)`,
  );
  printTensors(tensors, o, log);
  log.info(`${c.bold('files')}        ${files.map((x) => `${x.file} (${bytes(x.bytes)})`).join(', ')}`);
  log.info(
    loaded.tokenizerPath
      ? c.green(`valid: config.json and the weights agree; tokenizer ${loaded.tokenizerPath.split(/[\\/]/).pop()}`)
      : c.yellow('valid weights, but no tokenizer file: generate needs tokenizer.json or a char tokenizer'),
  );
  const out = {
    command: 'inspect',
    kind: 'decoder-lm',
    dir,
    config: m,
    exitBlocks: m.exits,
    numBlocks: m.numLayers,
    parameters,
    flops: { perBlock, attentionPerPosition, head, analytic: true },
    tensors,
    files,
    valid: true,
    tokenizer: loaded.tokenizerPath ? loaded.tokenizerPath.split(/[\\/]/).pop() : null,
  };
  log.result(out);
  return out;
}

async function inspectClassifier(
  spec: string,
  o: InspectOptions,
  log: Logger,
  files: { file: string; bytes: number }[],
) {
  const c = log.c;
  const loaded = await loadClassifier(spec);
  const core = await import('@offramp/core');
  const cfg = loaded.envelope.model;
  const device = new core.CpuDevice();
  const model = core.buildModel(device, cfg, loaded.tensors);
  const T = cfg.architecture === 'encoder_classifier' ? Math.min(o.seqLen ?? 128, cfg.max_position) : 1;
  const runner = new core.Runner(device, model, { maxBatch: 1 });
  try {
    const prog = runner.program(T);
    const f = prog.flops;
    const full = f.atExit[f.atExit.length - 1];
    const rows: BlockRow[] = [];
    let cum = f.stem;
    for (let b = 0; b < model.numBlocks; b++) {
      cum += f.blocks[b];
      const e = model.exitBlocks.indexOf(b);
      if (e >= 0) cum += f.heads[e];
      rows.push({
        block: b,
        flops: f.blocks[b],
        cumulative: cum,
        exit: e >= 0 ? e : null,
        exitHeadFlops: e >= 0 ? f.heads[e] : null,
        costFraction: e >= 0 ? f.atExit[e] / full : null,
      });
    }
    const tensors = [...loaded.tensors].map(([name, t]) => ({
      name,
      shape: [...t.shape],
      dtype: t.dtype,
      parameters: t.shape.reduce((a, b) => a * b, 1),
    }));
    const meta = loaded.envelope.meta ?? {};
    log.info(`${c.bold('model')}        ${loaded.dir}`);
    log.info(`${c.bold('architecture')} ${cfg.architecture}`);
    log.info(`${c.bold('config')}       ${describeConfig(cfg as unknown as Record<string, unknown>)}`);
    log.info(
      `${c.bold('exits')}        after blocks ${model.exitBlocks.join(', ')} (head '${cfg.exits.head}'${cfg.exits.gate ? ', with gate heads' : ''})`,
    );
    log.info(`${c.bold('parameters')}   ${count(loaded.parameters)} in ${loaded.tensors.size} tensors`);
    log.info(
      `${c.bold('FLOPs')}        ${flops(full)} per sample at full depth${T > 1 ? ` (sequence length ${T})` : ''}; stem ${flops(f.stem)}`,
    );
    if (typeof meta.dataset === 'string') log.info(`${c.bold('trained on')}   ${meta.dataset}`);
    const t = new Table({
      head: ['block', 'FLOPs', 'cumulative', 'exit', 'exit head', 'compute at exit'].map((h) => c.bold(h)),
      style: { head: [], border: [] },
      colAligns: ['right', 'right', 'right', 'center', 'right', 'right'],
    });
    for (const r of rows)
      t.push([
        r.block,
        flops(r.flops),
        flops(r.cumulative),
        r.exit === null ? '' : `#${r.exit}`,
        r.exitHeadFlops === null ? '' : flops(r.exitHeadFlops),
        r.costFraction === null ? '' : pct(r.costFraction, 1),
      ]);
    log.info(t.toString());
    log.info(
      `${c.bold('program')}      ${prog.ops.length} dispatches, scratch ${bytes(prog.plan.scratchBytes)} after liveness reuse (${bytes(prog.plan.scratchBytesNaive)} without) at batch 1`,
    );
    printTensors(tensors, o, log);
    log.info(`${c.bold('files')}        ${files.map((x) => `${x.file} (${bytes(x.bytes)})`).join(', ')}`);
    log.info(c.green('valid: config.json and the weights agree (every tensor present, right shape, float dtype)'));
    const out = {
      command: 'inspect',
      kind: 'classifier',
      dir: loaded.dir,
      architecture: cfg.architecture,
      config: cfg,
      meta,
      exitBlocks: [...model.exitBlocks],
      numBlocks: model.numBlocks,
      parameters: loaded.parameters,
      sequenceLength: T,
      flops: {
        stem: f.stem,
        blocks: f.blocks,
        heads: f.heads,
        atExit: f.atExit,
        full,
        costFractions: f.atExit.map((x) => x / full),
      },
      blocks: rows,
      tensors,
      files,
      valid: true,
    };
    log.result(out);
    return out;
  } finally {
    runner.dispose();
    model.dispose();
    device.destroy();
  }
}

function describeConfig(cfg: Record<string, unknown>): string {
  return Object.entries(cfg)
    .filter(([k]) => k !== 'architecture' && k !== 'exits')
    .map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(',')}]` : v}`)
    .join(', ');
}

function printTensors(
  tensors: { name: string; shape: number[]; dtype: string; parameters: number }[],
  o: InspectOptions,
  log: Logger,
): void {
  const c = log.c;
  const show = o.tensors === false ? [] : tensors;
  if (!show.length) return;
  const t = new Table({
    head: ['tensor', 'shape', 'dtype', 'parameters'].map((h) => c.bold(h)),
    style: { head: [], border: [] },
    colAligns: ['left', 'left', 'left', 'right'],
  });
  for (const x of show) t.push([x.name, `[${x.shape.join(', ')}]`, x.dtype, count(x.parameters)]);
  log.info(t.toString());
}

async function inspectMamba(dir: string, o: InspectOptions, log: Logger, files: { file: string; bytes: number }[]) {
  const c = log.c;
  const { loadMambaDir } = await import('@offramp/mamba/node');
  let loaded: Awaited<ReturnType<typeof loadMambaDir>>;
  try {
    loaded = await loadMambaDir(dir);
  } catch (e) {
    throw new RuntimeError(`${dir}: not a valid model directory: ${(e as Error).message}`, { cause: e });
  }
  const m = loaded.config;
  const d = m.hiddenSize;
  const D = m.intermediateSize;
  const N = m.stateSize;
  const R = m.timeStepRank;
  const K = m.convKernel;
  // per token: in_proj, depthwise conv, x_proj, dt_proj, selective scan (≈ 7·D·N), gating, out_proj, RMSNorm
  const perBlock = 2 * d * 2 * D + 2 * D * K + 2 * D * (R + 2 * N) + 2 * R * D + 7 * D * N + 4 * D + 2 * D * d + 4 * d;
  const head = 2 * d * m.vocabSize + 4 * d;
  const exits = m.exits ?? [];
  const tensors = [...loaded.tensors].map(([name, t]) => ({
    name,
    shape: [...t.shape],
    dtype: 'F32',
    parameters: t.shape.reduce((a, b) => a * b, 1),
  }));
  const parameters = tensors.reduce((a, t) => a + t.parameters, 0);
  log.info(`${c.bold('model')}        ${dir}`);
  log.info(
    `${c.bold('architecture')} Mamba-1 language model: ${m.numLayers} blocks, d=${d}, D=${D}, N=${N}, R=${R}, K=${K}, vocabulary ${m.vocabSize}${loaded.tiedHead ? ', head tied to the embedding' : ''}`,
  );
  log.info(
    `${c.bold('exits')}        ${exits.length ? `after blocks ${exits.join(', ')} (norm_f + the shared LM head)` : 'none declared (generate uses the latter half of the blocks)'}`,
  );
  log.info(`${c.bold('parameters')}   ${count(parameters)} in ${tensors.length} tensors`);
  log.info(
    `${c.bold('FLOPs')}        ≈ ${flops(perBlock)} per token per block, ${flops(head)} per exit head, ${flops(m.numLayers * perBlock + head)} per token at full depth (analytic count)`,
  );
  printTensors(tensors, o, log);
  log.info(`${c.bold('files')}        ${files.map((x) => `${x.file} (${bytes(x.bytes)})`).join(', ')}`);
  const tok = files.find((f) => /tokenizer.*\.json$/.test(f.file));
  log.info(
    tok
      ? c.green(`valid: config.json and the weights agree; tokenizer ${tok.file}`)
      : c.yellow('valid weights, but no tokenizer file: generate needs char-tokenizer.json or tokenizer.json'),
  );
  const out = {
    command: 'inspect',
    kind: 'mamba-lm',
    dir,
    config: m,
    exitBlocks: exits,
    numBlocks: m.numLayers,
    parameters,
    flops: { perBlock, head, full: m.numLayers * perBlock + head, analytic: true },
    tensors,
    files,
    valid: true,
    tokenizer: tok?.file ?? null,
  };
  log.result(out);
  return out;
}
