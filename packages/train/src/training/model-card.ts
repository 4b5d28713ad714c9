// MODEL_CARD.md for a trained checkpoint: what the model is, the data and split, the recipe and seed, how long
// training took on which machine, per-exit accuracy on the held-out split and, for gated models, what the
// exit rules give (accuracy against compute).
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { type ModelConfig, modelTensorSpec } from '@offramp/core';
import type { PolicyPoint } from './evaluate.js';
import { formatDuration } from './progress.js';

export interface ModelCardInfo {
  name: string;
  summary: string;
  config: ModelConfig;
  parameters: number;
  dataset: string;
  split: string;
  preprocessing?: string;
  recipe: string;
  recipeNotes?: string;
  seed: number;
  command: string;
  seconds: number;
  backend: string;
  accuracy: number[];
  exitCosts: number[];
  policies?: PolicyPoint[];
  training: string;
  notes?: string[];
  files: string[];
}

export function countParameters(config: ModelConfig): number {
  let n = 0;
  for (const s of modelTensorSpec(config).values()) n += s.reduce((a, b) => a * b, 1);
  return n;
}

export function machineDescription(): string {
  const c = cpus();
  return `${c.length} CPU core${c.length === 1 ? '' : 's'} (${c[0]?.model.trim() ?? 'unknown CPU'}), no GPU`;
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

export function writeModelCard(dir: string, info: ModelCardInfo, machine = machineDescription()): void {
  const e = info.config.exits;
  const lines: string[] = [];
  lines.push(`# ${info.name}`, '', info.summary, '');
  lines.push('## Model', '');
  lines.push(`- Architecture: \`${info.config.architecture}\`, ${info.parameters.toLocaleString('en-US')} parameters.`);
  lines.push(
    `- Exits after blocks ${e.blocks.join(', ')} (0-based), head \`${e.head}\`${e.gate ? `, gate/λ heads (hidden ${e.gate_hidden ?? 64})` : ''}.`,
  );
  lines.push(`- Full configuration: \`config.json\` (\`model\`; training details in \`meta\`).`, '');
  lines.push('## Data', '');
  lines.push(`- Dataset: ${info.dataset}`, `- Split: ${info.split}`);
  if (info.preprocessing) lines.push(`- Preprocessing: ${info.preprocessing}`);
  lines.push('');
  lines.push('## Training', '');
  lines.push(`- Recipe: \`${info.recipe}\`${info.recipeNotes ? `: ${info.recipeNotes}` : ''}`);
  lines.push(`- ${info.training}`);
  lines.push(`- Seed: ${info.seed}`);
  lines.push(`- Reproduce: \`${info.command}\``);
  lines.push(
    `- Training time: ${formatDuration(info.seconds)} on ${machine}, tfjs ${info.backend} backend${info.backend === 'webgpu' ? ' (Dawn on Mesa lavapipe, a software Vulkan driver)' : ''}; the machine was shared with other work, so times vary.`,
  );
  lines.push('');
  lines.push('## Held-out accuracy per exit', '');
  lines.push('| exit | after block | compute fraction | accuracy |', '|---|---|---|---|');
  info.accuracy.forEach((a, j) => {
    lines.push(`| ${j} | ${e.blocks[j]} | ${info.exitCosts[j].toFixed(3)} | ${pct(a)} |`);
  });
  lines.push('');
  if (info.policies?.length) {
    lines.push('## Exit rules on the held-out split', '');
    lines.push('| rule | accuracy | mean compute fraction | share leaving at each exit |', '|---|---|---|---|');
    for (const p of info.policies)
      lines.push(
        `| ${p.policy} | ${pct(p.accuracy)} | ${p.cost.toFixed(3)} | ${p.exitShare.map((s) => `${(100 * s).toFixed(1)}%`).join(' / ')} |`,
      );
    lines.push('');
    lines.push('Compute fractions count the FLOPs of the stem, the blocks run and the exit heads passed.', '');
  }
  if (info.notes?.length) {
    lines.push('## Notes', '');
    for (const n of info.notes) lines.push(`- ${n}`);
    lines.push('');
  }
  lines.push('## Files', '');
  for (const f of info.files) lines.push(`- \`${f}\``);
  lines.push('');
  writeFileSync(join(dir, 'MODEL_CARD.md'), lines.join('\n'));
}
