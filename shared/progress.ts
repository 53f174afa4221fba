// The stages of a job and the progress a job reports: what the CLI prints on stderr and the studio
// draws as one bar per stage.

export type Stage = 'load' | 'calibrate' | 'convert' | 'evaluate' | 'baseline' | 'sensitivity' | 'latency' | 'save';
export const STAGES: readonly Stage[] = ['load', 'calibrate', 'convert', 'evaluate', 'latency', 'save'];

/**
 * The stages of a run, in order: a repair searches after calibrating, before converting; a recipe
 * with algorithms measures itself without them after evaluating (a repair that adds one does too,
 * unlisted).
 */
export function runStages(request: { target?: unknown; recipe?: { algorithms?: object } }): readonly Stage[] {
  const stages: Stage[] = request.target ? [...STAGES.slice(0, 2), 'sensitivity', ...STAGES.slice(2)] : [...STAGES];
  if (Object.values(request.recipe?.algorithms ?? {}).some(Boolean)) stages.splice(stages.indexOf('evaluate') + 1, 0, 'baseline');
  return stages;
}

/** What a stage's progress counts, for the stages that count (the others only start and finish), unless the progress names its own unit. */
export function countedUnit(stage: Stage, unit?: Progress['unit']): 'samples' | 'runs' | 'layers' | undefined {
  if (unit) return unit;
  if (stage === 'sensitivity') return 'runs';
  return stage === 'calibrate' || stage === 'evaluate' || stage === 'baseline' ? 'samples' : undefined;
}

export interface Progress {
  stage: Stage;
  done: number;
  total: number;
  /** Samples (sensitivity: runs) per second so far, for "time left". */
  rate?: number;
  /** What done and total count where it is not the stage's own: a repair's AdaRound trial counts layers. */
  unit?: 'layers';
}
