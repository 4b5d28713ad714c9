// docs/plugins.md quotes real code only: every js/ts/json block is marked with the file it comes from
// (the example plugin, which its own test runs, or @offramp/core's source) and must appear there verbatim.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const root = join(import.meta.dirname, '../../..');
const doc = readFileSync(join(root, 'docs/plugins.md'), 'utf8');

it('every code block of docs/plugins.md is copied verbatim from the file its marker names', () => {
  const blocks = [...doc.matchAll(/(?:<!-- snippet: (\S+) -->\n)?```(\w*)\n([\s\S]*?)```/g)];
  const quoted = blocks.filter(([, , lang]) => lang !== 'sh');
  expect(quoted.length).toBeGreaterThanOrEqual(15);
  for (const [, file, lang, body] of quoted) {
    expect(file, `a ${lang} block without a snippet marker:\n${body}`).toBeDefined();
    const source = readFileSync(join(root, file), 'utf8');
    expect(source.includes(body), `${file} does not contain:\n${body}`).toBe(true);
  }
  // the example covers every part the guide promises
  const example = readFileSync(join(root, 'examples/policy-plugin/index.js'), 'utf8');
  for (const part of ['definePolicy({', 'sweep:', 'initState:', 'policy_state[i]', 'wgslFloat(', 'Math.fround('])
    expect(example).toContain(part);
  for (const word of ['NUM_EXITS', 'NUM_CLASSES', 'ExitContext', 'PolicyInit', 'initState', 'u32', 'Int32Array'])
    expect(doc).toContain(word);
});
