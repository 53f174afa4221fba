// One zustand store of typed slices (model, config, run, results, ui). It talks to the engine only
// through the StudioApi it is created with, so the Electron preload, the browser host client and
// the test host drive the same store.
import { createStore, type StateCreator, type StoreApi } from 'zustand/vanilla';
import { BACKENDS, findBackend, recipeFor, recipeProblems, sixteenBitType } from '../shared/backends';
import { dataOptionsOf, pathInPickedFolder, type ActiveJob, type DataOptions, type ExportResult, type InputPreview, type JobEvent, type LayerDetail, type ModelSettings, type ModelSummary, type PlanSummary, type RunRequest, type RunResult, type SessionState, type StudioApi } from '../shared/ipc';
import type { Target, TargetMetric } from '../shared/metrics';
import type { MainNumerics } from '../shared/numerics';
import { adaRoundIterations, readsCalibration, withHigherPrecision, type QuantType, type Recipe } from '../shared/recipe';
import { dbNumber, worstDb, type AnalysisReport, type Report } from '../shared/report';
import type { PreprocessSpec } from '../shared/preprocess';
import type { ModelGraph } from '../shared/graph';
import { DEFAULT_THRESHOLD_DB } from '../shared/colours';
import { folderOf, inFolder } from './format';
import type { OverlayMode } from '../shared/graph-svg';
import { runStages, type Progress, type Stage } from '../shared/progress';

export type Screen = 'import' | 'model' | 'configure' | 'run' | 'inspect' | 'export';
export const SCREENS: ReadonlyArray<{ id: Screen; title: string }> = [
  { id: 'import', title: 'Import' }, { id: 'model', title: 'Model' }, { id: 'configure', title: 'Configure' },
  { id: 'run', title: 'Run' }, { id: 'inspect', title: 'Inspect' }, { id: 'export', title: 'Export' },
];

export interface ModelSlice {
  model?: ModelSummary;
  modelError?: string;
  opening: boolean;
  recent: string[];
  openPath(path: string): Promise<void>;
  openFile(file: File): Promise<void>;
  openSample(): Promise<void>;
  chooseModel(): Promise<boolean>;
  loadRecent(): Promise<void>;
}

export type DataKind = 'images' | 'npy' | 'random';

export interface DataConfig {
  kind: DataKind;
  /** Folder or file for images / .npy. */
  path: string;
  randomCount: number;
  preprocess: PreprocessSpec;
  /** How the source is read beyond preprocessing (not for random samples). */
  options: DataOptions;
  /** Labels of the samples, a path on the host ('' for none). */
  labels: string;
  /** The user's metric module, a path on the host ('' for none). */
  metricModule: string;
  /** What a static run measures its figures on; weight-only and dynamic runs measure on the data above. */
  evaluation: EvaluationChoice;
}

export interface EvaluationChoice {
  /** held-out: `fraction` of the calibration samples, spread evenly, never calibrated on; calibration: the calibration samples themselves; other: `path`. */
  kind: 'held-out' | 'calibration' | 'other';
  fraction: number;
  path: string;
}

/** The fields of the data section a file or folder can be picked for. */
export type DataField = 'path' | 'labels' | 'metricModule' | 'evaluation';

/** Held out for evaluation unless the user says otherwise: a figure measured on the calibration samples flatters the model. */
export const DEFAULT_HOLD_OUT = 0.25;

export function blankData(): DataConfig {
  return { kind: 'images', path: '', randomCount: 16, preprocess: {}, options: {}, labels: '', metricModule: '', evaluation: { kind: 'held-out', fraction: DEFAULT_HOLD_OUT, path: '' } };
}

export interface ConfigSlice {
  recipe: Recipe;
  /** Numerics of the run's figures; undefined: the default (reference, with the cpu backend's deployed ort-cpu beside it). */
  numerics?: MainNumerics;
  /** cpu backend on a CPU whose int8 kernels saturate: uint8 weights so the export is right here. */
  saturationFix: boolean;
  setNumerics(numerics: MainNumerics | undefined): void;
  setSaturationFix(on: boolean): void;
  /** The preset the recipe came from, until an advanced option changes it. */
  preset?: string;
  data: DataConfig;
  plan?: PlanSummary;
  planError?: string;
  preview?: InputPreview;
  previewError?: string;
  chooseBackend(name: string, preset?: string): void;
  setRecipe(patch: Partial<Recipe>): void;
  setData(patch: Partial<DataConfig>): void;
  /** A picked file, several files or a folder, uploaded where the host needs it, as the field's path. */
  pickData(field: DataField, files: readonly File[], asFolder: boolean): Promise<void>;
  /** Counts resets: fields that keep their own text while typed start again from the configuration. */
  configGeneration: number;
  /** Files of a pick being taken. */
  picking?: { field: DataField; done: number; total: number };
  pickError?: { field: DataField; message: string };
  refreshPlan(): Promise<void>;
  refreshPreview(): Promise<void>;
  /** What the open model starts from when it has no settings of its own: the backend's preset, no data (the sample: its own). */
  defaults?: ModelConfig;
  /** Forgets the model's last settings on screen: back to `defaults`. */
  resetConfig(): void;
  /** The configuration came from the model's last run, and has not been reset since. */
  fromLastRun: boolean;
}

export type ModelConfig = Pick<Studio, 'recipe' | 'preset' | 'numerics' | 'saturationFix' | 'data'>;

