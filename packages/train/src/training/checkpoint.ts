// Resumable training state in a work directory: state.json (position in the schedule, curves, elapsed time,
// a fingerprint of the run's settings) and safetensors files for the parameters (model and training-only),
// the optimizer moments and any cached tensors. Every file is written to a temporary name and renamed.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSafetensors, writeSafetensors } from '@offramp/core';

export interface CurvePoint {
  step: number;
  stage: string;
  epoch: number;
  /** Mean training loss since the previous point. */
  loss: number;
  /** Training accuracy of the final exit since the previous point. */
  acc: number;
  lr: number;
  seconds: number;
}

export interface EvalPoint {
  step: number;
  stage: string;
  epoch: number;
  /** Accuracy of each exit on the evaluation split. */
  accuracy: number[];
  seconds: number;
}

export interface TrainState {
  /** Fingerprint of the settings that must not change on resume (config, recipe, data, seed, batch, schedule). */
  fingerprint: string;
  stage: number;
  epoch: number;
  /** Batches of `epoch` already done. */
  stepInEpoch: number;
  /** Optimizer steps over the whole run. */
  step: number;
  /** Optimizer steps within the current stage (the learning-rate schedule restarts per stage). */
  stageStep: number;
  optimizerT: number;
  seconds: number;
  curves: CurvePoint[];
  evals: EvalPoint[];
  done: boolean;
}

export type NamedTensors = Map<string, { shape: number[]; data: Float32Array }>;

function atomicWrite(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function saveTensors(path: string, tensors: NamedTensors): void {
  const map = new Map([...tensors].map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: v.data }]));
  atomicWrite(path, writeSafetensors(map));
}

export function loadTensors(path: string): NamedTensors {
  const file = parseSafetensors(readFileSync(path));
  const out: NamedTensors = new Map();
  for (const [k, t] of file.tensors) out.set(k, { shape: t.shape, data: Float32Array.from(t.data) });
  return out;
}

export const STATE_FILE = 'state.json';

/** Saves the state and tensor groups ('params', 'optimizer', ...) into `dir`; state.json is written last. */
export function saveCheckpoint(dir: string, state: TrainState, groups: Record<string, NamedTensors>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, tensors] of Object.entries(groups)) saveTensors(join(dir, `${name}.safetensors`), tensors);
  atomicWrite(join(dir, STATE_FILE), `${JSON.stringify(state)}\n`);
}

export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, STATE_FILE));
}

export function loadCheckpoint(
  dir: string,
  groups: string[],
): { state: TrainState; tensors: Record<string, NamedTensors> } {
  const state = JSON.parse(readFileSync(join(dir, STATE_FILE), 'utf8')) as TrainState;
  const tensors: Record<string, NamedTensors> = {};
  for (const g of groups) {
    const p = join(dir, `${g}.safetensors`);
    tensors[g] = existsSync(p) ? loadTensors(p) : new Map();
  }
  return { state, tensors };
}

export function clearCheckpoint(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
