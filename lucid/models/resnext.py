"""Older import path of ResNeXt: :class:`ResNeXtConfig` is in :mod:`lucid.models.configuration_resnet`,
:class:`ResNeXt` in :mod:`lucid.models.modeling_resnet`."""
from __future__ import annotations

from .configuration_resnet import ResNeXtConfig
from .modeling_resnet import ResNeXt

__all__ = ["ResNeXt", "ResNeXtConfig"]
