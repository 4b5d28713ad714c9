// Hostile inputs through the built binary: each case writes its files into a fresh temp folder (nothing is
// checked in), runs `offramp` as a child process and checks that it fails cleanly — a non-zero exit code, a
// message on stderr that names the file and the problem, nothing on stdout that would corrupt --json output,
// bounded wall time and bounded memory. A case is one row of HOSTILE_CASES; add rows for new file kinds.
//
// Memory: the child runs with `--max-old-space-size=512` (a runaway JS heap fails fast) and a preloaded
// probe (written below into the temp folder) that writes `process.resourceUsage().maxRSS` — the peak resident
// set of the child itself, heap, Buffers and native (Dawn) memory included — to a file when the process
// exits. That works wherever Node runs (no /usr/bin/time, no /proc parsing) and measures the child, not the
// test runner. The binary runs its command in a child process of its own (same Node flags, so the probe is
// loaded there too); the file keeps the larger of the two peaks. A child that never exits is killed, with its
// whole process group, after CASE_TIMEOUT_MS and the case fails on that.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  createGpuDevice,
  type EncoderClassifierConfig,
  type MlpClassifierConfig,
  randomWeights,
  writeSafetensors,
} from '@offramp/core';
import { saveModelDir } from '@offramp/core/node';
import { parseMambaConfig, randomMambaWeights } from '@offramp/mamba';
import { CharTokenizer, WordTokenizer } from '@offramp/train';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cli, ensureBuilt, makeJsonl, makeModel, makeRows, tempDir } from './helpers.js';

/** A child still running after this is killed (SIGKILL) and the case fails. */
const CASE_TIMEOUT_MS = 30_000;
/** Peak resident set allowed to a child (a GPU device on lavapipe and the CLI's imports fit well below). */
const MAX_RSS_BYTES = 768 * 1024 * 1024;

export interface HostileCase {
  name: string;
  /** Writes the case's files under `dir` (its own empty folder) and returns the arguments after `offramp`. */
  setup: (dir: string) => string[] | Promise<string[]>;
  /** Expected exit code (default 1: a runtime failure such as a damaged file; 2 is a usage error). */
  code?: number;
  /** Every pattern must match stderr. */
  stderr: RegExp[];
  /** No pattern may match stderr (e.g. bytes of a file the model folder must not reach). */
  notStderr?: RegExp[];
  /** The case needs a GPU adapter (skipped without one). */
  gpu?: boolean;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  maxRssBytes: number | null;
}

let root: string;
let probe: string;
let hasGpu = false;

/** Runs the binary under the memory probe; resolves when the child exits or is killed at the timeout. */
/** Runs in `cwd` (the case's temp folder, so reports a command writes land there, not in the package). */
function runCli(args: string[], cwd: string): Promise<Run> {
  const rssFile = join(cwd, 'max-rss');
  return new Promise((done, fail) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['--max-old-space-size=512', '--import', probe, BIN, ...args], {
      cwd,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '', OFFRAMP_TEST_RSS_FILE: rssFile },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group: the timeout kills the command's child process too
    });
    let stdout = '';
    let stderr = '';
    // keep at most 1 MiB of each stream: a runaway writer must not exhaust the test runner
    child.stdout.on('data', (b: Buffer) => {
      if (stdout.length < 1 << 20) stdout += b.toString('utf8');
    });
    child.stderr.on('data', (b: Buffer) => {
      if (stderr.length < 1 << 20) stderr += b.toString('utf8');
    });
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, CASE_TIMEOUT_MS);
    child.on('error', fail);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let maxRssBytes: number | null = null;
      try {
        maxRssBytes = Number(readFileSync(rssFile, 'utf8')) * 1024; // resourceUsage().maxRSS is in KiB
      } catch {
        // killed before it could write
      }
      done({ code, signal, stdout, stderr, ms: Date.now() - t0, maxRssBytes });
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// Fixtures (small, generated per case)

const NAN_MLP: MlpClassifierConfig = {
  architecture: 'mlp_classifier',
  input_size: 16,
  hidden_size: 24,
  num_layers: 4,
  num_classes: 4,
  exits: { blocks: [0, 1, 2, 3], head: 'linear' },
};

