import { describe, expect, it } from 'vitest';
import { CpuDevice } from '../runtime/cpu-device.js';
import type { Device } from '../runtime/device.js';
import { conv2d, selectConv2dSpec } from './conv2d.js';

const withAdapter = (vendor: string, architecture: string, description = '') =>
  ({ kind: 'gpu', adapter: { vendor, architecture, description, isFallback: false } }) as unknown as Device;

describe('conv2d block selection', () => {
  it('gives SwiftShader 4 × 4 blocks and every other device the default', () => {
    expect(selectConv2dSpec(withAdapter('google', 'swiftshader'))).toEqual({ tc: 4, tp: 4 });
    expect(selectConv2dSpec(withAdapter('mesa', 'llvmpipe', 'lavapipe'))).toEqual({});
    expect(selectConv2dSpec(withAdapter('nvidia', 'ampere'))).toEqual({});
    expect(selectConv2dSpec(new CpuDevice())).toEqual({});
    expect(conv2d.resolveSpec({})).toMatchObject({ tc: 8, tp: 8 });
  });

  it('refuses a block other than 4 or 8 per side, saying which are allowed', () => {
    expect(() => conv2d.source({ tc: 6, tp: 8 })).toThrow(/tc × tp = 6 × 8; tc and tp must each be one of 4, 8/);
  });
});
