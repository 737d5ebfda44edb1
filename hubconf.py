"""torch.hub entry points: every lucid preset, e.g.
``torch.hub.load("path/to/lucid", "resnext_50_32x4d", source="local", num_classes=10)``.

The names and their arguments come from lucid's presets table (``lucid.models.PRESETS``).
"""
from lucid.models import ENTRY_POINTS as _ENTRY_POINTS

dependencies = ["torch", "torchvision", "safetensors"]

globals().update(_ENTRY_POINTS)
