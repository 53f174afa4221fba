import { useStudio } from '../context';
import { bytes, fileName } from '../format';

export function ExportScreen({ host }: { host: 'electron' | 'browser' | 'test' }) {
  const folder = useStudio((s) => s.exportFolder);
  const setFolder = useStudio((s) => s.setExportFolder);
  const choose = useStudio((s) => s.chooseExportFolder);
  const exportRun = useStudio((s) => s.exportRun);
  const exported = useStudio((s) => s.exported);
  const error = useStudio((s) => s.exportError);
  const exporting = useStudio((s) => s.exporting);
  const current = useStudio((s) => s.current);
  if (!current) return null;
  return (
    <section className="screen export" aria-labelledby="export-title">
      <h2 id="export-title">Export</h2>
      <p>Writes the quantized model, its recipe, the calibrated ranges, the report as JSON and a self-contained HTML report. The input model is never overwritten.</p>
      <div className="row">
        <label htmlFor="export-folder">Folder</label>
        <input id="export-folder" type="text" value={folder} onChange={(e) => setFolder(e.target.value)} spellCheck={false} />
        {host === 'electron' && <button type="button" onClick={() => void choose()}>Choose…</button>}
        <button type="button" className="primary" data-testid="export" onClick={() => void exportRun()} disabled={exporting}>Export</button>
      </div>
      <div className="status-line" aria-live="polite">
        {exporting && 'Writing…'}
        {error && <span className="error" role="alert">{error}</span>}
      </div>
      {exported && (
        <div className="exported" data-testid="exported">
          <table className="grid">
            <caption>Written to {exported.folder}</caption>
            <thead><tr><th>file</th><th>what</th><th className="num">size</th></tr></thead>
            <tbody>
              {exported.files.map((f) => <tr key={f.file}><td className="path">{fileName(f.file)}</td><td>{f.what}</td><td className="num">{bytes(f.bytes)}</td></tr>)}
            </tbody>
          </table>
          <p>Model size {bytes(exported.floatBytes)} → {bytes(exported.quantizedBytes)}: <strong data-testid="ratio">{(exported.ratio * 100).toFixed(1)}%</strong> of the float model.</p>
        </div>
      )}
    </section>
  );
}
