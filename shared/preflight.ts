// The pre-flight report's shape: where each node runs on the chosen backend. The CLI prints it,
// the report embeds it, the UI draws it.

/**
 * quantized: integer kernels on the device. device: on the device without quantization (float,
 * fp16, or integer data that needs none). cpu: falls back to the host CPU. unsupported: nowhere
 * to run it; a full-integer target refuses the export.
 */
export type Placement = 'quantized' | 'device' | 'cpu' | 'unsupported';

export interface NodePlacement {
  node: string;
  op: string;
  placement: Placement;
  reason?: string;
}

export interface Preflight {
  backend: string;
  /** The accelerator's name ("Hexagon HTP"…); "CPU" for ONNX Runtime's CPU backend. */
  device: string;
  total: number;
  counts: Record<Placement, number>;
  byOp: Record<string, Record<Placement, number>>;
  /** Connected groups of device-placed nodes: each extra one is a hand-off between device and CPU. */
  partitions: number;
  /** Model-level problems (dynamic input shapes on a fixed-shape device). */
  problems: string[];
  nodes: NodePlacement[];
}

export interface PreflightCost {
  leftDevice: NodePlacement[];
  leftInteger: NodePlacement[];
  /** Partitions before and after. */
  partitions: [number, number];
}
