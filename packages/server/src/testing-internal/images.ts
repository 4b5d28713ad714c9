// Test inputs: Fashion-MNIST test images when the dataset is cached (OFFRAMP_DATA_DIR), else seeded random
// images of the same shape (blurred noise at different contrasts, which also leave at different exits).
import { loadFashionMnist } from '@offramp/train';

export function testImages(n: number): number[][] {
  try {
    const ds = loadFashionMnist('test');
    return Array.from({ length: n }, (_, i) => Array.from(ds.images.subarray(i * 784, (i + 1) * 784)));
  } catch {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    return Array.from({ length: n }, (_, k) => {
      const c = (k % 6) / 5;
      return Array.from({ length: 784 }, (_, i) => {
        const x = i % 28;
        const y = Math.floor(i / 28);
        const inside = Math.abs(x - 14) < 4 + (k % 9) && Math.abs(y - 14) < 12 - (k % 7);
        return Math.round(255 * Math.min(1, Math.max(0, (inside ? c : 0) + 0.2 * rnd()))) / 255; // 8-bit, as a PNG holds
      });
    });
  }
}