/** An MLP model (see helpers) whose file `file` is replaced by what `replace` makes at its path. */
async function mlpWith(dir: string, file: string, replace: (path: string) => void): Promise<string> {
  const model = await makeModel(join(dir, 'model'));
  rmSync(join(model, file), { recursive: true, force: true });
  replace(join(model, file));
  return model;
}

const devZero = (p: string) => symlinkSync('/dev/zero', p);
const fifo = (p: string) => execFileSync('mkfifo', [p]);
const directory = (p: string) => mkdirSync(p);
const missing = () => {};
const loop = (p: string) => symlinkSync(p, p);

/** A tiny encoder classifier whose config names `tokenizer` in meta, and {text, label} rows. */
async function encoderNaming(dir: string, tokenizer: string | ((model: string) => string)) {
  const cfg: EncoderClassifierConfig = {
    architecture: 'encoder_classifier',
    vocab_size: 32,
    max_position: 16,
    hidden_size: 8,
    num_layers: 2,
    num_heads: 2,
    intermediate_size: 16,
    num_classes: 2,
    exits: { blocks: [0, 1], head: 'linear' },
  };
  const model = join(dir, 'enc');
  const name = typeof tokenizer === 'string' ? tokenizer : tokenizer(model);
  await saveModelDir(model, { offramp_format: 1, model: cfg, meta: { tokenizer: name } }, randomWeights(cfg, 5));
  WordTokenizer.fromTexts(['a good film', 'a bad film'], { vocabSize: 30 }).save(join(model, 'tokenizer.json'));
  const data = join(dir, 'rows.jsonl');
  writeFileSync(
    data,
    `${JSON.stringify({ text: 'a good film', label: 1 })}\n${JSON.stringify({ text: 'bad', label: 0 })}\n`,
  );
  return ['eval', '-m', model, '-d', data, '--device', 'cpu', '--json'];
}

const LM_CONFIG = {
  model_type: 'mamba',
  vocab_size: 0, // set from the tokenizer
  hidden_size: 16,
  num_hidden_layers: 2,
  state_size: 4,
  expand: 2,
  intermediate_size: 32,
  conv_kernel: 4,
  time_step_rank: 2,
  layer_norm_epsilon: 1e-5,
  use_bias: false,
  use_conv_bias: true,
  tie_word_embeddings: true,
};

/** A tiny Mamba LM folder with a char tokenizer; `config` edits the config.json written (not the weights). */
function mambaLm(dir: string, config: (c: typeof LM_CONFIG) => object = (c) => c): string {
  const lm = join(dir, 'lm');
  mkdirSync(lm, { recursive: true });
  const tok = CharTokenizer.fromCorpus('abcdefghij klmnop.');
  const hf = { ...LM_CONFIG, vocab_size: tok.vocabSize };
  writeFileSync(join(lm, 'config.json'), JSON.stringify(config(hf)));
  writeFileSync(join(lm, 'model.safetensors'), writeSafetensors(randomMambaWeights(parseMambaConfig(hf), { seed: 2 })));
  tok.save(join(lm, 'char-tokenizer.json'));
  return lm;
}

// ---------------------------------------------------------------------------------------------------------
// The cases

const stack = /\n\s+at .+:\d+:\d+/;

