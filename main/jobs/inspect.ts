// What a model is, without quantizing it: inputs, outputs, opsets, op histogram, parameters.
import { inspectModel, type ModelInfo } from '../onnx/inspect';
import { loadModel } from '../onnx/model';

export function inspect(file: string): ModelInfo {
  return inspectModel(loadModel(file));
}
