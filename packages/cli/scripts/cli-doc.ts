// Writes docs/cli.md: each `offramp` command's help and the real output of a run on the shipped
// checkpoints (pasted as produced, colours off). Run after the checkpoints exist: pnpm docs:cli
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'packages', 'cli', 'dist', 'bin.js');
const tmp = mkdtempSync(join(tmpdir(), 'offramp-doc-'));
const env = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };

function run(args: string[]): { text: string; ms: number; code: number } {
  const t0 = Date.now();
  try {
    const out = execFileSync('node', [bin, ...args], {
      cwd: root,
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 1 << 26,
    });
    return { text: out, ms: Date.now() - t0, code: 0 };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    return { text: `${err.stdout ?? ''}${err.stderr ?? ''}`, ms: Date.now() - t0, code: err.status ?? 1 };
  }
}
const clean = (s: string) =>
  s
    .split('\n')
    .filter((l) => !/artificially reduced/.test(l))
    .join('\n')
    .replaceAll(tmp, '/tmp/offramp-doc')
    .replaceAll(`${root}/`, '') // paths inside the repository, relative to it: no machine's folders
    .trimEnd();

const sections: { title: string; about: string; args: string[] }[] = [
  {
    title: 'offramp demo',
    about: "The README's main job: the shipped Fashion-MNIST CNN on a slice of the test set.",
    args: ['demo', '--out', join(tmp, 'demo')],
  },
  {
    title: 'offramp inspect',
    about: 'Validates a model folder and shows its architecture, exits, parameters and FLOPs.',
    args: ['inspect', 'checkpoints/fashion-cnn'],
  },
  {
    title: 'offramp eval',
    about: 'Trace once, sweep every policy offline, re-run the chosen settings for real.',
    args: [
      'eval',
      '--model',
      'checkpoints/fashion-cnn',
      '--policies',
      'confidence,entropy,patience',
      '--limit',
      '1000',
      '--measure',
      'chosen',
      '--out',
      join(tmp, 'eval'),
    ],
  },
  {
    title: 'offramp calibrate',
    about: 'Chooses a threshold on the train split with a risk guarantee and writes a policy file.',
    args: [
      'calibrate',
      '--model',
      'checkpoints/fashion-cnn',
      '--policy',
      'confidence',
      '--risk',
      '0.05,0.1',
      '--limit',
      '2000',
      '--out',
      join(tmp, 'confidence.policy.json'),
    ],
  },
  {
    title: 'offramp trace',
    about: 'A full-depth trace of 2,000 training images, written to a file for offline replays and learned policies.',
    args: [
      'trace',
      '--model',
      'checkpoints/fashion-cnn',
      '--split',
      'train',
      '--limit',
      '2000',
      '--out',
      join(tmp, 'fashion-train.trace.json'),
    ],
  },
  {
    title: 'offramp eval with a policy file',
    about: 'The calibrated policy, evaluated on the test split.',
    args: [
      'eval',
      '--model',
      'checkpoints/fashion-cnn',
      '--policies',
      `file:${join(tmp, 'confidence.policy.json')}`,
      '--limit',
      '1000',
      '--measure',
      'none',
      '--out',
      join(tmp, 'eval2'),
    ],
  },
  {
    title: 'offramp generate',
    about: 'Token-level early exit in the shipped character-level Mamba LM.',
    args: [
      'generate',
      '--model',
      'checkpoints/austen-mamba',
      '--prompt',
      'It is a truth universally acknowledged',
      '--max-tokens',
      '80',
      '--policy',
      'confidence:threshold=0.5',
      '--skip',
      'partial',
    ],
  },
  {
    title: 'offramp bench',
    about: 'Summaries of the last benchmark results (`--no-run` skips running them).',
    args: ['bench', '--no-run'],
  },
  {
    title: 'offramp new policy',
    about: 'Scaffolds a policy plugin that passes the conformance kit.',
    args: ['new', 'policy', 'my-rule', '--dir', join(tmp, 'my-rule')],
  },
  {
    title: 'offramp train',
    about: 'Trains a model with exits on your own data (`--data FILE`), or runs one of the training recipes.',
    args: ['train', '--help'],
  },
  {
    title: 'offramp data',
    about: 'Where the dataset cache is (fetched on first use, or with `offramp data fetch [names]`).',
    args: ['data', 'where'],
  },
  {
    title: 'offramp serve',
    about:
      'The HTTP server (`@offramp/server`): classifiers on /v1/classify, Mamba language models on the OpenAI-compatible completion routes. See packages/server/README.md for requests and real answers.',
    args: ['serve', '--help'],
  },
  {
    title: 'Errors',
    about: 'A misspelt policy name.',
    args: ['eval', '--model', 'checkpoints/fashion-cnn', '--policies', 'entorpy'],
  },
];

const out: string[] = [
  '# The `offramp` command line',
  '',
  'Generated by `pnpm docs:cli` (packages/cli/scripts/cli-doc.ts): every block below is the real output',
  `of the command on this machine (${new Date().toISOString().slice(0, 10)}), colours off. Exit codes: 0 ok, 1 runtime error, 2 usage error.`,
  '',
];
out.push('## offramp --help', '', '```', clean(run(['--help']).text), '```', '');
for (const s of sections) {
  console.error(`cli-doc: ${s.title} ...`);
  const r = run(s.args);
  out.push(
    `## ${s.title}`,
    '',
    s.about,
    '',
    '```sh',
    `$ offramp ${s.args
      .map((a) => (a.includes(' ') ? `'${a}'` : a))
      .join(' ')
      .replaceAll(tmp, '/tmp/offramp-doc')}`,
    '```',
    '',
    '```',
    clean(r.text),
    '```',
    '',
    `(exit code ${r.code}, ${(r.ms / 1000).toFixed(1)} s)`,
    '',
  );
}
mkdirSync(join(root, 'docs'), { recursive: true });
writeFileSync(join(root, 'docs', 'cli.md'), `${out.join('\n')}\n`);
rmSync(tmp, { recursive: true, force: true });
console.error('cli-doc: wrote docs/cli.md');
