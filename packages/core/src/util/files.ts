// Bounded file reads and contained paths (Node only). Every file Offramp reads goes through here: the path
// must name a regular file (not a directory, FIFO, socket or device such as /dev/zero) no larger than a cap,
// and a path named inside a file (a tokenizer in config.json, a shard in an index) must stay inside that
// file's folder. Errors name the file, what was wrong and what is allowed.
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { FormatError } from '../errors.js';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** Default caps, by kind of file. Callers pass their own where they know better. */
export const FILE_LIMITS = {
  /** config.json, policy files, manifests. */
  json: 16 * MiB,
  /** Trace files (a few hundred bytes per sample). */
  trace: 512 * MiB,
  /** Weights: one safetensors file (shards are checked one by one). */
  weights: 8 * GiB,
  /** User data files (JSONL, CSV) and tokenizer vocabularies. */
  data: 2 * GiB,
} as const;

export interface BoundedReadOptions {
  /** Largest size in bytes that is accepted. */
  maxBytes: number;
  /** What the file should be, for messages ("model config", "training data"). */
  what: string;
}

const O_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

function fmtBytes(n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(n % GiB ? 1 : 0)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(n % MiB ? 1 : 0)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/** A clear message for a failed open/read (ENOENT, EISDIR, ELOOP, EACCES, ...). */
export function describeFsError(path: string, e: unknown, what: string): FormatError {
  const code = (e as NodeJS.ErrnoException)?.code;
  const reason: Record<string, string> = {
    ENOENT: 'does not exist',
    EISDIR: 'is a directory',
    ENOTDIR: 'has a path component that is not a directory',
    ELOOP: 'is a symbolic link loop',
    EACCES: 'cannot be read (permission denied)',
    EPERM: 'cannot be read (operation not permitted)',
    ENAMETOOLONG: 'has a name that is too long',
    EMFILE: 'cannot be opened (too many open files)',
  };
  const r = (code && reason[code]) ?? `cannot be read (${code ?? (e as Error)?.message ?? String(e)})`;
  return new FormatError(`${path} ${r}; expected ${what}`, { cause: e });
}

function checkStat(
  path: string,
  st: { isFile(): boolean; isDirectory(): boolean; size: number },
  o: BoundedReadOptions,
) {
  if (!st.isFile()) {
    const kind = st.isDirectory() ? 'a directory' : 'not a regular file (a device, FIFO or socket)';
    throw new FormatError(`${path} is ${kind}; expected ${o.what} (a regular file)`);
  }
  if (st.size > o.maxBytes) {
    throw new FormatError(
      `${path} is ${fmtBytes(st.size)}, larger than the ${fmtBytes(o.maxBytes)} allowed for ${o.what}`,
    );
  }
}

function checkOptions(o: BoundedReadOptions): void {
  if (!Number.isFinite(o.maxBytes) || o.maxBytes < 0) throw new RangeError(`maxBytes must be ≥ 0, got ${o.maxBytes}`);
}

/**
 * Reads a whole regular file of at most `maxBytes`. The file is opened without blocking (a FIFO cannot hang
 * the process) and checked with fstat on the open descriptor, so a swapped path cannot slip past the check.
 */
export async function readBoundedFile(path: string, o: BoundedReadOptions): Promise<Buffer> {
  checkOptions(o);
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, O_FLAGS);
  } catch (e) {
    throw describeFsError(path, e, o.what);
  }
  try {
    const st = await fh.stat();
    checkStat(path, st, o);
    const buf = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < st.size) {
      const { bytesRead } = await fh.read(buf, off, st.size - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    if (off !== st.size) throw new FormatError(`${path} shrank while it was read (${off} of ${st.size} bytes)`);
    return buf;
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw describeFsError(path, e, o.what);
  } finally {
    await fh.close();
  }
}

/** Synchronous form of {@link readBoundedFile}. */
export function readBoundedFileSync(path: string, o: BoundedReadOptions): Buffer {
  checkOptions(o);
  let fd: number;
  try {
    fd = openSync(path, O_FLAGS);
  } catch (e) {
    throw describeFsError(path, e, o.what);
  }
  try {
    const st = fstatSync(fd);
    checkStat(path, st, o);
    const buf = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < st.size) {
      const n = readSync(fd, buf, off, st.size - off, off);
      if (n === 0) break;
      off += n;
    }
    if (off !== st.size) throw new FormatError(`${path} shrank while it was read (${off} of ${st.size} bytes)`);
    return buf;
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw describeFsError(path, e, o.what);
  } finally {
    closeSync(fd);
  }
}

/** UTF-8 text of a bounded file, a leading byte-order mark removed. */
export async function readBoundedText(path: string, o: BoundedReadOptions): Promise<string> {
  return stripBom((await readBoundedFile(path, o)).toString('utf8'));
}

/** Synchronous form of {@link readBoundedText}. */
export function readBoundedTextSync(path: string, o: BoundedReadOptions): string {
  return stripBom(readBoundedFileSync(path, o).toString('utf8'));
}

/** Removes one leading U+FEFF. */
export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function inside(root: string, p: string): boolean {
  const r = relative(root, p);
  return r === '' || (!r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r));
}

function containmentError(name: string, folder: string, from: string): FormatError {
  return new FormatError(
    `${from} names '${name}', which is outside the folder ${folder}; a path in ${from} must be relative and stay inside its folder`,
  );
}

/**
 * Resolves `name` (a path written inside the file `from`) against `folder` and checks it stays inside it:
 * not absolute, no `..` escape, and (when it exists) no symbolic link leading out. Returns the resolved path.
 */
export function resolveInside(folder: string, name: string, from: string): string {
  if (typeof name !== 'string' || name === '' || name.includes('\0')) {
    throw new FormatError(`${from}: expected a non-empty relative file name, got ${JSON.stringify(name)}`);
  }
  if (isAbsolute(name)) throw containmentError(name, folder, from);
  const root = resolve(folder);
  const p = resolve(root, name);
  if (!inside(root, p)) throw containmentError(name, folder, from);
  let real: string | undefined;
  try {
    real = realpathSync(p);
  } catch {
    real = undefined; // missing: the read reports it
  }
  if (real !== undefined) {
    let realRoot = root;
    try {
      realRoot = realpathSync(root);
    } catch {}
    if (!inside(realRoot, real)) throw containmentError(name, folder, from);
  }
  return p;
}

/** The folder of a file path (for resolving names written in it). */
export function folderOf(file: string): string {
  return dirname(resolve(file));
}
