// `offramp embed`, `offramp index` and `offramp search`: unit-length embeddings of texts from a multi-exit
// embedder folder (encoder_embedder: config.json + model.safetensors + tokenizer.json), an on-disk index of a
// document set with one vector file per exit, and search in it at a chosen exit or with the per-query dynamic
// exit (stop at the first exit whose top-1 − top-2 margin reaches --margin).
//
// Index folder: index.json  { "format": "offramp-embedding-index", "version": 1, "model": <folder, relative to
// the index>, "dim": p, "count": N, "exits": E, "exit_blocks": [...] }, docs.jsonl (N lines {"id", "text"}),
// exit-{j}.f32 (N·p little-endian float32, row i = document i at exit j). Every read is bounded and checked
// (keys, types, sizes exact, vectors finite and of unit length).
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createDevice } from '@offramp/core';
import { readBoundedFile, readBoundedText } from '@offramp/core/node';
import { RuntimeError, UsageError } from '../errors.js';
import type { Logger } from '../util/log.js';

export const INDEX_FORMAT = 'offramp-embedding-index';
export const INDEX_VERSION = 1;
/** Largest index the command reads: 2^22 documents, 1 GiB per vector file, 256 MiB of documents. */
const MAX_DOCS = 1 << 22;
const MAX_VECTOR_BYTES = 1 << 30;
const MAX_DOCS_BYTES = 256 << 20;

export interface EmbedCommandOptions {
  model: string;
  exit?: string;
  device?: 'gpu' | 'cpu' | 'auto';
}

/** --exit: an exit index, 'all' or 'auto' (search only), checked against the model's exits. */
export function parseExit(v: string | undefined, exits: number, allowed: ('all' | 'auto')[]): number | 'all' | 'auto' {
  if (v === undefined) return exits - 1;
  if ((allowed as string[]).includes(v)) return v as 'all' | 'auto';
  const k = Number(v);
  if (!Number.isInteger(k) || k < 0 || k >= exits || v.trim() === '') {
    throw new UsageError(
      `--exit must be an integer in [0, ${exits - 1}]${allowed.map((x) => ` or '${x}'`).join('')} for this model (${exits} exits), got '${v}'`,
    );
  }
  return k;
}

async function open(model: string, device: EmbedCommandOptions['device']) {
  const { loadEmbedder } = await import('@offramp/train/embeddings');
  // 'auto': a hardware GPU → WebGPU; a software adapter (lavapipe) → the embedder on the ONNX Runtime CPU path;
  // no adapter → ONNX Runtime, else the CPU reference device. 'gpu' forces the WebGPU kernels, 'cpu' the reference.
  const dev = await createDevice({ backend: device ?? 'auto' });
  try {
    return { dev, m: await loadEmbedder(path.resolve(model), dev) };
  } catch (e) {
    throw new RuntimeError(`cannot load the embedder in ${model}: ${(e as Error).message}`);
  }
}

export async function embedCommand(texts: string[], o: EmbedCommandOptions, log: Logger) {
  if (texts.length === 0) throw new UsageError('give at least one text to embed');
  const { m } = await open(o.model, o.device);
  const exit = parseExit(o.exit, m.config.exit_blocks.length, ['all']);
  const r = await m.embedTexts(texts, { exit: exit as number | 'all' });
  const rows = texts.map((text, i) => ({
    text,
    embeddings: r.exits.map((j, k) => ({
      exit: j,
      vector: Array.from(r.vectors[k].subarray(i * r.dim, (i + 1) * r.dim)),
    })),
  }));
  log.result({ model: o.model, dim: r.dim, rows });
  for (const row of rows) {
    for (const e of row.embeddings) {
      const head = e.vector
        .slice(0, 6)
        .map((x) => x.toFixed(4))
        .join(', ');
      log.info(`exit ${e.exit}  [${head}, …] (${r.dim} values)  ${JSON.stringify(row.text.slice(0, 60))}`);
    }
  }
  m.dispose();
}

export interface IndexCommandOptions {
  model: string;
  docs: string;
  out: string;
  device?: 'gpu' | 'cpu' | 'auto';
}

