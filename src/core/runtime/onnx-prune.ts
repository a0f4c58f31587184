/**
 * Cuts an ONNX model down to some of its outputs by editing its protobuf bytes: the graph keeps the
 * named outputs, the nodes they depend on and the initializers those nodes read; everything else is
 * dropped, so onnxruntime neither computes nor allocates it. The key builders use it to run the GPT
 * for its `knn_key` alone: the 8,192-way logits are ~30% of a forward's arithmetic and its largest
 * output, and the kept nodes are the same nodes with the same weights, so the keys are unchanged.
 *
 * Only the fields the cut needs are read (ONNX's onnx.proto3): ModelProto.graph = 7; GraphProto
 * node = 1, initializer = 5, output = 12, value_info = 13; NodeProto input = 1, output = 2,
 * attribute = 5; TensorProto and ValueInfoProto name = 1 and 8 as noted below. Everything else is
 * copied byte for byte.
 */

interface Field {
  number: number;
  /** the whole field: tag, (length) and payload */
  start: number;
  end: number;
  /** length-delimited payload, for wire type 2 */
  payloadStart: number;
}

class ProtoError extends Error {}

function readVarint(bytes: Uint8Array, at: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (let i = at; i < bytes.length && i < at + 10; i++) {
    const b = bytes[i]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) return { value, next: i + 1 };
    scale *= 128;
  }
  throw new ProtoError(`bad varint at byte ${at}`);
}

function fields(bytes: Uint8Array, start = 0, end = bytes.length): Field[] {
  const out: Field[] = [];
  let at = start;
  while (at < end) {
    const tag = readVarint(bytes, at);
    const number = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    let next: number;
    let payloadStart = tag.next;
    switch (wire) {
      case 0:
        next = readVarint(bytes, tag.next).next;
        break;
      case 1:
        next = tag.next + 8;
        break;
      case 2: {
        const length = readVarint(bytes, tag.next);
        payloadStart = length.next;
        next = length.next + length.value;
        break;
      }
      case 5:
        next = tag.next + 4;
        break;
      default:
        throw new ProtoError(`unsupported wire type ${wire} at byte ${at}`);
    }
    if (next > end) throw new ProtoError(`field ${number} at byte ${at} runs past its message`);
    out.push({ number, start: at, end: next, payloadStart });
    at = next;
  }
  return out;
}

const decoder = new TextDecoder();

function strings(bytes: Uint8Array, message: Field, number: number): string[] {
  return fields(bytes, message.payloadStart, message.end)
    .filter((f) => f.number === number)
    .map((f) => decoder.decode(bytes.subarray(f.payloadStart, f.end)));
}

function varint(value: number): number[] {
  const out: number[] = [];
  while (value >= 0x80) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

/** Concatenates slices of `bytes` and literal bytes. */
function join(parts: (Uint8Array | number[])[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A length-delimited field `number` holding `payload`. */
function lengthDelimited(number: number, payload: Uint8Array): (Uint8Array | number[])[] {
  return [varint(number * 8 + 2).concat(varint(payload.length)), payload];
}

/**
 * The model with only `keep` as graph outputs (in their original order). Returns null when the cut
 * cannot be made safely (a node with a subgraph attribute, whose outer-scope reads this does not
 * follow), so the caller runs the whole graph instead.
 */
export function keepOutputs(model: Uint8Array, keep: readonly string[]): Uint8Array | null {
  const top = fields(model);
  const graphField = top.find((f) => f.number === 7);
  if (!graphField) throw new ProtoError('no graph in this ONNX model');
  const graph = fields(model, graphField.payloadStart, graphField.end);

  const outputs = graph.filter((f) => f.number === 12);
  const outputName = (f: Field) => strings(model, f, 1)[0] ?? '';
  const kept = outputs.filter((f) => keep.includes(outputName(f)));
  const missing = keep.filter((name) => !kept.some((f) => outputName(f) === name));
  if (missing.length) throw new ProtoError(`the graph has no output ${missing.join(', ')}`);

  const nodes = graph.filter((f) => f.number === 1);
  const nodeInputs = nodes.map((n) => strings(model, n, 1));
  const nodeOutputs = nodes.map((n) => strings(model, n, 2));
  // AttributeProto g = 6, graphs = 11: a subgraph may read outer values by name.
  const hasSubgraph = nodes.some((n) =>
    fields(model, n.payloadStart, n.end)
      .filter((f) => f.number === 5)
      .some((attribute) => fields(model, attribute.payloadStart, attribute.end).some((f) => f.number === 6 || f.number === 11)),
  );
  if (hasSubgraph) return null;

  // Walk back from the kept outputs.
  const producer = new Map<string, number>();
  nodeOutputs.forEach((names, i) => names.forEach((name) => producer.set(name, i)));
  const live = new Set<number>();
  const needed = new Set<string>(keep);
  const stack = [...keep];
  while (stack.length) {
    const name = stack.pop()!;
    const i = producer.get(name);
    if (i === undefined || live.has(i)) continue;
    live.add(i);
    for (const input of nodeInputs[i]!) {
      if (input && !needed.has(input)) {
        needed.add(input);
        stack.push(input);
      }
    }
  }

  const drop = new Set<Field>();
  nodes.forEach((n, i) => live.has(i) || drop.add(n));
  for (const f of outputs) if (!kept.includes(f)) drop.add(f);
  // TensorProto.name = 8; ValueInfoProto.name = 1.
  for (const f of graph.filter((g) => g.number === 5)) if (!needed.has(strings(model, f, 8)[0] ?? '')) drop.add(f);
  for (const f of graph.filter((g) => g.number === 13)) if (!needed.has(outputName(f))) drop.add(f);

  const graphPayload = join(graph.filter((f) => !drop.has(f)).map((f) => model.subarray(f.start, f.end)));
  const parts: (Uint8Array | number[])[] = [];
  for (const f of top) {
    if (f === graphField) parts.push(...lengthDelimited(7, graphPayload));
    else parts.push(model.subarray(f.start, f.end));
  }
  return join(parts);
}
