// The studio's one contract between the UI and the engine hosts. The renderer talks to a
// `StudioApi`; the Electron preload, the browser host's HTTP client and the test host implement it.
// Each request channel has a payload validator that the hosts run before the engine sees anything:
// a renderer (or, for the browser host, any local process) is not trusted to send well-formed data.
import { isTargetMetric, TARGET_METRICS, type Target } from './metrics';
import { MAIN_NUMERICS, type HostNumerics, type MainNumerics } from './numerics';
import type { ModelGraph } from './graph';
import type { Preflight } from './preflight';
import type { Progress, Stage } from './progress';
import { preprocessProblem, type PreprocessSpec } from './preprocess';
import type { AnalysisReport, Report, LayerReport } from './report';
import { validateRecipe, type Recipe } from './recipe';

export interface TensorInfo {
  name: string;
  type: string;
  /** Numbers for fixed dims, names for symbolic ones; absent when the rank is unknown. */
  shape?: Array<number | string>;
}

export interface ModelSummary {
  file: string;
  name: string;
  /** Model file plus external data side files. */
  bytes: number;
  /** External data files found next to the model. */
  sideFiles: string[];
  irVersion: number;
  producer: string;
  opsets: Array<{ domain: string; version: number }>;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  ops: Record<string, number>;
  nodeCount: number;
  parameters: number;
  /** How the model was last run in this studio, so that reopening it starts from there; absent for a model never run. */
  settings?: ModelSettings;
}

/** A model's last run as it was asked for. */
export interface ModelSettings {
  request: Omit<RunRequest, 'model' | 'fromRun' | 'target'>;
  /** What its data source holds, read from the source: a page shows the fields of that kind. */
  dataKind?: 'images' | 'npy' | 'random';
}

export interface SampleModel {
  model: ModelSummary;
  /** Folder of calibration images shipped with the sample. */
  calibration: string;
  preprocess: PreprocessSpec;
  /** Where its export goes by default: not beside the sample, which lives in the app's resources. */
  exportFolder: string;
}

/** The backend pre-flight: where each node would run under a recipe, without calibrating. */
export interface PlanSummary {
  backend: string;
  /** Absent when the backend refuses the recipe. */
  preflight?: Omit<Preflight, 'nodes'>;
  /** Nodes not quantized grouped by placement and reason, most frequent first. */
  reasons: Array<{ placement: string; reason: string; count: number; example: string }>;
  /** Refusals of the recipe by the backend, in words; empty when it can run. */
  problems: string[];
  /** This machine's int8 arithmetic, and what it means for the backend's figures. */
  host: HostNumerics;
}

/** How a data source is read beyond its preprocessing: the CLI's --skip-nonfinite and --max-megapixels. */
export interface DataOptions {
  /** Drop samples holding NaN, ±Inf or values past ±1e18 (the run says how many) instead of refusing the data. */
  skipNonFinite?: boolean;
  /** Images over this many decoded megapixels are refused from their header (default 50). */
  maxMegapixels?: number;
}

/** The data options a request sets, and only those: a record stays as small as what was asked. */
export function dataOptionsOf(request: DataOptions): DataOptions {
  return {
    ...(request.skipNonFinite ? { skipNonFinite: true } : {}),
    ...(request.maxMegapixels !== undefined ? { maxMegapixels: request.maxMegapixels } : {}),
  };
}

export interface PreviewRequest extends DataOptions {
  model: string;
  source: string;
  preprocess?: PreprocessSpec;
}

export interface InputPreview {
  description: string;
  input: string;
  shape: number[];
  /** A PNG data URL of the first sample as the model receives it, stretched min..max to 0..255; absent for non-image inputs. */
  image?: string;
  /** Per channel for images, one entry otherwise. */
  stats: Array<{ min: number; max: number; mean: number; std: number }>;
  warnings: string[];
}

export interface RunRequest extends DataOptions {
  model: string;
  recipe: Recipe;
  /** Calibration data source: a folder, a .npy file, a manifest or random:N; also evaluation's unless `evaluation` or `holdOut` says otherwise. */
  calibration?: string;
  /** Evaluation data source, for a run that measures on other samples than it calibrates on (weight-only and dynamic runs: the only data). */
  evaluation?: string;
  /** Fraction in (0, 1) of the calibration samples, spread evenly through them, kept for evaluation and never calibrated on. */
  holdOut?: number;
  preprocess?: PreprocessSpec;
  /** Re-convert and re-evaluate on this earlier run's samples without calibrating: a static recipe from its calibrated ranges, weight-only and dynamic need none. */
  fromRun?: string;
  /** Automatic repair: re-choose calibration methods, then move the fewest layers to higher precision, until this holds. */
  target?: Target;
  /** Numerics of the run's figures (default reference; the cpu backend's deployed figures are ort-cpu either way). */
  numerics?: MainNumerics;
  /** cpu backend on a CPU whose int8 kernels saturate: uint8 weights so the export is right here (default on). */
  saturationFix?: boolean;
  /** Labels of the evaluation samples (with `holdOut`, of every calibration sample) on the host: class ids (.npy, folder per class, JSON) or a JSON array of any values for the metric module. */
  labels?: string;
  /** The user's metric module (.mjs) on the host: `custom` among the metrics and as a repair target. */
  metricModule?: string;
}

