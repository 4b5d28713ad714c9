// Exports the Enhance view's pictures from the cached scikit-image test images (held out from the enhancer's
// training) into src/assets/enhance-samples.json (committed, so the site builds without the dataset): a few
// 96×96 grey crops as bytes (0..255, base64). Run: pnpm --filter @offramp/playground run enhance-samples
import { writeFileSync } from 'node:fs';
import { greyToRgba, loadImages } from '@offramp/train';

const SIZE = 96;
/** Which test image and where (top-left corner) each crop comes from. */
const CROPS = [
  { name: 'camera', x: 200, y: 80 },
  { name: 'astronaut', x: 180, y: 60 },
  { name: 'coffee', x: 240, y: 150 },
];

const test = new Map(loadImages('test').map((t) => [t.name, t.image]));
const pictures = CROPS.map(({ name, x, y }) => {
  const img = test.get(name);
  if (!img) throw new Error(`test image ${name} is not in the test split`);
  if (x + SIZE > img.width || y + SIZE > img.height) throw new Error(`crop of ${name} at ${x},${y} leaves the image`);
  const data = new Float32Array(SIZE * SIZE);
  for (let r = 0; r < SIZE; r++)
    data.set(img.data.subarray((y + r) * img.width + x, (y + r) * img.width + x + SIZE), r * SIZE);
  const rgba = greyToRgba({ width: SIZE, height: SIZE, data });
  const bytes = new Uint8Array(SIZE * SIZE);
  for (let i = 0; i < bytes.length; i++) bytes[i] = rgba[4 * i];
  return { name, x, y, pixels: Buffer.from(bytes).toString('base64') };
});

const out = {
  source: 'scikit-image test images (held out from the enhancer), 96×96 crops, grey bytes',
  width: SIZE,
  height: SIZE,
  pictures,
};
writeFileSync(new URL('../src/assets/enhance-samples.json', import.meta.url), `${JSON.stringify(out)}\n`);
console.log(`wrote ${pictures.length} pictures of ${SIZE}×${SIZE}`);
