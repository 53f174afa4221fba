import { useEffect, useRef } from 'react';
import type { StudioApi } from '../../shared/ipc';
import { BACKENDS, findBackend } from '../../shared/backends';
import { MAIN_NUMERICS, NUMERICS_WORDS, type MainNumerics } from '../../shared/numerics';
import { INTERPOLATION_WORDS, INTERPOLATIONS, RESIZE_MODES, RESIZE_WORDS, type Interpolation } from '../../shared/preprocess';
import { adaRoundIterations, GPTQ_DEFAULTS, readsCalibration, SMOOTHQUANT_ALPHAS, QUANT_KINDS, QUANT_TYPES, type Granularity, type Recipe } from '../../shared/recipe';
import { useStudio } from '../context';
import { dataSource, refusal, type DataField, type DataKind } from '../store';

type Host = StudioApi['host'];

/**
 * Picks files or a folder for a data field: the browser host uploads them (a user there may not see
 * the host's disk), Electron takes their paths. Progress and errors show beside the button.
 */
function PickButton({ host, field, folder, accept, multiple, label }: { host: Host; field: DataField; folder?: boolean; accept?: string; multiple?: boolean; label: string }) {
  const input = useRef<HTMLInputElement>(null);
  const pickData = useStudio((s) => s.pickData);
  const picking = useStudio((s) => (s.picking?.field === field ? s.picking : undefined));
  const error = useStudio((s) => (s.pickError?.field === field ? s.pickError.message : undefined));
  // React has no typed prop for the directory picker's attributes.
  const folderProps = folder ? { webkitdirectory: '', directory: '' } : {};
  return (
    <span className="pick">
      <button type="button" onClick={() => input.current?.click()} disabled={Boolean(picking)} data-testid={`pick-${field}${folder ? '-folder' : ''}`}>
        {host === 'browser' ? 'Upload' : 'Choose'} {label}…
      </button>
      <input ref={input} type="file" hidden accept={accept} multiple={multiple || folder} {...folderProps}
        data-testid={`pick-${field}${folder ? '-folder' : ''}-input`}
        onChange={(e) => { const files = Array.from(e.target.files ?? []); e.target.value = ''; void pickData(field, files, Boolean(folder)); }} />
      {picking && <span className="muted small" aria-live="polite">{host === 'browser' ? 'uploading' : 'reading'} {picking.done}/{picking.total}…</span>}
      {error && <span className="error small" role="alert">{error}</span>}
    </span>
  );
}
import { PlanSummaryView } from './ModelScreen';

const METHODS = ['minmax', 'moving-average', 'percentile', 'entropy', 'mse'];
const METHOD_PARAM: Record<string, { label: string; fallback: string } | undefined> = {
  'moving-average': { label: 'momentum', fallback: '0.01' },
  percentile: { label: 'percentile', fallback: '99.999' },
  entropy: { label: 'bins', fallback: '2048' },
};

/** A select whose options the backend refuses are greyed out, with the reason in the option's text. */
function Choice<K extends keyof Recipe>({ label, field, values }: { label: string; field: K; values: ReadonlyArray<Recipe[K]> }) {
  const recipe = useStudio((s) => s.recipe);
  const setRecipe = useStudio((s) => s.setRecipe);
  const id = `cfg-${String(field)}`;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={String(recipe[field])} onChange={(e) => setRecipe({ [field]: values.find((v) => String(v) === e.target.value) } as Partial<Recipe>)}>
        {values.map((v) => {
          const why = v === recipe[field] ? undefined : refusal(recipe, { [field]: v } as Partial<Recipe>);
          return <option key={String(v)} value={String(v)} disabled={Boolean(why)} title={why}>{String(v)}{why ? ` — ${why.replace(/^[^:]+: /, '')}` : ''}</option>;
        })}
      </select>
    </div>
  );
}

function numbersOr(text: string, n: number): number[] | undefined {
  const v = text.split(/[,x× ]+/).filter(Boolean).map(Number);
  return v.length === n && v.every(Number.isFinite) ? v : undefined;
}