export interface StageState {
  done: number;
  total: number;
  rate?: number;
  unit?: Progress['unit'];
  /** The run does without this stage (a re-run from saved ranges does not calibrate). */
  skipped?: boolean;
  /** Why, in words, where it is not the saved ranges. */
  why?: string;
}

export interface RunSlice {
  runId?: string;
  status: 'idle' | 'running' | 'cancelling' | 'done' | 'failed' | 'cancelled';
  /** The stages this run goes through (a repair adds its search), known from the start so bars never appear mid-run. */
  runStages: readonly Stage[];
  stages: Partial<Record<Stage, StageState>>;
  failure?: { stage: Stage; message: string };
  warnings: string[];
  /** What the run in progress (or the last one) was asked, how it came about, and the run it derives from. */
  asked?: { request: RunRequest; origin: RunOrigin; parent?: string };
  startRun(options?: { fromRun?: string; recipe?: Recipe; repair?: { of: RunResult; target: Target } }): Promise<void>;
  cancelRun(): Promise<void>;
  onJobEvent(event: JobEvent): void;
}

export interface ResultsSlice {
  current?: RunResult;
  /** The run the current one was derived from, drawn under it. */
  previous?: RunResult;
  selected?: string;
  detail?: LayerDetail;
  detailError?: string;
  sort: 'graph' | 'worst';
  threshold: number;
  exportFolder: string;
  exported?: ExportResult;
  exportError?: string;
  exporting: boolean;
  /** An export that would write over earlier files, waiting for the user's word. */
  exportConflict?: { runId: string; folder: string; files: string[]; toFolder: boolean };
  selectLayer(name: string | undefined): Promise<void>;
  /** Re-runs from the current run's ranges with the tensor kept in float, or at 16 bits. */
  overrideLayer(name: string, how: 'float' | '16-bit'): Promise<void>;
  setSort(sort: 'graph' | 'worst'): void;
  setThreshold(db: number): void;
  setExportFolder(folder: string): void;
  chooseExportFolder(): Promise<void>;
  /** To the folder named (`toFolder`), else where the host puts it (browser host: a zip to download). */
  exportRun(options?: { toFolder?: boolean; overwrite?: boolean }): Promise<void>;
  cancelOverwrite(): void;
  /** An export the browser is to download, once: not again each time the Export screen shows. */
  downloadPending: boolean;
  downloadStarted(): void;
}

/** How a run of the session came about. */
export type RunOrigin = { kind: 'run' } | { kind: 'override'; of: string } | { kind: 'repair'; of: string; target: Target };

export interface HistoryEntry {
  result: RunResult;
  origin: RunOrigin;
  /** What was asked of the engine (a RunResult does not carry its data source). */
  request: RunRequest;
}

/** Every finished run of the session, oldest first; the chart shows any one and outlines any other. */
export interface HistorySlice {
  history: HistoryEntry[];
  /** Shows a run of the history: its bars on the chart, its layers in the panel, its files on export. */
  showRun(runId: string): void;
  /** Outlines another run under the shown one, or none. */
  outlineRun(runId: string | undefined): void;
}

export interface RepairDraft {
  kind: 'sqnr' | 'metric';
  /** dB for an SQNR target. */
  sqnr: number;
  metric: TargetMetric;
  /** In (0, 1] for a metric target. */
  metricValue: number;
}

export interface AnalysisSlice {
  /** Analyses of the session's runs, by run id. */
  analyses: Record<string, AnalysisReport>;
  analysis: {
    status: 'idle' | 'running' | 'cancelling' | 'failed' | 'cancelled';
    jobId?: string;
    /** The run being analysed. */
    of?: string;
    stage?: Stage;
    done: number;
    total: number;
    error?: string;
  };
  /** Draws local SQNR markers over the cumulative bars, once the shown run is analysed. */
  showLocal: boolean;
  repairDraft: RepairDraft;
  analyze(): Promise<void>;
  cancelAnalysis(): Promise<void>;
  onAnalysisEvent(event: JobEvent): void;
  setShowLocal(show: boolean): void;
  setRepairDraft(patch: Partial<RepairDraft>): void;
  /** Re-runs the shown run's configuration with the target: calibrates again (so methods can be re-chosen), then searches. */
  repair(): Promise<void>;
}

export interface UiSlice {
  screen: Screen;
  theme: 'light' | 'dark';
  go(screen: Screen): void;
  setTheme(theme: 'light' | 'dark'): void;
}

export interface SessionSlice {
  /** Comes back to the session the host kept (after a reload): the model, its runs, a job still going. False when there is none. */
  restoreSession(): Promise<boolean>;
}

export interface GraphSlice {
  /** The open model's graph, fetched the first time a graph view asks for it. */
  graph?: { model: string; value?: ModelGraph; error?: string };
  /** Inspect shows the bar chart or the graph, above the layer table both share. */
  inspectView: 'chart' | 'graph';
  overlay: OverlayMode;
  loadGraph(): Promise<void>;
  setInspectView(view: 'chart' | 'graph'): void;
  setOverlay(mode: OverlayMode): void;
}

export type Studio = ModelSlice & ConfigSlice & RunSlice & ResultsSlice & HistorySlice & AnalysisSlice & GraphSlice & UiSlice & SessionSlice;
export type StudioStore = StoreApi<Studio>;

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

const DEFAULT_BACKEND = BACKENDS.find((b) => b.name === 'xnnpack') ?? BACKENDS[0];

