// Outputs never land on inputs: a model, the external data files it references, and the same files
// reached through a symlink or spelled another way are all compared by their real paths.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JobError } from './errors';

/** The real path a file has, or would have once written: through symlinks of itself and of its folders. */
export function realTarget(file: string): string {
  const resolved = path.resolve(file);
  try {
    return fs.realpathSync(resolved);
  } catch {
    const dir = path.dirname(resolved);
    return dir === resolved ? resolved : path.join(realTarget(dir), path.basename(resolved));
  }
}

/** Refuses the first output that is one of the inputs, naming it and saying what to change. */
export function refuseOverInputs(outputs: ReadonlyArray<{ file: string; what: string }>, inputs: readonly string[], change: string): void {
  const taken = new Set(inputs.map(realTarget));
  const clash = outputs.find((o) => taken.has(realTarget(o.file)));
  if (!clash) return;
  const which = realTarget(clash.file) === realTarget(inputs[0]) ? 'the input model' : `a file the input model references (${realTarget(clash.file)})`;
  throw new JobError(`${clash.file}: refusing to write over ${which}: it would be ${clash.what}; ${change}`);
}