export const HOSTILE_CASES: HostileCase[] = [
  // config.json of a classifier folder
  ...(
    [
      ['a /dev/zero symlink', devZero, /config\.json is not a regular file \(a device, FIFO or socket\)/],
      ['a FIFO', fifo, /config\.json is not a regular file \(a device, FIFO or socket\)/],
      ['a directory', directory, /config\.json is a directory/],
      ['a symbolic link loop', loop, /config\.json is a symbolic link loop/],
      ['missing', missing, /has no config\.json; a model directory holds config\.json and model\.safetensors/],
    ] as const
  ).map(
    ([what, make, message]): HostileCase => ({
      name: `config.json is ${what}`,
      setup: async (dir) => ['inspect', await mlpWith(dir, 'config.json', make), '--json'],
      stderr: [message],
    }),
  ),
  // model.safetensors of a classifier folder
  ...(
    [
      ['a /dev/zero symlink', devZero, /model\.safetensors is not a regular file \(a device, FIFO or socket\)/],
      ['a FIFO', fifo, /model\.safetensors is not a regular file \(a device, FIFO or socket\)/],
      ['a directory', directory, /model\.safetensors is a directory/],
      ['a symbolic link loop', loop, /model\.safetensors is a symbolic link loop/],
      ['missing', missing, /no weights in .*: expected model\.safetensors or model\.safetensors\.index\.json/],
    ] as const
  ).map(
    ([what, make, message]): HostileCase => ({
      name: `model.safetensors is ${what}`,
      setup: async (dir) => ['inspect', await mlpWith(dir, 'model.safetensors', make), '--json'],
      stderr: [message],
    }),
  ),
  {
    name: 'config.json over the 16 MiB cap',
    setup: async (dir) => [
      'inspect',
      await mlpWith(dir, 'config.json', (p) =>
        writeFileSync(p, `{"offramp_format":1,"meta":{"pad":"${'x'.repeat(17 * 1024 * 1024)}"}}`),
      ),
      '--json',
    ],
    stderr: [/config\.json is 17\.0 MiB, larger than the 16 MiB allowed for the model config/],
  },
  {
    name: 'config.json nested 1,000,000 levels deep',
    setup: async (dir) => [
      'inspect',
      await mlpWith(dir, 'config.json', (p) =>
        writeFileSync(p, `{"offramp_format":1,"model":${'['.repeat(1e6)}${']'.repeat(1e6)}}`),
      ),
      '--json',
    ],
    stderr: [/config\.json nests arrays\/objects more than 256 levels deep/],
    notStderr: [/Maximum call stack/],
  },
  {
    name: 'meta.tokenizer leads out of the model folder with ../',
    setup: (dir) => encoderNaming(dir, (model) => relative(model, '/etc/passwd')),
    stderr: [
      /config\.json names '(\.\.\/)+etc\/passwd', which is outside the folder .*enc; a path in .*config\.json must be relative and stay inside its folder/,
    ],
    notStderr: [/root:/],
  },
  {
    name: 'meta.tokenizer is an absolute path',
    setup: (dir) => encoderNaming(dir, '/etc/passwd'),
    stderr: [/config\.json names '\/etc\/passwd', which is outside the folder/],
    notStderr: [/root:/],
  },
  {
    name: 'a tokenizer file of an encoder that is a symbolic link out of the folder',
    setup: async (dir) => {
      const args = await encoderNaming(dir, 'unused');
      const model = args[2];
      // no meta.tokenizer: the tokenizer is found by its file name, which links to /etc/passwd
      const cfg = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'));
      delete cfg.meta;
      writeFileSync(join(model, 'config.json'), JSON.stringify(cfg));
      rmSync(join(model, 'tokenizer.json'));
      symlinkSync('/etc/passwd', join(model, 'tokenizer.json'));
      return args;
    },
    stderr: [/tokenizer\.json leads outside the model folder .*enc \(a symbolic link\)/],
    notStderr: [/root:/],
  },
  {
    name: 'offramp.tokenizer of a Mamba LM leads out of the folder',
    setup: (dir) => [
      'generate',
      '-m',
      mambaLm(dir, (c) => ({ ...c, offramp: { tokenizer: '../../../../../../etc/passwd' } })),
      '--prompt',
      'abc',
      '--device',
      'cpu',
      '--json',
    ],
    stderr: [/config\.json names '(\.\.\/)+etc\/passwd', which is outside the folder/],
    notStderr: [/root:/],
  },
  {
    name: 'char-tokenizer.json of a Mamba LM is a symbolic link out of the folder',
    setup: (dir) => {
      const lm = mambaLm(dir);
      rmSync(join(lm, 'char-tokenizer.json'));
      symlinkSync('/etc/passwd', join(lm, 'char-tokenizer.json'));
      return ['generate', '-m', lm, '--prompt', 'abc', '--device', 'cpu', '--json'];
    },
    stderr: [/char-tokenizer\.json leads outside the model folder/],
    notStderr: [/root:/],
  },
  {
    name: 'a tensor name twice in the safetensors header',
    setup: async (dir) => {
      const model = await makeModel(join(dir, 'model'));
      const p = join(model, 'model.safetensors');
      const bytes = readFileSync(p);
      const n = Number(bytes.readBigUInt64LE(0));
      const header = bytes
        .subarray(8, 8 + n)
        .toString('utf8')
        .trimEnd();
      const first = /^\{("__metadata__":\{[^}]*\},)?("[^"]+":\{[^}]*\})/.exec(header)![2];
      // the first entry again, with the same offsets: JSON.parse would keep one of them silently
      const forged = Buffer.from(`{${first},${header.slice(1)}`);
      const out = Buffer.alloc(8 + forged.length + bytes.length - 8 - n);
      out.writeBigUInt64LE(BigInt(forged.length), 0);
      forged.copy(out, 8);
      bytes.copy(out, 8 + forged.length, 8 + n);
      writeFileSync(p, out);
      return ['inspect', model, '--json'];
    },
    stderr: [/model\.safetensors: header \(bytes 8\.\.\d+\) repeats the key "[^"]+" in the object at \(root\)/],
  },
  {
    name: 'a Mamba config with 10⁹ layers',
    setup: (dir) => [
      'generate',
      '-m',
      mambaLm(dir, (c) => ({ ...c, num_hidden_layers: 1e9 })),
      '--prompt',
      'abc',
      '--device',
      'cpu',
      '--json',
    ],
    stderr: [/config\.json: 'num_hidden_layers' must be an integer in \[1, 1024\], got 1000000000/],
  },
  {
    name: 'a 100,000-character prompt',
    setup: (dir) => ['generate', '-m', mambaLm(dir), '--prompt', 'a'.repeat(100_000), '--device', 'cpu', '--json'],
    code: 2,
    stderr: [/--prompt is 100000 characters, more than the limit of 32768/],
  },
  {
    name: 'a prompt of more tokens than the model prefills',
    setup: (dir) => ['generate', '-m', mambaLm(dir), '--prompt', 'ab'.repeat(5000), '--device', 'cpu', '--json'],
    code: 2,
    stderr: [/the prompt encodes to 10000 tokens, more than the limit of 8192 tokens this model prefills/],
  },
  // data files given to eval / calibrate / trace
  ...(
    [
      ['a /dev/zero symlink', devZero, /rows\.jsonl is not a regular file \(a device, FIFO or socket\)/],
      ['a FIFO', fifo, /rows\.jsonl is not a regular file \(a device, FIFO or socket\)/],
      ['a directory', directory, /rows\.jsonl is a directory/],
    ] as const
  ).map(
    ([what, make, message]): HostileCase => ({
      name: `a data file that is ${what}`,
      setup: async (dir) => {
        const model = await makeModel(join(dir, 'model'));
        make(join(dir, 'rows.jsonl'));
        return ['eval', '-m', model, '-d', join(dir, 'rows.jsonl'), '--device', 'cpu', '--json'];
      },
      stderr: [message],
    }),
  ),
  {
    name: 'a data file whose label holds terminal escapes and 10,000 characters',
    setup: async (dir) => {
      const model = await makeModel(join(dir, 'model'));
      const rows = makeRows(3).map((r) => JSON.stringify(r));
      rows.push(JSON.stringify({ image: makeRows(1)[0].image, label: `\u001b[2J\u001b[31m${'x'.repeat(10_000)}` }));
      writeFileSync(join(dir, 'rows.jsonl'), `${rows.join('\n')}\n`);
      return ['eval', '-m', model, '-d', join(dir, 'rows.jsonl'), '--device', 'cpu', '--json'];
    },
    code: 2,
    stderr: [/rows\.jsonl/, /line 4/],
    notStderr: [new RegExp(String.fromCharCode(27)), /x{200}/], // no raw ESC reaches the terminal
  },
  // policy files (-p file:...)
  ...(
    [
      ['a /dev/zero symlink', (p: string) => devZero(p), /policy\.json is not a regular file/],
      ['a FIFO', (p: string) => fifo(p), /policy\.json is not a regular file/],
      [
        'nested 1,000,000 levels deep',
        (p: string) =>
          writeFileSync(p, `{"offramp_policy":1,"name":"entropy","options":${'['.repeat(1e6)}${']'.repeat(1e6)}}`),
        /policy\.json.*(nest|levels)/,
      ],
      [
        'an anyOf of 100,000 parts',
        (p: string) =>
          writeFileSync(
            p,
            JSON.stringify({
              offramp_policy: 1,
              name: 'anyOf',
              options: { policies: Array.from({ length: 100_000 }, () => ({ name: 'confidence', options: {} })) },
            }),
          ),
        /at most 32/,
      ],
    ] as const
  ).map(
    ([what, make, message]): HostileCase => ({
      name: `a policy file that is ${what}`,
      setup: async (dir) => {
        const model = await makeModel(join(dir, 'model'));
        make(join(dir, 'policy.json'));
        return [
          'eval',
          '-m',
          model,
          '-d',
          makeJsonl(join(dir, 'rows.jsonl'), 20),
          '-p',
          `file:${join(dir, 'policy.json')}`,
          '--device',
          'cpu',
          '--json',
        ];
      },
      code: 2,
      stderr: [message],
      notStderr: [/Maximum call stack/, /fn policy_decide/],
    }),
  ),
  // trace files (eval --trace FILE): stale, tampered, hostile
  ...(
    [
      [
        'recorded with other weights of the same architecture',
        async (dir: string, trace: string) => {
          await makeModel(join(dir, 'model'), 4); // the model is replaced by one with other weights
          return trace;
        },
        /recorded with other weights/,
      ],
      [
        'tampered: a max probability of 5',
        async (_dir: string, trace: string) => {
          const t = JSON.parse(readFileSync(trace, 'utf8'));
          t.max_prob[0] = 5;
          writeFileSync(trace, JSON.stringify(t));
          return trace;
        },
        /max_prob/,
      ],
      [
        'tampered: a negative entropy',
        async (_dir: string, trace: string) => {
          const t = JSON.parse(readFileSync(trace, 'utf8'));
          t.entropy[1] = -0.5;
          writeFileSync(trace, JSON.stringify(t));
          return trace;
        },
        /entropy/,
      ],
      [
        'a /dev/zero symlink',
        async (_dir: string, trace: string) => {
          rmSync(trace);
          devZero(trace);
          return trace;
        },
        /trace\.json is not a regular file/,
      ],
      [
        'nested 1,000,000 levels deep',
        async (_dir: string, trace: string) => {
          writeFileSync(trace, `{"offramp_trace":2,"meta":${'['.repeat(1e6)}${']'.repeat(1e6)}}`);
          return trace;
        },
        /trace\.json.*(nest|levels)/,
      ],
    ] as const
  ).map(
    ([what, spoil, message]): HostileCase => ({
      name: `a trace file ${what}`,
      setup: async (dir) => {
        const model = await makeModel(join(dir, 'model'));
        const rows = makeJsonl(join(dir, 'rows.jsonl'), 20);
        const trace = join(dir, 'trace.json');
        const rec = cli(['trace', '-m', model, '-d', rows, '--device', 'cpu', '-o', trace, '-q'], { cwd: dir });
        if (rec.code !== 0) throw new Error(`offramp trace failed: ${rec.stderr}`);
        await spoil(dir, trace);
        return ['eval', '-m', model, '-d', rows, '--trace', trace, '--measure', 'none', '--device', 'cpu', '--json'];
      },
      code: 2,
      stderr: [message],
      notStderr: [/Maximum call stack/],
    }),
  ),
  {
    name: 'a batch whose activations exceed the GPU binding limit',
    gpu: true,
    setup: async (dir) => {
      const wide: MlpClassifierConfig = {
        architecture: 'mlp_classifier',
        input_size: 16,
        hidden_size: 65_536,
        num_layers: 1,
        num_classes: 4,
        exits: { blocks: [0], head: 'linear' },
      };
      const model = join(dir, 'wide');
      await saveModelDir(model, { offramp_format: 1, model: wide }, randomWeights(wide, 1));
      return [
        'eval',
        '-m',
        model,
        '-d',
        makeJsonl(join(dir, 'rows.jsonl'), 8),
        '--device',
        'gpu',
        '-b',
        '4096',
        '--json',
      ];
    },
    code: 2,
    stderr: [
      /tensor '[^']+' \(binding '[a-z]+'\) is 1073741824 bytes \(65536 values per row × 4096 rows\), over this device's maxStorageBufferBindingSize of \d+ bytes; use a batch of at most \d+ rows/,
    ],
    notStderr: [/Invalid BindGroup/],
  },
];