function DataSection({ host, calibrates }: { host: Host; calibrates: boolean }) {
  const data = useStudio((s) => s.data);
  const setData = useStudio((s) => s.setData);
  const preview = useStudio((s) => s.preview);
  const previewError = useStudio((s) => s.previewError);
  const refreshPreview = useStudio((s) => s.refreshPreview);
  const p = data.preprocess;
  const kinds: Array<{ id: DataKind; label: string }> = [{ id: 'images', label: 'Folder of images' }, { id: 'npy', label: '.npy files' }, { id: 'random', label: 'Random' }];
  return (
    <fieldset className="data">
      <legend>{calibrates ? 'Calibration data' : 'Evaluation data'}</legend>
      {!calibrates && <p className="muted">Nothing to calibrate: these samples only measure what quantization did (random samples when none are chosen).</p>}
      <div className="segmented" role="radiogroup" aria-label={`Kind of ${calibrates ? 'calibration' : 'evaluation'} data`}>
        {kinds.map((k) => (
          <label key={k.id}><input type="radio" name="data-kind" checked={data.kind === k.id} onChange={() => setData({ kind: k.id })} />{k.label}</label>
        ))}
      </div>
      {data.kind === 'random' ? (
        <div className="field">
          <label htmlFor="random-count">Samples</label>
          <input id="random-count" type="number" min={1} value={data.randomCount} onChange={(e) => setData({ randomCount: Number(e.target.value) })} />
          <p className="warning" role="note">{calibrates ? 'Random data gives poor calibration ranges: use it to try the flow, not to ship a model.' : 'Random data says little about how the model does on its own inputs.'}</p>
        </div>
      ) : (
        <div className="field wide">
          <label htmlFor="data-path">{data.kind === 'images' ? 'Folder of images (PNG, JPEG, WebP, TIFF, AVIF, GIF)' : '.npy file, folder of .npy files or manifest'}</label>
          <input id="data-path" type="text" value={data.path} spellCheck={false} onChange={(e) => setData({ path: e.target.value })} placeholder={host === 'browser' ? 'a path on the machine running the studio, or upload' : '/path/to/calibration'} />
          <div className="row">
            {data.kind === 'images'
              ? <PickButton host={host} field="path" folder label="a folder" />
              : <>
                <PickButton host={host} field="path" accept=".npy,.json" multiple label=".npy files" />
                <PickButton host={host} field="path" folder label="a folder" />
              </>}
          </div>
        </div>
      )}
      {data.kind === 'images' && (
        <div className="preprocess">
          <div className="field"><label htmlFor="pp-size">Size H×W</label>
            <input id="pp-size" type="text" defaultValue={p.size?.join('x') ?? ''} placeholder="from the model"
              onBlur={(e) => setData({ preprocess: { size: numbersOr(e.target.value, 2) as [number, number] | undefined } })} /></div>
          <div className="field"><label htmlFor="pp-mean">Mean</label>
            <input id="pp-mean" type="text" defaultValue={p.mean?.join(', ') ?? ''} placeholder="0, 0, 0"
              onBlur={(e) => setData({ preprocess: { mean: numbersOr(e.target.value, 3) as [number, number, number] | undefined } })} /></div>
          <div className="field"><label htmlFor="pp-std">Std</label>
            <input id="pp-std" type="text" defaultValue={p.std?.join(', ') ?? ''} placeholder="1, 1, 1"
              onBlur={(e) => setData({ preprocess: { std: numbersOr(e.target.value, 3) as [number, number, number] | undefined } })} /></div>
          <div className="field"><label htmlFor="pp-layout">Layout</label>
            <select id="pp-layout" value={p.layout ?? ''} onChange={(e) => setData({ preprocess: { layout: (e.target.value || undefined) as 'NCHW' | 'NHWC' | undefined } })}>
              <option value="">from the model</option><option>NCHW</option><option>NHWC</option></select></div>
          <div className="field"><label htmlFor="pp-channels">Channels</label>
            <select id="pp-channels" value={p.channels ?? ''} onChange={(e) => setData({ preprocess: { channels: (e.target.value || undefined) as 'RGB' | 'BGR' | 'GRAY' | undefined } })}>
              <option value="">RGB</option><option>RGB</option><option>BGR</option><option>GRAY</option></select></div>
          <div className="field"><label htmlFor="pp-resize">Resize</label>
            <select id="pp-resize" value={p.resize ?? 'stretch'} onChange={(e) => setData({ preprocess: { resize: e.target.value as (typeof RESIZE_MODES)[number] } })}>
              {RESIZE_MODES.map((m) => <option key={m} value={m}>{RESIZE_WORDS[m]}</option>)}</select></div>
          <div className="field"><label htmlFor="pp-max-mp">Pixel cap (MP)</label>
            <input id="pp-max-mp" type="number" min={1} step={1} defaultValue={data.options.maxMegapixels ?? ''} placeholder="50"
              title="Images with more decoded megapixels are refused from their header, before a pixel is decoded"
              onBlur={(e) => setData({ options: { maxMegapixels: e.target.value ? Number(e.target.value) : undefined } })} /></div>
          <div className="field"><label htmlFor="pp-interpolation">Interpolation</label>
            <select id="pp-interpolation" value={p.interpolation ?? 'bilinear'} title="Resize as the model's training pipeline did: Pillow's filters are what torchvision applies to PIL images (antialiased when shrinking); OpenCV linear is cv2.resize INTER_LINEAR, no antialias"
              onChange={(e) => setData({ preprocess: { interpolation: e.target.value as Interpolation } })}>
              {INTERPOLATIONS.map((m) => <option key={m} value={m}>{INTERPOLATION_WORDS[m]}</option>)}</select></div>
        </div>
      )}
      {data.kind !== 'random' && (
        <div className="field wide">
          <label htmlFor="data-skip-nonfinite">
            <input id="data-skip-nonfinite" type="checkbox" checked={Boolean(data.options.skipNonFinite)} onChange={(e) => setData({ options: { skipNonFinite: e.target.checked || undefined } })} />
            {' '}Drop non-finite samples: those holding NaN, ±Inf or values past ±1e18 (the run says how many); otherwise such data is refused
          </label>
        </div>
      )}
      {data.kind !== 'random' && (
        <div className="preview">
          <button type="button" onClick={() => void refreshPreview()} disabled={!dataSource(data)}>Preview one input</button>
          <div className="preview-body" aria-live="polite">
            {previewError ? <p className="error" role="alert">{previewError}</p> : preview ? (
              <>
                {preview.image && <img src={preview.image} alt={`First sample as the model receives it (${preview.input})`} />}
                <p>{preview.description}</p>
                <p className="muted">{preview.input} {`[${preview.shape.join(', ')}]`}: {preview.stats.map((s, i) => `${preview.stats.length > 1 ? `ch${i} ` : ''}${s.min.toFixed(2)} … ${s.max.toFixed(2)}, mean ${s.mean.toFixed(2)}`).join(' · ')}</p>
              </>
            ) : <p className="muted">Shows the first sample after preprocessing, so that a wrong normalisation is visible before calibrating.</p>}
          </div>
        </div>
      )}
      {data.kind !== 'random' && <ScoringFields host={host} calibrates={calibrates} />}
      {calibrates && <EvaluationFields host={host} />}
    </fieldset>
  );
}

