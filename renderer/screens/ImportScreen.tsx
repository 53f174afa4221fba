import { useEffect, useRef, useState, type DragEvent } from 'react';
import { useStudio } from '../context';
import { fileName, folderOf } from '../format';

export function ImportScreen({ host }: { host: 'electron' | 'browser' | 'test' }) {
  const openFile = useStudio((s) => s.openFile);
  const openPath = useStudio((s) => s.openPath);
  const openSample = useStudio((s) => s.openSample);
  const chooseModel = useStudio((s) => s.chooseModel);
  const loadRecent = useStudio((s) => s.loadRecent);
  const recent = useStudio((s) => s.recent);
  const error = useStudio((s) => s.modelError);
  const opening = useStudio((s) => s.opening);
  const [over, setOver] = useState(false);
  const [typed, setTyped] = useState('');
  const picker = useRef<HTMLInputElement>(null);

  useEffect(() => {
    void loadRecent();
  }, [loadRecent]);

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setOver(false);
    const file = e.dataTransfer.files[0];
    if (file) void openFile(file);
  };
  // Electron shows the native dialog; a browser page falls back to its file picker (an upload).
  const open = async () => {
    if (!(await chooseModel())) picker.current?.click();
  };

  return (
    <section className="screen import" aria-labelledby="import-title">
      <h2 id="import-title">Open a model</h2>
      <div className={`dropzone${over ? ' over' : ''}`} data-testid="dropzone"
        onDragOver={(e) => { e.preventDefault(); setOver(true); }} onDragLeave={() => setOver(false)} onDrop={onDrop}>
        <p className="big">Drop an <code>.onnx</code> file here</p>
        <p>External-data files next to the model are found automatically.</p>
        <div className="row">
          <button type="button" className="primary" onClick={() => void open()} disabled={opening}>Open…</button>
          <button type="button" onClick={() => void openSample()} disabled={opening}>Try the sample model</button>
        </div>
        <input ref={picker} type="file" accept=".onnx" hidden data-testid="file-input"
          onChange={(e) => { const f = e.target.files?.[0]; if (f) void openFile(f); e.target.value = ''; }} />
        <div className="status-line" role="alert" aria-live="assertive">
          {opening ? <span>Reading the model…</span> : error ? <span className="error" data-testid="import-error">{error}</span> : null}
        </div>
      </div>
      {host !== 'electron' && (
        <form className="row by-path" onSubmit={(e) => { e.preventDefault(); if (typed.trim()) void openPath(typed.trim()); }}>
          <label htmlFor="model-path">Or a path on the machine running the studio</label>
          <input id="model-path" type="text" value={typed} onChange={(e) => setTyped(e.target.value)} placeholder="/path/to/model.onnx" spellCheck={false} />
          <button type="submit" disabled={opening || !typed.trim()}>Open</button>
        </form>
      )}
      {recent.length > 0 && (
        <div className="recent">
          <h3>Recent models</h3>
          <ul>
            {recent.map((r) => (
              <li key={r}><button type="button" className="link" onClick={() => void openPath(r)} title={r} data-testid="recent-model">{fileName(r)}</button> <span className="muted small path">{folderOf(r)}</span></li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
