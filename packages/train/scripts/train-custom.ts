// Trains a model with exits on your own data: a JSONL or CSV file of {text, label} or {image, label} rows
// (see the README's "Your own data"); `offramp train --data FILE` runs this. Relative paths resolve from the
// folder the command was started in (OFFRAMP_CWD from `offramp train`, else pnpm's INIT_CWD: `pnpm --filter`
// runs scripts in packages/train).
// `pnpm train:custom --data FILE [--test FILE] [--out DIR] [--minutes N] [options]`
import { FormatError, ValidationError } from '@offramp/core';
import { COMMON_HELP, parseCommonArgs } from '../src/training/cli.js';
import { type CustomTrainOptions, trainCustom } from '../src/training/custom.js';

const HELP = `pnpm train:custom --data FILE [options]        (the same as: offramp train --data FILE [options])

  --data FILE            training rows (.jsonl or .csv; {text, label} or {image, label})
  --test FILE            held-out rows, labels as in --data (default: a stratified 20% of --data)
  --name NAME            model name (default: the data file's name + '-model')
  --out DIR              where the model goes (default ./NAME)
  --minutes N            time budget: stop cleanly after N minutes and still write the model
  --arch cnn|mlp|encoder architecture (default: encoder for text, cnn for square images, else mlp)
  --seq-len N            encoder: tokens per text including [CLS] (default 128)
  --vocab N              encoder: vocabulary size (default 10000)
  (--epochs defaults to 10, --batch to 64; --limit N samples N training and N held-out rows)
${COMMON_HELP}`;

/** Prints the message only (the stack with OFFRAMP_DEBUG=1) and exits with `code`. */
function fail(e: unknown, code: number): never {
  const err = e as Error;
  console.error(`train:custom: ${err?.message ?? String(e)}`);
  if (process.env.OFFRAMP_DEBUG) console.error(err?.stack);
  process.exit(code);
}

let options: CustomTrainOptions;
try {
  const args = parseCommonArgs(process.argv.slice(2), ['data', 'test', 'name', 'arch', 'seq-len', 'vocab', 'minutes']);
  const own = args.own;
  if (args.help || !own.data) {
    console.log(HELP);
    process.exit(args.help ? 0 : 2);
  }
  const num = (k: string) => {
    const v = own[k];
    if (v === undefined) return undefined;
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x)) throw new Error(`--${k} must be a number, got '${v}'`);
    return x;
  };
  options = {
    cwd: process.env.OFFRAMP_CWD ?? process.env.INIT_CWD ?? process.cwd(),
    data: own.data,
    test: own.test,
    name: own.name,
    out: args.out,
    workDir: args.workDir,
    arch: own.arch as CustomTrainOptions['arch'],
    seqLen: num('seq-len'),
    vocab: num('vocab'),
    minutes: num('minutes'),
    limit: args.limit,
    epochs: args.epochs,
    batch: args.batch,
    lr: args.lr,
    seed: args.seed,
    recipe: args.recipe,
    backend: args.backend,
    maxSteps: args.maxSteps,
    resume: args.resume,
    checkpointEvery: args.checkpointEvery,
    command: process.env.OFFRAMP_TRAIN_COMMAND ?? `pnpm train:custom ${process.argv.slice(2).join(' ')}`,
  };
} catch (e) {
  fail(e, 2);
}
try {
  await trainCustom(options);
} catch (e) {
  // bad data or options (ValidationError, FormatError) exit 2, anything else 1
  fail(e, e instanceof ValidationError || e instanceof FormatError ? 2 : 1);
}
