// The studio's engine side, shared by the Electron main process and the browser host: it answers
// the request channels of shared/ipc.ts and streams job events. Hosts add transport, trust checks
// and dialogs; everything here works without Electron.
//
// A run writes into a private work folder, never next to the model: what the user sees is only a
// candidate until Export copies it out, and a cancelled or failed run leaves nothing anywhere.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findBackend, recipeProblems } from '../../shared/backends';
import { dataOptionsOf, type ActiveJob, type DataOptions, type ExportRequest, type ExportResult, type InputPreview, type JobEvent, type LayerDetail, type ModelSettings, type ModelSummary, type PlanSummary, type PreviewRequest, type RequestChannels, type RunRequest, type RunResult, type SampleModel, type SessionState, type WeightDetail } from '../../shared/ipc';
import type { Recipe } from '../../shared/recipe';
import type { AnalysisReport, LayerReport, Report } from '../../shared/report';

import { previewInput } from '../data/preview';
import { heldOutSplit, openSource, type SampleSource } from '../data/readers';
import type { InputSpec } from '../base/feed';
import { hostNumerics } from '../onnx/numerics';
import { inputSpecs } from '../onnx/session';
import { layerHistogram } from '../eval/layer-values';
import { weightValues } from '../eval/weight-values';
import { pairsFromQdq } from '../eval/pairs';
import { copyFileAtomic, writeFileAtomic, writeJsonAtomic } from '../base/atomic';
import { refuseOverInputs } from '../base/paths';
import { htmlReport, reportGraph } from '../export/html-report';
import { analyze } from '../jobs/analyze';
import { companionPath, defaultOutPath } from '../export/artifacts';
import { prepareForRecipe } from '../jobs/job';
import { quantize, type QuantizeOutcome } from '../jobs/quantize';
import { inspectModel } from '../onnx/inspect';
import { GraphView } from '../onnx/graph';
import { modelGraph } from '../plan/model-graph';
import { loadModel, type LoadedModel } from '../onnx/model';
import { preflightModel } from '../jobs/preflight';
import type { PreprocessSpec } from '../../shared/preprocess';
import { CancelledError } from '../base/progress';
import { type Progress, runStages, type Stage } from '../../shared/progress';

export class StudioError extends Error {}

export interface ServiceOptions {
  /** Where recent models are remembered. */
  stateDir: string;
  /** The sample model's folder (resources/sample). */
  sampleDir: string;
  /**
   * Where runs keep their files; a host that restarts a crashed engine passes the same folder, and
   * the new service takes up the finished runs it finds there. Default: a new temporary folder.
   */
  workRoot?: string;
  emit: (event: JobEvent) => void;
}

/** What a finished run leaves in its folder, so that a fresh engine can show and export it again. */
const RUN_RECORD = 'run.json';

/** The page's state, saved by the page for a reload. */
const SESSION_FILE = 'session.json';

/** Closing events kept for a page that reloads while a job ends. */
const ENDED_KEPT = 16;

/** Milliseconds between progress events of one stage: enough for a smooth bar, few enough for IPC. */
const PROGRESS_INTERVAL = 100;

interface Run {
  id: string;
  request: RunRequest;
  dir: string;
  controller: AbortController;
  /** The ranges file a re-run reads: this run's own, or the one it re-used. */
  ranges?: string;
  /** The samples it calibrated or evaluated on, and how they are scored (a re-run's are its parent's). */
  data: RunData;
  outcome?: QuantizeOutcome;
  /** The input model and the files it references: no export may land on one. */
  inputs: string[];
  /** The run's latest sensitivity analysis: the exported HTML report carries it. */
  analysis?: AnalysisReport;
  /** Float and quantized models, loaded once for the layer panel. */
  models?: { float: LoadedModel['model']; quant: LoadedModel['model'] };
}

/** What a run reads and how it scores it; a re-run's are its parent's, so that the two compare. */
interface RunData {
  calibration?: string;
  evaluation?: string;
  holdOut?: number;
  preprocess?: PreprocessSpec;
  options: DataOptions;
  labels?: string;
  metricModule?: string;
}

