// Element types Offramp stores in buffers. All are 4 bytes wide so a buffer's byte size is 4 × elements.

export type DType = 'f32' | 'u32' | 'i32';
export type TypedArrayOf<D extends DType> = D extends 'f32' ? Float32Array : D extends 'u32' ? Uint32Array : Int32Array;
export type AnyTypedArray = Float32Array | Uint32Array | Int32Array;

export const BYTES_PER_ELEMENT = 4;

export function allocTyped(dtype: DType, length: number): AnyTypedArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(length);
    case 'u32':
      return new Uint32Array(length);
    case 'i32':
      return new Int32Array(length);
  }
}

export function viewTyped(dtype: DType, buf: ArrayBufferLike, byteOffset = 0, length?: number): AnyTypedArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(buf, byteOffset, length);
    case 'u32':
      return new Uint32Array(buf, byteOffset, length);
    case 'i32':
      return new Int32Array(buf, byteOffset, length);
  }
}

export function dtypeOf(a: AnyTypedArray): DType {
  if (a instanceof Float32Array) return 'f32';
  if (a instanceof Uint32Array) return 'u32';
  return 'i32';
}
