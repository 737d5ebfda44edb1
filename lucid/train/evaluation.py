"""Validation of a training run: :func:`lucid.inference.evaluation.evaluate`, summed over the run's processes."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..inference.evaluation import all_finite
from ..inference.evaluation import evaluate as evaluate_loader
from . import distributed

__all__ = ["all_finite", "evaluate"]


def evaluate(
    model: nn.Module,
    loader: Iterable[Any],
    device: torch.device,
    *,
    info: distributed.DistInfo | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Loss, top-1 and top-5 accuracy of ``model`` on ``loader``, summed over all processes of a DDP run.

    Other keyword arguments (``amp_dtype``, ``channels_last``, ``on_skip``, ``confusion``) are
    those of :func:`lucid.inference.evaluation.evaluate`.
    """
    info = info or distributed.DistInfo()
    return evaluate_loader(model, loader, device, reduce=lambda totals: distributed.all_reduce_sum(totals, info), **kwargs)