/** What a static run measures on: by default a held-out part of the calibration data, spread through it, which calibration never sees. */
function EvaluationFields({ host }: { host: Host }) {
  const data = useStudio((s) => s.data);
  const setData = useStudio((s) => s.setData);
  const e = data.evaluation;
  const set = (patch: Partial<typeof e>) => setData({ evaluation: { ...e, ...patch } });
  return (
    <div className="evaluation" role="radiogroup" aria-label="Evaluation data">
      <h3>Evaluation data</h3>
      <label><input type="radio" name="eval-kind" checked={e.kind === 'held-out'} onChange={() => set({ kind: 'held-out' })} data-testid="eval-held-out" />
        {' '}Hold out{' '}
        <input type="number" className="narrow" min={5} max={90} step={5} defaultValue={Math.round(e.fraction * 100)} aria-label="Percent held out"
          onChange={(ev) => { const percent = Number(ev.target.value); if (percent >= 5 && percent <= 90) set({ kind: 'held-out', fraction: percent / 100 }); }} />
        % of the calibration samples, spread evenly through them in file order (so each class folder gives some)</label>
      <label><input type="radio" name="eval-kind" checked={e.kind === 'other'} onChange={() => set({ kind: 'other' })} data-testid="eval-other" /> Other samples</label>
      {e.kind === 'other' && (
        <div className="field wide">
          <input type="text" aria-label="Evaluation data path" value={e.path} spellCheck={false} onChange={(ev) => set({ path: ev.target.value })} placeholder="a folder, .npy file or manifest" />
          <div className="row">
            <PickButton host={host} field="evaluation" folder label="a folder" />
            <PickButton host={host} field="evaluation" accept=".npy,.json" multiple label=".npy files" />
          </div>
        </div>
      )}
      <label><input type="radio" name="eval-kind" checked={e.kind === 'calibration'} onChange={() => set({ kind: 'calibration' })} data-testid="eval-calibration" /> The calibration samples themselves</label>
      <p className="muted small" role="note" data-testid="eval-note">
        {e.kind === 'held-out' ? `Calibration never sees the held-out ${Math.round(e.fraction * 100)}%, so the figures measure the model on data it was not fitted to; labels then give one label per calibration sample.`
          : e.kind === 'calibration' ? 'Figures measured on the samples the ranges were fitted to flatter the model.'
            : 'Labels then give one label per evaluation sample.'}
      </p>
    </div>
  );
}

