"""Render the calibration images of the embedded Quant Studio sample.

Re-run (from the repo root; needs Python 3 with ``pip install pillow`` and the
DejaVu fonts in /usr/share/fonts/truetype/dejavu, Debian/Ubuntu package
``fonts-dejavu-core``):

    python3 resources/sample/make_sample.py            # writes calibration/ + labels.json
    python3 resources/sample/make_sample.py --check    # also runs cls.onnx on them
                                                       # (needs numpy + onnxruntime)

It writes 24 PNG files ``calibration/text_00.png`` .. ``text_23.png``: 192x48 RGB,
one printed text line each (near-black text on a white background, DejaVu
fonts, varied short words and numbers).  16 are upright (class 0) and 8 are
rotated by 180 degrees (class 1: every third image, i.e. indices 2, 5, 8, ...),
listed in ``labels.json`` as ``{"text_00.png": 0, ...}``.

The images already have PaddleOCR's cls input geometry (height 48, width 192,
aspect 4:1): text lines narrower than 192 px are left-aligned on white, wider
ones are squeezed horizontally to 192 px, as PaddleOCR does.  Hence resizing
to 48x192 ("stretch") is the identity, and PaddleOCR's own cls preprocessing
(resize to height 48 keeping aspect, width capped at 192, pad right) adds no
padding: both give exactly ``(x/255 - 0.5) / 0.5`` per RGB channel, NCHW.

Everything is seeded (random.Random(SEED)); output is deterministic for a
given Pillow/FreeType version.
"""
import json
import os
import random
import sys

from PIL import Image, ImageDraw, ImageFont

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "calibration")
FONT_DIR = "/usr/share/fonts/truetype/dejavu"
SEED = 20240517
N_IMAGES = 24
W, H = 192, 48

FONTS = [
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansCondensed.ttf",
    "DejaVuSerifCondensed.ttf",
    "DejaVuSansMono-Bold.ttf",
]

WORDS = [
    "Invoice", "Total", "Receipt", "Order", "Model", "Sample", "Station",
    "Coffee", "Market", "Studio", "Tensor", "Layer", "Ticket", "Amount",
    "Parking", "Room", "Exit", "Table", "Price", "Quantity", "Delivery",
    "Hello", "World", "Street", "Page", "Batch", "Weight", "Open",
]


def make_text(rng):
    kind = rng.randrange(5)
    w = rng.choice(WORDS)
    if kind == 0:
        return f"{w} {rng.randint(10, 9999)}"
    if kind == 1:
        return f"{w}: {rng.randint(1, 999)}.{rng.randint(0, 99):02d}"
    if kind == 2:
        return f"{rng.randint(2000, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if kind == 3:
        return f"{w} {rng.choice(WORDS).lower()}"
    return f"No. {rng.randint(100, 99999)}"


def render(text, font_file, size, ink, rng):
    font = ImageFont.truetype(os.path.join(FONT_DIR, font_file), size)
    left, top, right, bottom = font.getbbox(text)
    tw, th = right - left, bottom - top
    margin = rng.randint(3, 8)
    canvas_w = max(W, tw + 2 * margin)
    img = Image.new("RGB", (canvas_w, H), (255, 255, 255))
    y = (H - th) // 2 - top + rng.randint(-1, 1)
    ImageDraw.Draw(img).text((margin - left, y), text, font=font, fill=(ink, ink, ink))
    if canvas_w > W:  # squeeze long lines to 192 px, like PaddleOCR's width cap
        img = img.resize((W, H), Image.BICUBIC)
    return img


def main():
    rng = random.Random(SEED)
    os.makedirs(OUT_DIR, exist_ok=True)
    labels, info = {}, {}
    for i in range(N_IMAGES):
        text = make_text(rng)
        font_file = FONTS[i % len(FONTS)]
        size = rng.randint(24, 30)
        ink = rng.randint(0, 40)
        img = render(text, font_file, size, ink, rng)
        rotated = i % 3 == 2
        if rotated:
            img = img.transpose(Image.Transpose.ROTATE_180)
        name = f"text_{i:02d}.png"
        img.save(os.path.join(OUT_DIR, name), optimize=True)
        labels[name] = 1 if rotated else 0
        info[name] = (text, font_file, size)
    with open(os.path.join(HERE, "labels.json"), "w") as f:
        json.dump(labels, f, indent=2)
        f.write("\n")
    for name in sorted(info):
        text, font_file, size = info[name]
        print(f"{name}  class {labels[name]}  {font_file} {size}px  {text!r}")
    if "--check" in sys.argv:
        check(labels)


def check(labels):
    """Run cls.onnx on the images with both preprocessings and print accuracy."""
    import math

    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(os.path.join(HERE, "cls.onnx"),
                                providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name

    def stretch(img):  # sample.json: size [48,192], mean 0.5, std 0.5, RGB, NCHW
        a = np.asarray(img.convert("RGB").resize((W, H), Image.BILINEAR), np.float32)
        return ((a / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)

    def paddle(img):  # PaddleOCR ClsResizeImg / resize_norm_img (cls_image_shape 3,48,192)
        w, h = img.size
        rw = min(W, int(math.ceil(H * w / h)))
        a = np.asarray(img.convert("RGB").resize((rw, H), Image.BILINEAR), np.float32)
        a = ((a / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
        out = np.zeros((3, H, W), np.float32)
        out[:, :, :rw] = a
        return out

    names = sorted(labels)
    imgs = [Image.open(os.path.join(OUT_DIR, n)) for n in names]
    y = np.array([labels[n] for n in names])
    xs = np.stack([stretch(im) for im in imgs])
    xp = np.stack([paddle(im) for im in imgs])
    print("stretch == PaddleOCR preprocessing:", bool(np.array_equal(xs, xp)))
    prob = sess.run(None, {in_name: xs})[0]
    pred = prob.argmax(1)
    for n, p, t in zip(names, prob, y):
        print(f"  {n} label {t} pred {p.argmax()} p={p.max():.3f}{'' if p.argmax() == t else '  WRONG'}")
    print(f"accuracy {int((pred == y).sum())}/{len(y)} = {(pred == y).mean():.3f}"
          f" (upright {int((pred[y == 0] == 0).sum())}/{int((y == 0).sum())},"
          f" rotated {int((pred[y == 1] == 1).sum())}/{int((y == 1).sum())})")


if __name__ == "__main__":
    main()
