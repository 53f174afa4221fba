// Cancel and progress: every long stage takes an AbortSignal and reports Progress; a cancelled job
// throws CancelledError at the next check, which the hosts show as "cancelled", never as a failure.
import type { Progress } from '../../shared/progress';

export class CancelledError extends Error {
  constructor() {
    super('cancelled');
  }
}

/**
 * How long a cancelled job has to stop before the host ends its engine process: a job in JavaScript
 * stops at its next check within milliseconds; one inside a native ONNX Runtime call cannot hear it.
 */
export const CANCEL_GRACE_MS = 700;

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new CancelledError();
}

/** What every long-running engine call takes: a way to stop it and a way to hear how far it got. */
export interface Control {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}
