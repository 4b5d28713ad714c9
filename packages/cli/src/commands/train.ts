// `offramp train`: front end to the training programs of an Offramp checkout (the `pnpm train:NAME`
// scripts of @offramp/train and @offramp/mamba): checks the recipe, the data and the options, then runs it.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { RuntimeError, UsageError } from '../errors.js';
import type { Logger } from '../util/log.js';
import { didYouMean } from '../util/suggest.js';
import { workspaceRoot } from '../util/workspace.js';

export interface TrainRecipe {
  name: string;
  dataset: string;
  script: string;
  what: string;
  /** Options the program takes (others are refused). */
  accepts: readonly (keyof TrainOptions)[];
}

const COMMON = [
  'out',
  'epochs',
  'batch',
  'lr',
  'seed',
  'limit',
  'maxSteps',
  'resume',
  'exitRecipe',
  'backend',
  'workDir',
] as const;

export const TRAIN_RECIPES: readonly TrainRecipe[] = [
  {
    name: 'fashion-cnn',
    dataset: 'fashion-mnist',
    script: 'packages/train/scripts/train-fashion-cnn.ts',
    what: '28×28 CNN with an exit after each of 3 blocks',
    accepts: COMMON,
  },
  {
    name: 'imdb-encoder',
    dataset: 'imdb',
    script: 'packages/train/scripts/train-imdb-encoder.ts',
    what: 'encoder classifier with an exit after every block',
    accepts: COMMON,
  },
  {
    name: 'imdb-ponder',
    dataset: 'imdb',
    script: 'packages/train/scripts/train-imdb-heads.ts',
    what: 'PonderNet λ heads on the IMDB encoder',
    accepts: COMMON,
  },
  {
    name: 'imdb-gates',
    dataset: 'imdb',
    script: 'packages/train/scripts/train-imdb-heads.ts',
    what: 'learned exit gates on the IMDB encoder',
    accepts: COMMON,
  },
  {
    name: 'imdb-two-stage',
    dataset: 'imdb',
    script: 'packages/train/scripts/train-imdb-heads.ts',
    what: "DeeBERT's second stage: exit heads on the frozen IMDB encoder",
    accepts: COMMON,
  },
  {
    name: 'imdb-self-distill',
    dataset: 'imdb',
    script: 'packages/train/scripts/train-imdb-heads.ts',
    what: 'exit heads distilled from the final exit of the frozen IMDB encoder',
    accepts: COMMON,
  },
  {
    name: 'imdb-dual-head',
    dataset: 'imdb',
    script: 'packages/train/scripts/train-imdb-heads.ts',
    what: 'dual-head distillation of the exit heads of the frozen IMDB encoder',
    accepts: COMMON,
  },
  {
    name: 'austen-mamba',
    dataset: 'austen',
    script: 'packages/mamba/scripts/train-austen.ts',
    what: 'character-level Mamba LM with exits',
    accepts: ['out', 'seed', 'minutes'],
  },
];

export interface TrainOptions {
  data?: string;
  out?: string;
  epochs?: number;
  batch?: number;
  lr?: number;
  seed?: number;
  limit?: number;
  maxSteps?: number;
  resume?: boolean;
  exitRecipe?: string;
  backend?: string;
  workDir?: string;
  minutes?: number;
}

const FLAG: Record<string, string> = { maxSteps: 'max-steps', exitRecipe: 'recipe', workDir: 'work-dir' };

/** The arguments passed to the training program. */
export function trainArgs(recipe: TrainRecipe, o: TrainOptions): string[] {
  const args: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || k === 'data') continue;
    if (!(recipe.accepts as readonly string[]).includes(k)) {
      throw new UsageError(
        `recipe '${recipe.name}' does not take --${k.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)}; it takes ${recipe.accepts.map((a) => `--${a.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)}`).join(', ')}`,
      );
    }
    const flag = `--${FLAG[k] ?? k}`;
    if (typeof v === 'boolean') {
      if (v) args.push(flag);
    } else args.push(flag, k === 'out' || k === 'workDir' ? resolve(String(v)) : String(v));
  }
  return args;
}

export async function trainCommand(name: string | undefined, o: TrainOptions & { list?: boolean }, log: Logger) {
  if (o.list || !name) {
    for (const r of TRAIN_RECIPES) log.info(`${log.c.bold(r.name.padEnd(18))} ${r.what} (data: ${r.dataset})`);
    if (!name) {
      const out = { command: 'train', recipes: TRAIN_RECIPES.map((r) => r.name) };
      log.result(out);
      return out;
    }
  }
  const recipe = TRAIN_RECIPES.find((r) => r.name === name);
  if (!recipe)
    throw new UsageError(
      `unknown recipe '${name}'${didYouMean(
        name!,
        TRAIN_RECIPES.map((r) => r.name),
      )}: recipes are ${TRAIN_RECIPES.map((r) => r.name).join(', ')}`,
    );
  if (o.data && o.data !== recipe.dataset) {
    throw new UsageError(
      `recipe '${recipe.name}' trains on ${recipe.dataset}; training it on '${o.data}' is not available yet (the training programs read their own dataset)`,
    );
  }
  const args = trainArgs(recipe, o);
  const root = workspaceRoot();
  if (!root)
    throw new RuntimeError('offramp train runs the training programs of an Offramp checkout; run it inside one');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const script = `train:${recipe.name}`;
  if (!pkg.scripts?.[script] || !existsSync(join(root, recipe.script))) {
    throw new RuntimeError(
      `recipe '${recipe.name}' is not available yet in this checkout (${recipe.script} is missing)`,
    );
  }
  log.info(log.c.bold(`pnpm ${script} ${args.join(' ')}`));
  await new Promise<void>((res, rej) => {
    const child = spawn('pnpm', [script, ...args], {
      cwd: root,
      stdio: ['inherit', log.json ? 'pipe' : 'inherit', 'inherit'],
    });
    child.stdout?.pipe(process.stderr);
    child.on('error', (e) => rej(new RuntimeError(`could not start pnpm ${script}: ${e.message}`)));
    child.on('close', (code) =>
      code === 0 ? res() : rej(new RuntimeError(`pnpm ${script} exited with code ${code}`)),
    );
  });
  const out = {
    command: 'train',
    recipe: recipe.name,
    args,
    out: o.out ? resolve(o.out) : join(root, 'checkpoints', recipe.name),
  };
  log.result(out);
  return out;
}
