import { onnx } from './proto';

/**
 * ONNX Runtime's graph passes (its transformers, by the names `session.disable_specified_optimizers`
 * takes) that can change a graph only where one of these ops is in it: each walks every node of
 * the graph, once per step of its level, whether or not there is anything to fuse, and on the
 * engine's models of the PaddleOCR recognizer (1,360 to 3,043 nodes) each walk cost 6 to 19 ms.
 * The op each pass starts its match from, read in ONNX Runtime's optimizer sources and checked on
 * 1.30 (a helper's review: which passes a CPU session registers, which fire on small graphs). Op
 * types match in any domain, which can only keep a pass that could have gone. An empty list is a
 * pass that acts only for CUDA or DirectML, providers the engine never uses. Passes whose anchors
 * are too common to gain from (Conv for the layout passes) or that are cheap are not listed.
 */
const ANCHORS: Record<string, readonly string[]> = {
  GeluFusionL1: ['Erf'],
  GeluFusionL2: ['Erf'],
  FastGeluFusion: ['Tanh'],
  QuickGeluFusion: ['Sigmoid'],
  BiasGeluFusion: ['Gelu', 'FastGelu'],
  LayerNormFusionL1: ['ReduceMean'],
  LayerNormFusionL2: ['ReduceMean'],
  SimplifiedLayerNormFusion: ['Pow'],
  AttentionFusion: ['LayerNormalization'],
  EmbedLayerNormFusion: ['LayerNormalization'],
  SkipLayerNormFusion: ['LayerNormalization'],
  BiasSkipLayerNormFusion: ['SkipLayerNormalization'],
  MatMulAddFusion: ['MatMul'],
  GemmActivationFusion: ['Gemm'],
  MatMulScaleFusion: ['MatMul', 'FusedMatMul'],
  MatmulTransposeFusion: ['MatMul', 'FusedMatMul'],
  MatMulNBitsFusion: ['MatMulNBits'],
  MatMulIntegerToFloatFusion: ['MatMulInteger'],
  DynamicQuantizeMatMulFusion: ['DynamicQuantizeLinear'],
  ReshapeFusion: ['Reshape'],
  SliceConcatToSpaceToDepthFusion: ['Concat'],
  GatherToSliceFusion: ['Range'],
  GatherSliceToSplitFusion: ['Gather', 'Slice'],
  BiasDropoutFusion: [],
  BiasSoftmaxFusion: [],
  MatMulActivationFusion: [],
  GroupQueryAttentionFusion: [],
  GroupQueryAttentionPreNormFusion: ['GroupQueryAttention'],
  DoubleQDQPairsRemover: ['QuantizeLinear', 'DequantizeLinear'],
  QDQPropagationTransformer: ['QuantizeLinear', 'DequantizeLinear'],
  WeightBiasQuantization: ['QuantizeLinear', 'DequantizeLinear'],
  EnsureUniqueDQForNodeUnit: ['QuantizeLinear', 'DequantizeLinear'],
  WhereDummyDq: ['QuantizeLinear', 'DequantizeLinear'],
  QDQS8ToU8Transformer: ['QuantizeLinear', 'DequantizeLinear'],
  QDQSelectorActionTransformer: ['QuantizeLinear', 'DequantizeLinear'],
  QDQFinalCleanupTransformer: ['QuantizeLinear', 'DequantizeLinear'],
};

/**
 * Ops a pass makes from ops of the model: a pass anchored on one of them can fire when what it is
 * made of is there. QDQ selection makes MatMulNBits from a DequantizeLinear of 4-bit blocks;
 * MatMulAddFusion makes Reshape → Gemm → Reshape of a MatMul + Add on 3-D inputs, and the transpose
 * optimizer a Reshape of a Transpose that moves only dims of 1. ONNX Runtime also expands an op it
 * has no kernel for into its function body before the later passes: Mish into Softplus, Tanh and
 * Mul, Swish into Sigmoid and Mul, Gelu into Erf or Tanh.
 */
const MADE_FROM: Record<string, readonly string[]> = {
  Gelu: ['Erf'],
  FastGelu: ['Tanh'],
  Erf: ['Gelu'],
  Tanh: ['Mish', 'Gelu'],
  Sigmoid: ['Swish'],
  Reshape: ['MatMul', 'Transpose'],
  LayerNormalization: ['ReduceMean'],
  SkipLayerNormalization: ['LayerNormalization'],
  Gemm: ['MatMul'],
  FusedMatMul: ['MatMul'],
  MatMulNBits: ['DequantizeLinear'],
};

/** Every op type in the model: its graph, control-flow bodies and local functions. */
function opTypes(model: onnx.ModelProto): Set<string> {
  const ops = new Set<string>();
  const walk = (nodes: readonly onnx.INodeProto[]) => {
    for (const n of nodes) {
      ops.add(n.opType ?? '');
      for (const a of n.attribute ?? []) for (const g of [a.g, ...(a.graphs ?? [])]) if (g) walk(g.node ?? []);
    }
  };
  walk(model.graph?.node ?? []);
  for (const f of model.functions) walk(f.node);
  return ops;
}

/**
 * The passes in ANCHORS that cannot change `model`, as `disable_specified_optimizers` takes them
 * (semicolon-separated): switching them off leaves the optimized graph as it was and saves their
 * walks. Free-dimension overrides are the one pass the session options feed, not the graph.
 */
export function idlePasses(model: onnx.ModelProto, overridesFreeDims: boolean): string {
  // The ops there can be: the model's and, until nothing is added, those made from them.
  const ops = opTypes(model);
  for (let grew = true; grew;) {
    grew = false;
    for (const [made, from] of Object.entries(MADE_FROM)) {
      if (!ops.has(made) && from.some((op) => ops.has(op))) {
        ops.add(made);
        grew = true;
      }
    }
  }
  const idle = Object.entries(ANCHORS).filter(([, anchors]) => !anchors.some((op) => ops.has(op))).map(([name]) => name);
  if (!overridesFreeDims) idle.push('FreeDimensionOverrideTransformer');
  return idle.join(';');
}