type Opened = ModelSummary & { exportFolder?: string; sampleData?: DataConfig };

const modelSlice = (api: StudioApi): StateCreator<Studio, [], [], ModelSlice> => (set, get) => {
  const opened = ({ exportFolder, sampleData, ...model }: Opened) => {
    set({ model, modelError: undefined, opening: false, current: undefined, previous: undefined, selected: undefined, detail: undefined, exported: undefined, exportConflict: undefined,
      history: [], analyses: {}, analysis: { status: 'idle', done: 0, total: 0 }, graph: undefined,
      // A browser user may not see the host's disk: the model's folder (an upload's is the host's own) is no default there.
      exportFolder: exportFolder ?? (api.host === 'browser' ? '' : folderOf(model.file)), plan: undefined, preview: undefined, previewError: undefined,
      status: 'idle', stages: {}, failure: undefined, warnings: [], asked: undefined, pickError: undefined,
      ...configFor(model.settings, get().recipe.backend, sampleData), fromLastRun: Boolean(model.settings), defaults: configFor(undefined, get().recipe.backend, sampleData) });
    get().go('model');
    void get().loadRecent();
  };
  const open = async (work: () => Promise<Opened>) => {
    set({ opening: true, modelError: undefined });
    try {
      opened(await work());
    } catch (err) {
      set({ opening: false, modelError: message(err) });
    }
  };
  return {
    opening: false,
    recent: [],
    openPath: (path) => open(() => api.call('model:open', { path })),
    openFile: (file) => open(async () => {
      if (!/\.onnx$/i.test(file.name)) throw new Error(`${file.name}: not an ONNX model (the studio opens .onnx files exported from PyTorch, TensorFlow, Paddle…)`);
      const path = await api.pathForFile(file);
      try {
        return await api.call('model:open', { path });
      } catch (err) {
        // The browser host uploads to a temporary folder; the user knows the file by its name.
        throw new Error(message(err).split(path).join(file.name));
      }
    }),
    openSample: () => open(async () => {
      const sample = await api.call('model:sample', {});
      return { ...sample.model, exportFolder: sample.exportFolder, sampleData: { ...blankData(), path: sample.calibration, preprocess: sample.preprocess } };
    }),
    chooseModel: async () => {
      const path = await api.call('dialog:model', {});
      if (path) await get().openPath(path);
      return path !== null;
    },
    loadRecent: async () => {
      try {
        set({ recent: await api.call('model:recent', {}) });
      } catch {
        // The recent list is a convenience; the screen works without it.
      }
    },
  };
};

/**
 * The configuration a model opens with: its last run's in this studio, else the backend's first
 * preset, the model's own input shapes and no data (the sample's own data for the sample): nothing
 * of the model open before leaks into it.
 */
export function configFor(settings: ModelSettings | undefined, backend: string, fallbackData?: DataConfig): ModelConfig {
  if (!settings) {
    const preset = findBackend(backend)?.presets[0]?.name;
    return { recipe: recipeFor(backend, preset), preset, numerics: undefined, saturationFix: true, data: fallbackData ?? blankData() };
  }
  const r = settings.request;
  const source = readsCalibration(r.recipe) ? r.calibration : r.evaluation ?? r.calibration;
  const random = source ? /^random:(\d+)$/.exec(source) : null;
  const data: DataConfig = {
    ...blankData(),
    kind: settings.dataKind ?? 'images',
    path: random ? '' : source ?? '',
    ...(random ? { randomCount: Number(random[1]) } : {}),
    preprocess: r.preprocess ?? {},
    options: dataOptionsOf(r),
    labels: r.labels ?? '',
    metricModule: r.metricModule ?? '',
    evaluation: !readsCalibration(r.recipe) ? blankData().evaluation
      : r.holdOut ? { kind: 'held-out', fraction: r.holdOut, path: '' }
        : r.evaluation ? { kind: 'other', fraction: DEFAULT_HOLD_OUT, path: r.evaluation } : { kind: 'calibration', fraction: DEFAULT_HOLD_OUT, path: '' },
  };
  const preset = findBackend(r.recipe.backend)?.presets.find((p) => JSON.stringify(recipeFor(r.recipe.backend, p.name)) === JSON.stringify(r.recipe))?.name;
  return { recipe: r.recipe, preset, numerics: r.numerics, saturationFix: r.saturationFix !== false, data };
}