export interface RunResult {
  runId: string;
  /** The run this one re-used ranges from. */
  fromRun?: string;
  report: Report;
}

/**
 * Job events. An analysis is a job of its own (its id is in `runId`, like a run's) and closes with
 * 'analyzed' instead of 'done'; 'progress', 'failed' and 'cancelled' are shared.
 */
export type JobEvent =
  | { runId: string; type: 'started'; request: RunRequest }
  | { runId: string; type: 'analysis-started'; of: string }
  | { runId: string; type: 'analyzed'; of: string; analysis: AnalysisReport }
  | ({ runId: string; type: 'progress' } & Progress)
  | { runId: string; type: 'warning'; message: string }
  | { runId: string; type: 'done'; result: RunResult }
  | { runId: string; type: 'failed'; stage: Stage; message: string }
  | { runId: string; type: 'cancelled' };

export interface Histogram {
  min: number;
  max: number;
  /** Counts per bin of equal width over [min, max]. */
  float: number[];
  quantized: number[];
}

/** A layer's weight as the quantized model stores it, against its float values (weight-only and dynamic runs). */
export interface WeightDetail {
  /** The weight's name in the float model. */
  name: string;
  /** The float weight against its stored values dequantized, over the same bins. */
  histogram: Histogram;
  /** One scale per tensor, per channel or per block, in the report's words ("per-block (32)"). */
  granularity: string;
  /** Weights that share one scale along the blocked axis; per-block only. */
  blockSize?: number;
  /** The step sizes the weight is stored with (absolute scales): how many, and their spread. */
  scales: { count: number; min: number; median: number; max: number };
  /** Elements of the weight: each side of the histogram counts all of them. */
  values: number;
  /** Weights off their float value by more than half a step: cut at the end of the integer grid. */
  clipped: number;
}

export interface LayerDetail {
  layer: LayerReport;
  histogram?: Histogram;
  /** Samples and values the histogram saw. */
  samples: number;
  values: number;
  /** Why there is no histogram (e.g. a tensor kept in float), or what the run's kind does with the tensor. */
  note?: string;
  /** The layer's stored quantized weight, where the run quantized only weights ahead of time (weight-only, dynamic). */
  weights?: WeightDetail;
}

export interface ExportRequest {
  runId: string;
  /**
   * Folder to write to; default: the model's folder, or in the browser host a new folder of the
   * host's own that the page then downloads as a zip.
   */
  folder?: string;
  /** Write over files of an earlier export; without it an export that would overwrite writes nothing and answers `existing`. */
  overwrite?: boolean;
}

/** The browser host keeps uploads and downloadable exports this many days. */
export const KEPT_DAYS = 30;

export interface ExportResult {
  folder: string;
  files: Array<{ file: string; bytes: number; what: string }>;
  /** Files the export would overwrite: nothing was written; export again with `overwrite` once the user agrees. */
  existing?: string[];
  /** Browser host: where the page downloads the export as one zip (a path relative to the page). */
  download?: string;
  floatBytes: number;
  quantizedBytes: number;
  ratio: number;
}

/** A job in progress as its events have told it so far. */
export interface ActiveJob {
  runId: string;
  kind: 'run' | 'analysis';
  /** The run an analysis analyses. */
  of?: string;
  /** Each stage's latest progress. */
  stages: Partial<Record<Stage, Progress>>;
  warnings: string[];
}

/** What the host keeps of a session for a page that reloads: the page's own saved state and what the engine did meanwhile. */
export interface SessionState {
  /** As the page saved it (session:save); the host stores it and reads none of it. */
  page?: Record<string, unknown>;
  /** Every finished run the engine holds, with its latest analysis. */
  runs: Array<RunResult & { analysis?: AnalysisReport }>;
  active?: ActiveJob;
  /** The closing events of the latest jobs, oldest first. */
  ended: JobEvent[];
}

