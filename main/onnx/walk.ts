// A model run part by part over the same batches. AdaRound measures its layers one after another,
// each on what the layers before it give with the rounding they learned: running the model up to
// each layer again costs a run of the whole prefix per layer (47 on the PaddleOCR recognizer, 146 s
// of its 231 s). Walking forward instead runs each node once per batch and keeps, between parts,
// the tensors a node still to run reads.
import * as ort from 'onnxruntime-node';
import { throwIfAborted } from '../base/progress';
import { readsOf, typedValueInfo } from './edit';
import { DataType, onnx } from './proto';
import { createSession, run } from './session';

const DATA_TYPES: Record<string, number> = {
  float32: DataType.FLOAT, float64: DataType.DOUBLE, float16: DataType.FLOAT16, int64: DataType.INT64, int32: DataType.INT32,
  int16: DataType.INT16, int8: DataType.INT8, uint64: DataType.UINT64, uint32: DataType.UINT32, uint16: DataType.UINT16, uint8: DataType.UINT8, bool: DataType.BOOL,
};

/**
 * Bytes a walk keeps between steps, every batch together. Past them it forgets what it kept and the
 * next step runs again from the graph inputs, as running each part's whole prefix would: slower,
 * never larger (AdaRound's 256 samples of a 224x224 model can hold gigabytes across a cut).
 */
export const WALK_KEPT_BYTES = 512 * 2 ** 20;

/**
 * Walks `model` forward over `batches`: each `step` runs the nodes its outputs need that no earlier
 * step ran, from the graph inputs, the inputs it is given, and the tensors earlier steps kept. A
 * step keeps what it computes that a node some later step may run reads (one that `targets`, the
 * tensors the steps will ask for, need); a kept tensor is dropped once every node reading it has
 * run. Memory is therefore the tensors live across the cut, for every batch at once, up to
 * `keptBytes`.
 */
export class ModelWalk {
  private readonly graph: onnx.GraphProto;
  private readonly producer: Map<string, number>;
  private readonly info: Map<string, onnx.ValueInfoProto>;
  private readonly readers = new Map<string, number[]>();
  /** Nodes the model's outputs need, and of those the ones run. */
  private readonly needed: Set<number>;
  private readonly ran = new Set<number>();
  /** Per kept tensor, its value in each batch. */
  private readonly kept = new Map<string, ort.Tensor[]>();

  constructor(private readonly model: onnx.ModelProto, targets: readonly string[], private readonly batches: ReadonlyArray<Record<string, ort.Tensor>>,
    private readonly options: ort.InferenceSession.SessionOptions, private readonly keptBytes = WALK_KEPT_BYTES) {
    this.graph = model.graph!;
    this.info = new Map(this.graph.valueInfo.map((v) => [v.name, v]));
    this.producer = new Map(this.graph.node.flatMap((n, k) => n.output.map((o) => [o, k] as const)));
    this.graph.node.forEach((n, k) => new Set(readsOf(n)).forEach((name) => this.readers.set(name, [...(this.readers.get(name) ?? []), k])));
    this.needed = this.ancestors(targets);
  }

  /** The tensors held between steps. */
  get holding(): string[] {
    return [...this.kept.keys()];
  }

  /** The nodes not yet run that `names` need, stopping at kept tensors. */
  private ancestors(names: readonly string[]): Set<number> {
    const found = new Set<number>();
    const seen = new Set<string>();
    const stack = [...names];
    while (stack.length) {
      const name = stack.pop()!;
      if (seen.has(name) || this.kept.has(name)) continue;
      seen.add(name);
      const k = this.producer.get(name);
      if (k === undefined || found.has(k) || this.ran.has(k)) continue;
      found.add(k);
      stack.push(...readsOf(this.graph.node[k]));
    }
    return found;
  }

