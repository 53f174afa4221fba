// The stages of a job and the progress a job reports: what the CLI prints on stderr and the studio
// draws as one bar per stage.

export type Stage = 'load' | 'calibrate' | 'convert' | 'evaluate' | 'sensitivity' | 'latency' | 'save';
export const STAGES: readonly Stage[] = ['load', 'calibrate', 'convert', 'evaluate', 'latency', 'save'];

/** The stages of a run, in order: a repair searches after calibrating, before converting. */
export function runStages(request: { target?: unknown }): readonly Stage[] {
  return request.target ? [...STAGES.slice(0, 2), 'sensitivity', ...STAGES.slice(2)] : STAGES;
}

export interface Progress {
  stage: Stage;
  done: number;
  total: number;
  /** Samples (sensitivity: runs) per second so far, for "time left". */
  rate?: number;
}
