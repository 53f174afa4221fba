// Task metrics and repair targets: the one list of names the engine computes, the CLI parses and
// the studio offers, and the one way a target is read and said.

export const METRIC_NAMES = ['top1-agreement', 'top5-agreement', 'argmax-agreement', 'cosine', 'accuracy', 'top5-accuracy', 'float-accuracy', 'float-top5-accuracy', 'perplexity', 'float-perplexity', 'custom', 'float-custom'] as const;
export type MetricName = typeof METRIC_NAMES[number];

/**
 * Metrics a repair can aim at: higher is better for all of them but perplexity. The accuracies and
 * perplexity need labels (for a sequence model, the next token at every position: accuracy is then
 * next-token accuracy, argmax-agreement next-token agreement with the float model); `custom` is the
 * user's metric module's score of the quantized outputs (`float-custom` the same module on the
 * float outputs).
 */
export const TARGET_METRICS = ['top1-agreement', 'top5-agreement', 'argmax-agreement', 'cosine', 'accuracy', 'top5-accuracy', 'perplexity', 'custom'] as const;
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
  return metric.includes('accuracy') || metric === 'perplexity';
}

/** Metrics where lower is better: a target is met at or below its value. */
export function lowerIsBetter(metric: string): boolean {
  return metric === 'perplexity' || metric === 'float-perplexity';
}

/** A metric's value on a scale where higher is always better: what searches compare. */
export function metricScore(metric: string, value: number): number {
  return lowerIsBetter(metric) ? -value : value;
}

export function describeTarget(target: Target): string {
  return target.kind === 'sqnr' ? `output SQNR ≥ ${target.value} dB` : `${target.metric} ${lowerIsBetter(target.metric) ? '≤' : '≥'} ${target.value}`;
}

/**
 * "top1-agreement:0.99" → the metric target; names the allowed metrics when wrong. The built-in
 * metrics are fractions in (0, 1] but perplexity, at least 1; a custom metric's scale is the
 * module's, any finite number.
 */
export function parseMetricTarget(text: string): Extract<Target, { kind: 'metric' }> {
  const m = /^([a-z0-9-]+):(-?[0-9.]+(?:e[+-]?[0-9]+)?)$/i.exec(text);
  if (!m || !isTargetMetric(m[1]) || targetValueProblem(m[1], Number(m[2]))) {
    throw new TargetError(`"${text}" is not a metric target: use NAME:VALUE with NAME one of ${TARGET_METRICS.join(', ')} and VALUE in (0, 1] (perplexity: at least 1, met at or below it; custom: any number on the module's scale), e.g. top1-agreement:0.99`);
  }
  return { kind: 'metric', metric: m[1], value: Number(m[2]) };
}

/** What is wrong with `value` as a target for `metric`, in a few words; undefined when it is one. */
export function targetValueProblem(metric: TargetMetric, value: number): string | undefined {
  if (metric === 'custom') return Number.isFinite(value) ? undefined : 'a number';
  if (metric === 'perplexity') return Number.isFinite(value) && value >= 1 ? undefined : 'a perplexity of at least 1';
  return value > 0 && value <= 1 ? undefined : 'a value in (0, 1]';
}
