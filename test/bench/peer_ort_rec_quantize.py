"""The peer's whole static flow: ONNX Runtime's Python quantizer makes the int8 model we compare against.

  python3 peer_ort_rec_quantize.py MODEL IMAGES_DIR OUT.onnx METHOD   (METHOD: minmax | entropy | percentile)

QDQ format, uint8 activations, int8 per-channel weights (quantize_static's documented defaults plus
per_channel=True), calibrated on every PNG in IMAGES_DIR, preprocessed like the recognizer expects
(RGB / 255, mean 0.5, std 0.5). Prints one JSON line: seconds and peak RSS in bytes.
"""
import json, os, resource, sys, time
import numpy as np
from PIL import Image
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

model, folder, out, method = sys.argv[1:5]
files = sorted(f for f in os.listdir(folder) if f.endswith(".png"))


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
quantize_static(model, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, calibrate_method=methods[method],
                extra_options={"CalibPercentile": 99.999} if method == "percentile" else {})
print(json.dumps({"seconds": time.perf_counter() - start, "peakBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
