// Exports the playground's built-in samples from the cached datasets into src/assets/samples.json (committed,
// so the site builds without the datasets): the first N Fashion-MNIST test images (bytes 0..255, base64) with
// labels, and a few held-out IMDB reviews with labels. Run: pnpm --filter @offramp/playground run samples
import { writeFileSync } from 'node:fs';
import { FASHION_MNIST_CLASS_NAMES, loadFashionMnist, loadImdb } from '@offramp/train';

const FASHION_N = 256;
const IMDB_N = 8;

const fashion = loadFashionMnist('test');
const size = fashion.height * fashion.width;
const bytes = new Uint8Array(FASHION_N * size);
for (let i = 0; i < bytes.length; i++) bytes[i] = Math.round(fashion.images[i] * 255);
// the images are stored as pixels / 255: rounding back must give the original bytes exactly
for (let i = 0; i < bytes.length; i++) {
  if (Math.abs(bytes[i] / 255 - fashion.images[i]) > 1e-6) throw new Error(`pixel ${i} is not a byte / 255`);
}
const imdb = loadImdb();
const reviews = imdb.test.slice(0, IMDB_N).map((r) => ({ text: r.text, label: r.label }));

const out = {
  fashion: {
    source: 'Fashion-MNIST test split, first images',
    height: fashion.height,
    width: fashion.width,
    classNames: FASHION_MNIST_CLASS_NAMES,
    labels: Array.from(fashion.labels.subarray(0, FASHION_N)),
    pixels: Buffer.from(bytes).toString('base64'),
  },
  imdb: { source: 'IMDB held-out split (seeded), first reviews', classNames: ['negative', 'positive'], reviews },
};
writeFileSync(new URL('../src/assets/samples.json', import.meta.url), `${JSON.stringify(out)}\n`);
console.log(`wrote ${FASHION_N} Fashion-MNIST images and ${IMDB_N} IMDB reviews`);
