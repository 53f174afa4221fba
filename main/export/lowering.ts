// What an export writes besides the QDQ model, chosen by the backend record's `lowerings`: ONNX
// Runtime's optimized model (cpu), the QOperator form (cpu, when asked), integer I/O (full-integer
// targets). Each is built in memory before anything is written, so a refusal leaves no file.
import * as fs from 'node:fs';
import type { BackendCapability } from '../../shared/backends';
import type { QuantKind } from '../../shared/recipe';
import type { Artifact } from '../../shared/report';
import { writeJsonAtomic } from '../base/atomic';
import { saveModel } from '../onnx/model';
import type { onnx } from '../onnx/proto';
import { lowerWithOnnxRuntime, toQOperator } from './cpu-lowering';
import { toIntegerIO } from './integer-io';

export interface LoweredForm {
  kind: Artifact['kind'];
  /** The file's name is the QDQ model's with this suffix in place of ".onnx". */
  suffix: string;
  description: string;
  /** A model to time beside the QDQ one on this CPU. */
  timed?: { label: string; model: onnx.ModelProto };
  /** Written before the QDQ model: a runtime that refuses it must leave nothing behind. */
  first?: boolean;
  write(file: string): Promise<number>;
}

/** Every file name a lowering can write, for the checks that no output lands on an input. */
export const LOWERING_SUFFIXES = ['.lowered.onnx', '.qoperator.onnx', '.int-io.onnx', '.io.json'];

const saved = (model: onnx.ModelProto) => async (file: string) => {
  const s = saveModel(model, file);
  return s.bytes + (s.dataBytes ?? 0);
};

export function lowerings(backend: BackendCapability, kind: QuantKind, model: onnx.ModelProto, asked: { qoperator?: boolean }, warn: (message: string) => void): LoweredForm[] {
  const forms: LoweredForm[] = [];
  if (backend.lowerings.includes('ort-optimized') && kind !== 'weight-only') {
    forms.push({
      kind: 'lowered', suffix: '.lowered.onnx', first: true,
      description: 'after ONNX Runtime\'s graph optimizer: QDQ groups fused into integer kernels (QLinearConv, MatMulInteger…)',
      write: async (file) => {
        await lowerWithOnnxRuntime(model, file);
        return fs.statSync(file).size;
      },
    });
  }
  if (asked.qoperator && backend.lowerings.includes('qoperator')) {
    const q = toQOperator(model);
    if (q.fused === 0) warn('QOperator form: no Conv or MatMul had 8-bit Q/DQ on all its inputs and its output, so it equals the QDQ model');
    forms.push({
      kind: 'qoperator', suffix: '.qoperator.onnx', timed: { label: 'qoperator', model: q.model },
      description: `QOperator form: ${q.fused} QLinearConv/QLinearMatMul, standard ONNX ops only`, write: saved(q.model),
    });
  }
  if (backend.lowerings.includes('integer-io')) {
    const { model: intModel, io } = toIntegerIO(model);
    forms.push({ kind: 'integer-io', suffix: '.int-io.onnx', description: 'integer inputs and outputs: the model the firmware runs', write: saved(intModel) });
    forms.push({
      kind: 'firmware-io', suffix: '.io.json', description: 'scale and zero point of each input and output, for the firmware',
      write: async (file) => {
        writeJsonAtomic(file, io);
        return fs.statSync(file).size;
      },
    });
  }
  return forms;
}
