"""The peer: ONNX Runtime's Python quantizer's calibration on the same model and data.

  python3 peer_ort_quant.py MODEL IMAGES_DIR N METHOD   (METHOD: minmax | entropy | percentile)
Prints one JSON line: seconds, peak RSS in bytes, and the range of the model's output tensor.
"""
import json, os, resource, sys, tempfile, time
from onnxruntime.quantization.calibrate import create_calibrator
from peer_lines import METHODS, LinesReader

model, folder, n, method = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
start = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    calibrator = create_calibrator(model, None, augmented_model_path=os.path.join(tmp, "augmented.onnx"), calibrate_method=METHODS[method],
                                   extra_options={"percentile": 99.999} if method == "percentile" else {})
    calibrator.collect_data(LinesReader(folder, n))
    ranges = calibrator.compute_data()
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peakBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "tensors": len(ranges.data)}))
