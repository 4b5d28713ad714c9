// The playground: a static site. Checkpoints from the repository's checkpoints/ folder are served in dev and
// copied into the build (dist/checkpoints/<name>/...), so the built site is self-contained. Node-only modules
// that the browser never reaches (Dawn's `webgpu` package, @offramp/core/node, the tokenizers' file I/O) are
// replaced by stubs that throw if called.
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';
import { CHECKPOINT_FILES } from './src/lib/checkpoint-list.ts';

const here = dirname(fileURLToPath(import.meta.url));
const checkpointsDir = resolve(here, '../../checkpoints');
const tokenizersDir = resolve(here, '../../packages/train/src/tokenizers');
const STUB = '\0offramp-node-stub';

function checkpoints(): Plugin {
  const files = Object.entries(CHECKPOINT_FILES).flatMap(([name, list]) => list.map((f) => `${name}/${f}`));
  return {
    name: 'offramp-checkpoints',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const url = (req.url ?? '').split('?')[0];
        const m = /^\/checkpoints\/(.+)$/.exec(url);
        if (!m || !files.includes(m[1])) return next();
        const body = readFileSync(join(checkpointsDir, m[1]));
        res.setHeader('content-type', m[1].endsWith('.json') ? 'application/json' : 'application/octet-stream');
        res.end(body);
      });
    },
    generateBundle() {
      for (const f of files) {
        const path = join(checkpointsDir, f);
        if (!statSync(path).isFile()) throw new Error(`checkpoint file ${path} is missing`);
        this.emitFile({ type: 'asset', fileName: `checkpoints/${f}`, source: readFileSync(path) });
      }
    },
  };
}

function nodeStubs(): Plugin {
  return {
    name: 'offramp-node-stubs',
    enforce: 'pre',
    resolveId(id, importer) {
      if (id === 'webgpu' || id === '@offramp/core/node') return STUB;
      if (id === './json.js' && importer && resolve(dirname(importer)) === tokenizersDir) return STUB;
      return null;
    },
    load(id) {
      if (id !== STUB) return null;
      const fail = `() => { throw new Error('not available in the browser'); }`;
      return `export const create = ${fail}; export const globals = {}; export const readJsonFile = ${fail};
export const writeJsonFile = ${fail}; export const readBoundedText = ${fail}; export const FILE_LIMITS = {};`;
    },
  };
}

export default defineConfig({
  base: './',
  plugins: [nodeStubs(), react(), checkpoints()],
  resolve: {
    conditions: ['@offramp/source', 'browser', 'module', 'import', 'default'],
    alias: {
      '@offramp/tokenizers/word': join(tokenizersDir, 'word.ts'),
      '@offramp/tokenizers/char': join(tokenizersDir, 'char.ts'),
    },
  },
  // keepNames: error messages name error classes (ValidationError...) by their constructor's name
  build: { target: 'es2022', chunkSizeWarningLimit: 2000, rolldownOptions: { output: { keepNames: true } } },
});
