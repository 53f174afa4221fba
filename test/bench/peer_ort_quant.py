"""The peer: ONNX Runtime's Python quantizer's calibration on the same model and data.

  python3 peer_ort_quant.py MODEL IMAGES_DIR N METHOD   (METHOD: minmax | entropy | percentile)
Prints one JSON line: seconds, peak RSS in bytes, and the range of the model's output tensor.
"""
import json, os, resource, sys, tempfile, time
import numpy as np
from PIL import Image
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
from onnxruntime.quantization.calibrate import create_calibrator

model, folder, n, method = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
files = sorted(f for f in os.listdir(folder) if f.endswith(".png"))[:n]


class Reader(CalibrationDataReader):
    def __init__(self):
        self.files = iter(files)

    def get_next(self):
        f = next(self.files, None)
        if f is None:
            return None
        a = np.asarray(Image.open(os.path.join(folder, f)).convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0
        return {"x": ((a - 0.5) / 0.5)[None]}


methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}
start = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    calibrator = create_calibrator(model, None, augmented_model_path=os.path.join(tmp, "augmented.onnx"), calibrate_method=methods[method],
                                   extra_options={"percentile": 99.999} if method == "percentile" else {})
    calibrator.collect_data(Reader())
    ranges = calibrator.compute_data()
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peakBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "tensors": len(ranges.data)}))
