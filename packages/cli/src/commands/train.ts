// `offramp train`: front end to the training programs of an Offramp checkout (the `pnpm train:NAME`
// scripts of @offramp/train and @offramp/mamba): checks the recipe, the data and the options, then runs it.
// `offramp train --data FILE` trains on the user's own JSONL / CSV file (the `custom` recipe); paths are
// resolved here, from the caller's folder, before the program starts in the checkout.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { FILE_LIMITS, readBoundedTextSync } from '@offramp/core/node';
import { checkDataSpec } from '../data.js';
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

export const CUSTOM_RECIPE = 'custom';

export const TRAIN_RECIPES: readonly TrainRecipe[] = [
  {
    name: CUSTOM_RECIPE,
    dataset: 'your --data FILE',
    script: 'packages/train/scripts/train-custom.ts',
    what: 'your own .jsonl / .csv rows: encoder for texts, CNN or MLP for images',
    accepts: [...COMMON, 'test', 'name', 'minutes', 'arch', 'seqLen', 'vocab'],
  },
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
  test?: string;
  name?: string;
  arch?: string;
  seqLen?: number;
  vocab?: number;
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

const FLAG: Record<string, string> = {
  maxSteps: 'max-steps',
  exitRecipe: 'recipe',
  workDir: 'work-dir',
  seqLen: 'seq-len',
};
const PATHS = new Set(['data', 'test', 'out', 'workDir']);
const flagOf = (k: string) => `--${FLAG[k] ?? k.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)}`;

/**
 * The arguments passed to the training program. Paths are made absolute from `cwd` (the caller's folder: the
 * program runs in the checkout). The custom recipe gets --data and an explicit --out (default ./NAME, NAME the
 * data file's name + '-model').
 */
export function trainArgs(recipe: TrainRecipe, o: TrainOptions, cwd = process.cwd()): string[] {
  const args: string[] = [];
  const custom = recipe.name === CUSTOM_RECIPE;
  const opts: Record<string, unknown> = { ...o };
  if (custom && opts.data !== undefined && opts.out === undefined)
    opts.out = String(opts.name ?? `${basename(String(opts.data), extname(String(opts.data)))}-model`);
  for (const [k, v] of Object.entries(opts)) {
    if (v === undefined || (k === 'data' && !custom)) continue;
    if (k !== 'data' && !(recipe.accepts as readonly string[]).includes(k)) {
      throw new UsageError(
        `recipe '${recipe.name}' does not take ${flagOf(k)}; it takes ${recipe.accepts.map(flagOf).join(', ')}`,
      );
    }
    const flag = flagOf(k);
    if (typeof v === 'boolean') {
      if (v) args.push(flag);
    } else args.push(flag, PATHS.has(k) ? resolve(cwd, String(v)) : String(v));
  }
  return args;
}

function isDataFile(spec: string): boolean {
  return ['.jsonl', '.ndjson', '.csv', '.json'].includes(extname(spec).toLowerCase()) || spec.includes('/');
}

/** The command line, for the model card's "Reproduce" (the user's own words, quoted where needed, without the
 * options that only change what is printed). */
function commandLine(argv: readonly string[]): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  const output = new Set(['--json', '-q', '--quiet', '--verbose', '--no-color']);
  return ['offramp', ...argv.filter((a) => !output.has(a)).map(q)].join(' ');
}

export async function trainCommand(
  name: string | undefined,
  o: TrainOptions & { list?: boolean },
  log: Logger,
  argv: readonly string[] = process.argv.slice(2),
) {
  // `offramp train --data FILE`: the user's own data
  if (!name && !o.list && o.data && isDataFile(o.data)) name = CUSTOM_RECIPE;
  if (!name && !o.list && o.data) {
    const trains = TRAIN_RECIPES.filter((r) => r.dataset === o.data).map((r) => r.name);
    throw new UsageError(
      trains.length
        ? `--data ${o.data} is a dataset of the shipped recipes; name one: offramp train ${trains[0]} (recipes on ${o.data}: ${trains.join(', ')})`
        : `--data '${o.data}' is neither a .jsonl / .csv file nor a dataset of a recipe; give your own file (offramp train --data train.jsonl) or a recipe (offramp train --list)`,
    );
  }
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
  const custom = recipe.name === CUSTOM_RECIPE;
  if (custom) {
    if (!o.data)
      throw new UsageError(
        'the custom recipe trains on your own data: give --data FILE (.jsonl or .csv rows of {text, label} or {image, label})',
      );
    for (const [flag, f] of [
      ['--data', o.data],
      ['--test', o.test],
    ] as const) {
      if (f === undefined) continue;
      if (!isDataFile(f))
        throw new UsageError(`${flag} '${f}': expected a .jsonl or .csv file of {text, label} or {image, label} rows`);
      checkDataSpec(f);
    }
  } else if (o.data && o.data !== recipe.dataset) {
    throw new UsageError(
      isDataFile(o.data)
        ? `recipe '${recipe.name}' trains on ${recipe.dataset}; to train on your own file, leave the recipe out: offramp train --data ${o.data}`
        : `recipe '${recipe.name}' trains on ${recipe.dataset}, not '${o.data}'; to train on your own data: offramp train --data FILE`,
    );
  }
  const args = trainArgs(recipe, o);
  const root = workspaceRoot();
  if (!root)
    throw new RuntimeError('offramp train runs the training programs of an Offramp checkout; run it inside one');
  const pkg = JSON.parse(
    readBoundedTextSync(join(root, 'package.json'), { maxBytes: FILE_LIMITS.json, what: 'the workspace package.json' }),
  ) as { scripts?: Record<string, string> };
  const script = `train:${recipe.name}`;
  if (!pkg.scripts?.[script] || !existsSync(join(root, recipe.script))) {
    throw new RuntimeError(
      `recipe '${recipe.name}' is not available yet in this checkout (${recipe.script} is missing)`,
    );
  }
  // the custom program runs through tsx directly (no pnpm banner or error box around its own clear message)
  const tsx = join(root, 'node_modules', '.bin', 'tsx');
  const direct = custom && existsSync(tsx);
  const [cmd, cmdArgs, cwd] = direct
    ? [
        tsx,
        ['--conditions=@offramp/source', recipe.script.replace('packages/train/', ''), ...args],
        join(root, 'packages', 'train'),
      ]
    : ['pnpm', [script, ...args], root];
  log.info(log.c.bold(`pnpm ${script} ${args.join(' ')}`));
  await new Promise<void>((res, rej) => {
    const child = spawn(cmd, cmdArgs, {
      cwd,
      stdio: ['inherit', log.json ? 'pipe' : 'inherit', 'inherit'],
      env: { ...process.env, OFFRAMP_CWD: process.cwd(), OFFRAMP_TRAIN_COMMAND: commandLine(argv) },
    });
    child.stdout?.pipe(process.stderr);
    child.on('error', (e) => rej(new RuntimeError(`could not start pnpm ${script}: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) return res();
      // the program has printed what was wrong; bad data or options exit 2
      const e =
        code === 2
          ? new UsageError(`pnpm ${script} stopped (see above)`)
          : new RuntimeError(`pnpm ${script} exited with code ${code}`);
      rej(e);
    });
  });
  const outArg = args.indexOf('--out');
  const out = {
    command: 'train',
    recipe: recipe.name,
    args,
    out: outArg >= 0 ? args[outArg + 1] : join(root, 'checkpoints', recipe.name),
  };
  log.result(out);
  return out;
}
