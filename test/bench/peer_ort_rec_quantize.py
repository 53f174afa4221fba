"""The peer's whole static flow: ONNX Runtime's Python quantizer makes the int8 model we compare against.

  python3 peer_ort_rec_quantize.py MODEL IMAGES_DIR OUT.onnx METHOD   (METHOD: minmax | entropy | percentile)

QDQ format, uint8 activations, int8 per-channel weights (quantize_static's documented defaults plus
per_channel=True), calibrated on every PNG in IMAGES_DIR, preprocessed like the recognizer expects
(RGB / 255, mean 0.5, std 0.5). Prints one JSON line: seconds and peak RSS in bytes.
"""
import json, resource, sys, time
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from peer_lines import METHODS, LinesReader

model, folder, out, method = sys.argv[1:5]
start = time.perf_counter()
quantize_static(model, out, LinesReader(folder), quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, calibrate_method=METHODS[method],
                extra_options={"CalibPercentile": 99.999} if method == "percentile" else {})
print(json.dumps({"seconds": time.perf_counter() - start, "peakBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