/** Request/response channels: the payload each takes and what it answers. */
export interface RequestChannels {
  'model:open': { request: { path: string }; response: ModelSummary };
  'model:sample': { request: Record<string, never>; response: SampleModel };
  'model:recent': { request: Record<string, never>; response: string[] };
  'model:plan': { request: { model: string; recipe: Recipe }; response: PlanSummary };
  /** The model's graph as the graph view draws it, with what prepare will fold. */
  'model:graph': { request: { model: string }; response: ModelGraph };
  'dialog:model': { request: Record<string, never>; response: string | null };
  'dialog:folder': { request: Record<string, never>; response: string | null };
  'data:preview': { request: PreviewRequest; response: InputPreview };
  'run:start': { request: RunRequest; response: { runId: string } };
  'run:cancel': { request: { runId: string }; response: { cancelled: boolean } };
  'run:layer': { request: { runId: string; tensor: string }; response: LayerDetail };
  /** Starts a sensitivity analysis of a finished run from its saved ranges; cancelled with run:cancel on the answered id. */
  'run:analyze': { request: { runId: string }; response: { jobId: string } };
  'run:export': { request: ExportRequest; response: ExportResult };
  /** The session as a page that (re)loads finds it. */
  'session:get': { request: Record<string, never>; response: SessionState };
  /** The page's own state, kept by the host for a reload. */
  'session:save': { request: { page: Record<string, unknown> }; response: void };
}

export type Channel = keyof RequestChannels;
export type RequestOf<C extends Channel> = RequestChannels[C]['request'];
export type ResponseOf<C extends Channel> = RequestChannels[C]['response'];

/** Every response crosses a host as an envelope, so that an error arrives as its message. */
export type Envelope<T> = { ok: true; value: T } | { ok: false; error: string };

/** Electron's channel for job events and menu commands (main → renderer). */
export const EVENT_CHANNEL = 'studio:event';
export const MENU_CHANNEL = 'studio:menu';
export type MenuCommand = { command: 'open' } | { command: 'sample' } | { command: 'export' } | { command: 'open-path'; path: string };

/** What the renderer needs from its host. */
export interface StudioApi {
  readonly host: 'electron' | 'browser' | 'test';
  call<C extends Channel>(channel: C, request: RequestOf<C>): Promise<ResponseOf<C>>;
  /** A dropped or picked file as a path the engine can open (Electron: its path; browser: uploaded). */
  pathForFile(file: File): Promise<string>;
  /**
   * A picked folder (its files, each with its webkitRelativePath) or several picked files as one
   * folder the engine can read (Electron: the folder they are in; browser: uploaded together,
   * subfolders kept). `onFile` hears each file as it is taken.
   */
  pathForFolder(files: readonly File[], onFile?: (done: number, total: number) => void): Promise<string>;
  onJobEvent(listener: (event: JobEvent) => void): () => void;
  onMenu(listener: (command: MenuCommand) => void): () => void;
}

/** The path of a file picked with its folder ("calibration/cat/1.png"), without that folder; '' for a file picked alone. */
export function pathInPickedFolder(file: File): string {
  const relative = (file as File & { webkitRelativePath?: string }).webkitRelativePath ?? '';
  return relative.split('/').slice(1).join('/');
}

export class PayloadError extends Error {}

function fail(channel: string, message: string): never {
  throw new PayloadError(`${channel}: ${message}`);
}

function object(channel: string, value: unknown, keys: string[]): Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) fail(channel, 'expected an object payload');
  const extra = Object.keys(value).filter((k) => !keys.includes(k));
  if (extra.length) fail(channel, `unexpected field "${extra[0]}"`);
  return value as Record<string, unknown>;
}

function text(channel: string, value: unknown, field: string, optional = false): void {
  if (value === undefined && optional) return;
  if (typeof value !== 'string' || value.length === 0 || value.length > 4096 || value.includes('\0')) fail(channel, `"${field}" must be a non-empty string`);
}

function preprocess(channel: string, value: unknown): void {
  if (value === undefined) return;
  const problem = preprocessProblem(value, `${channel}: "preprocess"`);
  if (problem) throw new PayloadError(problem);
}

function recipe(channel: string, value: unknown): void {
  try {
    validateRecipe(value, `${channel}: recipe`);
  } catch (err) {
    throw new PayloadError((err as Error).message);
  }
}

function target(channel: string, value: unknown): void {
  if (value === undefined) return;
  const t = object(channel, value, ['kind', 'metric', 'value']);
  if (typeof t.value !== 'number' || !Number.isFinite(t.value)) fail(channel, '"target.value" must be a finite number');
  if (t.kind === 'sqnr') {
    if (t.metric !== undefined) fail(channel, '"target.metric" belongs to a metric target, not an SQNR one');
  } else if (t.kind === 'metric') {
    if (!isTargetMetric(t.metric)) fail(channel, `"target.metric" must be one of ${TARGET_METRICS.join(', ')}`);
    if (t.metric !== 'custom' && !(t.value > 0 && t.value <= 1)) fail(channel, '"target.value" of a built-in metric must be in (0, 1]');
  } else fail(channel, '"target.kind" must be sqnr or metric');
}

const empty = (channel: string, v: unknown) => void object(channel, v, []);

