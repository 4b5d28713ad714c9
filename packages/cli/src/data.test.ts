// Evaluation data from users' files: labels map through the model's class names (meta.class_names, or the
// classes of the named dataset it was trained on), never through the file's own label set.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfigEnvelope, MlpClassifierConfig } from '@offramp/core';
import { describe, expect, it } from 'vitest';
import { loadEvalData, modelClassNames } from './data.js';

const dir = mkdtempSync(join(tmpdir(), 'offramp-cli-data-'));
const mlp: MlpClassifierConfig = {
  architecture: 'mlp_classifier',
  input_size: 2,
  hidden_size: 4,
  num_layers: 2,
  num_classes: 2,
  exits: { blocks: [0, 1], head: 'linear' },
};
const env = (meta: Record<string, unknown>): ConfigEnvelope => ({ offramp_format: 1, model: mlp, meta });
const rows = (labels: unknown[]) => labels.map((label, i) => JSON.stringify({ image: [i, 1], label })).join('\n');
let n = 0;
const file = (content: string, ext = 'jsonl') => {
  const p = join(dir, `d${n++}.${ext}`);
  writeFileSync(p, content);
  return p;
};

describe('loadEvalData maps file labels through the model classes', () => {
  it('a file holding one class gets that class index, not 0', async () => {
    const f = file(rows(['spam', 'spam', 'spam']));
    const d = await loadEvalData(env({ class_names: ['ham', 'spam'] }), dir, { spec: f });
    expect(Array.from(d.labels)).toEqual([1, 1, 1]);
    expect(d.classNames).toEqual(['ham', 'spam']);
    const c = await loadEvalData(env({ class_names: ['ham', 'spam'] }), dir, {
      spec: file('image,label\n0 1,spam\n', 'csv'),
    });
    expect(Array.from(c.labels)).toEqual([1]);
  });

  it('an unseen label is an error naming the label, the file and the line', async () => {
    const f = file(`${rows(['ham'])}\n\n${rows(['eggs'])}`);
    await expect(loadEvalData(env({ class_names: ['ham', 'spam'] }), dir, { spec: f })).rejects.toThrow(
      `${f}, line 3: label "eggs" is not one of the 2 classes of the model ("ham", "spam")`,
    );
    const big = file(rows([0, 2]));
    await expect(loadEvalData(env({}), dir, { spec: big })).rejects.toThrow(
      `${big}, line 2: label 2 is not a class of the model: labels are 0..1`,
    );
  });

  it('a file of the wrong kind is refused before its labels are mapped', async () => {
    const f = file(`${JSON.stringify({ text: 'hello', label: 'maybe' })}\n`);
    await expect(loadEvalData(env({ class_names: ['ham', 'spam'] }), dir, { spec: f })).rejects.toThrow(
      `${f} holds text data ({text, label} rows) but the model takes image data ({image, label} rows)`,
    );
  });

  it('without class names, integer labels are indices and string labels are refused', async () => {
    const f = file(rows([1, 1]));
    expect(Array.from((await loadEvalData(env({}), dir, { spec: f })).labels)).toEqual([1, 1]);
    await expect(loadEvalData(env({}), dir, { spec: file(rows(['a'])) })).rejects.toThrow(
      /line 1: label "a" cannot be mapped: the model has no class names/,
    );
  });

  it('class names come from meta.class_names or the dataset the model was trained on, checked', async () => {
    expect(await modelClassNames(env({ class_names: ['x', 'y'] }))).toEqual(['x', 'y']);
    expect(await modelClassNames(env({ dataset: 'IMDB movie reviews' }))).toEqual(['negative', 'positive']);
    expect(await modelClassNames(env({ dataset: 'synthetic' }))).toBeUndefined();
    await expect(modelClassNames(env({ class_names: ['x'] }))).rejects.toThrow(
      'meta.class_names has 1 names but the model has num_classes = 2',
    );
    const d = await loadEvalData(env({ dataset: 'IMDB' }), dir, { spec: file(rows(['positive'])) });
    expect(Array.from(d.labels)).toEqual([1]);
  });
});
