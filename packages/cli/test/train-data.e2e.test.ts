// End-to-end through the built binary, run from a folder outside the checkout: `offramp train --data FILE` trains
// on the user's file (relative paths from the caller's folder), and eval maps a file's labels through the
// model's class names (a one-class file scores its true accuracy; an unseen label is an error naming it).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, ensureBuilt, makeRows, tempDir } from './helpers.js';

let dir: string;
const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at .+:\d+:\d+/);
const names = ['north', 'east', 'south', 'west'];
// the model's classes: the training labels sorted (west stays index 3)
const classes = ['east', 'north', 'south', 'west'];

beforeAll(() => {
  ensureBuilt();
  dir = tempDir('train-data');
  const lines = (rows: { image: number[]; label: number }[], label: (l: number) => unknown) =>
    `${rows.map((r) => JSON.stringify({ image: r.image, label: label(r.label) })).join('\n')}\n`;
  const rows = makeRows(160, 3);
  writeFileSync(
    join(dir, 'train.jsonl'),
    lines(rows, (l) => names[l]),
  );
  // held-out rows of one class only, with string and with integer labels
  const west = makeRows(400, 9)
    .filter((r) => r.label === 3)
    .slice(0, 24);
  writeFileSync(
    join(dir, 'west.jsonl'),
    lines(west, (l) => names[l]),
  );
  writeFileSync(
    join(dir, 'west-ids.jsonl'),
    lines(west, (l) => l),
  );
  writeFileSync(
    join(dir, 'unseen.jsonl'),
    lines(west.slice(0, 2), (l) => names[l]) + lines(west.slice(0, 1), () => 'up'),
  );
  writeFileSync(join(dir, 'bad.jsonl'), '{"image":[1,2],"label":"a"}\n{"image":[1,2],"label":"b","x\\u001b[31m":1}\n');
});

describe('offramp train --data FILE', () => {
  it('trains from a folder outside the checkout and writes ./NAME with a card; eval maps labels by class name', () => {
    const t = cli(
      [
        'train',
        '--data',
        'train.jsonl',
        '--arch',
        'mlp',
        '--epochs',
        '10',
        '--batch',
        '16',
        '--backend',
        'cpu',
        '--json',
      ],
      {
        cwd: dir,
      },
    );
    expect(t.stderr).not.toContain('ERR_PNPM');
    expect(t.code).toBe(0);
    const res = JSON.parse(t.stdout) as { recipe: string; out: string };
    expect(res.recipe).toBe('custom');
    expect(res.out).toBe(join(dir, 'train-model'));
    const card = readFileSync(join(dir, 'train-model', 'MODEL_CARD.md'), 'utf8');
    expect(card).toContain('An MLP classifier with exits trained on train.jsonl.');
    expect(card).toMatch(/, 10 epochs, \d+ steps/);
    expect(card).toContain('Reproduce: `offramp train --data train.jsonl --arch mlp --epochs 10');
    expect(t.stderr).toMatch(/about \d+s per epoch/);
    expect(card).not.toMatch(/Reproduce:.*--json/);

    // one-class file: the accuracy is the true one, the same as with integer labels (3 = west)
    const accOf = (file: string) => {
      const r = cli(['eval', '-m', 'train-model', '-d', file, '-p', 'confidence', '--json'], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      const j = JSON.parse(r.stdout) as { full: { accuracy: number }; data: { classNames: string[] } };
      expect(j.data.classNames).toEqual(classes);
      return j.full.accuracy;
    };
    const byId = accOf('west-ids.jsonl');
    expect(accOf('west.jsonl')).toBe(byId);
    expect(byId).toBeGreaterThan(0.5);

    const u = cli(['eval', '-m', 'train-model', '-d', 'unseen.jsonl'], { cwd: dir });
    expect(u.code).toBe(2);
    expect(u.stderr).toContain(
      `${join(dir, 'unseen.jsonl')}, line 3: label "up" is not one of the 4 classes of the model ("east", "north", "south", "west")`,
    );
    noStack(u.stderr);
  });

  it('says what is wrong without stack traces', () => {
    const bad = cli(['train', '--data', 'bad.jsonl', '--backend', 'cpu'], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${join(dir, 'bad.jsonl')}, line 2: fields are {image, label, "x\\u001b[31m"}`);
    expect(bad.stderr).not.toContain('\u001b[31m');
    expect(bad.stderr).not.toContain('ERR_PNPM');
    noStack(bad.stderr);
    const missing = cli(['train', '--data', 'nope.jsonl'], { cwd: dir });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("data file 'nope.jsonl' does not exist");
    const custom = cli(['train', 'custom'], { cwd: dir });
    expect(custom.code).toBe(2);
    expect(custom.stderr).toContain('give --data FILE');
    const recipe = cli(['train', 'fashion-cnn', '--data', 'train.jsonl'], { cwd: dir });
    expect(recipe.code).toBe(2);
    expect(recipe.stderr).toContain('leave the recipe out: offramp train --data train.jsonl');
    const named = cli(['train', '--data', 'imdb'], { cwd: dir });
    expect(named.code).toBe(2);
    expect(named.stderr).toContain('offramp train imdb-encoder');
    for (const r of [bad, missing, custom, recipe, named]) noStack(r.stderr);
    expect(existsSync(join(dir, 'bad-model'))).toBe(false);
  });

  it('documents training on your own data in --help', () => {
    const h = cli(['train', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('offramp train --data train.jsonl');
    expect(h.stdout).not.toContain('not available');
  });
});
