import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.js';
import { readBoundedFile, readBoundedFileSync, readBoundedText, resolveInside } from './files.js';

const dir = mkdtempSync(join(tmpdir(), 'offramp-files-'));
const opts = { maxBytes: 1024, what: 'a test file' };

describe('readBoundedFile', () => {
  it('reads a regular file and strips a BOM from text', async () => {
    const p = join(dir, 'a.json');
    writeFileSync(p, '\ufeff{"x":1}');
    expect(await readBoundedText(p, opts)).toBe('{"x":1}');
    expect(readBoundedFileSync(p, opts).length).toBe(10);
  });

  it('rejects a file over the cap before reading it, naming the file and the cap', async () => {
    const p = join(dir, 'big.bin');
    writeFileSync(p, Buffer.alloc(2048));
    await expect(readBoundedFile(p, opts)).rejects.toThrow(/big\.bin is 2\.0 KiB, larger than the 1\.0 KiB allowed/);
  });

  it('rejects devices, directories and missing files with a clear error', async () => {
    await expect(readBoundedFile('/dev/zero', opts)).rejects.toThrow(/not a regular file/);
    expect(() => readBoundedFileSync('/dev/zero', opts)).toThrow(FormatError);
    await expect(readBoundedFile(dir, opts)).rejects.toThrow(/is a directory/);
    await expect(readBoundedFile(join(dir, 'nope'), opts)).rejects.toThrow(/nope does not exist; expected a test file/);
  });

  it('does not hang on a FIFO', async () => {
    const p = join(dir, 'fifo');
    execFileSync('mkfifo', [p]);
    const t0 = Date.now();
    await expect(readBoundedFile(p, opts)).rejects.toThrow(/not a regular file/);
    expect(() => readBoundedFileSync(p, opts)).toThrow(/not a regular file/);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('names a symbolic-link loop', async () => {
    const p = join(dir, 'loop');
    symlinkSync(p, p);
    await expect(readBoundedFile(p, opts)).rejects.toThrow(/symbolic link loop/);
  });
});

describe('resolveInside', () => {
  const root = join(dir, 'model');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'vocab.txt'), 'a\n');
  symlinkSync('/etc/passwd', join(root, 'escape.txt'));

  it('accepts names inside the folder', () => {
    expect(resolveInside(root, 'vocab.txt', 'config.json')).toBe(join(root, 'vocab.txt'));
    expect(resolveInside(root, './sub/../vocab.txt', 'config.json')).toBe(join(root, 'vocab.txt'));
  });

  it('rejects absolute paths, .. escapes and symbolic links leading out', () => {
    expect(() => resolveInside(root, '/etc/passwd', 'config.json')).toThrow(/outside the folder/);
    expect(() => resolveInside(root, '../../etc/passwd', 'config.json')).toThrow(/outside the folder/);
    expect(() => resolveInside(root, 'escape.txt', 'config.json')).toThrow(/outside the folder/);
    expect(() => resolveInside(root, '', 'config.json')).toThrow(/non-empty relative file name/);
  });
});
