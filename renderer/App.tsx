import { useEffect, useRef } from 'react';
import type { StudioApi } from '../shared/ipc';
import { useStudio } from './context';
import { figureLabel, NUMERICS_WORDS } from '../shared/numerics';
import { bytes, outputsText } from './format';
import { ConfigureScreen } from './screens/ConfigureScreen';
import { ExportScreen } from './screens/ExportScreen';
import { ImportScreen } from './screens/ImportScreen';
import { InspectScreen } from './screens/InspectScreen';
import { runDifference } from './screens/InspectTools';
import { ModelScreen } from './screens/ModelScreen';
import { RunScreen } from './screens/RunScreen';
import { SCREENS, type Screen, type Studio } from './store';

function available(screen: Screen, s: Pick<Studio, 'model' | 'current' | 'status'>): boolean {
  switch (screen) {
    case 'import': return true;
    case 'model': case 'configure': return Boolean(s.model);
    case 'run': return s.status !== 'idle';
    case 'inspect': case 'export': return Boolean(s.current);
  }
}

/** Output SQNR and sizes stay in the header on every screen; fixed widths keep it from jumping. */
function Summary() {
  const model = useStudio((s) => s.model);
  const current = useStudio((s) => s.current);
  const previous = useStudio((s) => s.previous);
  const report = current?.report;
  const deployed = report?.deployed;
  const against = report && previous ? runDifference(report, previous.report) : undefined;
  return (
    <dl className="summary" aria-label="Current run">
      <div><dt>Model</dt><dd title={model?.file}>{model?.name ?? '—'}</dd></div>
      <div>
        <dt>Output SQNR{report && <span className="numerics" data-testid="output-numerics" title={NUMERICS_WORDS[report.numerics]}> {report.numerics}</span>}</dt>
        <dd data-testid="output-sqnr" title={report ? figureLabel(report.numerics, report.samples.evaluation) : undefined}>{report ? outputsText(report.outputs) : '—'}</dd>
      </div>
      {deployed && (
        <div title={deployed.note ?? NUMERICS_WORDS[deployed.numerics]}>
          <dt>As deployed<span className="numerics" data-testid="deployed-numerics"> {deployed.numerics}</span></dt>
          <dd data-testid="deployed-sqnr">{outputsText(deployed.outputs)}</dd>
        </div>
      )}
      {against && (
        <div title={against.title}>
          <dt>Against {previous!.runId}</dt>
          <dd data-testid="output-delta">{against.sqnr ?? 'not comparable'}</dd>
        </div>
      )}
      <div><dt>Size</dt><dd>{report ? `${bytes(report.sizes.floatBytes)} → ${bytes(report.sizes.quantizedBytes)}` : model ? bytes(model.bytes) : '—'}</dd></div>
    </dl>
  );
}

export function App({ api }: { api: Pick<StudioApi, 'host' | 'onMenu'> }) {
  const screen = useStudio((s) => s.screen);
  const go = useStudio((s) => s.go);
  const theme = useStudio((s) => s.theme);
  const setTheme = useStudio((s) => s.setTheme);
  const model = useStudio((s) => s.model);
  const configGeneration = useStudio((s) => s.configGeneration);
  const current = useStudio((s) => s.current);
  const status = useStudio((s) => s.status);
  const chooseModel = useStudio((s) => s.chooseModel);
  const openSample = useStudio((s) => s.openSample);
  const openPath = useStudio((s) => s.openPath);

  useEffect(() => api.onMenu((m) => {
    if (m.command === 'open') void chooseModel();
    else if (m.command === 'sample') void openSample();
    else if (m.command === 'open-path') void openPath(m.path);
    else if (m.command === 'export') go('export');
  }), [api, chooseModel, openSample, openPath, go]);

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);

  // A new screen, or a new run on Inspect, takes focus to its heading: a keyboard or screen-reader
  // user starts there rather than at the top of the page, where the focus fell with the old screen.
  const main = useRef<HTMLElement>(null);
  const runId = current?.runId;
  useEffect(() => {
    const heading = main.current?.querySelector<HTMLElement>('h2');
    if (!heading || heading.contains(document.activeElement)) return;
    heading.tabIndex = -1;
    heading.focus();
  }, [screen, runId]);

  return (
    <div className="app">
      <header className="top">
        <h1>Quant Studio</h1>
        <nav aria-label="Steps">
          <ol>
            {SCREENS.map((s, i) => (
              <li key={s.id}>
                <button type="button" aria-current={screen === s.id ? 'step' : undefined} disabled={!available(s.id, { model, current, status })}
                  onClick={() => go(s.id)}>{i + 1}. {s.title}</button>
              </li>
            ))}
          </ol>
        </nav>
        <Summary />
        <button type="button" className="theme" onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')} aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} mode`}>
          {theme === 'dark' ? '☀' : '☾'}
        </button>
      </header>
      <main ref={main}>
        {screen === 'import' && <ImportScreen host={api.host} />}
        {screen === 'model' && <ModelScreen />}
        {screen === 'configure' && <ConfigureScreen host={api.host} key={`${model?.file}:${configGeneration}`} />}
        {screen === 'run' && <RunScreen />}
        {screen === 'inspect' && <InspectScreen />}
        {screen === 'export' && <ExportScreen host={api.host} />}
      </main>
    </div>
  );
}