// ---------------------------------------------------------------------------------------------------------

beforeAll(async () => {
  ensureBuilt();
  root = tempDir('hostile');
  probe = join(root, 'rss-probe.mjs');
  writeFileSync(
    probe,
    `import { readFileSync, writeFileSync } from 'node:fs';
const out = process.env.OFFRAMP_TEST_RSS_FILE;
// the binary runs its command in a child with the same flags: each process keeps the largest peak seen
process.on('exit', () => {
  if (!out) return;
  let prev = 0;
  try { prev = Number(readFileSync(out, 'utf8')) || 0; } catch {}
  writeFileSync(out, String(Math.max(prev, process.resourceUsage().maxRSS)));
});
`,
  );
  try {
    (await createGpuDevice()).destroy();
    hasGpu = true;
  } catch {
    hasGpu = false;
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.concurrent('hostile inputs fail cleanly: exit code, a message naming the file, clean stdout, bounded time and memory', () => {
  it.for(HOSTILE_CASES)('$name', async (c, { expect, skip }) => {
    if (c.gpu && !hasGpu) skip();
    const dir = join(root, c.name.replace(/[^A-Za-z0-9]+/g, '-'));
    mkdirSync(dir, { recursive: true });
    const args = await c.setup(dir);
    const r = await runCli(args, dir);
    const what = `offramp ${args.map((a) => (a.length > 60 ? `${a.slice(0, 20)}…(${a.length} chars)` : a)).join(' ')}\nstderr: ${r.stderr.slice(0, 2000)}`;
    expect(r.signal, `killed after ${CASE_TIMEOUT_MS} ms: ${what}`).toBeNull();
    expect(r.ms, what).toBeLessThan(CASE_TIMEOUT_MS);
    expect(r.code, what).toBe(c.code ?? 1);
    for (const re of c.stderr) expect(r.stderr, what).toMatch(re);
    for (const re of c.notStderr ?? []) expect(r.stderr, what).not.toMatch(re);
    expect(r.stderr, what).not.toMatch(stack);
    // --json output: a failed command leaves stdout empty (no Dawn text, no partial JSON, no error lines)
    expect(r.stdout, what).toBe('');
    expect(r.maxRssBytes, `no memory report: ${what}`).not.toBeNull();
    expect(r.maxRssBytes!, `peak RSS ${Math.round(r.maxRssBytes! / 2 ** 20)} MiB: ${what}`).toBeLessThan(MAX_RSS_BYTES);
  });
});

describe('weights with NaN load with a warning on stderr, and the command still runs', () => {
  it('eval --json: JSON alone on stdout, the warning names the tensor and the count', async () => {
    const dir = join(root, 'nan');
    mkdirSync(dir, { recursive: true });
    const w = randomWeights(NAN_MLP, 3);
    const t = w.get('blocks.2.fc.weight')!;
    const data = Float32Array.from(t.data);
    data[1] = Number.NaN;
    data[2] = Number.NaN;
    w.set('blocks.2.fc.weight', { ...t, data });
    const model = join(dir, 'nan-mlp');
    await saveModelDir(model, { offramp_format: 1, model: NAN_MLP }, w);
    const args = ['eval', '-m', model, '-d', makeJsonl(join(dir, 'rows.jsonl'), 16), '--device', 'cpu', '--json'];
    const r = await runCli(args, dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /warning: .*model\.safetensors: tensor blocks\.2\.fc\.weight has 2 non-finite values of 576 \(2 NaN, 0 ±Infinity\)/,
    );
    const json = JSON.parse(r.stdout);
    expect(json.command).toBe('eval');
    expect(r.stdout).not.toContain('warning');
    expect(r.maxRssBytes!).toBeLessThan(MAX_RSS_BYTES);
  });
});
