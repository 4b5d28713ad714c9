// The `offramp` command line: commands, options, help texts with examples, and the mapping of every
// failure to an exit code (0 ok, 1 runtime error, 2 usage error) with a message and no stack trace unless
// --verbose.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { EXIT_OK, EXIT_USAGE, exitCodeOf, formatError } from './errors.js';
import { Logger } from './util/log.js';

export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  runtime error: a model or data file missing or damaged, a GPU error, results that do not check out
  2  usage error: unknown command, option, policy or dataset, or an option value out of range`;

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
      .version;
  } catch {
    return '0.0.0';
  }
}

const int =
  (name: string, lo: number, hi = Number.MAX_SAFE_INTEGER) =>
  (v: string): number => {
    const x = Number(v);
    if (!Number.isInteger(x) || x < lo || x > hi)
      throw new InvalidArgumentError(
        `${name} must be an integer in [${lo}, ${hi === Number.MAX_SAFE_INTEGER ? '∞' : hi}], got '${v}'`,
      );
    return x;
  };
const real =
  (name: string, lo: number, hi: number) =>
  (v: string): number => {
    const x = Number(v);
    if (v.trim() === '' || !Number.isFinite(x) || x < lo || x > hi)
      throw new InvalidArgumentError(`${name} must be a number in [${lo}, ${hi}], got '${v}'`);
    return x;
  };
const collect = (v: string, prev: string[] | undefined) => [...(prev ?? []), v];

interface Common {
  json?: boolean;
  quiet?: boolean;
  color?: boolean;
  verbose?: boolean;
}

function withCommon(cmd: Command): Command {
  return cmd
    .option('--json', 'machine-readable result on stdout (logs go to stderr)')
    .option('-q, --quiet', 'print only warnings and errors')
    .option('--no-color', 'no colours (also: NO_COLOR=1)')
    .option('--verbose', 'stack traces on errors');
}

function deviceOption(): Option {
  return new Option('--device <kind>', 'device: gpu (WebGPU), cpu (reference device) or auto')
    .choices(['gpu', 'cpu', 'auto'])
    .default('auto');
}

/** The data-slice options of the commands that read a data set (eval, calibrate, trace). */
function limitOption(): Option {
  return new Option('-n, --limit <n>', 'use only the first n samples').argParser(int('--limit', 1));
}
function offsetOption(): Option {
  return new Option('--offset <n>', 'skip the first n samples').argParser(int('--offset', 0)).default(0);
}
function fetchOption(): Option {
  return new Option('--fetch', 'fetch a missing dataset into the cache (as `offramp data fetch`)');
}

function loggerFor(o: Common): Logger {
  return new Logger({ json: o.json, quiet: o.quiet, color: o.color === false ? false : undefined });
}

function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

export interface RunOutcome {
  code: number;
}

/** Builds the program; `state.verbose` is set from the parsed options for error printing. */
export function buildProgram(state: { verbose: boolean; json: boolean } = { verbose: false, json: false }): Command {
  const program = new Command();
  program
    .name('offramp')
    .description(
      'Early-exit neural networks on WebGPU: evaluate exit policies, calibrate them, benchmark, inspect models.',
    )
    .version(version(), '-V, --version')
    .option('--verbose', 'stack traces on errors')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureHelp({ sortSubcommands: false })
    .addHelpText(
      'after',
      `\n${EXIT_CODES_HELP}\n${examples(['offramp demo', 'offramp eval --model checkpoints/fashion-cnn --data fashion-mnist --limit 2000', 'offramp calibrate --model checkpoints/fashion-cnn --policy entropy --max-drop 0.01', 'offramp inspect checkpoints/fashion-cnn', "offramp generate --model checkpoints/austen-mamba --prompt 'It is a truth' --policy confidence:threshold=0.8"])}`,
    );
  const act =
    <A extends unknown[]>(fn: (...args: A) => Promise<unknown> | unknown) =>
    async (...args: A) => {
      const cmd = args[args.length - 1] as Command;
      const o = cmd.optsWithGlobals() as Common;
      state.verbose = Boolean(o.verbose);
      state.json = Boolean(o.json);
      await fn(...args);
    };

  withCommon(
    program
      .command('eval')
      .description('evaluate exit policies on a model: trace once, sweep offline, re-run the chosen settings for real')
      .requiredOption(
        '-m, --model <dir>',
        'model directory (config.json + model.safetensors), a shipped model name, or a cascade spec (.json listing stage model folders)',
      )
      .option(
        '-d, --data <name|file>',
        "dataset (fashion-mnist, mnist, imdb, sentiment) or a .jsonl / .csv file; default: the model's own dataset",
      )
      .addOption(new Option('--split <split>', 'split of a named dataset').choices(['test', 'train']).default('test'))
      .option(
        '--metrics <list>',
        'uncertainty metrics of the full output instead of a policy sweep: selective, ood, calibration (comma-separated) or all; the default for a cascade spec is selective,calibration',
      )
      .option(
        '--ood-data <name|file>',
        'out-of-distribution inputs for --metrics ood (default for fashion-mnist: mnist)',
      )
      .addOption(
        new Option('--score <kind>', 'uncertainty score of --metrics')
          .choices(['maxProb', 'entropy'])
          .default('maxProb'),
      )
      .option(
        '-p, --policies <list>',
        "policies: names (swept), name:key=value (one setting), file:PATH.json, module:PACKAGE, or 'all'; comma-separated, repeatable",
        collect,
      )
      .option('--sweep', 'a finer grid for each swept policy')
      .option(
        '--grid <n>',
        'thresholds per swept threshold policy (default 8, 24 with --sweep)',
        int('--grid', 2, 1000),
      )
      .option('-b, --batch <n>', 'batch size of every run', int('--batch', 1, 4096), 64)
      .addOption(deviceOption())
      .addOption(
        new Option('--mode <mode>', 'execution mode of the real runs')
          .choices(['auto', 'host', 'device'])
          .default('auto'),
      )
      .addOption(
        new Option(
          '--measure <which>',
          "settings re-run for real: each policy's frontier and chosen setting, only the chosen ones, all, or none",
        )
          .choices(['frontier', 'chosen', 'all', 'none', 'compare'])
          .default('frontier'),
      )
      .option(
        '--repeats <n>',
        'timed passes per real run: the measured speed-up is their median, with its min–max range; figures whose range includes 1.0× are marked noise',
        int('--repeats', 1, 100),
        3,
      )
      .option(
        '--max-drop <x>',
        "accuracy drop allowed for each policy's chosen setting",
        real('--max-drop', 0, 1),
        0.01,
      )
      .option(
        '-o, --out <dir>',
        'folder for results.json, results.csv, report.md, report.html, plot.svg, plot.png (default offramp-eval/MODEL-DATA)',
      )
      .addOption(limitOption())
      .addOption(offsetOption())
      .addOption(fetchOption())
      .option('--trace <file>', 'use a trace file from offramp trace (same model, data, limit) instead of recording it')
      .addHelpText(
        'after',
        examples([
          'offramp eval -m checkpoints/fashion-cnn -d fashion-mnist --limit 2000',
          'offramp eval -m checkpoints/imdb-encoder -d imdb --trace imdb-test.trace.json --measure none',
          'offramp eval -m checkpoints/imdb-encoder -d imdb -p confidence,entropy,patience --sweep',
          'offramp eval -m my-model -d data.jsonl -p entropy:threshold=0.3 -p file:entropy.policy.json --json > results.json',
          'offramp eval -m checkpoints/fashion-cnn -p module:offramp-policy-steady:threshold=0.8',
          'offramp eval -m cascade.json -d fashion-mnist --metrics selective,ood,calibration -o cascade-eval',
        ]),
      ),
  ).action(
    act(
      async (
        o: Parameters<typeof import('./commands/eval.js').evalCommand>[0] &
          Omit<Parameters<typeof import('./commands/eval-metrics.js').evalMetricsCommand>[0], 'metrics'> & {
            metrics?: string;
          } & Common,
      ) => {
        const { isCascadeSpecPath } = await import('./cascade-spec.js');
        if (o.metrics !== undefined || isCascadeSpecPath(o.model)) {
          const { evalMetricsCommand } = await import('./commands/eval-metrics.js');
          await evalMetricsCommand({ ...o, metrics: o.metrics ?? 'selective,calibration' }, loggerFor(o));
          return;
        }
        const { evalCommand } = await import('./commands/eval.js');
        await evalCommand(o, loggerFor(o));
      },
    ),
  );

  withCommon(
    program
      .command('calibrate')
      .description(
        'choose a policy threshold for an accuracy-drop target, a compute budget or a risk guarantee, and write a policy file',
      )
      .requiredOption('-m, --model <dir>', 'model directory or shipped model name')
      .option('-d, --data <name|file>', "dataset or .jsonl / .csv file; default: the model's own dataset")
      .addOption(
        new Option('--split <split>', 'split of a named dataset (calibrate on train, evaluate on test)')
          .choices(['train', 'test'])
          .default('train'),
      )
      .requiredOption(
        '-p, --policy <name>',
        'single-threshold policy: confidence, entropy, margin, saturation, gate, quality (name:key=value for fixed options)',
      )
      .option(
        '--max-drop <x>',
        'cheapest threshold losing at most x accuracy (e.g. 0.01 = one point)',
        real('--max-drop', 0, 1),
      )
      .option('--budget <x>', 'most accurate threshold with mean compute ≤ x of full depth', real('--budget', 0, 1))
      .option('--risk <eps,delta>', 'Learn-then-Test: disagreement with full depth ≤ eps with probability ≥ 1 − delta')
      .addOption(
        new Option('--method <m>', 'p-value of --risk').choices(['binomial', 'hoeffding-bentkus']).default('binomial'),
      )
      .option('--per-exit', 'one threshold per exit (with --max-drop or --budget)')
      .option('-b, --batch <n>', 'batch size', int('--batch', 1, 4096), 64)
      .addOption(deviceOption())
      .addOption(limitOption())
      .addOption(offsetOption())
      .option('-o, --out <file>', 'policy file to write (default POLICY.policy.json)')
      .addOption(fetchOption())
      .addHelpText(
        'after',
        `\nThe file works with: offramp eval --policies file:PATH.json\n${examples(['offramp calibrate -m checkpoints/fashion-cnn -p entropy --max-drop 0.01 --limit 5000', 'offramp calibrate -m checkpoints/fashion-cnn -p confidence --budget 0.5 --per-exit -o fast.policy.json', 'offramp calibrate -m checkpoints/imdb-encoder -d imdb -p confidence --risk 0.05,0.1'])}`,
      ),
  ).action(
    act(async (o: Parameters<typeof import('./commands/calibrate.js').calibrateCommand>[0] & Common) => {
      const { calibrateCommand } = await import('./commands/calibrate.js');
      await calibrateCommand(o, loggerFor(o));
    }),
  );

  withCommon(
    program
      .command('trace')
      .description(
        "run a model to full depth once and write every sample's exit signals to a trace file (for offline sweeps and learned policies)",
      )
      .requiredOption('-m, --model <dir>', 'model directory or shipped model name')
      .option('-d, --data <name|file>', "dataset or .jsonl / .csv file; default: the model's own dataset")
      .addOption(new Option('--split <split>', 'split of a named dataset').choices(['test', 'train']).default('test'))
      .requiredOption('-o, --out <file>', 'trace file to write (JSON)')
      .option('-b, --batch <n>', 'batch size', int('--batch', 1, 4096), 64)
      .addOption(deviceOption())
      .addOption(limitOption())
      .addOption(offsetOption())
      .addOption(fetchOption())
      .option('--logits', "also store every exit's logits (samples × exits × classes numbers; host-mode run)")
      .addHelpText(
        'after',
        `\nThe file records the SHA-256 of the weights and of the traced inputs and labels; eval --trace checks both.\nRead it back with readTraceFile / parseTraceFile from @offramp/policies (then simulate, sweep, chooseThreshold).\n${examples(['offramp trace -m checkpoints/fashion-cnn --split train --limit 5000 -o fashion-train.trace.json', 'offramp trace -m checkpoints/fashion-cnn --limit 1000 --logits -o fashion-logits.trace.json', 'offramp trace -m checkpoints/imdb-encoder -d imdb -o imdb-test.trace.json'])}`,
      ),
  ).action(
    act(async (o: Parameters<typeof import('./commands/trace.js').traceCommand>[0] & Common) => {
      const { traceCommand } = await import('./commands/trace.js');
      await traceCommand(o, loggerFor(o));
    }),
  );

  withCommon(
    program
      .command('bench')
      .description('run the benchmark programs (pnpm bench:kernels, pnpm bench:engine) and print their summary')
      .argument('[which...]', 'kernels and/or engine (default both)')
      .option('--no-run', 'only print the saved results')
      .option('--results <dir>', 'results folder (default packages/core/bench/results of the checkout)')
      .addHelpText(
        'after',
        examples([
          'offramp bench --no-run',
          'offramp bench engine',
          'offramp bench kernels --json > kernels-summary.json',
        ]),
      ),
  ).action(
    act(async (which: string[], o: { run: boolean; results?: string } & Common) => {
      const { benchCommand } = await import('./commands/bench.js');
      await benchCommand(which, { run: o.run, resultsDir: o.results }, loggerFor(o));
    }),
  );

  withCommon(
    program
      .command('train')
      .description(
        'train a model with exits on your own data (--data FILE), or with one of the recipes of the checkout (front end to pnpm train:NAME)',
      )
      .argument(
        '[recipe]',
        'a recipe of the checkout (see --list), e.g. fashion-cnn, imdb-encoder; leave it out to train on --data FILE',
      )
      .option('--list', 'list the recipes')
      .option(
        '-d, --data <file>',
        "your training data: a .jsonl or .csv file of {text, label} or {image, label} rows (or a recipe's dataset name, checked)",
      )
      .option('--test <file>', 'your held-out rows, labelled like --data (default: a stratified 20% of --data)')
      .option('--name <name>', "your model's name (default: the data file's name + '-model')")
      .option('-o, --out <dir>', 'where the finished model goes (default ./NAME for --data FILE, checkpoints/RECIPE)')
      .addOption(
        new Option(
          '--arch <arch>',
          'architecture for --data FILE (default: encoder for text, cnn for square images, else mlp)',
        ).choices(['encoder', 'cnn', 'mlp']),
      )
      .option('--seq-len <n>', 'encoder: tokens per text including [CLS] (default 128)', int('--seq-len', 2))
      .option('--vocab <n>', 'encoder: vocabulary size (default 10000)', int('--vocab', 4))
      .option(
        '--exit-recipe <name>',
        'exit-head training recipe: joint, two-stage, self-distill, dual-head, ponder, gates',
      )
      .option('--epochs <n>', 'epochs per stage', int('--epochs', 1))
      .option('--batch <n>', 'batch size', int('--batch', 1))
      .option('--lr <x>', 'peak learning rate', real('--lr', 0, 10))
      .option('--seed <n>', 'random seed', int('--seed', 0))
      .option('--limit <n>', 'use only n training and n held-out rows (smoke runs)', int('--limit', 1))
      .option('--max-steps <n>', 'stop each stage after n steps', int('--max-steps', 1))
      .option(
        '--minutes <n>',
        'time budget: stop cleanly after n minutes and still write the model and its card (--data FILE, austen-mamba)',
        real('--minutes', 0.01, 10_000),
      )
      .option('--resume', "continue from the work directory's saved state")
      .option('--work-dir <dir>', 'where resumable state goes')
      .addOption(new Option('--backend <b>', 'training backend').choices(['webgpu', 'cpu']))
      .addHelpText(
        'after',
        examples([
          'offramp train --data train.jsonl --test test.jsonl --out my-model --minutes 10',
          'offramp eval -m my-model -d test.jsonl',
          'offramp train --list',
          'offramp train fashion-cnn --epochs 1 --limit 2000 --out /tmp/cnn',
          'offramp train imdb-encoder --resume',
        ]),
      ),
  ).action(
    act(async (recipe: string | undefined, o: Record<string, unknown> & Common) => {
      const { trainCommand } = await import('./commands/train.js');
      const { json, quiet, color, verbose, ...rest } = o;
      await trainCommand(recipe, rest as never, loggerFor({ json, quiet, color, verbose }));
    }),
  );

  withCommon(
    program
      .command('generate')
      .description(
        "stream tokens from a language model (a Llama-style decoder or a Mamba LM folder) with token-level early exit, showing each token's exit block",
      )
      .requiredOption(
        '-m, --model <dir>',
        'language model folder: LlamaForCausalLM (e.g. checkpoints/austen-decoder) or MambaForCausalLM (checkpoints/austen-mamba)',
      )
      .requiredOption('--prompt <text>', 'text to continue')
      .option(
        '-p, --policy <spec>',
        'exit policy, run per token (calm, recompute): never, any built-in (confidence:threshold=T, entropy, margin, saturation, patience, budget, ...), decaying:threshold=L,tau=T (CALM), file:PATH.json or module:PACKAGE (default confidence:threshold=0.9; never for skipdecode and speculative)',
      )
      .addOption(
        new Option('--strategy <name>', 'decoding strategy (decoder); Mamba generates with calm')
          .choices(['calm', 'recompute', 'skipdecode', 'speculative'])
          .default('calm'),
      )
      .option(
        '--draft-exit <block>',
        'speculative: the early exit block that drafts (default the first early exit)',
        int('--draft-exit', 0),
      )
      .option(
        '--draft-tokens <n|adaptive>',
        "speculative: tokens drafted per round, or 'adaptive' (k from the acceptance rate)",
        (v: string) => {
          if (v === 'adaptive') return v;
          return int('--draft-tokens', 1, 32)(v);
        },
        'adaptive',
      )
      .option(
        '--h-min <n>',
        'skipdecode: top blocks still run at the end of the schedule (default half the blocks above the first)',
        int('--h-min', 1),
      )
      .option('--max-tokens <n>', 'tokens to generate', int('--max-tokens', 1, 100_000), 200)
      .option('--temperature <x>', '0 = greedy', real('--temperature', 0, 100), 0)
      .option('--top-k <n>', 'sample among the k most likely tokens', int('--top-k', 0))
      .option('--top-p <x>', 'nucleus sampling', real('--top-p', 0, 1))
      .option('--seed <n>', 'sampling seed', int('--seed', 0), 0)
      .addOption(
        new Option(
          '--skip <how>',
          "skipped blocks of an exited token: Mamba 'freeze' (default) or 'partial' update; decoder 'propagate' (default, CALM) or 'none'",
        ).choices(['freeze', 'partial', 'propagate', 'none']),
      )
      .addOption(
        new Option('--depth <style>', "each token's exit block: coloured text, text[block] or not shown")
          .choices(['color', 'brackets', 'none'])
          .default('color'),
      )
      .addOption(deviceOption())
      .addHelpText(
        'after',
        examples([
          "offramp generate -m checkpoints/austen-mamba --prompt 'It is a truth universally' --max-tokens 300",
          "offramp generate -m checkpoints/austen-mamba --prompt 'Emma' -p entropy:threshold=0.5 --temperature 0.8 --seed 3",
          "offramp generate -m checkpoints/austen-decoder --prompt 'Mr. Darcy' -p decaying:threshold=0.8,tau=4 --depth brackets",
          "offramp generate -m checkpoints/austen-decoder --prompt 'Emma' -p patience:patience=2 --json",
          "offramp generate -m checkpoints/austen-decoder --prompt 'Emma' --strategy speculative --draft-exit 1",
          "offramp generate -m checkpoints/austen-decoder --prompt 'Emma' --strategy skipdecode --h-min 2",
        ]),
      ),
  ).action(
    act(async (o: Parameters<typeof import('./commands/generate.js').generateCommand>[0] & Common) => {
      const { generateCommand } = await import('./commands/generate.js');
      await generateCommand(o, loggerFor(o));
    }),
  );

  withCommon(
    program
      .command('enhance')
      .description('remove JPEG artefacts from a photo with an RBQE enhancer, exiting early per image (writes a PNG)')
      .requiredOption('-m, --model <dir>', 'enhancer model directory (e.g. checkpoints/rbqe)')
      .requiredOption('-i, --in <file>', 'input image (JPEG or PNG)')
      .requiredOption('-o, --out <file>', 'output PNG')
      .option('-p, --policy <spec>', 'exit policy (default quality, threshold 0.67)', 'quality')
      .option('--max-pixels <n>', 'largest input accepted, in pixels (default 2048·2048)', int('--max-pixels', 256))
      .addOption(deviceOption())
      .addHelpText(
        'after',
        examples([
          'offramp enhance --model checkpoints/rbqe --in photo.jpg --out photo.png',
          'offramp enhance -m checkpoints/rbqe -i photo.jpg -o photo.png --policy quality:threshold=0.5',
        ]),
      ),
  ).action(
    act(async (o: import('./commands/enhance.js').EnhanceOptions & Common) => {
      const { enhanceCommand } = await import('./commands/enhance.js');
      await enhanceCommand(o, loggerFor(o));
    }),
  );

  withCommon(
    program
      .command('inspect')
      .description(
        'validate a model directory and show its architecture, exits, parameters, FLOPs per block and tensors',
      )
      .argument('<model>', 'model directory or shipped model name')
      .option(
        '--seq-len <n>',
        'sequence length for the FLOPs of an encoder (default min(128, max_position))',
        int('--seq-len', 1),
      )
      .option('--no-tensors', 'leave out the tensor list')
      .addHelpText(
        'after',
        examples([
          'offramp inspect checkpoints/fashion-cnn',
          'offramp inspect imdb-encoder --seq-len 256 --no-tensors',
          'offramp inspect checkpoints/austen-mamba --json',
        ]),
      ),
  ).action(
    act(async (model: string, o: { seqLen?: number; tensors?: boolean } & Common) => {
      const { inspectCommand } = await import('./commands/inspect.js');
      await inspectCommand(model, { seqLen: o.seqLen, tensors: o.tensors }, loggerFor(o));
    }),
  );

  withCommon(
    program
      .command('embed')
      .description('unit-length embeddings of texts from a multi-exit embedder folder, at one exit or all')
      .argument('<texts...>', 'texts to embed')
      .requiredOption('-m, --model <dir>', 'embedder folder (config.json, model.safetensors, tokenizer.json)')
      .option('--exit <k>', "exit index, or 'all' (default: the last exit)")
      .addOption(deviceOption())
      .addHelpText('after', examples(['offramp embed -m checkpoints/code-search --exit 0 "Return the file size."'])),
  ).action(
    act(async (texts: string[], o: import('./commands/embed.js').EmbedCommandOptions & Common) => {
      const { embedCommand } = await import('./commands/embed.js');
      await embedCommand(texts, o, loggerFor(o));
    }),
  );
  withCommon(
    program
      .command('index')
      .description('embed a document set at every exit of an embedder into an index folder for `offramp search`')
      .requiredOption('-m, --model <dir>', 'embedder folder')
      .requiredOption('--docs <file>', 'documents: JSON Lines of {"id", "text"} (.jsonl) or one per line')
      .requiredOption('-o, --out <dir>', 'index folder to write')
      .addOption(deviceOption())
      .addHelpText('after', examples(['offramp index -m checkpoints/code-search --docs functions.jsonl -o my-index'])),
  ).action(
    act(async (o: import('./commands/embed.js').IndexCommandOptions & Common) => {
      const { indexCommand } = await import('./commands/embed.js');
      await indexCommand(o, loggerFor(o));
    }),
  );
  withCommon(
    program
      .command('search')
      .description(
        "search an index folder: at one exit, or 'auto' (stop at the first exit whose top-1 − top-2 margin reaches --margin)",
      )
      .argument('<query>', 'the query text')
      .requiredOption('--index <dir>', 'index folder written by `offramp index`')
      .option('--exit <k>', "exit index or 'auto' (default: the last exit)")
      .option('-k, --top <n>', 'results to show', int('--top', 1, 1000), 5)
      .option('--margin <m>', 'top-1 − top-2 margin that stops --exit auto', real('--margin', 0, 2), 0.05)
      .option('-m, --model <dir>', 'embedder folder (default: the one the index was built with)')
      .addOption(deviceOption())
      .addHelpText('after', examples(['offramp search --index my-index --exit auto "parse an HTTP header"'])),
  ).action(
    act(async (query: string, o: import('./commands/embed.js').SearchCommandOptions & Common) => {
      const { searchCommand } = await import('./commands/embed.js');
      await searchCommand(query, o, loggerFor(o));
    }),
  );

  withCommon(
    program
      .command('serve')
      .description(
        'serve models over HTTP: classifiers (POST /v1/classify), language models, Mamba or Llama-style decoders (OpenAI-compatible /v1/completions, /v1/chat/completions), GET /v1/models, /metrics, /docs/json',
      )
      .option(
        '-m, --model <name=folder>',
        'a model to serve: NAME=FOLDER or a shipped model name (repeatable)',
        collect,
        [],
      )
      .option('-p, --port <n>', 'port (0: a free one)', int('--port', 0, 65535), 8080)
      .option('--host <address>', 'address to listen on', '127.0.0.1')
      .option('--api-key <key>', 'require Authorization: Bearer <key> (default: $OFFRAMP_API_KEY)')
      .option('--max-batch <n>', 'most requests per engine batch (every model)', int('--max-batch', 1, 1024), 16)
      .option(
        '--max-seq-len <n>',
        "most tokens per input of text classifiers (longer: 413, or cut with truncate) and prompt + max_tokens of language models (every model; capped at each model's own maximum)",
        int('--max-seq-len', 2, 1 << 20),
      )
      .option(
        '--model-limit <name:key=value,...>',
        "one model's own limits, over --max-batch/--max-seq-len: keys max-batch, max-seq-len (repeatable), e.g. imdb:max-seq-len=128,max-batch=8",
        collect,
        [],
      )
      .option(
        '--max-wait-ms <ms>',
        'longest a request waits for its batch to fill',
        real('--max-wait-ms', 0, 10_000),
        5,
      )
      .option('--max-queue <n>', 'most requests queued or running; more get 429', int('--max-queue', 1), 256)
      .addOption(
        new Option(
          '--scheduler <kind>',
          'how /v1/classify batches: window (a batch per max-wait-ms) or refill (new rows admitted between depth steps into the slots exits free; ONNX Runtime CPU path only)',
        )
          .choices(['window', 'refill'])
          .default('window'),
      )
      .option('--policy <spec>', "default exit policy of every model (default 'confidence:threshold=0.9')")
      .option('--cors', 'allow cross-origin requests from any origin')
      .option('--rate-limit <n>', 'requests per minute per client address', int('--rate-limit', 1))
      .option('--no-warmup', 'skip the warm-up request per model before listening (compiles the GPU pipelines)')
      .addOption(deviceOption())
      .addHelpText(
        'after',
        examples([
          'offramp serve --model fashion-cnn --model imdb=checkpoints/imdb-encoder --port 8080',
          `curl -s localhost:8080/v1/classify -H 'content-type: application/json' -d '{"model":"imdb","input":{"text":"great film"}}'`,
          'offramp serve --model fashion-cnn --model imdb=imdb-encoder --max-batch 32 --model-limit imdb:max-seq-len=128,max-batch=8',
          'offramp serve --model austen-mamba --port 8080',
          `curl -s localhost:8080/v1/completions -H 'content-type: application/json' -d '{"model":"austen-mamba","prompt":"It is a truth","max_tokens":40}'`,
        ]),
      ),
  ).action(
    act(async (o: import('./commands/serve.js').ServeOptions & Common) => {
      const { serveCommand } = await import('./commands/serve.js');
      await serveCommand(o, loggerFor(o));
    }),
  );

  const create = program.command('new').description('scaffold new things').exitOverride();
  withCommon(
    create
      .command('policy')
      .description('scaffold an exit-policy plugin package that passes the conformance kit')
      .argument('<name>', 'policy name: lowercase letters, digits and hyphens')
      .option('--dir <dir>', 'target folder (default ./offramp-policy-NAME)')
      .option('--force', 'write into a non-empty folder')
      .addHelpText(
        'after',
        examples(['offramp new policy steady-confidence', 'offramp new policy my-rule --dir packages/my-rule']),
      ),
  ).action(
    act(async (name: string, o: { dir?: string; force?: boolean } & Common) => {
      const { newPolicyCommand } = await import('./commands/new-policy.js');
      newPolicyCommand(name, o, loggerFor(o));
    }),
  );

  const data = program
    .command('data')
    .description('the dataset cache: fetch datasets, show where it is')
    .exitOverride();
  withCommon(
    data
      .command('fetch')
      .description(
        'fetch datasets into the cache ($OFFRAMP_DATA_DIR, the checkout .data/, else ~/.cache/offramp) and check them',
      )
      .argument(
        '[names...]',
        'datasets: fashion-mnist, mnist, imdb, sentiment, austen, kjv, code-search, images (default: all)',
      )
      .option('--force', 'fetch again even when cached')
      .addHelpText(
        'after',
        examples(['offramp data fetch fashion-mnist', 'OFFRAMP_DATA_DIR=/srv/offramp-data offramp data fetch']),
      ),
  ).action(
    act(async (names: string[], o: { force?: boolean } & Common) => {
      const { dataFetchCommand } = await import('./commands/data.js');
      await dataFetchCommand(names, o, loggerFor(o));
    }),
  );
  withCommon(data.command('where').description('print the dataset cache folder')).action(
    act(async (o: Common) => {
      const { dataWhereCommand } = await import('./commands/data.js');
      await dataWhereCommand(loggerFor(o));
    }),
  );

  withCommon(
    program
      .command('demo')
      .description('the shipped Fashion-MNIST CNN on a slice of the test set: built-in policies, tables, plot, adapter')
      .option('-m, --model <dir>', 'model directory (default checkpoints/fashion-cnn)')
      .option('-d, --data <name|file>', 'dataset (default fashion-mnist, fetched when missing)')
      .option('-n, --limit <n>', 'test images used', int('--limit', 1), 1000)
      .option('-b, --batch <n>', 'batch size', int('--batch', 1, 4096), 64)
      .option('-p, --policies <list>', 'policies (default: the built-ins that apply)', collect)
      .addOption(deviceOption())
      .addOption(
        new Option('--mode <mode>', 'execution mode of the real runs')
          .choices(['auto', 'host', 'device'])
          .default('auto'),
      )
      .addOption(
        new Option(
          '--measure <which>',
          "settings re-run for real (compare: the best fixed exit and the best per-input policy's chosen settings)",
        )
          .choices(['frontier', 'chosen', 'all', 'none', 'compare'])
          .default('compare'),
      )
      .option(
        '--max-drop <d>',
        'accuracy drop allowed for the chosen settings (0.0025 = 0.25 points)',
        real('--max-drop', 0, 1),
        0.0025,
      )
      .option('--repeats <n>', 'timed passes per real run (median and min–max)', int('--repeats', 1, 100), 3)
      .option('-o, --out <dir>', 'folder for the results and the plot (default: offramp-demo in the temp folder)')
      .addHelpText(
        'after',
        examples([
          'offramp demo',
          'offramp demo --limit 5000 --measure frontier',
          'offramp demo --max-drop 0.01 --measure chosen --repeats 5',
          'offramp demo --device cpu --limit 200',
        ]),
      ),
  ).action(
    act(async (o: Parameters<typeof import('./commands/demo.js').demoCommand>[0] & Common) => {
      const { demoCommand } = await import('./commands/demo.js');
      await demoCommand(o, loggerFor(o));
    }),
  );
  return program;
}

/** Runs the command line; returns the exit code (never calls process.exit). */
export async function run(argv: string[]): Promise<number> {
  const state = { verbose: argv.includes('--verbose'), json: argv.includes('--json') };
  const program = buildProgram(state);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit 0; help shown because a command is missing is a usage error
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) return EXIT_OK;
      if (e.code === 'commander.help') return EXIT_USAGE;
      // commander has already printed its message (with suggestions)
      if (e.code === 'commander.executeSubCommandAsync') return EXIT_USAGE;
      process.stderr.write(
        `(run 'offramp ${argv[0] && !argv[0].startsWith('-') ? `${argv[0]} ` : ''}--help' for usage)\n`,
      );
      return EXIT_USAGE;
    }
    process.stderr.write(`offramp: error: ${formatError(e, state.verbose)}\n`);
    return exitCodeOf(e);
  }
}
