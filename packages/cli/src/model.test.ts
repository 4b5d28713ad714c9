// Which loader a model directory needs: config.json says it, or the error says what the file lacks.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelKind } from './model.js';

function dirWith(config: string): string {
  const d = mkdtempSync(join(tmpdir(), 'offramp-model-kind-'));
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'config.json'), config);
  return d;
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  return 'no error';
}

describe('modelKind', () => {
  it('an Offramp classifier, a Mamba config in either key style, a config with a byte-order mark', () => {
    expect(modelKind(dirWith('{"offramp_format": 1, "model": {}}'))).toBe('classifier');
    expect(modelKind(dirWith('{"hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 50}'))).toBe('mamba-lm');
    expect(modelKind(dirWith('{"d_model": 64, "n_layer": 2, "vocab_size": 50}'))).toBe('mamba-lm');
    expect(modelKind(dirWith('{"model_type": "mamba"}'))).toBe('mamba-lm');
    expect(modelKind(dirWith('\ufeff{"offramp_format": 1}'))).toBe('classifier');
  });

  it('a config that is neither says what it lacks instead of blaming a Mamba field', () => {
    const d = dirWith('{"model": {"architecture": "mlp_classifier"}, "meta": {}}');
    const msg = errorOf(() => modelKind(d));
    expect(msg).toContain(
      `${join(d, 'config.json')} has neither offramp_format (an Offramp classifier) nor the fields of a Hugging Face Mamba config (hidden_size`,
    );
    expect(msg).toContain("it has 'model', 'meta'");
    expect(msg).not.toContain("missing 'hidden_size'");
    expect(errorOf(() => modelKind(dirWith('{}')))).toContain('it has no fields');
    expect(errorOf(() => modelKind(dirWith('[1, 2]')))).toContain('holds an array; a model config is a JSON object');
    expect(errorOf(() => modelKind(dirWith('{oops')))).toMatch(/config\.json is not valid JSON/);
  });
});
