// Custom training on users' files (tiny MLP runs on the tfjs CPU backend, seconds each): --limit, held-out labels
// mapped through the training classes, paths from the given folder, the time budget, and an honest model card.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelDir } from '@offramp/core/node';
import { describe, expect, it } from 'vitest';
import { trainCustom } from './custom.js';
import { epochsText } from './finish.js';
import { Progress } from './progress.js';

const dir = mkdtempSync(join(tmpdir(), 'offramp-custom-'));
const quiet = () => new Progress({ stream: { write: () => true }, tty: false });

/** n rows of 6 features; class = which half holds the larger values (learnable). */
function rows(n: number, labels: string[], seed = 1): string {
  let s = seed;
  const r = () => {
    s = (s * 16807) % 2147483647;
    return s / 2147483647;
  };
  return Array.from({ length: n }, (_, i) => {
    const c = i % labels.length;
    const image = Array.from({ length: 6 }, (_, j) => Number((r() * 0.5 + (j < 3 === (c === 0) ? 0.5 : 0)).toFixed(3)));
    return JSON.stringify({ image, label: labels[c] });
  }).join('\n');
}

mkdirSync(join(dir, 'data'));
writeFileSync(join(dir, 'data', 'train.jsonl'), rows(120, ['neg', 'pos']));
// held-out rows of one class only: by its own label set 'pos' would be class 0
writeFileSync(join(dir, 'data', 'test.jsonl'), rows(30, ['pos'], 5));

describe('trainCustom', () => {
  it('honours --limit, maps held-out labels through the training classes and resolves paths from cwd', async () => {
    const { run, result } = await trainCustom({
      cwd: dir,
      data: 'data/train.jsonl',
      test: 'data/test.jsonl',
      limit: 40,
      epochs: 2,
      batch: 8,
      backend: 'cpu',
      progress: quiet(),
    });
    expect([run.train.n, run.test.n]).toEqual([40, 30]);
    expect(Array.from(run.test.labels)).toEqual(new Array(30).fill(1));
    expect(run.outDir).toBe(join(dir, 'train-model'));
    expect(result.epochsRun).toEqual([2]);
    expect(result.stopped).toBeUndefined();
    const card = readFileSync(join(dir, 'train-model', 'MODEL_CARD.md'), 'utf8');
    expect(card).toContain('An MLP classifier with exits trained on train.jsonl.');
    expect(card).toContain(', 2 epochs, 10 steps');
    expect(card).toContain('40 training rows, 30 held-out rows from test.jsonl');
    const { config } = await loadModelDir(join(dir, 'train-model'));
    expect(config.meta?.class_names).toEqual(['neg', 'pos']);
  });

  it('refuses a held-out label the training data does not have, naming the label, file and line', async () => {
    writeFileSync(join(dir, 'data', 'unseen.jsonl'), `${rows(2, ['neg'])}\n${rows(1, ['maybe'])}`);
    await expect(
      trainCustom({ cwd: dir, data: 'data/train.jsonl', test: 'data/unseen.jsonl', backend: 'cpu', progress: quiet() }),
    ).rejects.toThrow(
      `${join(dir, 'data', 'unseen.jsonl')}, line 3: label "maybe" is not one of the 2 classes of the training data (train.jsonl) ("neg", "pos")`,
    );
  });

  it('stops cleanly at the time budget and still writes a valid model whose card says so', async () => {
    const { run, result } = await trainCustom({
      cwd: dir,
      data: 'data/train.jsonl',
      out: 'budget',
      minutes: 0.002,
      epochs: 1000,
      batch: 8,
      backend: 'cpu',
      progress: quiet(),
    });
    expect(run.name).toBe('budget'); // the --out folder's name
    expect(result.stopped).toBe('time-budget');
    expect(result.epochsRun[0]).toBeLessThan(1000);
    expect(result.epochsRun[0]).toBe(result.state.step / 12);
    const card = readFileSync(join(dir, 'budget', 'MODEL_CARD.md'), 'utf8');
    expect(card).toMatch(/ of 1000 planned epochs \(stopped at the time budget of 0s\), \d+ steps/);
    expect(card).toContain('Training stopped at the time budget');
    const { config } = await loadModelDir(join(dir, 'budget'));
    expect((config.meta?.training as { stopped?: string } | undefined)?.stopped).toBe('time-budget');
  });

  it('says what was wrong with the options', async () => {
    const base = { cwd: dir, data: 'data/train.jsonl', backend: 'cpu' as const, progress: quiet() };
    await expect(trainCustom({ ...base, minutes: 0 })).rejects.toThrow('--minutes must be a number of minutes > 0');
    await expect(trainCustom({ ...base, limit: 0 })).rejects.toThrow('--limit must be an integer >= 1, got 0');
    await expect(trainCustom({ ...base, arch: 'encoder' })).rejects.toThrow('holds images, not texts');
    await expect(trainCustom({ ...base, name: '../x' })).rejects.toThrow("--name '../x'");
    await expect(trainCustom({ ...base, data: 'data/none.jsonl' })).rejects.toThrow(/none.jsonl does not exist/);
  });
});

describe('epochsText', () => {
  it('says the planned epochs, or those run and why training stopped', () => {
    expect(epochsText({ epochs: 10 }, { epochsRun: [10] })).toBe('10 epochs');
    expect(epochsText({ epochs: 1 }, { epochsRun: [1] })).toBe('1 epoch');
    expect(epochsText({ epochs: [3, 2] }, { epochsRun: [3, 2] })).toBe('3 + 2 epochs (per stage)');
    expect(epochsText({ epochs: 10, maxSteps: 40 }, { epochsRun: [0.4], stopped: 'max-steps' })).toBe(
      '0.4 of 10 planned epochs (stopped at --max-steps 40)',
    );
    expect(epochsText({ epochs: 10, timeBudgetSeconds: 120 }, { epochsRun: [2.5], stopped: 'time-budget' })).toBe(
      '2.5 of 10 planned epochs (stopped at the time budget of 2m00s)',
    );
  });
});