const configSlice = (api: StudioApi): StateCreator<Studio, [], [], ConfigSlice> => (set, get) => ({
  recipe: recipeFor(DEFAULT_BACKEND.name),
  saturationFix: true,
  setNumerics: (numerics) => set({ numerics }),
  setSaturationFix: (saturationFix) => set({ saturationFix }),
  preset: DEFAULT_BACKEND.presets[0].name,
  data: blankData(),
  configGeneration: 0,
  fromLastRun: false,
  chooseBackend: (name, preset) => {
    set({ recipe: recipeFor(name, preset), preset: preset ?? findBackend(name)?.presets[0]?.name, plan: undefined });
    void get().refreshPlan();
  },
  setRecipe: (patch) => {
    const recipe = { ...get().recipe, ...patch };
    // AdaRound's iterations follow the granularity while they are its default.
    const ada = recipe.algorithms?.adaround;
    if (patch.granularity && !patch.algorithms && ada?.iterations === adaRoundIterations(get().recipe.granularity)) {
      recipe.algorithms = { ...recipe.algorithms, adaround: { iterations: adaRoundIterations(patch.granularity) } };
    }
    set({ recipe, preset: undefined, plan: undefined });
    void get().refreshPlan();
  },
  setData: (patch) => set({
    data: { ...get().data, ...patch, preprocess: { ...get().data.preprocess, ...patch.preprocess }, options: { ...get().data.options, ...patch.options } },
    preview: undefined, previewError: undefined,
  }),
  resetConfig: () => {
    const defaults = get().defaults;
    if (!defaults) return;
    set({ ...defaults, fromLastRun: false, plan: undefined, preview: undefined, previewError: undefined, pickError: undefined, configGeneration: get().configGeneration + 1 });
    void get().refreshPlan();
  },
  pickData: async (field, files, asFolder) => {
    if (files.length === 0) return;
    set({ picking: { field, done: 0, total: files.length }, pickError: undefined });
    try {
      const folder = asFolder || files.length > 1 ? await api.pathForFolder(files, (done, total) => set({ picking: { field, done, total } })) : undefined;
      // A manifest picked with the files it names is the source, not the folder they all landed in.
      const manifests = field === 'path' || field === 'evaluation' ? files.filter((f) => /\.json$/i.test(f.name) && !(pathInPickedFolder(f).includes('/'))) : [];
      const path = folder === undefined ? await api.pathForFile(files[0])
        : manifests.length === 1 ? inFolder(folder, manifests[0].name) : folder;
      if (field === 'evaluation') get().setData({ evaluation: { ...get().data.evaluation, kind: 'other', path } });
      else get().setData({ [field]: path });
      set({ picking: undefined });
    } catch (err) {
      set({ picking: undefined, pickError: { field, message: message(err) } });
    }
  },
  refreshPlan: async () => {
    const { model, recipe } = get();
    if (!model) return;
    try {
      const plan = await api.call('model:plan', { model: model.file, recipe });
      if (get().recipe === recipe) set({ plan, planError: undefined });
    } catch (err) {
      if (get().recipe === recipe) set({ plan: undefined, planError: message(err) });
    }
  },
  refreshPreview: async () => {
    const { model, data } = get();
    const source = dataSource(data);
    if (!model || !source || data.kind === 'random') return;
    try {
      set({ preview: await api.call('data:preview', { model: model.file, source, preprocess: data.kind === 'images' ? data.preprocess : undefined, ...sourceOptions(data) }), previewError: undefined });
    } catch (err) {
      set({ preview: undefined, previewError: message(err) });
    }
  },
});

/** The data source string the engine reads, or undefined when none is chosen yet. */
export function dataSource(data: DataConfig): string | undefined {
  if (data.kind === 'random') return `random:${Math.max(1, Math.floor(data.randomCount))}`;
  return data.path.trim() || undefined;
}

/** The data options a run or preview sends: none for random samples, the pixel cap only for images. */
export function sourceOptions(data: DataConfig): DataOptions {
  if (data.kind === 'random') return {};
  return {
    ...(data.options.skipNonFinite ? { skipNonFinite: true } : {}),
    ...(data.kind === 'images' && data.options.maxMegapixels !== undefined ? { maxMegapixels: data.options.maxMegapixels } : {}),
  };
}

/**
 * The data fields of a run request: a run that calibrates (static, or GPTQ) does so on the source
 * and measures on what the evaluation choice says; a weight-only or dynamic run only measures, on the source.
 */
export function dataRequest(data: DataConfig, recipe: Recipe): Partial<RunRequest> {
  const source = dataSource(data);
  const request: Partial<RunRequest> = { ...sourceOptions(data) };
  if (!readsCalibration(recipe)) {
    if (source) request.evaluation = source;
  } else {
    if (source) request.calibration = source;
    const e = data.evaluation;
    if (e.kind === 'held-out' && source) request.holdOut = e.fraction;
    if (e.kind === 'other' && e.path.trim()) request.evaluation = e.path.trim();
  }
  if (data.kind === 'images' && Object.keys(data.preprocess).length) request.preprocess = data.preprocess;
  if (data.labels.trim()) request.labels = data.labels.trim();
  if (data.metricModule.trim()) request.metricModule = data.metricModule.trim();
  return request;
}

/** Progress arrives at up to ten events a second per stage; the store folds them in at most this often. */
const PROGRESS_FLUSH_MS = 100;

