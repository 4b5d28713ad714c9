// The stderr filter drops exactly Dawn's adapter-limit notices, forwards everything else as it comes, and a
// process run through it keeps its exit code and its other stderr output (native-style writes to fd 2).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLI_DIR, ensureBuilt } from '../../test/helpers.js';
import { DAWN_LIMIT_WARNING, dawnWarningFilter } from './dawn-stderr.js';

const U =
  'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.';
const S =
  'Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.';

function through(chunks: string[]): { out: string; writes: string[] } {
  const writes: string[] = [];
  const f = dawnWarningFilter((t) => writes.push(t));
  for (const c of chunks) f.push(c);
  f.end();
  return { out: writes.join(''), writes };
}

describe('dawnWarningFilter', () => {
  it('drops the two notices, whole lines only, however the writes are split', () => {
    const text = `${U}\n${S}\nreal error: device lost\n`;
    expect(through([text]).out).toBe('real error: device lost\n');
    // split at every character
    expect(through(text.split('')).out).toBe('real error: device lost\n');
    expect(through([`${U}\r\n`, 'x\n']).out).toBe('x\n');
  });

  it('forwards everything else unchanged, near misses and mid-line text included', () => {
    const kept = [
      'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16.\n',
      `error: ${U}\n`,
      `${U} (and more)\n`,
      'Warning: something else entirely\n',
    ];
    expect(through(kept).out).toBe(kept.join(''));
    // a line that started in an earlier write is never taken for a notice
    expect(through(['progress 10%', `${U}\n`]).out).toBe(`progress 10%${U}\n`);
    expect(DAWN_LIMIT_WARNING.test(U) && DAWN_LIMIT_WARNING.test(S)).toBe(true);
  });

  it('does not hold back text that cannot be a notice (progress bars redraw without newlines)', () => {
    const { writes } = through(['\rbar 1/3', '\rbar 2/3']);
    expect(writes).toEqual(['\rbar 1/3', '\rbar 2/3']);
    // a partial notice is held until its line ends, then dropped; a partial non-notice is flushed at the end
    expect(through(['Warning: maxDyn']).out).toBe('Warning: maxDyn');
  });

  it('a script run through it loses the notices written natively to fd 2 and keeps the rest and its exit code', () => {
    const dir = mkdtempSync(join(tmpdir(), 'offramp-dawn-stderr-'));
    const script = join(dir, 'script.mjs');
    ensureBuilt();
    const mod = pathToFileURL(join(CLI_DIR, 'dist', 'util', 'dawn-stderr.js')).href;
    writeFileSync(
      script,
      `import { writeSync } from 'node:fs';
const { runFilteredChild, wantsFilteredChild } = await import(${JSON.stringify(mod)});
if (wantsFilteredChild()) process.exitCode = await runFilteredChild();
else {
  writeSync(2, ${JSON.stringify(`${U}\n${S.slice(0, 40)}`)});
  writeSync(2, ${JSON.stringify(`${S.slice(40)}\nreal problem\n`)});
  writeSync(1, 'out\\n');
  process.exitCode = 3;
}
`,
    );
    const env = { ...process.env, OFFRAMP_DAWN_WARNINGS: '', OFFRAMP_STDERR_FILTERED: '' };
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env });
    expect(r.stderr).toBe('real problem\n');
    expect(r.stdout).toBe('out\n');
    expect(r.status).toBe(3);
    // OFFRAMP_DAWN_WARNINGS=1 shows them
    const raw = spawnSync(process.execPath, [script], {
      encoding: 'utf8',
      env: { ...env, OFFRAMP_DAWN_WARNINGS: '1' },
    });
    expect(raw.stderr).toBe(`${U}\n${S}\nreal problem\n`);
  });
});
