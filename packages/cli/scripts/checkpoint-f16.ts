// Rewrites a checkpoint folder's model.safetensors with every float tensor stored as F16 (IEEE binary16,
// rounded to nearest even). The safetensors `__metadata__` is kept; integer tensors are left as they are;
// config.json gets `meta.weights_dtype: "F16"` and nothing else changes. A tensor with a value outside
// F16's finite range (|x| > 65504) or a non-finite value stops the conversion before anything is written.
//   pnpm checkpoints:f16 checkpoints/imdb-encoder [more folders...] [--dry-run]
// Prints, per tensor, the largest absolute rounding error, and the file size before and after.
// Check a converted model before shipping it: trace it (offramp trace) before and after and compare.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  halfToNumber,
  numberToHalf,
  parseSafetensors,
  type SafetensorsDType,
  type TensorInput,
  writeSafetensors,
} from '@offramp/core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const F16_MAX = 65504;
const FLOAT_DTYPES: readonly SafetensorsDType[] = ['F64', 'F32', 'BF16', 'F16'];

const args = process.argv.slice(2);
const dryRun = args.includes('--dry-run');
const dirs = args.filter((a) => !a.startsWith('--'));
if (!dirs.length) {
  console.error('usage: checkpoint-f16.ts <checkpoint dir>... [--dry-run]');
  process.exit(2);
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

function convert(dirArg: string): void {
  // relative to where the command was typed (pnpm runs the script in packages/cli), else to the repository
  const typed = resolve(process.env.INIT_CWD ?? process.cwd(), dirArg);
  const dir = existsSync(typed) ? typed : resolve(root, dirArg);
  const file = join(dir, 'model.safetensors');
  const configFile = join(dir, 'config.json');
  if (!existsSync(file)) throw new Error(`${dirArg}: no model.safetensors in ${dir}`);
  const before = readFileSync(file);
  const parsed = parseSafetensors(new Uint8Array(before.buffer, before.byteOffset, before.byteLength), {
    copy: true,
  });
  const out = new Map<string, TensorInput>();
  const report: string[] = [];
  let converted = 0;
  let worst = 0;
  for (const [name, t] of parsed.tensors) {
    if (!FLOAT_DTYPES.includes(t.dtype)) {
      out.set(name, { dtype: t.dtype, shape: t.shape, data: t.data });
      report.push(`  ${name} [${t.shape.join(', ')}] ${t.dtype}: kept`);
      continue;
    }
    let maxErr = 0;
    let maxAbs = 0;
    const data = t.data;
    for (let i = 0; i < data.length; i++) {
      const x = data[i];
      if (!Number.isFinite(x))
        throw new Error(`${dirArg}: tensor ${name} element ${i} is ${x}; only finite values can be stored`);
      const a = Math.abs(x);
      if (a > F16_MAX)
        throw new Error(
          `${dirArg}: tensor ${name} element ${i} is ${x}, beyond F16's largest finite value ±${F16_MAX}; nothing written`,
        );
      if (a > maxAbs) maxAbs = a;
      const err = Math.abs(halfToNumber(numberToHalf(x)) - x);
      if (err > maxErr) maxErr = err;
    }
    if (maxErr > worst) worst = maxErr;
    if (t.dtype !== 'F16') converted++;
    out.set(name, { dtype: 'F16', shape: t.shape, data });
    report.push(
      `  ${name} [${t.shape.join(', ')}] ${t.dtype} → F16: max |x| ${maxAbs.toPrecision(4)}, max |rounding error| ${maxErr.toExponential(2)}`,
    );
  }
  const bytes = writeSafetensors(out, Object.keys(parsed.metadata).length ? parsed.metadata : undefined);
  // the written file must read back to exactly the rounded values
  const back = parseSafetensors(bytes);
  for (const [name, t] of parsed.tensors) {
    const b = back.tensors.get(name);
    if (!b) throw new Error(`${dirArg}: tensor ${name} missing after writing`);
    if (FLOAT_DTYPES.includes(t.dtype))
      for (let i = 0; i < t.data.length; i++)
        if (b.data[i] !== halfToNumber(numberToHalf(t.data[i])))
          throw new Error(`${dirArg}: tensor ${name} element ${i} does not read back as written`);
  }
  console.log(`${basename(dir)}:`);
  for (const line of report) console.log(line);
  console.log(
    `  ${converted} of ${parsed.tensors.size} tensors converted to F16; largest rounding error ${worst.toExponential(2)}; model.safetensors ${before.byteLength} → ${bytes.byteLength} bytes (${kb(before.byteLength)} → ${kb(bytes.byteLength)})${dryRun ? ' [dry run: nothing written]' : ''}`,
  );
  if (dryRun) return;
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, file);
  if (existsSync(configFile)) {
    const text = readFileSync(configFile, 'utf8');
    const config = JSON.parse(text) as { meta?: Record<string, unknown> };
    if (config.meta?.weights_dtype !== 'F16') {
      config.meta = { ...(config.meta ?? {}), weights_dtype: 'F16' };
      writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
    }
  }
}

let failed = false;
for (const d of dirs) {
  try {
    convert(d);
  } catch (e) {
    console.error(`checkpoint-f16: ${(e as Error).message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