const runSlice = (api: StudioApi): StateCreator<Studio, [], [], RunSlice> => (set, get) => {
  let pending: Partial<Record<Stage, StageState>> = {};
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    timer = undefined;
    if (Object.keys(pending).length) set({ stages: { ...get().stages, ...pending } });
    pending = {};
  };
  return {
    status: 'idle',
    runStages: runStages({}),
    stages: {},
    warnings: [],
    startRun: async (options = {}) => {
      const { model, data } = get();
      if (!model) return;
      const recipe = options.repair?.of.report.recipe ?? options.recipe ?? get().recipe;
      const request: RunRequest = { model: model.file, recipe };
      const parent = options.fromRun ?? options.repair?.of.runId;
      // A re-run or a repair measures as the run it derives from did, so the two compare.
      const root = parent ? rootRequest(get().history, parent) : undefined;
      const numerics = root ? root.numerics : get().numerics;
      if (numerics) request.numerics = numerics;
      const saturationFix = root ? root.saturationFix : get().saturationFix;
      if (saturationFix === false) request.saturationFix = false;
      if (options.fromRun) request.fromRun = options.fromRun;
      else if (options.repair) {
        // The samples of the run being repaired, so before and after compare.
        if (root?.calibration) request.calibration = root.calibration;
        if (root?.evaluation) request.evaluation = root.evaluation;
        if (root?.holdOut) request.holdOut = root.holdOut;
        if (root?.preprocess) request.preprocess = root.preprocess;
        if (root?.skipNonFinite) request.skipNonFinite = true;
        if (root?.maxMegapixels !== undefined) request.maxMegapixels = root.maxMegapixels;
        if (root?.labels) request.labels = root.labels;
        if (root?.metricModule) request.metricModule = root.metricModule;
        request.target = options.repair.target;
      } else {
        Object.assign(request, dataRequest(data, recipe));
      }
      const origin: RunOrigin = options.fromRun ? { kind: 'override', of: options.fromRun } : options.repair ? { kind: 'repair', of: options.repair.of.runId, target: options.repair.target } : { kind: 'run' };
      const parentRun = options.fromRun ? get().current?.runId : options.repair?.of.runId;
      const why = recipe.kind === 'static' ? {} : { why: `a ${recipe.kind} run has nothing to calibrate` };
      const stages: RunSlice['stages'] = options.fromRun ? { calibrate: { done: 0, total: 0, skipped: true, ...why } } : {};
      set({ status: 'running', runStages: runStages(request), stages, failure: undefined, warnings: [], runId: undefined, exported: undefined, exportError: undefined, exportConflict: undefined,
        asked: { request, origin, ...(parentRun ? { parent: parentRun } : {}) } });
      get().go('run');
      try {
        const { runId } = await api.call('run:start', request);
        if (get().status === 'running' && !get().runId) set({ runId });
      } catch (err) {
        set({ status: 'failed', failure: { stage: 'load', message: message(err) } });
      }
    },
    cancelRun: async () => {
      const { runId } = get();
      if (!runId || get().status !== 'running') return;
      set({ status: 'cancelling' });
      try {
        await api.call('run:cancel', { runId });
      } catch (err) {
        set({ status: 'failed', failure: { stage: 'load', message: message(err) } });
      }
    },
    onJobEvent: (event) => {
      const { runId } = get();
      if (event.type === 'started') {
        if (!runId) set({ runId: event.runId });
        return;
      }
      if (runId && event.runId !== runId) return;
      switch (event.type) {
        case 'progress':
          pending[event.stage] = { done: event.done, total: event.total, rate: event.rate, unit: event.unit };
          timer ??= setTimeout(flush, PROGRESS_FLUSH_MS);
          break;
        case 'warning':
          set({ warnings: [...get().warnings, event.message] });
          break;
        case 'done': {
          // A page restoring its session may hear a run's end twice: from the session and live.
          if (get().history.some((h) => h.result.runId === event.result.runId)) break;
          if (timer) clearTimeout(timer);
          flush();
          // A stage that sent no progress was not needed by this run: it shows as skipped, not as waiting.
          const finished = Object.fromEntries(get().runStages.map((st) => {
            const seen = get().stages[st];
            return [st, seen && !seen.skipped ? { ...seen, done: seen.total } : { done: 0, total: 0, skipped: true }];
          }));
          const asked = get().asked;
          const origin = asked?.origin ?? { kind: 'run' };
          set({ status: 'done', stages: finished, current: event.result, previous: get().history.find((h) => h.result.runId === asked?.parent)?.result, detail: undefined, detailError: undefined, screen: 'inspect',
            history: [...get().history, { result: event.result, origin, request: asked?.request ?? { model: event.result.report.model.file, recipe: event.result.report.recipe } }],
            ...(origin.kind === 'repair' ? {} : { repairDraft: { ...get().repairDraft, sqnr: defaultSqnrTarget(event.result.report) } }) });
          const selected = get().selected;
          if (selected) void get().selectLayer(selected);
          break;
        }
        case 'failed':
          if (timer) clearTimeout(timer);
          flush();
          set({ status: 'failed', failure: { stage: event.stage, message: event.message } });
          break;
        case 'cancelled':
          if (timer) clearTimeout(timer);
          pending = {};
          set({ status: 'cancelled' });
          break;
      }
    },
  };
};

const resultsSlice = (api: StudioApi): StateCreator<Studio, [], [], ResultsSlice> => (set, get) => ({
  sort: 'graph',
  threshold: DEFAULT_THRESHOLD_DB,
  exportFolder: '',
  exporting: false,
  selectLayer: async (name) => {
    set({ selected: name, detail: undefined, detailError: undefined });
    const run = get().current;
    if (!name || !run) return;
    try {
      const detail = await api.call('run:layer', { runId: run.runId, tensor: name });
      if (get().selected === name && get().current === run) set({ detail });
    } catch (err) {
      if (get().selected === name) set({ detailError: message(err) });
    }
  },
  overrideLayer: async (name, how) => {
    const run = get().current;
    if (!run) return;
    const recipe = layerRecipe(run.report, name, how);
    if (recipe) await get().startRun({ fromRun: run.runId, recipe });
  },
  setSort: (sort) => set({ sort }),
  setThreshold: (db) => set({ threshold: Math.round(db * 10) / 10 }),
  setExportFolder: (folder) => set({ exportFolder: folder, exportConflict: undefined }),
  downloadPending: false,
  downloadStarted: () => set({ downloadPending: false }),
  chooseExportFolder: async () => {
    const folder = await api.call('dialog:folder', {});
    if (folder) set({ exportFolder: folder });
  },
  exportRun: async ({ toFolder = api.host !== 'browser', overwrite = false } = {}) => {
    const run = get().current;
    if (!run) return;
    // Overwriting writes what the user was asked about: that run, into that folder.
    const asked = overwrite ? get().exportConflict : undefined;
    if (overwrite && (!asked || asked.runId !== run.runId)) return;
    const folder = asked ? (asked.toFolder ? asked.folder : '') : toFolder ? get().exportFolder.trim() : '';
    set({ exporting: true, exportError: undefined, exported: undefined, exportConflict: undefined });
    try {
      const result = await api.call('run:export', { runId: run.runId, ...(folder ? { folder } : {}), ...(overwrite ? { overwrite } : {}) });
      if (result.existing) set({ exportConflict: { runId: run.runId, folder: result.folder, files: result.existing, toFolder }, exporting: false });
      else set({ exported: result, exporting: false, downloadPending: Boolean(result.download) });
    } catch (err) {
      set({ exportError: message(err), exporting: false });
    }
  },
  cancelOverwrite: () => set({ exportConflict: undefined }),
});