type RunRecord = Omit<Run, 'controller' | 'models'>;

function runRecord(run: Run): RunRecord {
  const { controller: _controller, models: _models, ...record } = run;
  return record;
}

/** The engine channels; the dialog channels belong to the hosts. */
export type EngineChannel = Exclude<keyof RequestChannels, 'dialog:model' | 'dialog:folder'>;

export class StudioService {
  private readonly runs = new Map<string, Run>();
  /** Runs' private folders live here until the service closes. */
  readonly workRoot: string;
  /** The one job (run or analysis) in progress: two would share the same cores and both crawl. */
  private active?: { id: string; controller: AbortController; done: Promise<JobEvent> };
  private counter = 0;
  /** Analyses count apart from runs, so that run numbers in the history follow on without gaps. */
  private analyses = 0;
  /** Each opened model with its external data files: export never writes over any of them. */
  private readonly inputFiles = new Map<string, string[]>();

  /** The job in progress as its events told it, and how the last jobs ended: what a reloaded page picks up. */
  private live?: ActiveJob;
  private readonly ended = new Map<string, JobEvent>();

  constructor(private readonly options: ServiceOptions) {
    this.workRoot = options.workRoot ?? fs.mkdtempSync(path.join(os.tmpdir(), 'quant-studio-'));
    for (const dir of fs.readdirSync(this.workRoot)) {
      const record = readRunRecord(path.join(this.workRoot, dir, RUN_RECORD));
      if (!record) continue;
      this.runs.set(record.id, { ...record, controller: new AbortController() });
      this.counter = Math.max(this.counter, Number(/^run-(\d+)$/.exec(record.id)?.[1] ?? 0));
    }
  }

  /** Every job event goes out through here, so that the session knows what a page that reloads now has missed. */
  private emit(event: JobEvent): void {
    switch (event.type) {
      case 'started':
        this.live = { runId: event.runId, kind: 'run', stages: {}, warnings: [] };
        break;
      case 'analysis-started':
        this.live = { runId: event.runId, kind: 'analysis', of: event.of, stages: {}, warnings: [] };
        break;
      case 'progress':
        if (this.live?.runId === event.runId) this.live.stages[event.stage] = { stage: event.stage, done: event.done, total: event.total, rate: event.rate, unit: event.unit };
        break;
      case 'warning':
        if (this.live?.runId === event.runId) this.live.warnings.push(event.message);
        break;
      case 'done': case 'analyzed': case 'failed': case 'cancelled':
        if (this.live?.runId === event.runId) this.live = undefined;
        this.ended.set(event.runId, event);
        if (this.ended.size > ENDED_KEPT) this.ended.delete(this.ended.keys().next().value!);
    }
    this.options.emit(event);
  }

  /** The page's own state as it last saved it, the finished runs, the job in progress and how recent jobs ended. */
  session(): SessionState {
    let page: SessionState['page'];
    try {
      page = JSON.parse(fs.readFileSync(path.join(this.workRoot, SESSION_FILE), 'utf8')) as SessionState['page'];
    } catch {
      // No page has saved itself yet.
    }
    const runs = [...this.runs.values()].filter((r): r is Run & { outcome: QuantizeOutcome } => Boolean(r.outcome)).map((r) => ({
      runId: r.id, ...(r.request.fromRun ? { fromRun: r.request.fromRun } : {}), report: r.outcome.report, ...(r.analysis ? { analysis: r.analysis } : {}),
    }));
    return { ...(page ? { page } : {}), runs, ...(this.live ? { active: this.live } : {}), ended: [...this.ended.values()] };
  }

  /** Kept in the work folder, which outlives a crashed engine, and gone with the session. */
  saveSession(page: Record<string, unknown>): void {
    writeJsonAtomic(path.join(this.workRoot, SESSION_FILE), page);
  }

