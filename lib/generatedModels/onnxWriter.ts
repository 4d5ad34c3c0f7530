/**
 * Writes ONNX model files through onnx-buf (ONNX 1.20's onnx.proto compiled with Buf's
 * @bufbuild/protobuf), so the generated models are valid ModelProto messages by construction
 * instead of by a hand-written encoder. Only what the generators need: float/int tensors as raw
 * little-endian bytes, nodes with int/float/int-list attributes, dynamic input and output shapes.
 */
import { create, toBinary } from '@bufbuild/protobuf';
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  TensorProto_DataType,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from 'onnx-buf';

export { TensorProto_DataType as OnnxDataType };

/** IR version 8 with opset 17: what Optimum's exports of BERT models carry, and what onnxruntime-node reads. */
const IR_VERSION = 8n;
export const OPSET = 17;

/** Raw little-endian bytes of a typed array (every platform Node runs on is little-endian). */
function bytesOf(values: Float32Array | Int8Array | Uint8Array | BigInt64Array | Int32Array): Uint8Array<ArrayBuffer> {
  return new Uint8Array(values.buffer as ArrayBuffer, values.byteOffset, values.byteLength);
}

export function floatTensor(name: string, dims: number[], values: Float32Array): TensorProto {
  return tensor(name, TensorProto_DataType.FLOAT, dims, bytesOf(values));
}

export function int64Tensor(name: string, dims: number[], values: number[]): TensorProto {
  return tensor(name, TensorProto_DataType.INT64, dims, bytesOf(BigInt64Array.from(values, (v) => BigInt(v))));
}

export function int8Tensor(name: string, dims: number[], values: Int8Array): TensorProto {
  return tensor(name, TensorProto_DataType.INT8, dims, bytesOf(values));
}

export function uint8Tensor(name: string, dims: number[], values: Uint8Array): TensorProto {
  return tensor(name, TensorProto_DataType.UINT8, dims, bytesOf(values));
}

function tensor(name: string, dataType: TensorProto_DataType, dims: number[], rawData: Uint8Array<ArrayBuffer>): TensorProto {
  return create(TensorProtoSchema, { name, dataType, dims: dims.map(BigInt), rawData });
}

/** Number of elements of an initializer (its parameter count). */
export function elementCount(t: TensorProto): number {
  return t.dims.reduce((n, d) => n * Number(d), 1);
}

export type AttributeValue = number | { float: number } | number[];

function attribute(name: string, value: AttributeValue): AttributeProto {
  if (Array.isArray(value)) return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INTS, ints: value.map(BigInt) });
  if (typeof value === 'number') return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(value) });
  return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.FLOAT, f: value.float });
}

/** A graph under construction: nodes get unique names in the order they are added. */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];

  /** Adds a node; returns its outputs. */
  node(opType: string, inputs: string[], outputs: string[], attributes: Record<string, AttributeValue> = {}, domain = ''): string[] {
    this.nodes.push(
      create(NodeProtoSchema, {
        name: `${outputs[0]}/${opType}`,
        opType,
        domain,
        input: inputs,
        output: outputs,
        attribute: Object.entries(attributes).map(([name, value]) => attribute(name, value)),
      }),
    );
    return outputs;
  }

  /** Adds an initializer; returns its name. */
  initializer(t: TensorProto): string {
    this.initializers.push(t);
    return t.name;
  }
}

/** A tensor input or output; string dimensions are symbolic (batch_size, sequence_length). */
export function valueInfo(name: string, elemType: TensorProto_DataType, dims: Array<number | string>): ValueInfoProto {
  const dim = dims.map((d) =>
    create(TensorShapeProto_DimensionSchema, { value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : { case: 'dimParam', value: d } }),
  );
  const tensorType = create(TypeProto_TensorSchema, { elemType, shape: create(TensorShapeProtoSchema, { dim }) });
  return create(ValueInfoProtoSchema, { name, type: create(TypeProtoSchema, { value: { case: 'tensorType', value: tensorType } }) });
}

/**
 * The inputs and output of a BERT-style feature-extraction model as transformers.js feeds it:
 * int64 input_ids, attention_mask and token_type_ids [batch, seq] in, last_hidden_state
 * float32 [batch, seq, hidden] out.
 */
export function bertFeatureExtractionIo(hiddenSize: number): { inputs: ValueInfoProto[]; outputs: ValueInfoProto[] } {
  const ids = (name: string) => valueInfo(name, TensorProto_DataType.INT64, ['batch_size', 'sequence_length']);
  return {
    inputs: [ids('input_ids'), ids('attention_mask'), ids('token_type_ids')],
    outputs: [valueInfo('last_hidden_state', TensorProto_DataType.FLOAT, ['batch_size', 'sequence_length', hiddenSize])],
  };
}

export interface OnnxModelSpec {
  graphName: string;
  graph: GraphBuilder;
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  producerName: string;
  producerVersion: string;
  docString: string;
}

/** The serialized ModelProto. */
export function encodeOnnxModel(spec: OnnxModelSpec): Uint8Array {
  const model = create(ModelProtoSchema, {
    irVersion: IR_VERSION,
    producerName: spec.producerName,
    producerVersion: spec.producerVersion,
    docString: spec.docString,
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(OPSET) })],
    graph: create(GraphProtoSchema, {
      name: spec.graphName,
      node: spec.graph.nodes,
      initializer: spec.graph.initializers,
      input: spec.inputs,
      output: spec.outputs,
    }),
  });
  return toBinary(ModelProtoSchema, model);
}
