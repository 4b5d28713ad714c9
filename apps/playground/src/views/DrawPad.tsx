import { useEffect, useRef } from 'react';

const SCALE = 5;

function blank(canvas: HTMLCanvasElement | null, px: number): void {
  const ctx = canvas?.getContext('2d');
  if (!ctx) return;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, px, px);
}

/**
 * A black square to draw on in white (Fashion-MNIST's look): on each stroke's end it hands the drawing,
 * averaged down to size × size bytes (0..255), to `onImage`.
 */
export function DrawPad({ size, onImage }: { size: number; onImage: (bytes: Uint8Array) => void }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const drawing = useRef(false);
  const px = size * SCALE;

  const clear = () => blank(ref.current, px);
  useEffect(() => blank(ref.current, px), [px]);

  const last = useRef<[number, number] | null>(null);
  /** A round-ended white line from the previous point of the stroke (or a dot) to the pointer. */
  const dot = (e: React.PointerEvent<HTMLCanvasElement>) => {
    const c = ref.current!;
    const r = c.getBoundingClientRect();
    const ctx = c.getContext('2d')!;
    const p: [number, number] = [((e.clientX - r.left) * px) / r.width, ((e.clientY - r.top) * px) / r.height];
    const from = last.current ?? p;
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = SCALE * 2.8;
    ctx.lineCap = 'round';
    ctx.beginPath();
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(p[0], p[1]);
    ctx.stroke();
    last.current = p;
  };

  const finish = () => {
    if (!drawing.current) return;
    drawing.current = false;
    last.current = null;
    const data = ref.current!.getContext('2d')!.getImageData(0, 0, px, px).data;
    const out = new Uint8Array(size * size);
    for (let y = 0; y < size; y++)
      for (let x = 0; x < size; x++) {
        let s = 0;
        for (let dy = 0; dy < SCALE; dy++)
          for (let dx = 0; dx < SCALE; dx++) s += data[((y * SCALE + dy) * px + x * SCALE + dx) * 4];
        out[y * size + x] = Math.round(s / (SCALE * SCALE));
      }
    onImage(out);
  };

  return (
    <div>
      <canvas
        ref={ref}
        width={px}
        height={px}
        data-testid="drawpad"
        style={{ width: px, height: px, touchAction: 'none', cursor: 'crosshair', border: '1px solid #ccc' }}
        onPointerDown={(e) => {
          drawing.current = true;
          dot(e);
        }}
        onPointerMove={(e) => drawing.current && dot(e)}
        onPointerUp={finish}
        onPointerLeave={finish}
      />
      <div>
        <button type="button" onClick={clear}>
          clear
        </button>{' '}
        <span className="muted">draw, then release</span>
      </div>
    </div>
  );
}
