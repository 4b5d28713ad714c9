// A small ONNX model writer: nodes, initializers (raw little-endian data, stored once per model), typed graph
// inputs and outputs with a symbolic batch dimension, encoded with the generated ONNX protobuf schema of the
// `onnx-proto` package. Opset 17 of the default domain (LayerNormalization is standard from 17).
import onnxProto from 'onnx-proto';
import { ValidationError } from '../errors.js';

const { onnx } = onnxProto;

export type OnnxElem = 'float32' | 'int32' | 'int64';
const ELEM_TYPE: Record<OnnxElem, number> = { float32: 1, int32: 6, int64: 7 };
export const OPSET = 17;
export const IR_VERSION = 8;

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };

/** A dimension: a number, or a symbolic name (the batch). */
export type Dim = number | string;

export class OnnxGraphWriter {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly names = new Set<string>();
  private readonly constCache = new Map<string, string>();
  private counter = 0;

  constructor(readonly name: string) {}

  /** A fresh value name with a readable prefix. */
  fresh(prefix: string): string {
    let n = `${prefix}#${this.counter++}`;
    while (this.names.has(n)) n = `${prefix}#${this.counter++}`;
    this.names.add(n);
    return n;
  }

  input(name: string, elem: OnnxElem, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, elem, dims));
    this.names.add(name);
    return name;
  }

  output(name: string, elem: OnnxElem, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, elem, dims));
  }

  /** An initializer holding `data` (copied once into the model bytes). */
  initializer(prefix: string, data: Float32Array | Int32Array | BigInt64Array, dims: number[]): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length)
      throw new ValidationError(`initializer '${prefix}': ${data.length} values for dims [${dims.join(', ')}]`);
    const name = this.fresh(prefix);
    const dataType = data instanceof Float32Array ? 1 : data instanceof Int32Array ? 6 : 7;
    const bytes = new Uint8Array(data.byteLength);
    bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.initializers.push(onnx.TensorProto.create({ name, dims, dataType, rawData: bytes }));
    return name;
  }

  /** A small int64 constant (shapes, axes, indices), shared within the model. */
  int64(values: number[], scalar = false): string {
    const key = `i64:${scalar ? 's' : 'v'}:${values.join(',')}`;
    let n = this.constCache.get(key);
    if (!n) {
      n = this.initializer('const', BigInt64Array.from(values.map((v) => BigInt(v))), scalar ? [] : [values.length]);
      this.constCache.set(key, n);
    }
    return n;
  }

  /** A float32 scalar constant, shared within the model. */
  float(value: number): string {
    const key = `f32:${Math.fround(value)}`;
    let n = this.constCache.get(key);
    if (!n) {
      n = this.initializer('const', Float32Array.of(value), []);
      this.constCache.set(key, n);
    }
    return n;
  }

  /** Adds one node; returns the names of its outputs (fresh unless given). */
  node(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    outputs: number | string[] = 1,
    domain = '',
  ): string[] {
    const outs = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(opType)) : outputs;
    for (const o of outs) this.names.add(o);
    const attribute = Object.entries(attrs).map(([name, v]) => attribute1(name, v));
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        input: inputs,
        output: outs,
        name: this.fresh(`n.${opType}`),
        attribute,
        domain,
      }),
    );
    return outs;
  }

  /** One-output node shorthand. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.node(opType, inputs, attrs, 1)[0];
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  /** The serialized ModelProto. */
  encode(): Uint8Array {
    const graph = onnx.GraphProto.create({
      name: this.name,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
    });
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'offramp',
      opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: OPSET })],
      graph,
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

function valueInfo(name: string, elem: OnnxElem, dims: Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: ELEM_TYPE[elem],
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) =>
            onnx.TensorShapeProto.Dimension.create(typeof d === 'number' ? { dimValue: d } : { dimParam: d }),
          ),
        }),
      }),
    }),
  });
}

function attribute1(name: string, v: AttrValue) {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new ValidationError(`attribute '${name}': ${v} is not an integer; use { float }`);
    return onnx.AttributeProto.create({ name, type: A.INT, i: v });
  }
  if (typeof v === 'string')
    return onnx.AttributeProto.create({ name, type: A.STRING, s: new TextEncoder().encode(v) });
  if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: A.INTS, ints: v });
  if ('float' in v) return onnx.AttributeProto.create({ name, type: A.FLOAT, f: v.float });
  return onnx.AttributeProto.create({ name, type: A.FLOATS, floats: v.floats });
}
