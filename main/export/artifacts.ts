// The files an export writes, named from the output model: paths decided and checked against the
// input before any work, then written each atomically, the lowered forms a runtime may refuse first.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Preflight } from '../../shared/preflight';
import type { Recipe } from '../../shared/recipe';
import type { Artifact } from '../../shared/report';
import { writeJsonAtomic } from '../base/atomic';
import { JobError } from '../base/errors';
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

export interface ArtifactPaths {
  model: string;
  report: string;
  recipe: string;
  ranges: string;
  preflight: string;
}

/** Where an export goes; refuses any path that is the input model. */
export function artifactPaths(model: string, out: string, report?: string): ArtifactPaths {
  const input = path.resolve(model);
  const paths = {
    model: path.resolve(out), report: report ?? companionPath(out, '.report.json'),
    recipe: companionPath(out, '.recipe.json'), ranges: companionPath(out, '.ranges.json'), preflight: companionPath(out, '.preflight.json'),
  };
  if (paths.model === input) throw new JobError(`${out}: refusing to write over the input model; choose another --out`);
  if (path.resolve(paths.report) === input) throw new JobError(`${report}: refusing to write the report over the input model; choose another --report`);
  // Whichever of these the backend writes: an input named like one (re-quantizing a lowered export) must survive.
  const clash = [paths.recipe, paths.ranges, paths.preflight, ...LOWERING_SUFFIXES.map((s) => companionPath(out, s))].find((f) => path.resolve(f) === input);
  if (clash) throw new JobError(`${clash}: refusing to write a companion of ${out} over the input model; choose another --out`);
  return paths;
}

export interface ArtifactSet {
  qdq: { model: onnx.ModelProto; description: string };
  forms: LoweredForm[];
  preflight: Preflight;
  recipe: Recipe;
  /** Absent when the run wrote no ranges of its own (it re-used a file and changed nothing). */
  ranges?: { doc: unknown; description: string };
}

/** Writes the set; lists each file written, the QDQ model first, in the order a person reads them. */
export async function writeArtifacts(paths: ArtifactPaths, set: ArtifactSet): Promise<{ artifacts: Artifact[]; files: Partial<Record<Artifact['kind'], string>> }> {
  const written = new Map<LoweredForm, Artifact>();
  const write = async (form: LoweredForm) => {
    const file = companionPath(paths.model, form.suffix);
    written.set(form, { kind: form.kind, file, bytes: await form.write(file), description: form.description });
  };
  for (const form of set.forms.filter((f) => f.first)) await write(form);
  const saved = saveModel(set.qdq.model, paths.model);
  const artifacts: Artifact[] = [{ kind: 'model', file: paths.model, bytes: saved.bytes + (saved.dataBytes ?? 0), description: set.qdq.description }];
  for (const form of set.forms.filter((f) => !f.first)) await write(form);
  artifacts.push(...set.forms.map((f) => written.get(f)!));
  const json = (kind: Artifact['kind'], file: string, doc: unknown, description: string) => {
    writeJsonAtomic(file, doc);
    artifacts.push({ kind, file, bytes: fs.statSync(file).size, description });
  };
  json('preflight', paths.preflight, set.preflight, `where each node runs on ${set.preflight.device}`);
  json('recipe', paths.recipe, set.recipe, 'the recipe, to re-run or share');
  if (set.ranges) json('ranges', paths.ranges, set.ranges.doc, set.ranges.description);
  return { artifacts, files: Object.fromEntries(artifacts.map((a) => [a.kind, a.file])) };
}
