// Prints the WebGPU adapter Dawn finds (vendor, architecture, fallback or not); exit code 1 when none works.
const quiet = process.argv.includes('--quiet');
let create, globals;
try {
  ({ create, globals } = await import('webgpu'));
} catch (e) {
  if (!quiet) console.error(`cannot load the 'webgpu' package (run pnpm install first): ${e.message}`);
  process.exit(1);
}
Object.assign(globalThis, globals);
const gpu = create([]);
try {
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new Error('no adapter');
  const device = await adapter.requestDevice();
  // a real compute round trip: doubles 4 numbers
  const mod = device.createShaderModule({
    code: '@group(0) @binding(0) var<storage, read_write> a: array<f32>; @compute @workgroup_size(4) fn main(@builtin(global_invocation_id) i: vec3u) { a[i.x] = a[i.x] * 2.0; }',
  });
  const pipe = device.createComputePipeline({ layout: 'auto', compute: { module: mod, entryPoint: 'main' } });
  const buf = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buf, 0, new Float32Array([1, 2, 3, 4]));
  const rb = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipe);
  pass.setBindGroup(
    0,
    device.createBindGroup({
      layout: pipe.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: buf } }],
    }),
  );
  pass.dispatchWorkgroups(1);
  pass.end();
  enc.copyBufferToBuffer(buf, 0, rb, 0, 16);
  device.queue.submit([enc.finish()]);
  await rb.mapAsync(GPUMapMode.READ);
  const got = Array.from(new Float32Array(rb.getMappedRange()));
  if (got.join(',') !== '2,4,6,8') throw new Error(`compute check failed: ${got}`);
  const info = adapter.info ?? {};
  if (!quiet)
    console.log(
      `WebGPU adapter: ${info.vendor || '?'} / ${info.architecture || '?'} / ${info.description || info.device || '?'} (fallback: ${adapter.isFallbackAdapter ?? info.isFallbackAdapter ?? false})`,
    );
  device.destroy();
  process.exit(0);
} catch (e) {
  if (!quiet) console.error(`No working WebGPU adapter: ${e.message}`);
  process.exit(1);
}
