// An evaluation's figures as the report writes them, and which runtime of this machine the
// exported model is also measured in.
import type { BackendCapability } from '../../shared/backends';
import type { MainNumerics, Numerics } from '../../shared/numerics';
import type { Recipe } from '../../shared/recipe';
import { dbToJson, type DeployedReport, type HostReport, type Metrics, type OutputReport } from '../../shared/report';
import { webgpuAdapter } from '../onnx/numerics';
import type { EvaluationResult, OutputFigures } from './evaluate';

/**
 * Where the exported model also runs on this machine as deployed: ONNX Runtime's CPU kernels for the
 * cpu backend, its WebGPU provider for webgpu where a GPU adapter exists (else the host says why
 * not). No other backend's runtime is here, so none pretends to on-device figures.
 */
export async function deployedOn(backend: BackendCapability, numerics: MainNumerics, host: HostReport): Promise<Numerics | undefined> {
  if (!backend.localRuntime || backend.localRuntime === numerics) return undefined;
  if (backend.localRuntime === 'ort-cpu') return 'ort-cpu';
  const gpu = await webgpuAdapter();
  if (gpu.available) return 'webgpu';
  host.webgpu = `no WebGPU adapter on this machine (${gpu.reason}): the figures are reference numerics only`;
  return undefined;
}

export function outputReports(figures: OutputFigures): OutputReport[] {
  return figures.outputs.map((o) => ({ name: o.name, sqnr: dbToJson(o.sqnr), maxAbsError: o.maxAbsError }));
}

export function metricsReport(figures: OutputFigures): Metrics {
  return Object.fromEntries(Object.entries(figures.metrics).map(([k, v]) => [k, Number(v!.toFixed(5))]));
}

/** A gap this large between two numerics of one model is worth a sentence on its cause. */
const NUMERICS_GAP_DB = 3;

export function deployedReport(evaluation: EvaluationResult, host: HostReport, recipe: Recipe): DeployedReport {
  const deployed = evaluation.deployed!;
  const worst = (outputs: OutputFigures['outputs']) => Math.min(...outputs.map((o) => o.sqnr));
  const gap = worst(evaluation.outputs) - worst(deployed.outputs);
  let note: string | undefined;
  if (Math.abs(gap) > NUMERICS_GAP_DB) {
    const by = `${deployed.numerics} is ${Math.abs(gap).toFixed(1)} dB ${gap > 0 ? 'below' : 'above'} ${evaluation.numerics}`;
    note = deployed.numerics === 'webgpu'
      ? `${by}: the WebGPU provider runs Q/DQ and the float ops in its own shaders, and the difference is that runtime's arithmetic.`
      : host.int8Saturates && recipe.weightType === 'int8'
        ? `${by}: ${host.cpu}'s fused u8×s8 kernels saturate pairs of products (no VNNI); quantize with uint8 weights (the saturation fix) or deploy with session.x64quantprecision=1.`
        : `${by}: ONNX Runtime's fused kernels requantize in integer arithmetic and replace ops such as Softmax and Sigmoid by integer versions with their own rounding.`;
  }
  return { numerics: deployed.numerics, outputs: outputReports(deployed), metrics: metricsReport(deployed), samples: evaluation.samples, ...(note ? { note } : {}) };
}
