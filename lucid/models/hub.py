"""Older import path of :mod:`lucid.models.saving` (save_pretrained, push_to_hub, model cards) and
:mod:`lucid.models.auto` (from_pretrained, model_from_config)."""
from __future__ import annotations

from .auto import MAX_BLOCKS, MAX_PARAMETERS, from_pretrained, model_from_config
from .saving import (
    CARD_INPUT,
    CONFIG_NAME,
    FOLDER_KEYS,
    MODEL_CARD_NAME,
    WEIGHTS_NAME,
    PretrainedMixin,
    config_from_dict,
    model_card,
)

__all__ = [
    "CARD_INPUT",
    "CONFIG_NAME",
    "FOLDER_KEYS",
    "MAX_BLOCKS",
    "MAX_PARAMETERS",
    "MODEL_CARD_NAME",
    "WEIGHTS_NAME",
    "PretrainedMixin",
    "config_from_dict",
    "from_pretrained",
    "model_card",
    "model_from_config",
]