/** The request of the run a history entry descends from: the one that calibrated, whose samples its re-runs share. */
export function rootRequest(history: readonly HistoryEntry[], runId: string): RunRequest | undefined {
  const seen = new Set<string>();
  let entry = history.find((h) => h.result.runId === runId);
  while (entry?.origin.kind === 'override' && !seen.has(entry.result.runId)) {
    seen.add(entry.result.runId);
    const of = entry.origin.of;
    entry = history.find((h) => h.result.runId === of);
  }
  return entry?.request;
}

const historySlice: StateCreator<Studio, [], [], HistorySlice> = (set, get) => ({
  history: [],
  showRun: (runId) => {
    const entry = get().history.find((h) => h.result.runId === runId);
    if (!entry || get().current?.runId === runId) return;
    const previous = get().previous?.runId === runId ? get().current : get().previous;
    set({ current: entry.result, previous, detail: undefined, detailError: undefined, exported: undefined, exportError: undefined, exportConflict: undefined });
    const selected = get().selected;
    if (selected) void get().selectLayer(entry.result.report.layers.some((l) => l.name === selected) ? selected : undefined);
  },
  outlineRun: (runId) => {
    const entry = runId ? get().history.find((h) => h.result.runId === runId) : undefined;
    set({ previous: entry && entry.result.runId !== get().current?.runId ? entry.result : undefined });
  },
});

/** A target a little above where the run is, on a round number: asking for what it already has would change nothing. */
export function defaultSqnrTarget(report: Report): number {
  const worst = dbNumber(worstDb(report.outputs.map((o) => o.sqnr)));
  return Number.isFinite(worst) ? Math.ceil((worst + 5) / 5) * 5 : 40;
}

const analysisSlice = (api: StudioApi): StateCreator<Studio, [], [], AnalysisSlice> => (set, get) => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let pending: Pick<AnalysisSlice['analysis'], 'stage' | 'done' | 'total'> | undefined;
  const flush = () => {
    timer = undefined;
    if (pending && get().analysis.status === 'running') set({ analysis: { ...get().analysis, ...pending } });
    pending = undefined;
  };
  const stop = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    pending = undefined;
  };
  return {
    analyses: {},
    analysis: { status: 'idle', done: 0, total: 0 },
    showLocal: true,
    repairDraft: { kind: 'sqnr', sqnr: 40, metric: 'top1-agreement', metricValue: 0.99 },
    analyze: async () => {
      const run = get().current;
      if (!run || get().analysis.status === 'running') return;
      set({ analysis: { status: 'running', of: run.runId, done: 0, total: 0 } });
      try {
        const { jobId } = await api.call('run:analyze', { runId: run.runId });
        if (get().analysis.status === 'running' && !get().analysis.jobId) set({ analysis: { ...get().analysis, jobId } });
      } catch (err) {
        set({ analysis: { status: 'failed', of: run.runId, done: 0, total: 0, error: message(err) } });
      }
    },
    cancelAnalysis: async () => {
      const { jobId, status } = get().analysis;
      if (!jobId || status !== 'running') return;
      set({ analysis: { ...get().analysis, status: 'cancelling' } });
      try {
        await api.call('run:cancel', { runId: jobId });
      } catch (err) {
        set({ analysis: { ...get().analysis, status: 'failed', error: message(err) } });
      }
    },
    onAnalysisEvent: (event) => {
      const a = get().analysis;
      if (event.type === 'analysis-started') {
        if (a.status === 'running' && a.of === event.of && !a.jobId) set({ analysis: { ...a, jobId: event.runId } });
        return;
      }
      if (event.runId !== a.jobId) return;
      switch (event.type) {
        case 'progress':
          pending = { stage: event.stage, done: event.done, total: event.total };
          timer ??= setTimeout(flush, PROGRESS_FLUSH_MS);
          break;
        case 'analyzed':
          stop();
          set({ analyses: { ...get().analyses, [event.of]: event.analysis }, analysis: { status: 'idle', done: 0, total: 0 }, showLocal: true });
          break;
        case 'failed':
          stop();
          set({ analysis: { ...a, status: 'failed', error: event.message } });
          break;
        case 'cancelled':
          stop();
          set({ analysis: { status: 'cancelled', of: a.of, done: 0, total: 0 } });
          break;
      }
    },
    setShowLocal: (showLocal) => set({ showLocal }),
    setRepairDraft: (patch) => set({ repairDraft: { ...get().repairDraft, ...patch } }),
    repair: async () => {
      const run = get().current;
      if (!run) return;
      const d = get().repairDraft;
      const target: Target = d.kind === 'sqnr' ? { kind: 'sqnr', value: d.sqnr } : { kind: 'metric', metric: d.metric, value: d.metricValue };
      await get().startRun({ repair: { of: run, target } });
    },
  };
};

