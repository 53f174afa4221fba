import { useEffect, useRef } from 'react';
import { KEPT_DAYS, type StudioApi } from '../../shared/ipc';
import { figureLabel } from '../../shared/numerics';
import { useStudio } from '../context';
import { bytes, fileName, outputsText } from '../format';
import { configSummary } from './InspectTools';

export function ExportScreen({ host }: { host: StudioApi['host'] }) {
  const folder = useStudio((s) => s.exportFolder);
  const setFolder = useStudio((s) => s.setExportFolder);
  const choose = useStudio((s) => s.chooseExportFolder);
  const exportRun = useStudio((s) => s.exportRun);
  const exported = useStudio((s) => s.exported);
  const error = useStudio((s) => s.exportError);
  const exporting = useStudio((s) => s.exporting);
  const conflict = useStudio((s) => s.exportConflict);
  const cancelOverwrite = useStudio((s) => s.cancelOverwrite);
  const current = useStudio((s) => s.current);
  const entry = useStudio((s) => s.history.find((h) => h.result.runId === s.current?.runId));
  const pending = useStudio((s) => s.downloadPending);
  const downloadStarted = useStudio((s) => s.downloadStarted);
  const download = useRef<HTMLAnchorElement>(null);
  // The zip is fetched by the browser itself, as a download, once the host has written the export.
  useEffect(() => {
    if (!pending || !download.current) return;
    downloadStarted();
    download.current.click();
  }, [pending, downloadStarted]);
  if (!current) return null;
  const report = current.report;
  const browser = host === 'browser';
  return (
    <section className="screen export" aria-labelledby="export-title">
      <h2 id="export-title">Export</h2>
      <p data-testid="export-run">
        <strong>{current.runId}</strong>{entry ? `: ${configSummary(entry)}` : ''}; output SQNR {outputsText(report.outputs)}
        {' '}({figureLabel(report.numerics, report.samples.evaluation)}).
      </p>
      <p>Writes the quantized model, its recipe, the calibrated ranges, the report as JSON and a self-contained HTML report with the graph and any analysis. The input model is never overwritten.</p>
      {browser && (
        <div className="row">
          <button type="button" className="primary" data-testid="export-zip" onClick={() => void exportRun({ toFolder: false })} disabled={exporting}>Download as .zip</button>
          <span className="muted small">The studio host keeps each export {KEPT_DAYS} days: the link below downloads it again without a new export.</span>
        </div>
      )}
      <div className="row">
        <label htmlFor="export-folder">{browser ? 'Or write to a folder on the machine running the studio' : 'Folder'}</label>
        <input id="export-folder" type="text" value={folder} onChange={(e) => setFolder(e.target.value)} spellCheck={false} placeholder={browser ? '/path/on/the/host' : ''} />
        {host === 'electron' && <button type="button" onClick={() => void choose()}>Choose…</button>}
        <button type="button" className={browser ? '' : 'primary'} data-testid="export" onClick={() => void exportRun({ toFolder: true })} disabled={exporting || !folder.trim()}>
          {browser ? 'Write there' : 'Export'}
        </button>
      </div>
      <div className="status-line" aria-live="polite">
        {exporting && 'Writing…'}
        {error && <span className="error" role="alert">{error}</span>}
      </div>
      {conflict && (
        <div className="confirm" role="alertdialog" aria-labelledby="overwrite-title" data-testid="overwrite">
          <p id="overwrite-title"><strong>{conflict.files.length} file{conflict.files.length > 1 ? 's' : ''} of an earlier export</strong> would be overwritten in {conflict.folder}:</p>
          <ul className="paths">{conflict.files.slice(0, 8).map((f) => <li key={f}>{fileName(f)}</li>)}{conflict.files.length > 8 && <li>…</li>}</ul>
          <div className="row">
            <button type="button" className="danger" data-testid="overwrite-yes" onClick={() => void exportRun({ toFolder: conflict.toFolder, overwrite: true })}>Overwrite</button>
            <button type="button" onClick={cancelOverwrite} autoFocus>Keep them</button>
          </div>
        </div>
      )}
      {exported && (
        <div className="exported" data-testid="exported">
          <table className="grid">
            <caption>{exported.download ? `Written by the host and downloaded as one .zip (${exported.files.length} files)` : `Written to ${exported.folder}`}</caption>
            <thead><tr><th>file</th><th>what</th><th className="num">size</th></tr></thead>
            <tbody>
              {exported.files.map((f) => <tr key={f.file}><td className="path">{fileName(f.file)}</td><td>{f.what}</td><td className="num">{bytes(f.bytes)}</td></tr>)}
            </tbody>
          </table>
          {exported.download && <p><a ref={download} href={exported.download} download data-testid="download-link">Download the .zip again</a></p>}
          <p>Model size {bytes(exported.floatBytes)} → {bytes(exported.quantizedBytes)}: <strong data-testid="ratio">{(exported.ratio * 100).toFixed(1)}%</strong> of the float model.</p>
        </div>
      )}
    </section>
  );
}
