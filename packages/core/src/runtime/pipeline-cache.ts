// Compute pipelines keyed by kernel name + specialisation, created once per device, with explicit bind
// group layouts built from the kernel's binding list (so an unused binding in one variant is still valid).
import type { Kernel, Spec } from './kernel.js';

export interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

export class PipelineCache {
  private cache = new Map<string, CachedPipeline>();
  private layouts = new Map<string, GPUBindGroupLayout>();
  hits = 0;
  misses = 0;

  constructor(private readonly device: GPUDevice) {}

  layoutFor(kernel: Kernel<any>): GPUBindGroupLayout {
    const key = kernel.bindingNames.map((n) => (kernel.bindings[n].access === 'read' ? 'r' : 'w')).join('');
    let l = this.layouts.get(key);
    if (!l) {
      const entries: GPUBindGroupLayoutEntry[] = [
        { binding: 0, visibility: 4 /* COMPUTE */, buffer: { type: 'uniform' } },
      ];
      kernel.bindingNames.forEach((n, i) => {
        entries.push({
          binding: i + 1,
          visibility: 4,
          buffer: { type: kernel.bindings[n].access === 'read' ? 'read-only-storage' : 'storage' },
        });
      });
      l = this.device.createBindGroupLayout({ entries, label: `layout(${key})` });
      this.layouts.set(key, l);
    }
    return l;
  }

  get<S extends Spec>(kernel: Kernel<S>, spec?: Partial<S>): CachedPipeline {
    const key = kernel.key(spec);
    let p = this.cache.get(key);
    if (p) {
      this.hits++;
      return p;
    }
    this.misses++;
    const layout = this.layoutFor(kernel);
    const module = this.device.createShaderModule({ code: kernel.source(spec), label: key });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
      label: key,
    });
    p = { pipeline, layout };
    this.cache.set(key, p);
    return p;
  }

  get size(): number {
    return this.cache.size;
  }
}