/** The 16-bit activation type the run's backend allows for one of its tensors. */
export function sixteenBitFor(recipe: Recipe): QuantType | undefined {
  const backend = findBackend(recipe.backend);
  return backend && sixteenBitType(backend, recipe);
}

/** The recipe of a re-run with one layer in higher precision, by the engine's own rule and the nodes its report names for the layer. */
export function layerRecipe(report: Report, name: string, how: 'float' | '16-bit'): Recipe | undefined {
  const layer = report.layers.find((l) => l.name === name);
  if (!layer) return undefined;
  const action = how === 'float' ? 'float' : sixteenBitFor(report.recipe);
  // A weight-only or dynamic layer is its node's output: keeping it in float keeps that node (older reports list no nodes for it).
  const nodes = layer.nodes.length || report.recipe.kind === 'static' ? layer.nodes : [layer.node];
  return action ? withHigherPrecision(report.recipe, [{ tensor: name, nodes }], action) : undefined;
}

export function refusal(recipe: Recipe, patch: Partial<Recipe>): string | undefined {
  const backend = findBackend(recipe.backend);
  if (!backend) return `unknown backend ${recipe.backend}`;
  const problems = recipeProblems(backend, { ...recipe, ...patch });
  return problems.length ? problems.join('; ') : undefined;
}

const graphSlice = (api: StudioApi): StateCreator<Studio, [], [], GraphSlice> => (set, get) => ({
  inspectView: 'chart',
  overlay: 'sqnr',
  loadGraph: async () => {
    const model = get().model?.file;
    if (!model || get().graph?.model === model) return;
    set({ graph: { model } });
    try {
      const value = await api.call('model:graph', { model });
      if (get().graph?.model === model) set({ graph: { model, value } });
    } catch (err) {
      if (get().graph?.model === model) set({ graph: { model, error: message(err) } });
    }
  },
  setInspectView: (inspectView) => set({ inspectView }),
  setOverlay: (overlay) => set({ overlay }),
});

const uiSlice: StateCreator<Studio, [], [], UiSlice> = (set) => ({
  screen: 'import',
  theme: 'light',
  go: (screen) => set({ screen }),
  setTheme: (theme) => set({ theme }),
});

/** What the page keeps with the host to come back to after a reload; the host stores it unread. */
interface PageState {
  version: typeof PAGE_VERSION;
  model: ModelSummary;
  config: ModelConfig;
  defaults?: ModelConfig;
  fromLastRun: boolean;
  /** Runs by id: their reports come back from the engine, which holds them. */
  history: Array<Omit<HistoryEntry, 'result'> & { runId: string }>;
  current?: string;
  previous?: string;
  selected?: string;
  screen: Screen;
  exportFolder: string;
  view: Pick<Studio, 'sort' | 'threshold' | 'inspectView' | 'overlay' | 'showLocal'>;
  run: Pick<Studio, 'runId' | 'status' | 'runStages' | 'asked' | 'failure' | 'warnings'>;
  analysis: Studio['analysis'];
}

const PAGE_VERSION = 1;

function pageState(s: Studio): PageState | undefined {
  if (!s.model) return undefined;
  return {
    version: PAGE_VERSION, model: s.model,
    config: { recipe: s.recipe, preset: s.preset, numerics: s.numerics, saturationFix: s.saturationFix, data: s.data }, defaults: s.defaults, fromLastRun: s.fromLastRun,
    history: s.history.map((h) => ({ runId: h.result.runId, origin: h.origin, request: h.request })),
    current: s.current?.runId, previous: s.previous?.runId, selected: s.selected, screen: s.screen, exportFolder: s.exportFolder,
    view: { sort: s.sort, threshold: s.threshold, inspectView: s.inspectView, overlay: s.overlay, showLocal: s.showLocal },
    run: { runId: s.runId, status: s.status, runStages: s.runStages, asked: s.asked, failure: s.failure, warnings: s.warnings },
    analysis: s.analysis,
  };
}

/** The fields whose change is worth saving; progress is not one: the host has it. */
const SAVED_FIELDS: ReadonlyArray<keyof Studio> = ['model', 'recipe', 'preset', 'numerics', 'saturationFix', 'data', 'history', 'current', 'previous', 'selected', 'screen',
  'exportFolder', 'sort', 'threshold', 'inspectView', 'overlay', 'showLocal', 'runId', 'status', 'asked', 'failure', 'analyses'];

/** An analysis's status and job matter to a reload; its progress, which changes ten times a second, the host has. */
const analysisChanged = (a: Studio['analysis'], b: Studio['analysis']) => a.status !== b.status || a.jobId !== b.jobId || a.of !== b.of;

const SAVE_DELAY_MS = 300;

/**
 * Saves the page's state with the host whenever it changes (at most every SAVE_DELAY_MS), so that
 * a reload comes back to it. Start it after restoreSession: the empty page would overwrite the saved one.
 */
