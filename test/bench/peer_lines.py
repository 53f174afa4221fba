"""What both peer scripts feed ONNX Runtime's Python quantizer: the rendered text lines of a folder,
preprocessed as the PaddleOCR recognizer expects (RGB / 255, mean 0.5, std 0.5)."""
import os
import numpy as np
from PIL import Image
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod

METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}


class LinesReader(CalibrationDataReader):
    def __init__(self, folder, limit=None):
        self.folder = folder
        self.files = iter(sorted(f for f in os.listdir(folder) if f.endswith(".png"))[:limit])

    def get_next(self):
        f = next(self.files, None)
        if f is None:
            return None
        a = np.asarray(Image.open(os.path.join(self.folder, f)).convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0
        return {"x": ((a - 0.5) / 0.5)[None]}
