// `offramp demo`: a real early-exit run on the GPU (or the CPU device) that prints which adapter ran it,
// what the program compiled to, and where each sample left, in host and device mode.
import {
  type CnnClassifierConfig,
  createDevice,
  buildModel,
  maxProbThreshold,
  neverExit,
  randomWeights,
  Runner,
  randomArray,
  mulberry32,
} from '@offramp/core';
import pc from 'picocolors';

export interface DemoOptions {
  backend?: 'gpu' | 'cpu' | 'auto';
  batch?: number;
  json?: boolean;
}

export async function demo(opts: DemoOptions = {}): Promise<Record<string, unknown>> {
  const device = await createDevice({ backend: opts.backend ?? 'auto' });
  const log = (s: string) => (opts.json ? process.stderr.write(`${s}\n`) : console.log(s));
  log(`${pc.bold('device')}  ${device.describe()}`);
  const cfg: CnnClassifierConfig = {
    architecture: 'cnn_classifier',
    image_size: 28,
    in_channels: 1,
    stem_channels: 8,
    channels: [16, 32, 32],
    strides: [1, 2, 2],
    num_classes: 10,
    exits: { blocks: [0, 1, 2], head: 'linear' },
  };
  const n = opts.batch ?? 32;
  const model = buildModel(device, cfg, randomWeights(cfg, 1));
  const runner = new Runner(device, model, { maxBatch: n });
  const rand = mulberry32(2);
  const input = { features: Array.from({ length: n }, () => randomArray(784, rand, 1).map(Math.abs)) };
  log(`${pc.bold('model')}   28×28 CNN with exits after blocks ${cfg.exits.blocks.join(', ')} (random weights, seed 1), batch ${n}`);
  const prog = runner.program(1);
  log(`${pc.bold('program')} ${prog.ops.length} dispatches, scratch ${(prog.plan.scratchBytes / 1024).toFixed(0)} KiB after liveness reuse (${(prog.plan.scratchBytesNaive / 1024).toFixed(0)} KiB without)`);
  const full = await runner.run(input, { policy: neverExit(), trace: true });
  const p0 = full.samples.map((s) => s.trace!.maxProb[0]).sort((a, b) => a - b);
  const policy = maxProbThreshold({ threshold: p0[Math.floor(n / 2)] });
  const host = await runner.run(input, { policy, mode: 'host' });
  const dev = device.kind === 'gpu' ? await runner.run(input, { policy, mode: 'device' }) : host;
  const same = host.samples.every((s, i) => s.exitIndex === dev.samples[i].exitIndex);
  for (const [name, r] of [['host', host], ['device', dev]] as const) {
    log(
      `${pc.bold(name.padEnd(7))} exits per head [${r.summary.exitCounts.join(', ')}], compute ${((100 * r.summary.flops) / r.summary.fullDepthFlops).toFixed(1)}% of full depth, ${r.summary.readbacks} readback(s), ${r.summary.wallMs.toFixed(1)} ms`,
    );
  }
  log(`host and device mode agree on every exit: ${same ? pc.green('yes') : pc.red('NO')}`);
  const out = { adapter: device.describe(), dispatches: prog.ops.length, host: host.summary, device: dev.summary, agree: same };
  runner.dispose();
  model.dispose();
  device.destroy();
  if (!same) throw new Error('host and device mode disagree');
  return out;
}