export function keepSession(store: StudioStore, api: StudioApi): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  // One save at a time, each of the state as it is when it goes: two in flight could land in either order.
  let saving: Promise<unknown> = Promise.resolve();
  const save = () => {
    timer = undefined;
    saving = saving.then(() => {
      const page = pageState(store.getState());
      return page && api.call('session:save', { page: page as unknown as Record<string, unknown> });
    }).catch(() => undefined);
  };
  return store.subscribe((now, before) => {
    // A run starting or ending, or another screen, is saved at once: a reload a moment later must find it.
    if (now.status !== before.status || now.runId !== before.runId || now.screen !== before.screen) {
      if (timer) clearTimeout(timer);
      save();
    } else if (SAVED_FIELDS.some((k) => now[k] !== before[k]) || analysisChanged(now.analysis, before.analysis)) timer ??= setTimeout(save, SAVE_DELAY_MS);
  });
}

/** A job's progress as the run screen keeps it. */
function stagesOf(active: ActiveJob): RunSlice['stages'] {
  return Object.fromEntries(Object.values(active.stages).map((p) => [p.stage, { done: p.done, total: p.total, rate: p.rate, unit: p.unit }]));
}

/** Job events that arrive while the session is being restored wait here, to be heard after it. */
interface HeldEvents {
  events?: JobEvent[];
  hear(event: JobEvent): void;
}

const sessionSlice = (api: StudioApi, held: HeldEvents): StateCreator<Studio, [], [], SessionSlice> => (set, get) => ({
  restoreSession: async () => {
    held.events = [];
    const replay = () => {
      const events = held.events ?? [];
      held.events = undefined;
      for (const event of events) held.hear(event);
    };
    let session: SessionState;
    try {
      session = await api.call('session:get', {});
    } catch {
      replay();
      return false;
    }
    const page = session.page as PageState | undefined;
    if (page?.version !== PAGE_VERSION || !page.model) {
      replay();
      return false;
    }
    const runs = new Map(session.runs.map(({ analysis: _analysis, ...r }) => [r.runId, r]));
    const history: HistoryEntry[] = page.history.flatMap(({ runId, ...h }) => {
      const result = runs.get(runId);
      return result ? [{ result, ...h }] : [];
    });
    const find = (id?: string) => history.find((h) => h.result.runId === id)?.result;
    const analyses = Object.fromEntries(session.runs.flatMap((r) => (r.analysis && runs.has(r.runId) ? [[r.runId, r.analysis]] : [])));
    set({
      model: page.model, ...page.config, defaults: page.defaults, fromLastRun: page.fromLastRun, history, analyses, current: find(page.current), previous: find(page.previous), selected: page.selected,
      screen: page.screen, exportFolder: page.exportFolder, ...page.view, ...page.run, stages: {}, analysis: { status: 'idle', done: 0, total: 0 },
    });
    const ended = new Map(session.ended.map((e) => [e.runId, e]));
    const active = session.active;
    const busy = page.run.status === 'running' || page.run.status === 'cancelling';
    if (busy) {
      // The run the page was waiting for is still going, has ended while the page was away, or was lost with a crashed engine.
      const id = page.run.runId ?? (active?.kind === 'run' ? active.runId : undefined);
      const closing = id ? ended.get(id) : undefined;
      if (active?.kind === 'run' && active.runId === id) set({ runId: id, stages: stagesOf(active), warnings: active.warnings });
      else if (closing) {
        set({ runId: id });
        get().onJobEvent(closing);
      } else set({ status: 'failed', failure: { stage: 'load', message: 'the run ended while the page was away, and the studio no longer knows how; run it again' } });
    }
    const a = page.analysis;
    if (a.status === 'running' || a.status === 'cancelling') {
      const closing = a.jobId ? ended.get(a.jobId) : undefined;
      if (active?.kind === 'analysis' && (active.runId === a.jobId || (!a.jobId && active.of === a.of))) {
        const last = Object.values(active.stages).at(-1);
        set({ analysis: { ...a, jobId: active.runId, stage: last?.stage, done: last?.done ?? 0, total: last?.total ?? 0 } });
      } else if (closing) {
        set({ analysis: a });
        get().onAnalysisEvent(closing);
      } else set({ analysis: { status: 'failed', of: a.of, done: 0, total: 0, error: 'the analysis ended while the page was away; analyse again' } });
    } else set({ analysis: a });
    if (page.selected && get().current) void get().selectLayer(page.selected);
    void get().loadRecent();
    replay();
    return true;
  },
});

export function createStudioStore(api: StudioApi, initial: Partial<Pick<Studio, 'theme'>> = {}): StudioStore {
  const held: HeldEvents = {
    hear: (event) => {
      const s = store.getState();
      if (event.type === 'analysis-started' || event.type === 'analyzed' || event.runId === s.analysis.jobId) s.onAnalysisEvent(event);
      else s.onJobEvent(event);
    },
  };
  const store = createStore<Studio>()((...a) => ({
    ...modelSlice(api)(...a),
    ...configSlice(api)(...a),
    ...runSlice(api)(...a),
    ...resultsSlice(api)(...a),
    ...historySlice(...a),
    ...analysisSlice(api)(...a),
    ...graphSlice(api)(...a),
    ...uiSlice(...a),
    ...sessionSlice(api, held)(...a),
    ...initial,
  }));
  api.onJobEvent((event) => {
    if (held.events) held.events.push(event);
    else held.hear(event);
  });
  return store;
}
