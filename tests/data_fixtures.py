"""Small image folders and JPEGs for the data tests."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["ant", "bee", "cat"]


def make_folder(root: Path, per_class: int = 6, size: tuple[int, int] = (40, 32)) -> Path:
    """``root/<class>/<i>.jpg|png`` for the classes in ``CLASSES``, noisy pixels that differ per class."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = (rng.random((size[1], size[0], 3)) * 90 + 50 * c).astype("uint8")
            Image.fromarray(pixels).save(root / name / f"{i}.{'jpg' if i % 2 else 'png'}", quality=95)
    return root


def photo(width: int = 500, height: int = 375, seed: int = 0) -> bytes:
    """A JPEG with smooth gradients and noise (quality 90), like a natural photo to the codec."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 200, y / height * 200, (x + y) / (width + height) * 255], axis=-1)
    pixels = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