  handle<C extends EngineChannel>(channel: C, request: RequestChannels[C]['request']): Promise<RequestChannels[C]['response']> {
    const handlers: { [K in EngineChannel]: (r: RequestChannels[K]['request']) => Promise<RequestChannels[K]['response']> | RequestChannels[K]['response'] } = {
      'model:open': (r) => this.openModel(r.path),
      'model:sample': () => this.sample(),
      'model:recent': () => this.recent(),
      'model:plan': (r) => this.plan(r.model, r.recipe),
      'model:graph': (r) => modelGraph(loadModel(r.model).model),
      'data:preview': (r) => this.preview(r),
      'run:start': (r) => this.start(r),
      'run:cancel': (r) => this.cancel(r.runId),
      'run:layer': (r) => this.layer(r.runId, r.tensor),
      'run:analyze': (r) => this.analyzeRun(r.runId),
      'run:export': (r) => this.export(r),
      'session:get': () => this.session(),
      'session:save': (r) => this.saveSession(r.page),
    };
    return Promise.resolve().then(() => (handlers[channel] as (r: unknown) => RequestChannels[C]['response'])(request));
  }

  openModel(file: string): ModelSummary {
    const resolved = path.resolve(file);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(resolved);
    } catch {
      throw new StudioError(`${resolved}: no such file; check the path`);
    }
    if (!stat.isFile()) throw new StudioError(`${resolved}: is a folder, not a model; choose the .onnx file inside it`);
    const loaded = loadModel(resolved);
    const info = inspectModel(loaded);
    this.remember(resolved);
    const sideFiles = loaded.externalFiles ?? [];
    this.inputFiles.set(resolved, [resolved, ...sideFiles]);
    const settings = this.readSettings()[resolved];
    return {
      file: resolved, name: path.basename(resolved), bytes: loaded.bytes, sideFiles: sideFiles.map((f) => path.basename(f)),
      irVersion: info.irVersion, producer: info.producer, opsets: info.opsets, inputs: info.inputs, outputs: info.outputs,
      ops: info.ops, nodeCount: info.nodeCount, parameters: info.parameters, ...(settings ? { settings } : {}),
    };
  }

  private get settingsFile(): string {
    return path.join(this.options.stateDir, 'models.json');
  }

  private readSettings(): Record<string, ModelSettings> {
    try {
      const read = JSON.parse(fs.readFileSync(this.settingsFile, 'utf8')) as unknown;
      return read && typeof read === 'object' && !Array.isArray(read) ? read as Record<string, ModelSettings> : {};
    } catch {
      return {};
    }
  }

  /** A run as asked becomes its model's settings; a re-run or a repair asks only what its parent did. */
  private rememberSettings(request: RunRequest): void {
    const { model, fromRun: _fromRun, target: _target, ...asked } = request;
    const file = path.resolve(model);
    const source = asked.calibration ?? asked.evaluation;
    const all = this.readSettings();
    delete all[file];
    all[file] = { request: asked, ...(source ? { dataKind: dataKindOf(source) } : {}) };
    const kept = Object.entries(all).slice(-SETTINGS_KEPT);
    try {
      writeJsonAtomic(this.settingsFile, Object.fromEntries(kept));
    } catch {
      // Settings are a convenience; a read-only state folder must not stop a run.
    }
  }

  sample(): SampleModel {
    const manifest = JSON.parse(fs.readFileSync(path.join(this.options.sampleDir, 'sample.json'), 'utf8')) as { model: string; calibration: string; preprocess: PreprocessSpec };
    return {
      model: this.openModel(path.join(this.options.sampleDir, manifest.model)),
      calibration: path.join(this.options.sampleDir, manifest.calibration),
      preprocess: manifest.preprocess,
      exportFolder: path.join(os.homedir(), 'Quant Studio', 'sample'),
    };
  }

  private get recentFile(): string {
    return path.join(this.options.stateDir, 'recent.json');
  }

  recent(): string[] {
    try {
      const list = JSON.parse(fs.readFileSync(this.recentFile, 'utf8')) as unknown;
      return Array.isArray(list) ? list.filter((f): f is string => typeof f === 'string' && fs.existsSync(f)) : [];
    } catch {
      return [];
    }
  }

  private remember(file: string): void {
    // Uploads live in a temporary folder and would vanish from the list anyway.
    if (file.startsWith(os.tmpdir() + path.sep)) return;
    const list = [file, ...this.recent().filter((f) => f !== file)].slice(0, 8);
    try {
      writeJsonAtomic(this.recentFile, list);
    } catch {
      // The list is a convenience; a read-only state folder must not stop a model from opening.
    }
  }

  async plan(model: string, recipe: Recipe): Promise<PlanSummary> {
    const backend = findBackend(recipe.backend);
    if (!backend) throw new StudioError(`unknown backend "${recipe.backend}"`);
    const host = await hostNumerics();
    const problems = recipeProblems(backend, recipe);
    if (problems.length) return { backend: backend.name, reasons: [], problems, host };
    const { nodes, ...preflight } = preflightModel(model, recipe).preflight;
    const reasons = new Map<string, PlanSummary['reasons'][number]>();
    for (const n of nodes) {
      if (n.placement === 'quantized') continue;
      const reason = n.reason ?? '';
      const key = `${n.placement}\0${reason}`;
      const entry = reasons.get(key) ?? { placement: n.placement, reason, count: 0, example: `${n.op} ${n.node}` };
      entry.count++;
      reasons.set(key, entry);
    }
    return { backend: backend.name, preflight, reasons: [...reasons.values()].sort((a, b) => b.count - a.count), problems: preflight.problems, host };
  }

  async preview(request: PreviewRequest): Promise<InputPreview> {
    const view = new GraphView(loadModel(request.model).model);
    const preview = await previewInput(await openSource(request.source, inputSpecs(view), { preprocess: request.preprocess, limit: 1, ...dataOptionsOf(request) }));
    if (!preview) throw new StudioError(`${request.source}: holds no samples`);
    return preview;
  }

  start(request: RunRequest): { runId: string } {
    this.idle();
    let ranges: string | undefined;
    const { calibration: asked, evaluation, holdOut, preprocess, labels, metricModule } = request;
    let data: RunData = { calibration: asked, evaluation, holdOut, preprocess, options: dataOptionsOf(request), labels, metricModule };
    if (request.fromRun) {
      const parent = this.runs.get(request.fromRun);
      if (!parent?.outcome) throw new StudioError(`run ${request.fromRun} has not finished; only a finished run can be re-converted`);
      // Only static quantization has calibrated ranges; weight-only and dynamic re-convert the weights alone.
      if (request.recipe.kind === 'static') {
        if (!parent.ranges) throw new StudioError(`run ${request.fromRun} has no calibrated ranges to re-use; run it with calibration first`);
        ranges = parent.ranges;
      }
      // Evaluation reads the same samples as the run it derives from, and scores them the same way, so the two compare.
      data = parent.data;
    }
    const { calibration } = data;
    if (request.recipe.kind === 'static' && !calibration && !ranges) {
      throw new StudioError('static quantization needs calibration data: choose a folder of images, .npy files, or random samples');
    }
    if (!request.fromRun && !request.target) this.rememberSettings(request);
    const id = `run-${++this.counter}`;
    const dir = fs.mkdtempSync(path.join(this.workRoot, `${id}-`));
    const model = path.resolve(request.model);
    // A model opened before the engine restarted is known by its file alone: read what it references.
    const inputs = this.inputFiles.get(model) ?? [model, ...(loadModel(model).externalFiles ?? [])];
    const run: Run = { id, request, dir, controller: new AbortController(), ranges, data, inputs };
    this.runs.set(id, run);
    this.emit({ runId: id, type: 'started', request });
    this.track(id, run.controller, this.execute(run, ranges));
    return { runId: id };
  }

  private idle(): void {
    if (this.active) throw new StudioError(`${this.active.id.startsWith('analysis') ? 'an analysis' : 'a run'} is in progress; wait for it or cancel it first`);
  }

  private track(id: string, controller: AbortController, job: Promise<JobEvent>): void {
    // The job stops being active before its last event goes out: whoever hears it may start the next one.
    const done = job.then((last) => {
      if (this.active?.id === id) this.active = undefined;
      this.emit(last);
      return last;
    });
    this.active = { id, controller, done };
  }

  /** Progress events for one job, at most one per stage every PROGRESS_INTERVAL, edges always. */
  private progress(id: string) {
    const state = { stage: 'load' as Stage, stageDone: false };
    let last = 0;
    const onProgress = (p: Progress) => {
      const now = Date.now();
      const edge = p.stage !== state.stage || p.done === 0 || p.done >= p.total;
      state.stage = p.stage;
      state.stageDone = p.done >= p.total;
      if (!edge && now - last < PROGRESS_INTERVAL) return;
      last = now;
      this.emit({ runId: id, type: 'progress', stage: p.stage, done: p.done, total: p.total, rate: p.rate, unit: p.unit });
    };
    return { state, onProgress };
  }

  /**
   * Sensitivity analysis of a finished run: its recipe (a repair's, as repaired) from its saved
   * ranges, on its samples. Writes nothing, so a cancel or a failure leaves nothing to clean.
   */
  analyzeRun(runId: string): { jobId: string } {
    this.idle();
    const run = this.finished(runId);
    const recipe = run.outcome.report.recipe;
    if (recipe.kind !== 'static') throw new StudioError(`analysis needs static quantization: this run's ${recipe.kind} quantization has no calibrated activations to analyse`);
    if (!run.ranges || !run.data.calibration) throw new StudioError(`run ${runId} has no saved ranges or samples to analyse`);
    const id = `analysis-${++this.analyses}`;
    const controller = new AbortController();
    const { state, onProgress } = this.progress(id);
    const { options, ...data } = run.data;
    this.emit({ runId: id, type: 'analysis-started', of: runId });
    const job = analyze({
      model: run.request.model, recipe, ...data, ...options, ranges: run.ranges, numerics: run.request.numerics, signal: controller.signal, onProgress,
    }).then(
      (analysis): JobEvent => {
        if (controller.signal.aborted) return { runId: id, type: 'cancelled' };
        run.analysis = analysis;
        writeJsonAtomic(path.join(run.dir, RUN_RECORD), runRecord(run));
        return { runId: id, type: 'analyzed', of: runId, analysis };
      },
      (err: Error): JobEvent => (err instanceof CancelledError || controller.signal.aborted ? { runId: id, type: 'cancelled' } : { runId: id, type: 'failed', stage: state.stage, message: err.message }),
    );
    this.track(id, controller, job);
    return { jobId: id };
  }

  /** Runs the job; resolves with its closing event (done, failed or cancelled), never rejects. */
  private async execute(run: Run, ranges: string | undefined): Promise<JobEvent> {
    const { options, ...data } = run.data;
    const emit = (event: JobEvent) => this.emit(event);
    const { state, onProgress } = this.progress(run.id);
    try {
      const out = path.join(run.dir, path.basename(defaultOutPath(run.request.model, run.request.recipe.backend, run.request.recipe.kind)));
      const outcome = await quantize({
        model: run.request.model, recipe: run.request.recipe, ...data, ...options, ranges,
        out, signal: run.controller.signal, onProgress, ...(run.request.target ? { target: run.request.target } : {}), onWarning: (message) => emit({ runId: run.id, type: 'warning', message }),
        numerics: run.request.numerics, saturationFix: run.request.saturationFix,
      });
      if (run.controller.signal.aborted) throw new CancelledError();
      run.outcome = outcome;
      run.ranges ??= outcome.files.ranges;
      writeJsonAtomic(path.join(run.dir, RUN_RECORD), runRecord(run));
      const result: RunResult = { runId: run.id, ...(run.request.fromRun ? { fromRun: run.request.fromRun } : {}), report: outcome.report };
      return { runId: run.id, type: 'done', result };
    } catch (err) {
      fs.rmSync(run.dir, { recursive: true, force: true });
      this.runs.delete(run.id);
      if (err instanceof CancelledError || run.controller.signal.aborted) return { runId: run.id, type: 'cancelled' };
      // Between two stages (opening the calibration data after loading, say) the failure belongs to the next one.
      const order = runStages(run.request);
      const failed = state.stageDone ? order[Math.min(order.indexOf(state.stage) + 1, order.length - 1)] : state.stage;
      return { runId: run.id, type: 'failed', stage: failed, message: (err as Error).message };
    }
  }

  /** Resolves once the run has stopped and its work folder is gone. */
  async cancel(runId: string): Promise<{ cancelled: boolean }> {
    const active = this.active;
    if (!active || active.id !== runId) return { cancelled: false };
    active.controller.abort();
    const last = await active.done;
    return { cancelled: last.type !== 'done' && last.type !== 'analyzed' };
  }

  private finished(runId: string): Run & { outcome: QuantizeOutcome } {
    const run = this.runs.get(runId);
    if (!run?.outcome) throw new StudioError(`run ${runId} has not finished; only a finished run has layers to show or files to export`);
    return run as Run & { outcome: QuantizeOutcome };
  }

  async layer(runId: string, tensor: string): Promise<LayerDetail> {
    const run = this.finished(runId);
    const report = run.outcome.report;
    const layer = report.layers.find((l) => l.name === tensor);
    if (!layer) throw new StudioError(`run ${runId}: no quantized tensor "${tensor}"`);
    run.models ??= {
      float: prepareForRecipe(loadModel(run.request.model).model, run.request.recipe).model,
      quant: loadModel(run.outcome.files.model).model,
    };
    const pair = layer.keptInFloat ? { float: tensor, quant: tensor }
      : pairsFromQdq(new GraphView(run.models.float), new GraphView(run.models.quant)).find((p) => p.float === tensor);
    if (!pair) {
      const weights = report.recipe.kind === 'static' ? undefined : layerWeights(report, layer, run.models);
      return { layer, samples: 0, values: 0, note: layerNote(report.recipe.kind, weights), ...(weights ? { weights } : {}) };
    }
    const source = await evaluationSamples(run.data, inputSpecs(new GraphView(run.models.float)));
    const h = await layerHistogram(run.models.float, run.models.quant, pair, source);
    return { layer, histogram: { min: h.min, max: h.max, float: h.float, quantized: h.quantized }, samples: h.samples, values: h.values };
  }

  /**
   * Copies the run's artifacts (whatever the backend's lowering produced, plus recipe and ranges)
   * and writes the report as JSON and HTML, each file atomically, never over the input model.
   */
  async export(request: ExportRequest): Promise<ExportResult> {
    const run = this.finished(request.runId);
    const model = path.resolve(run.request.model);
    const folder = path.resolve(request.folder ?? path.dirname(model));
    const original = run.outcome.report;
    const moved = (file: string) => path.join(folder, path.basename(file));
    const copies: Array<{ from: string; to: string; what: string }> = original.artifacts.map((a) => ({ from: a.file, to: moved(a.file), what: a.description }));
    const quantizedData = `${original.quantized.file}.data`;
    if (fs.existsSync(quantizedData)) copies.push({ from: quantizedData, to: moved(quantizedData), what: 'external weights of the quantized model' });
    const artifacts = original.artifacts.map((a) => ({ ...a, file: moved(a.file) }));
    // A re-run reads its parent's ranges; they belong with the model it made.
    if (run.ranges && !copies.some((c) => c.from === run.ranges)) {
      const to = companionPath(moved(original.quantized.file), '.ranges.json');
      const description = 'calibrated ranges (of the run this one re-used), to re-convert without calibrating';
      copies.push({ from: run.ranges, to, what: description });
      artifacts.push({ kind: 'ranges', file: to, bytes: fs.statSync(run.ranges).size, description });
    }
    const reportFile = companionPath(moved(original.quantized.file), '.report.json');
    const htmlFile = companionPath(moved(original.quantized.file), '.report.html');
    const report: Report = {
      ...original,
      quantized: { ...original.quantized, file: moved(original.quantized.file) },
      artifacts,
    };
    refuseOverInputs([...copies.map((c) => ({ file: c.to, what: c.what })), { file: reportFile, what: 'the report' }, { file: htmlFile, what: 'the HTML report' }],
      run.inputs, 'choose another folder');
    const existing = [...copies.map((c) => c.to), reportFile, htmlFile].filter((f) => fs.existsSync(f));
    if (existing.length && !request.overwrite) {
      return { folder, files: [], existing, floatBytes: report.sizes.floatBytes, quantizedBytes: report.sizes.quantizedBytes, ratio: report.sizes.ratio };
    }
    const files: ExportResult['files'] = [];
    const written = (to: string, what: string) => files.push({ file: to, bytes: fs.statSync(to).size, what });
    const write = (to: string, data: string, what: string) => {
      writeFileAtomic(to, data);
      written(to, what);
    };
    // Copied, not read: a model's external data can pass 2 GB.
    for (const c of copies) {
      copyFileAtomic(c.from, c.to);
      written(c.to, c.what);
    }
    write(reportFile, JSON.stringify(report, null, 2) + '\n', 'report');
    write(htmlFile, htmlReport(report, { analysis: run.analysis, graph: await reportGraph(run.request.model, report, run.analysis) }), 'report with charts and the graph, one self-contained HTML file');
    return { folder, files, floatBytes: report.sizes.floatBytes, quantizedBytes: report.sizes.quantizedBytes, ratio: report.sizes.ratio };
  }

  /** Stops a run in progress and removes every work folder. */
  async close(): Promise<void> {
    if (this.active) await this.cancel(this.active.id);
    fs.rmSync(this.workRoot, { recursive: true, force: true });
  }
}

