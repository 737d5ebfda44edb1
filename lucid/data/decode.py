"""Decoding images for the input pipeline, at no more than the size the crop needs.

A training crop of a 500x375 photo resized to 176 px rarely needs every pixel: when the crop is
at least twice the output size along both sides, libjpeg can decode the file at 1/2, 1/4 or 1/8
scale straight from its DCT coefficients (Pillow's ``Image.draft``), which skips most of the
decoding work. :class:`DecodeRandomResizedCrop` draws the crop box first, exactly as
``torchvision.transforms.v2.RandomResizedCrop`` does (same algorithm, same random stream), picks
the smallest scale at which the box still holds the output size, then crops and resizes in one
Pillow call. Non-JPEG files are decoded at full size.

A *source* is what a dataset stores for one image: a file path (``str``) or the encoded bytes.
"""
from __future__ import annotations

import io
import math
from typing import Any

import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from ..core.errors import DataError

__all__ = ["DecodeRandomResizedCrop", "decode_image_file", "draft_request", "open_image"]

Source = str | bytes

# What Pillow raises for a file that is not a readable image, besides OSError (the usual case).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def open_image(source: Source) -> Image.Image:
    """Open (not yet decode) an image from a path or from its encoded bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return Image.open(io.BytesIO(source))
    return Image.open(source)


def _mode(channels: int) -> str:
    return "L" if channels == 1 else "RGB"


def decode_image_file(path: Source, channels: int) -> torch.Tensor:
    """Decode an image (path or bytes) at full size to a ``uint8`` ``C x H x W`` tensor with 1 or 3 channels.

    Raises ``OSError`` or :class:`~lucid.core.errors.DataError` (a ``ValueError``) for data that is not a readable image.
    """
    try:
        with open_image(path) as image:
            return F.pil_to_tensor(image.convert(_mode(channels)))
    except (SyntaxError, Image.DecompressionBombError) as e:  # Pillow raises these for some malformed files
        raise DataError(f"{path if isinstance(path, str) else 'image bytes'}: {e}") from None


def draft_request(width: int, height: int, box_width: int, box_height: int, size: int) -> tuple[int, int]:
    """The smallest full-image size at which a ``box_width x box_height`` box still spans ``size`` px each way.

    ``Image.draft`` decodes at the largest DCT reduction (1/2, 1/4, 1/8) whose image is at least this size.
    """
    factor = max(size / box_width, size / box_height)
    return math.ceil(width * factor), math.ceil(height * factor)


def _crop_resize(image: Image.Image, box: tuple[int, int, int, int], size: int, channels: int, full: tuple[int, int]) -> torch.Tensor:
    """Draft-decode ``image`` for ``box`` (``top, left, h, w`` in full-size pixels), then crop and resize to ``size``."""
    top, left, h, w = box
    image.draft(_mode(channels), draft_request(full[0], full[1], w, h, size))
    sx, sy = image.size[0] / full[0], image.size[1] / full[1]
    if image.mode != _mode(channels):
        image = image.convert(_mode(channels))
    scaled = (left * sx, top * sy, (left + w) * sx, (top + h) * sy)
    return F.pil_to_tensor(image.resize((size, size), Image.Resampling.BILINEAR, box=scaled))


class DecodeRandomResizedCrop(v2.RandomResizedCrop):
    """``RandomResizedCrop`` that takes an encoded image (path or bytes) and decodes only what the crop needs.

    The crop box follows ``v2.RandomResizedCrop`` exactly; the output is a ``uint8`` ``C x size x size``
    tensor resized with antialiased bilinear filtering. Given a decoded image (tensor), it is plain
    ``v2.RandomResizedCrop``.
    """

    decodes_sources = True

    def __init__(self, size: int, channels: int, scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> None:
        super().__init__(size, scale=scale, ratio=ratio, antialias=True)
        self.channels = channels

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """A random ``(top, left, height, width)`` box for a ``width x height`` image, drawn as torchvision draws it."""
        params = self.make_params([torch.empty(0, height, width)])
        return params["top"], params["left"], params["height"], params["width"]

    def forward(self, *inputs: Any) -> Any:
        source = inputs[0] if len(inputs) == 1 else inputs
        if not isinstance(source, (str, bytes, bytearray, memoryview)):
            return super().forward(*inputs)
        with open_image(source) as image:
            full = image.size
            return _crop_resize(image, self.crop_box(*full), self.size[0], self.channels, full)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, decode=reduced-size"
