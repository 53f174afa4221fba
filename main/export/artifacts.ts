// The files an export writes, named from the output model. Paths are decided and checked before any
// work: never a folder, never an input (real paths, the model's external data included), always a
// folder the job can write. The set is written into a staging folder beside the output and renamed
// into place, the report last: a job killed while saving leaves no partial set in place, and its
// staging folder is removed by the next export into that folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Preflight } from '../../shared/preflight';
import type { Recipe } from '../../shared/recipe';
import type { Artifact } from '../../shared/report';
import { writeJsonAtomic } from '../base/atomic';
import { JobError } from '../base/errors';
import { refuseOverInputs } from '../base/paths';
import { saveModel } from '../onnx/model';
import type { onnx } from '../onnx/proto';
import { LOWERING_SUFFIXES, type LoweredForm } from './lowering';

export function defaultOutPath(model: string, backend: string, kind: string): string {
  const base = path.basename(model).replace(/\.onnx$/i, '');
  return path.join(path.dirname(model), `${base}.${backend}-${kind}.onnx`);
}

export function companionPath(out: string, suffix: string): string {
  return out.replace(/\.onnx$/i, '') + suffix;
}

/** Staging folders are named after the process that writes them, so that a later job knows a dead one's. */
export const STAGE_PREFIX = '.quant-studio-stage-';

export interface ArtifactPaths {
  model: string;
  report: string;
  recipe: string;
  ranges: string;
  preflight: string;
}

/** Where an export goes; refuses a folder for a file and a folder the job cannot write. */
export function artifactPaths(out: string, report?: string): ArtifactPaths {
  const paths = {
    model: path.resolve(out), report: path.resolve(report ?? companionPath(out, '.report.json')),
    recipe: companionPath(path.resolve(out), '.recipe.json'), ranges: companionPath(path.resolve(out), '.ranges.json'), preflight: companionPath(path.resolve(out), '.preflight.json'),
  };
  for (const file of [paths.recipe, paths.ranges, paths.preflight, ...LOWERING_SUFFIXES.map((s) => companionPath(paths.model, s))]) {
    if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new JobError(`${file}: is a folder where the export writes a file; move it, or choose another --out`);
  }
  for (const [file, flag] of [[paths.model, '--out'], [paths.report, '--report']] as const) {
    if (fs.statSync(file, { throwIfNoEntry: false })?.isDirectory()) throw new JobError(`${file}: is a folder; ${flag} names the file to write, e.g. ${path.join(file, flag === '--out' ? 'model.int8.onnx' : 'report.json')}`);
    let dir = path.dirname(file);
    while (!fs.existsSync(dir)) dir = path.dirname(dir);
    // Writing is the only true test: permission bits say nothing of read-only mounts, or to root.
    try {
      fs.rmdirSync(fs.mkdtempSync(path.join(dir, '.quant-studio-probe-')));
    } catch (err) {
      throw new JobError(`${dir}: cannot write there (${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); choose a folder you can write`);
    }
  }
  return paths;
}

/** Refuses any path of the set that is the input model or a file it references. */
export function refuseInputs(paths: ArtifactPaths, inputs: readonly string[]): void {
  const companions = [paths.recipe, paths.ranges, paths.preflight, ...LOWERING_SUFFIXES.map((s) => companionPath(paths.model, s))];
  refuseOverInputs([
    { file: paths.model, what: 'the quantized model' }, { file: `${paths.model}.data`, what: 'the quantized model\'s external data' },
    { file: paths.report, what: 'the report' }, ...companions.map((file) => ({ file, what: `a companion of ${paths.model}` })),
  ], inputs, 'choose another --out (or --report)');
}

export interface ArtifactSet {
  qdq: { model: onnx.ModelProto; description: string };
  forms: LoweredForm[];
  preflight: Preflight;
  recipe: Recipe;
  /** Absent when the run wrote no ranges of its own (it re-used a file and changed nothing). */
  ranges?: { doc: unknown; description: string };
  /** The report, from the artifacts as written: the last file, whose presence says the set is whole. */
  report: (artifacts: Artifact[]) => unknown;
}

/** Writes the set; lists each file written, the QDQ model first, in the order a person reads them. */
export async function writeArtifacts(paths: ArtifactPaths, set: ArtifactSet): Promise<{ artifacts: Artifact[]; files: Partial<Record<Artifact['kind'], string>>; report: unknown }> {
  const dir = path.dirname(paths.model);
  fs.mkdirSync(dir, { recursive: true });
  removeDeadStages(dir);
  const stage = fs.mkdtempSync(path.join(dir, `${STAGE_PREFIX}${process.pid}-`));
  try {
    const staged = (file: string) => path.join(stage, path.basename(file));
    const written = new Map<LoweredForm, Artifact>();
    const write = async (form: LoweredForm) => {
      const file = companionPath(paths.model, form.suffix);
      written.set(form, { kind: form.kind, file, bytes: await form.write(staged(file)), description: form.description });
    };
    // Lowered forms a runtime may refuse go first: a refusal then costs nothing else.
    for (const form of set.forms.filter((f) => f.first)) await write(form);
    const saved = saveModel(set.qdq.model, staged(paths.model));
    const artifacts: Artifact[] = [{ kind: 'model', file: paths.model, bytes: saved.bytes + (saved.dataBytes ?? 0), description: set.qdq.description }];
    for (const form of set.forms.filter((f) => !f.first)) await write(form);
    artifacts.push(...set.forms.map((f) => written.get(f)!));
    const json = (kind: Artifact['kind'], file: string, doc: unknown, description: string) => {
      writeJsonAtomic(staged(file), doc);
      artifacts.push({ kind, file, bytes: fs.statSync(staged(file)).size, description });
    };
    json('preflight', paths.preflight, set.preflight, `where each node runs on ${set.preflight.device}`);
    json('recipe', paths.recipe, set.recipe, 'the recipe, to re-run or share');
    if (set.ranges) json('ranges', paths.ranges, set.ranges.doc, set.ranges.description);
    const report = set.report(artifacts);
    const reportHere = path.dirname(paths.report) === dir;
    if (reportHere) writeJsonAtomic(staged(paths.report), report);
    const last = path.basename(paths.report);
    // An earlier report would vouch for a half-replaced set: it goes first, the new one comes last.
    fs.rmSync(paths.report, { force: true });
    for (const name of fs.readdirSync(stage).sort((a, b) => Number(a === last) - Number(b === last))) fs.renameSync(path.join(stage, name), path.join(dir, name));
    if (!reportHere) writeJsonAtomic(paths.report, report);
    return { artifacts, files: Object.fromEntries(artifacts.map((a) => [a.kind, a.file])), report };
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** Staging folders of processes that are gone: a job killed while saving left them. */
function removeDeadStages(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    const pid = name.startsWith(STAGE_PREFIX) ? Number(name.slice(STAGE_PREFIX.length).split('-')[0]) : NaN;
    if (Number.isInteger(pid) && !alive(pid)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