/** Reads documents: JSON Lines of {"id"?, "text"} or, for any other file, one document per non-empty line. */
export async function readDocs(file: string): Promise<{ id: string; text: string }[]> {
  const text = await readBoundedText(file, { maxBytes: MAX_DOCS_BYTES, what: 'the documents' });
  const lines = text.split('\n');
  const docs: { id: string; text: string }[] = [];
  const jsonl = file.endsWith('.jsonl');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    if (!jsonl) {
      docs.push({ id: String(docs.length), text: line });
      return;
    }
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      throw new UsageError(`${file}, line ${i + 1}: not JSON; expected {"id": "...", "text": "..."}`);
    }
    const r = o as { id?: unknown; text?: unknown };
    if (typeof r.text !== 'string' || r.text === '') {
      throw new UsageError(`${file}, line ${i + 1}: "text" must be a non-empty string`);
    }
    if (r.id !== undefined && typeof r.id !== 'string' && typeof r.id !== 'number') {
      throw new UsageError(`${file}, line ${i + 1}: "id" must be a string or a number`);
    }
    docs.push({ id: r.id === undefined ? String(docs.length) : String(r.id), text: r.text });
  });
  if (docs.length === 0) throw new UsageError(`${file} holds no documents`);
  if (docs.length > MAX_DOCS) throw new UsageError(`${file} holds ${docs.length} documents; at most ${MAX_DOCS}`);
  return docs;
}