/** Labels and the user's own metric: how the run scores the samples beside SQNR. */
function ScoringFields({ host, calibrates }: { host: Host; calibrates: boolean }) {
  const data = useStudio((s) => s.data);
  const setData = useStudio((s) => s.setData);
  return (
    <div className="scoring">
      <div className="field wide">
        <label htmlFor="data-labels">Labels, optional: a .npy of class ids, a folder with a subfolder per class, or a .json array with one label per {calibrates && data.evaluation.kind === 'held-out' ? 'calibration' : 'evaluation'} sample (sorted file order)</label>
        <input id="data-labels" type="text" value={data.labels} spellCheck={false} onChange={(e) => setData({ labels: e.target.value })} placeholder="/path/to/labels.json" />
        <div className="row">
          <PickButton host={host} field="labels" accept=".npy,.json" label="labels" />
          {data.kind === 'images' && data.path && <button type="button" className="link" onClick={() => setData({ labels: data.path })} title="Class ids from the image folder's subfolders, one per class, sorted by name">the image folder's subfolders</button>}
        </div>
      </div>
      <div className="field wide">
        <label htmlFor="data-metric-module">Metric module, optional: a .mjs whose default export {'{ name, score({ float, quantized, labels }) }'} scores the outputs as you measure them (it runs on the host)</label>
        <input id="data-metric-module" type="text" value={data.metricModule} spellCheck={false} onChange={(e) => setData({ metricModule: e.target.value })} placeholder="/path/to/metric.mjs" />
        <PickButton host={host} field="metricModule" accept=".mjs,.js" label="a module" />
      </div>
    </div>
  );
}

export function ConfigureScreen({ host }: { host: Host }) {
  const recipe = useStudio((s) => s.recipe);
  const preset = useStudio((s) => s.preset);
  const chooseBackend = useStudio((s) => s.chooseBackend);
  const setRecipe = useStudio((s) => s.setRecipe);
  const startRun = useStudio((s) => s.startRun);
  const data = useStudio((s) => s.data);
  const refreshPlan = useStudio((s) => s.refreshPlan);
  const model = useStudio((s) => s.model);
  const resetConfig = useStudio((s) => s.resetConfig);
  const fromLastRun = useStudio((s) => s.fromLastRun);
  const numerics = useStudio((s) => s.numerics);
  const setNumerics = useStudio((s) => s.setNumerics);
  const saturationFix = useStudio((s) => s.saturationFix);
  const setSaturationFix = useStudio((s) => s.setSaturationFix);
  const runsHere = findBackend(recipe.backend)?.localRuntime === 'ort-cpu';
  const gptqApplies = recipe.kind === 'weight-only';
  const saturates = useStudio((s) => Boolean(s.plan?.host.int8Saturates)) && runsHere && recipe.kind !== 'weight-only';
  useEffect(() => {
    void refreshPlan();
  }, [model, refreshPlan]);
  const backend = findBackend(recipe.backend)!;
  const problem = refusal(recipe, {});
  const needsData = readsCalibration(recipe) && !dataSource(data);
  const needsEvaluation = readsCalibration(recipe) && data.evaluation.kind === 'other' && !data.evaluation.path.trim();
  const [method, param] = recipe.method.split(':');
  const granularities: Granularity[] = ['per-tensor', 'per-channel', 'per-block'];
  return (
    <section className="screen configure" aria-labelledby="configure-title">
      <h2 id="configure-title">Configure</h2>
      {fromLastRun && (
        <p className="muted" data-testid="last-settings">
          As this model was last run here.{' '}
          <button type="button" className="link" onClick={resetConfig} data-testid="reset-config">Start from defaults</button>
        </p>
      )}
      <div className="backends" role="radiogroup" aria-label="Backend">
        {BACKENDS.map((b) => (
          <div key={b.name} className={`card${b.name === recipe.backend ? ' chosen' : ''}`} data-backend={b.name}>
            <label className="card-title"><input type="radio" name="backend" checked={b.name === recipe.backend} onChange={() => chooseBackend(b.name)} /> {b.title} <code>{b.name}</code></label>
            <p>{b.description}</p>
            <div className="presets">
              {b.presets.map((p) => {
                const chosen = b.name === recipe.backend && p.name === preset;
                return <button type="button" key={p.name} className={chosen ? 'chosen' : ''} aria-pressed={chosen} data-preset={`${b.name}:${p.name}`} title={p.title}
                  onClick={() => chooseBackend(b.name, p.name)}>{p.name}</button>;
              })}
            </div>
          </div>
        ))}
      </div>
      <details className="advanced">
        <summary>Advanced: {recipe.kind}, activations {recipe.activationType}, weights {recipe.weightType} {recipe.granularity}, {recipe.method}{recipe.algorithms?.cle ? ', cross-layer equalization' : ''}{recipe.algorithms?.biasCorrection ? ', bias correction' : ''}{recipe.algorithms?.adaround ? `, AdaRound ${recipe.algorithms.adaround.iterations}` : ''}{recipe.algorithms?.smoothquant ? ', SmoothQuant' : ''}{recipe.algorithms?.gptq ? ', GPTQ' : ''}</summary>
        <div className="fields">
          <Choice label="Kind" field="kind" values={QUANT_KINDS} />
          <Choice label="Activations" field="activationType" values={QUANT_TYPES} />
          <Choice label="Weights" field="weightType" values={QUANT_TYPES} />
          <Choice label="Granularity" field="granularity" values={granularities} />
          <Choice label="Block size" field="blockSize" values={[16, 32, 64, 128, 256]} />
          <div className="field">
            <label htmlFor="cfg-method">Calibration method</label>
            <select id="cfg-method" value={method} onChange={(e) => { const m = METHOD_PARAM[e.target.value]; setRecipe({ method: m ? `${e.target.value}:${m.fallback}` : e.target.value }); }}>
              {METHODS.map((m) => <option key={m}>{m}</option>)}
            </select>
          </div>
          {METHOD_PARAM[method] && (
            <div className="field">
              <label htmlFor="cfg-method-param">{METHOD_PARAM[method]!.label}</label>
              <input id="cfg-method-param" type="text" defaultValue={param ?? METHOD_PARAM[method]!.fallback} key={method}
                onBlur={(e) => setRecipe({ method: `${method}:${e.target.value.trim() || METHOD_PARAM[method]!.fallback}` })} />
            </div>
          )}
          <div className="field">
            <label htmlFor="cfg-samples">Calibration samples (0 = all)</label>
            <input id="cfg-samples" type="number" min={0} value={recipe.calibrationSamples} onChange={(e) => setRecipe({ calibrationSamples: Math.max(0, Math.floor(Number(e.target.value) || 0)) })} />
          </div>
          <div className="field wide">
            <label htmlFor="cfg-ops">Op types (empty: the backend's {backend.opTypes[recipe.kind].length})</label>
            <input id="cfg-ops" type="text" defaultValue={recipe.opTypes.join(', ')} key={`ops-${recipe.backend}-${recipe.kind}`} spellCheck={false}
              onBlur={(e) => setRecipe({ opTypes: e.target.value.split(/[,\s]+/).filter(Boolean) })} />
          </div>
          <div className="field">
            <label htmlFor="cfg-reduce-range" title={refusal(recipe, { reduceRange: !recipe.reduceRange })}>
              <input id="cfg-reduce-range" type="checkbox" checked={recipe.reduceRange} disabled={Boolean(refusal(recipe, { reduceRange: !recipe.reduceRange }))}
                onChange={(e) => setRecipe({ reduceRange: e.target.checked })} /> 7-bit weights (reduce-range)
            </label>
          </div>
          {recipe.kind === 'dynamic' && (
            <div className="field">
              <label htmlFor="cfg-activation-matmuls" title="Also quantizes MatMuls of two activations (attention's scores and its product with the values), both at run time; off, they stay in float as in ONNX Runtime's quantizer">
                <input id="cfg-activation-matmuls" type="checkbox" checked={Boolean(recipe.activationMatMuls)}
                  onChange={(e) => setRecipe({ activationMatMuls: e.target.checked || undefined })} /> Attention MatMuls too (activation × activation)
              </label>
            </div>
          )}
          <div className="field">
            <label htmlFor="cfg-cle" title="Rescales each Conv pair joined by nothing or a Relu/LeakyRelu/PRelu so their per-channel weight ranges match: the float model is unchanged, per-tensor and low-bit weights lose less">
              <input id="cfg-cle" type="checkbox" checked={Boolean(recipe.algorithms?.cle)}
                onChange={(e) => setRecipe({ algorithms: { ...recipe.algorithms, cle: e.target.checked } })} /> Cross-layer equalization
            </label>
          </div>
          <div className="field">
            <label htmlFor="cfg-bias-correction" title={recipe.kind === 'static' ? 'Adds to each quantized Conv/Gemm bias the mean output error its quantization makes, measured on 8 calibration samples' : 'bias correction corrects static quantization'}>
              <input id="cfg-bias-correction" type="checkbox" checked={Boolean(recipe.algorithms?.biasCorrection)} disabled={recipe.kind !== 'static'}
                onChange={(e) => setRecipe({ algorithms: { ...recipe.algorithms, biasCorrection: e.target.checked } })} /> Bias correction
            </label>
          </div>
          <div className="field">
            <label htmlFor="cfg-adaround" title={recipe.kind === 'static' ? 'Learns, per quantized Conv/MatMul/Gemm, whether each weight rounds up or down so that the layer\'s output on the calibration samples changes least; minutes on a large model' : 'AdaRound rounds the weights of static quantization'}>
              <input id="cfg-adaround" type="checkbox" checked={Boolean(recipe.algorithms?.adaround)} disabled={recipe.kind !== 'static'}
                onChange={(e) => setRecipe({ algorithms: { ...recipe.algorithms, adaround: e.target.checked ? { iterations: adaRoundIterations(recipe.granularity) } : undefined } })} /> AdaRound
            </label>
            {recipe.algorithms?.adaround && (
              <label htmlFor="cfg-adaround-iterations">Iterations per layer
                <input id="cfg-adaround-iterations" type="number" min={1} step={100} value={recipe.algorithms.adaround.iterations}
                  onChange={(e) => setRecipe({ algorithms: { ...recipe.algorithms, adaround: { iterations: Math.max(1, Math.round(Number(e.target.value) || 1)) } } })} />
              </label>
            )}
          </div>
          <div className="field">
            <label htmlFor="cfg-smoothquant" title={recipe.kind === 'static' ? 'Divides each input channel of the quantized MatMul/Gemm layers by max|X|^α / max|W|^(1−α), folded into the LayerNorm or linear layer before them, and multiplies their weight rows by it: the float model is the same function, and activation outliers move into the weights; needs calibration data' : 'SmoothQuant smooths the activations of static quantization'}>
              <input id="cfg-smoothquant" type="checkbox" checked={Boolean(recipe.algorithms?.smoothquant)} disabled={recipe.kind !== 'static'}
                onChange={(e) => setRecipe({ algorithms: { ...recipe.algorithms, smoothquant: e.target.checked ? {} : undefined } })} /> SmoothQuant
            </label>
            {recipe.algorithms?.smoothquant && (
              <label htmlFor="cfg-smoothquant-alpha">α (empty: searched among {SMOOTHQUANT_ALPHAS.join(', ')})
                <input id="cfg-smoothquant-alpha" type="number" min={0.05} max={0.95} step={0.05} value={recipe.algorithms.smoothquant.alpha ?? ''}
                  onChange={(e) => {
                    const alpha = e.target.value === '' ? undefined : Math.min(0.95, Math.max(0.05, Number(e.target.value)));
                    setRecipe({ algorithms: { ...recipe.algorithms, smoothquant: alpha === undefined ? {} : { alpha } } });
                  }} />
              </label>
            )}
          </div>
          <div className="field">
            <label htmlFor="cfg-gptq" title={gptqApplies ? 'Quantizes each weight-only MatMul/Gemm weight row by row, pushing each row\'s rounding error onto the rows not yet quantized so that the layer\'s output on the calibration samples changes least; needs calibration data' : 'GPTQ quantizes weight-only MatMul/Gemm weights'}>
              <input id="cfg-gptq" type="checkbox" checked={Boolean(recipe.algorithms?.gptq)} disabled={!gptqApplies}
                onChange={(e) => setRecipe({ algorithms: { ...recipe.algorithms, gptq: e.target.checked ? GPTQ_DEFAULTS : undefined } })} /> GPTQ
            </label>
            {recipe.algorithms?.gptq && (
              <label htmlFor="cfg-gptq-act-order" title="Quantize the rows whose inputs carry most energy first; the block scales are then fixed from the float weights">
                <input id="cfg-gptq-act-order" type="checkbox" checked={recipe.algorithms.gptq.actOrder}
                  onChange={(e) => setRecipe({ algorithms: { ...recipe.algorithms, gptq: { ...recipe.algorithms!.gptq!, actOrder: e.target.checked } } })} /> act-order
              </label>
            )}
          </div>
          <div className="field">
            <label htmlFor="cfg-numerics">Figures measured in</label>
            <select id="cfg-numerics" value={numerics ?? ''} onChange={(e) => setNumerics((e.target.value || undefined) as MainNumerics | undefined)}>
              <option value="">{runsHere ? 'reference, and ort-cpu as deployed' : 'reference'} (default)</option>
              {MAIN_NUMERICS.map((n) => <option key={n} value={n} title={NUMERICS_WORDS[n]}>{n}</option>)}
            </select>
          </div>
          {saturates && (
            <div className="field wide">
              <label htmlFor="cfg-saturation-fix">
                <input id="cfg-saturation-fix" type="checkbox" checked={saturationFix} onChange={(e) => setSaturationFix(e.target.checked)} /> uint8 weights, so the model is right on this CPU
              </label>
              <p className="muted small">This CPU's fused int8 kernels saturate u8×s8 products (no VNNI). Off: int8 weights, to deploy elsewhere or with session.x64quantprecision=1.</p>
            </div>
          )}
          <div className="field wide">
            <label htmlFor="cfg-exclude">Nodes kept in float</label>
            <input id="cfg-exclude" type="text" defaultValue={recipe.excludeNodes.join(', ')} spellCheck={false}
              onBlur={(e) => setRecipe({ excludeNodes: e.target.value.split(/[,\s]+/).filter(Boolean) })} />
          </div>
        </div>
      </details>
      <DataSection host={host} calibrates={readsCalibration(recipe)} />
      <PlanSummaryView />
      <div className="actions">
        {problem && <p className="error" role="alert">{problem}</p>}
        {needsData && <p className="muted">{recipe.kind === 'static' ? 'Choose calibration data to run static quantization.' : 'Choose calibration data: GPTQ measures its layers\' inputs on it.'}</p>}
        {needsEvaluation && <p className="muted">Choose the evaluation samples, or hold out part of the calibration data.</p>}
        <button type="button" className="primary" data-testid="run" disabled={Boolean(problem) || needsData || needsEvaluation} onClick={() => void startRun()}>Quantize</button>
      </div>
    </section>
  );
}
