// Task metrics and repair targets: the one list of names the engine computes, the CLI parses and
// the studio offers, and the one way a target is read and said.

export const METRIC_NAMES = ['top1-agreement', 'top5-agreement', 'argmax-agreement', 'cosine', 'accuracy', 'top5-accuracy', 'float-accuracy', 'float-top5-accuracy', 'custom', 'float-custom'] as const;
export type MetricName = typeof METRIC_NAMES[number];

/**
 * Metrics a repair can aim at: higher is better for all of them. The accuracies need labels;
 * `custom` is the user's metric module's score of the quantized outputs (`float-custom` the same
 * module on the float outputs).
 */
export const TARGET_METRICS = ['top1-agreement', 'top5-agreement', 'argmax-agreement', 'cosine', 'accuracy', 'top5-accuracy', 'custom'] as const;
export type TargetMetric = typeof TARGET_METRICS[number];

export type Target = { kind: 'sqnr'; value: number } | { kind: 'metric'; metric: TargetMetric; value: number };

export class TargetError extends Error {}

/** The one task metric a run is summed up by, where it has several: the user's own, else accuracy, else agreement. */
export function headlineMetric(metrics: Partial<Record<MetricName, number>>): MetricName | undefined {
  return (['custom', 'accuracy', 'top1-agreement', 'argmax-agreement'] as const).find((k) => metrics[k] !== undefined);
}

export function isTargetMetric(name: unknown): name is TargetMetric {
  return TARGET_METRICS.includes(name as TargetMetric);
}

export function needsLabels(metric: TargetMetric): boolean {
  return metric.includes('accuracy');
}

export function describeTarget(target: Target): string {
  return target.kind === 'sqnr' ? `output SQNR ≥ ${target.value} dB` : `${target.metric} ≥ ${target.value}`;
}

/**
 * "top1-agreement:0.99" → the metric target; names the allowed metrics when wrong. The built-in
 * metrics are fractions in (0, 1]; a custom metric's scale is the module's, any finite number.
 */
export function parseMetricTarget(text: string): Extract<Target, { kind: 'metric' }> {
  const m = /^([a-z0-9-]+):(-?[0-9.]+(?:e[+-]?[0-9]+)?)$/i.exec(text);
  const value = m ? Number(m[2]) : NaN;
  const allowed = m?.[1] === 'custom' ? Number.isFinite(value) : value > 0 && value <= 1;
  if (!m || !isTargetMetric(m[1]) || !allowed) {
    throw new TargetError(`"${text}" is not a metric target: use NAME:VALUE with NAME one of ${TARGET_METRICS.join(', ')} and VALUE in (0, 1] (custom: any number on the module's scale), e.g. top1-agreement:0.99`);
  }
  return { kind: 'metric', metric: m[1], value };
}