export async function indexCommand(o: IndexCommandOptions, log: Logger) {
  const docs = await readDocs(o.docs);
  const { m } = await open(o.model, o.device);
  const r = await m.embedTexts(
    docs.map((d) => d.text),
    { exit: 'all' },
  );
  mkdirSync(o.out, { recursive: true });
  r.vectors.forEach((v, j) => {
    writeFileSync(path.join(o.out, `exit-${j}.f32`), Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  });
  writeFileSync(path.join(o.out, 'docs.jsonl'), `${docs.map((d) => JSON.stringify(d)).join('\n')}\n`);
  const manifest = {
    format: INDEX_FORMAT,
    version: INDEX_VERSION,
    model: path.relative(path.resolve(o.out), path.resolve(o.model)) || '.',
    dim: r.dim,
    count: docs.length,
    exits: r.exits.length,
    exit_blocks: [...m.config.exit_blocks],
  };
  writeFileSync(path.join(o.out, 'index.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  log.result(manifest);
  log.info(`indexed ${docs.length} documents at ${r.exits.length} exits (${r.dim} values each) in ${o.out}`);
  m.dispose();
}

export interface EmbeddingIndex {
  dir: string;
  model: string;
  dim: number;
  count: number;
  exitBlocks: number[];
  docs: { id: string; text: string }[];
  /** One N·p array per exit, loaded on first use. */
  vectors(exit: number): Promise<Float32Array>;
}

/** Opens an index folder, checking the manifest and the documents now and each vector file when it is read. */
export async function openIndex(dir: string): Promise<EmbeddingIndex> {
  const where = path.join(dir, 'index.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readBoundedText(where, { maxBytes: 1 << 16, what: 'the index manifest' }));
  } catch (e) {
    throw new RuntimeError(`${where}: ${(e as Error).message}`);
  }
  const bad = (what: string) => new RuntimeError(`${where}: ${what}; rebuild the index with \`offramp index\``);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad('expected a JSON object');
  const m = raw as Record<string, unknown>;
  const keys = ['count', 'dim', 'exit_blocks', 'exits', 'format', 'model', 'version'];
  const extra = Object.keys(m).filter((k) => !keys.includes(k));
  if (extra.length) throw bad(`unknown key ${extra.join(', ')}; allowed: ${keys.join(', ')}`);
  if (m.format !== INDEX_FORMAT) throw bad(`format is ${JSON.stringify(m.format)}; expected "${INDEX_FORMAT}"`);
  if (m.version !== INDEX_VERSION)
    throw bad(`version is ${JSON.stringify(m.version)}; this build reads ${INDEX_VERSION}`);
  const posInt = (k: string, hi: number) => {
    const v = m[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > hi) {
      throw bad(`${k} is ${JSON.stringify(v)}; expected an integer in [1, ${hi}]`);
    }
    return v;
  };
  const dim = posInt('dim', 1 << 16);
  const count = posInt('count', MAX_DOCS);
  const exits = posInt('exits', 1024);
  const eb = m.exit_blocks;
  if (
    !Array.isArray(eb) ||
    eb.length !== exits ||
    eb.some((b, i) => !Number.isInteger(b) || b < 0 || (i > 0 && b <= eb[i - 1]))
  ) {
    throw bad(`exit_blocks is ${JSON.stringify(eb)}; expected ${exits} increasing block indices`);
  }
  if (typeof m.model !== 'string' || m.model === '') throw bad('model must be the model folder (a non-empty string)');
  if (count * dim * 4 > MAX_VECTOR_BYTES)
    throw bad(`count·dim·4 = ${count * dim * 4} bytes per exit; at most ${MAX_VECTOR_BYTES}`);
  const docsFile = path.join(dir, 'docs.jsonl');
  const docs = await readDocs(docsFile).catch((e) => {
    throw new RuntimeError(`${docsFile}: ${(e as Error).message}`);
  });
  if (docs.length !== count) throw bad(`count is ${count} but docs.jsonl holds ${docs.length} documents`);
  const cache = new Map<number, Float32Array>();
  return {
    dir,
    model: path.resolve(dir, m.model),
    dim,
    count,
    exitBlocks: eb as number[],
    docs,
    async vectors(j) {
      if (!Number.isInteger(j) || j < 0 || j >= exits)
        throw new UsageError(`exit ${j} is not in the index (exits 0..${exits - 1})`);
      const hit = cache.get(j);
      if (hit) return hit;
      const file = path.join(dir, `exit-${j}.f32`);
      const want = count * dim * 4;
      let size: number;
      try {
        size = statSync(file).size;
      } catch {
        throw new RuntimeError(`${file} is missing; rebuild the index with \`offramp index\``);
      }
      if (size !== want) {
        throw new RuntimeError(
          `${file} is ${size} bytes; the manifest (count ${count} × dim ${dim} × 4) needs ${want}`,
        );
      }
      const buf = await readBoundedFile(file, { maxBytes: want, what: `the exit-${j} vectors` });
      const v = new Float32Array(count * dim);
      new Uint8Array(v.buffer).set(buf);
      for (let i = 0; i < count; i++) {
        let sq = 0;
        for (let k = 0; k < dim; k++) {
          const x = v[i * dim + k];
          if (!Number.isFinite(x)) throw new RuntimeError(`${file}: document ${i} has a non-finite value`);
          sq += x * x;
        }
        if (Math.abs(Math.sqrt(sq) - 1) > 1e-3) {
          throw new RuntimeError(
            `${file}: document ${i} has norm ${Math.sqrt(sq).toFixed(4)}; index vectors have unit length`,
          );
        }
      }
      cache.set(j, v);
      return v;
    },
  };
}

export interface SearchCommandOptions {
  index: string;
  exit?: string;
  top?: number;
  margin?: number;
  model?: string;
  device?: 'gpu' | 'cpu' | 'auto';
}

export async function searchCommand(query: string, o: SearchCommandOptions, log: Logger) {
  if (query.trim() === '') throw new UsageError('the query is empty');
  const idx = await openIndex(o.index);
  const { m } = await open(o.model ?? idx.model, o.device);
  const E = m.config.exit_blocks.length;
  if (m.config.embedding_dim !== idx.dim || JSON.stringify(m.config.exit_blocks) !== JSON.stringify(idx.exitBlocks)) {
    throw new RuntimeError(
      `the model's embeddings (dim ${m.config.embedding_dim}, exits after blocks ${m.config.exit_blocks.join(', ')}) do not match the index's (dim ${idx.dim}, blocks ${idx.exitBlocks.join(', ')})`,
    );
  }
  const exit = parseExit(o.exit, E, ['auto']);
  const margin = o.margin ?? 0.05;
  const top = Math.min(o.top ?? 5, idx.count);
  const q = await m.embedTexts([query], { exit: 'all' });
  let used = E - 1;
  let scores = new Float64Array(0);
  const order = exit === 'auto' ? Array.from({ length: E }, (_, j) => j) : [exit as number];
  for (const j of order) {
    const docs = await idx.vectors(j);
    const v = q.vectors[j];
    scores = new Float64Array(idx.count);
    for (let i = 0; i < idx.count; i++) {
      let s = 0;
      for (let k = 0; k < idx.dim; k++) s += v[k] * docs[i * idx.dim + k];
      scores[i] = s;
    }
    used = j;
    if (exit !== 'auto') break;
    const sorted = [...scores].sort((a, b) => b - a);
    if (sorted.length < 2 || sorted[0] - sorted[1] >= margin) break;
  }
  const hits = Array.from(scores, (s, i) => ({ i, s }))
    .sort((a, b) => b.s - a.s || a.i - b.i)
    .slice(0, top)
    .map(({ i, s }) => ({ id: idx.docs[i].id, score: Number(s.toFixed(6)), text: idx.docs[i].text }));
  log.result({ query, exit: used, block: idx.exitBlocks[used], hits });
  log.info(`exit ${used} (after block ${idx.exitBlocks[used]})${exit === 'auto' ? `, margin ${margin}` : ''}`);
  hits.forEach((h, r) => {
    log.info(
      `${String(r + 1).padStart(3)}. ${h.score.toFixed(4)}  ${h.id}  ${JSON.stringify(h.text.replace(/\s+/g, ' ').slice(0, 80))}`,
    );
  });
  m.dispose();
}
