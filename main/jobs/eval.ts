// Any float/QDQ pair compared, including models quantized by other tools: tensors matched from the
// QDQ structure, figures in named numerics, the outputs also as ONNX Runtime's CPU kernels run them.
import type { MainNumerics } from '../../shared/numerics';
import type { PreprocessSpec } from '../../shared/preprocess';
import type { CustomMetricReport, LayerReport, Metrics, OutputReport } from '../../shared/report';
import { TOOL } from '../../shared/tool';
import type { Control } from '../base/progress';
import { guessBatchSize, openSource } from '../data/readers';
import { evaluate } from '../eval/evaluate';
import { metricsReport, outputReports } from '../eval/figures';
import { customMetricReport, loadMetricModule } from '../eval/custom-metric';
import { readLabels } from '../data/labels';
import { layerRows, rowPairs } from '../eval/layer-rows';
import { pairsFromQdq } from '../eval/pairs';
import { defaultOpset, GraphView } from '../onnx/graph';
import { loadModel } from '../onnx/model';
import { inputSpecs } from '../onnx/session';
import { prepareModel } from '../plan/prepare';
import * as path from 'node:path';

export interface EvalJob extends Control {
  float: string;
  quantized: string;
  data: string;
  preprocess?: PreprocessSpec;
  skipNonFinite?: boolean;
  maxMegapixels?: number;
  batchSize?: number;
  /** Default reference; the outputs are also measured in ort-cpu unless that is the main numerics. */
  numerics?: MainNumerics;
  /** Labels of the samples (JobInput.labels): accuracy with class ids, and what the metric module sees. */
  labels?: string;
  /** The user's metric module (JobInput.metricModule). */
  metricModule?: string;
  onWarning?: (message: string) => void;
}

export interface EvalOutcome {
  tool: typeof TOOL;
  float: string;
  quantized: string;
  samples: number;
  numerics: MainNumerics;
  outputs: OutputReport[];
  /** Task metrics of the first output; `custom` from the metric module, named by `customMetric`. */
  metrics: Metrics;
  customMetric?: CustomMetricReport;
  deployed?: { numerics: 'ort-cpu'; outputs: OutputReport[]; metrics: Metrics };
  layers: LayerReport[];
}

export async function evalPair(job: EvalJob): Promise<EvalOutcome> {
  const quantModel = loadModel(job.quantized).model;
  let floatModel = loadModel(job.float).model;
  // A QDQ model made from a model below opset 11 (ours, or a tool that upgraded it) runs beside the
  // float model only once the float model takes the same form.
  if (defaultOpset(floatModel) < defaultOpset(quantModel)) floatModel = prepareModel(floatModel, { forQdq: true }).model;
  const floatView = new GraphView(floatModel);
  const pairs = pairsFromQdq(floatView, new GraphView(quantModel));
  const inputs = inputSpecs(floatView);
  const source = await openSource(job.data, inputs, { preprocess: job.preprocess, skipNonFinite: job.skipNonFinite, maxMegapixels: job.maxMegapixels, onWarning: job.onWarning });
  for (const w of source.warnings) job.onWarning?.(w);
  const numerics = job.numerics ?? 'reference';
  const labels = job.labels ? readLabels(job.labels) : undefined;
  const metric = job.metricModule ? await loadMetricModule(job.metricModule) : undefined;
  const result = await evaluate(floatModel, quantModel, rowPairs(pairs), source, {
    batchSize: job.batchSize ?? guessBatchSize(inputs), signal: job.signal, onProgress: job.onProgress,
    numerics, ...(numerics === 'ort-cpu' ? {} : { deployed: 'ort-cpu' as const }),
    labels: labels?.labels, ...(metric ? { custom: { metric, labels: labels?.values } } : {}),
  });
  return {
    tool: TOOL, float: path.resolve(job.float), quantized: path.resolve(job.quantized), samples: result.samples,
    numerics, outputs: outputReports(result), metrics: metricsReport(result), ...(metric ? { customMetric: customMetricReport(metric) } : {}),
    ...(result.deployed ? { deployed: { numerics: 'ort-cpu', outputs: outputReports(result.deployed), metrics: metricsReport(result.deployed) } } : {}),
    layers: layerRows(pairs, [], result),
  };
}