/** The weight of a weight-only or dynamic layer as the quantized model stores it, against its float values. */
function layerWeights(report: Report, layer: LayerReport, models: NonNullable<Run['models']>): WeightDetail | undefined {
  const row = report.weights.find((w) => w.node === layer.node);
  const float = row && new GraphView(models.float).constantTensor(row.name);
  const values = float && weightValues(new GraphView(models.quant), layer.name, float, row.granularity);
  return values && { name: row.name, ...values };
}

/** What a run of this kind does with a layer's activation, which has no stored quantized value to show. */
function layerNote(kind: Recipe['kind'], weights: WeightDetail | undefined): string {
  const below = weights ? `; below, its weight ${weights.name} as stored` : '';
  if (kind === 'weight-only') return `Weight-only: this activation stays in float; only the weight is stored quantized and dequantized when the layer runs${below}.`;
  if (kind === 'dynamic') {
    return `Dynamic: no scale is stored for this activation; ONNX Runtime quantizes the layer's input at run time, per batch, from that batch's own min and max (DynamicQuantizeLinear); the weight is stored 8-bit ahead of time${below}.`;
  }
  return 'The tensor has no Q/DQ pair in the quantized model.';
}

/** The samples a run measured its figures on, so that a layer's values are drawn from the samples its SQNR comes from. */
async function evaluationSamples(data: RunData, inputs: InputSpec[]): Promise<SampleSource> {
  const options = { preprocess: data.preprocess, ...data.options };
  if (data.evaluation || !data.calibration) return openSource(data.evaluation ?? 'random:4', inputs, options);
  if (!data.holdOut) return openSource(data.calibration, inputs, options);
  const { evaluation } = await heldOutSplit(data.calibration, inputs, data.holdOut, options);
  return openSource(data.calibration, inputs, { ...options, samples: evaluation });
}

/** Models whose last settings are remembered. */
const SETTINGS_KEPT = 64;

/** What a data source holds, as the Configure screen's kinds name it. */
function dataKindOf(source: string): ModelSettings['dataKind'] {
  if (source.startsWith('random:')) return 'random';
  if (/\.(npy|json)$/i.test(source)) return 'npy';
  try {
    return fs.readdirSync(source).some((f) => f.toLowerCase().endsWith('.npy')) ? 'npy' : 'images';
  } catch {
    return undefined;
  }
}


function readRunRecord(file: string): RunRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as RunRecord;
  } catch {
    // No record: a run that never finished, whose folder the host removes.
    return undefined;
  }
}