  /**
   * Runs the part of the model that `outputs` need over every batch, handing each batch's outputs
   * to `onBatch` (awaited before the next batch runs), its to keep: ONNX Runtime's Node binding
   * copies every output into memory of its own, even one written into a buffer given for it; `given` supplies
   * inputs the model declares that the batches do not hold.
   */
  async step(outputs: readonly onnx.ValueInfoProto[], given: Readonly<Record<string, ort.Tensor>>, what: string,
    onBatch: (out: ort.InferenceSession.OnnxValueMapType, batch: number) => void | Promise<void>, signal?: AbortSignal): Promise<void> {
    const part = this.ancestors(outputs.map((o) => o.name));
    const nodes = this.graph.node.filter((_, k) => part.has(k));
    const made = new Set(nodes.flatMap((n) => n.output));
    const reads = new Set(nodes.flatMap(readsOf));
    const later = (name: string) => (this.readers.get(name) ?? []).some((k) => this.needed.has(k) && !this.ran.has(k) && !part.has(k));
    const keep = [...made].filter(later);
    const asked = new Set(outputs.map((o) => o.name));
    const fromKept = [...reads].filter((name) => !made.has(name) && this.kept.has(name));
    // An input with an initializer of its name (IR 3 declares weights so) is fed only if given.
    const initialized = new Set(this.graph.initializer.map((t) => t.name));
    const inputs = [
      ...this.graph.input.filter((i) => reads.has(i.name)),
      ...fromKept.map((name) => keptInfo(name, this.kept.get(name)!)),
    ];
    const model = onnx.ModelProto.create({
      ...this.model,
      graph: onnx.GraphProto.create({
        ...this.graph, node: nodes, input: inputs, output: [...outputs, ...keep.filter((name) => !asked.has(name)).map((name) => this.info.get(name) ?? onnx.ValueInfoProto.create({ name }))],
        initializer: this.graph.initializer.filter((t) => reads.has(t.name)),
        valueInfo: this.graph.valueInfo.filter((v) => made.has(v.name) && !asked.has(v.name) && !keep.includes(v.name)),
      }),
    });
    // ONNX Runtime's memory pattern plans one block for a run's every intermediate; for the
    // recognizer's depthwise moments that held 1.8 GB at peak against 1.2 GB without, in no more time.
    const session = await createSession(model, what, { ...this.options, enableMemPattern: false });
    const kept = new Map(keep.map((name) => [name, [] as ort.Tensor[]]));
    let bytes = [...this.kept.values()].flat().reduce((n, t) => n + tensorBytes(t), 0);
    try {
      for (const [b, batch] of this.batches.entries()) {
        throwIfAborted(signal);
        const feeds: Record<string, ort.Tensor> = {};
        for (const input of inputs) {
          const value = batch[input.name] ?? given[input.name] ?? this.kept.get(input.name)?.[b];
          if (value) feeds[input.name] = value;
          else if (!initialized.has(input.name)) throw new Error(`the ${what} reads ${input.name}, which neither the data, the caller nor an earlier part gives`);
        }
        const out = await run(session, feeds, what);
        for (const [name, values] of kept) {
          values.push(out[name] as ort.Tensor);
          bytes += tensorBytes(out[name] as ort.Tensor);
        }
        if (bytes > this.keptBytes) kept.clear();
        await onBatch(out, b);
      }
    } finally {
      await session.release();
    }
    if (bytes > this.keptBytes) {
      this.kept.clear();
      this.ran.clear();
      return;
    }
    part.forEach((k) => this.ran.add(k));
    for (const [name, values] of kept) this.kept.set(name, values);
    for (const name of [...this.kept.keys()]) if (!later(name)) this.kept.delete(name);
  }
}

function tensorBytes(t: ort.Tensor): number {
  return (t.data as ArrayBufferView).byteLength;
}

/** A kept tensor as an input: its type, and its dims where every batch has the same (a name where they differ). */
function keptInfo(name: string, values: readonly ort.Tensor[]): onnx.ValueInfoProto {
  const [first] = values;
  const type = DATA_TYPES[first.type];
  if (type === undefined) throw new Error(`tensor ${name} is ${first.type}, which a model part cannot take as an input`);
  return typedValueInfo(name, type, first.dims.map((d, axis) => (values.every((v) => v.dims[axis] === d) ? d : `${name}_${axis}`)));
}
