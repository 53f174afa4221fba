// The engine as its hosts see it: the jobs, and the one error a host treats apart (a cancel).
// The CLI, the browser host and the Electron main process import nothing else of main/ but the
// studio service.
export { analyze, type AnalyzeJob } from './analyze';
export { evalPair, type EvalJob, type EvalOutcome } from './eval';
export { inspect } from './inspect';
export { preflightWithHost } from './preflight';
export { quantize, type QuantizeJob, type QuantizeOutcome } from './quantize';
export { CANCEL_GRACE_MS, CancelledError } from '../base/progress';
export { STAGE_PREFIX } from '../export/artifacts';
export { engineEnv } from '../base/engine-env';