const DATA_OPTION_KEYS = ['skipNonFinite', 'maxMegapixels'];

function dataOptions(channel: string, o: Record<string, unknown>): void {
  if (o.skipNonFinite !== undefined && typeof o.skipNonFinite !== 'boolean') fail(channel, '"skipNonFinite" must be true or false');
  if (o.maxMegapixels !== undefined && !(typeof o.maxMegapixels === 'number' && o.maxMegapixels > 0 && o.maxMegapixels <= 10_000)) fail(channel, '"maxMegapixels" must be a number of megapixels in (0, 10000]');
}

/** Payload validators: each throws a PayloadError naming the channel and the bad field. */
export const VALIDATORS: { [C in Channel]: (value: unknown) => asserts value is RequestOf<C> } = {
  'model:open': (v) => text('model:open', object('model:open', v, ['path']).path, 'path'),
  'model:sample': (v) => empty('model:sample', v),
  'model:recent': (v) => empty('model:recent', v),
  'model:plan': (v) => {
    const o = object('model:plan', v, ['model', 'recipe']);
    text('model:plan', o.model, 'model');
    recipe('model:plan', o.recipe);
  },
  'model:graph': (v) => text('model:graph', object('model:graph', v, ['model']).model, 'model'),
  'dialog:model': (v) => empty('dialog:model', v),
  'dialog:folder': (v) => empty('dialog:folder', v),
  'data:preview': (v) => {
    const o = object('data:preview', v, ['model', 'source', 'preprocess', ...DATA_OPTION_KEYS]);
    text('data:preview', o.model, 'model');
    text('data:preview', o.source, 'source');
    preprocess('data:preview', o.preprocess);
    dataOptions('data:preview', o);
  },
  'run:start': (v) => {
    const o = object('run:start', v, ['model', 'recipe', 'calibration', 'evaluation', 'holdOut', 'preprocess', 'fromRun', 'target', 'numerics', 'saturationFix', 'labels', 'metricModule', ...DATA_OPTION_KEYS]);
    dataOptions('run:start', o);
    text('run:start', o.model, 'model');
    recipe('run:start', o.recipe);
    text('run:start', o.calibration, 'calibration', true);
    text('run:start', o.evaluation, 'evaluation', true);
    if (o.holdOut !== undefined && !(typeof o.holdOut === 'number' && o.holdOut > 0 && o.holdOut < 1)) fail('run:start', '"holdOut" must be a fraction between 0 and 1');
    if (o.holdOut !== undefined && o.evaluation !== undefined) fail('run:start', '"holdOut" splits the calibration data for evaluation; with "evaluation" given, leave it out');
    preprocess('run:start', o.preprocess);
    text('run:start', o.fromRun, 'fromRun', true);
    text('run:start', o.labels, 'labels', true);
    text('run:start', o.metricModule, 'metricModule', true);
    target('run:start', o.target);
    if (o.numerics !== undefined && !MAIN_NUMERICS.includes(o.numerics as MainNumerics)) fail('run:start', `"numerics" must be one of ${MAIN_NUMERICS.join(', ')}`);
    if (o.saturationFix !== undefined && typeof o.saturationFix !== 'boolean') fail('run:start', '"saturationFix" must be true or false');
  },
  'run:analyze': (v) => text('run:analyze', object('run:analyze', v, ['runId']).runId, 'runId'),
  'run:cancel': (v) => text('run:cancel', object('run:cancel', v, ['runId']).runId, 'runId'),
  'run:layer': (v) => {
    const o = object('run:layer', v, ['runId', 'tensor']);
    text('run:layer', o.runId, 'runId');
    text('run:layer', o.tensor, 'tensor');
  },
  'session:get': (v) => empty('session:get', v),
  'session:save': (v) => {
    const page = object('session:save', v, ['page']).page;
    if (!page || typeof page !== 'object' || Array.isArray(page)) fail('session:save', '"page" must be an object');
  },
  'run:export': (v) => {
    const o = object('run:export', v, ['runId', 'folder', 'overwrite']);
    text('run:export', o.runId, 'runId');
    text('run:export', o.folder, 'folder', true);
    if (o.overwrite !== undefined && typeof o.overwrite !== 'boolean') fail('run:export', '"overwrite" must be true or false');
  },
};

export const CHANNELS = Object.keys(VALIDATORS) as Channel[];

export function isChannel(name: unknown): name is Channel {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(VALIDATORS, name);
}

/** Validates a payload for a channel; throws a PayloadError for an unknown channel or a malformed payload. */
export function checkRequest<C extends Channel>(channel: C, payload: unknown): RequestOf<C> {
  if (!isChannel(channel)) throw new PayloadError(`unknown channel "${String(channel)}"`);
  (VALIDATORS[channel] as (value: unknown) => void)(payload);
  return payload as RequestOf<C>;
}
