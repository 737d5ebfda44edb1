"""Constants shared across lucid's layers."""
from __future__ import annotations

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD"]

# Per-channel mean and standard deviation of ImageNet's RGB images (in [0, 1]), which every
# published ImageNet checkpoint of these architectures was trained to expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
