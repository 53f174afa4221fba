// Runs CLI commands one after another in this process, as the CLI's engine child runs one: each
// message is an argv, each answer its exit code and what it printed. The fuzzer keeps one of
// these alive across mutants; a native crash ends it, which is what the CLI's parent reports.
import { main } from '../../app/cli';
import { ENGINE_CHILD_ENV } from '../../app/isolated';

// The CLI reads it per command: with it set, the command runs here rather than in a child.
process.env[ENGINE_CHILD_ENV] = '1';

let printed = '';
const capture = (chunk: string | Uint8Array): boolean => {
  printed += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
  return true;
};
process.stdout.write = capture as typeof process.stdout.write;
process.stderr.write = capture as typeof process.stderr.write;

process.on('message', (argv: string[]) => {
  printed = '';
  void main(argv).then((code) => process.send!({ code, printed }));
});
