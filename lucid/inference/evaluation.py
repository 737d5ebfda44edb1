"""Evaluation of a model on a data loader: loss, top-1/top-5 accuracy and, on request, the confusion matrix.

The same loop serves ``lucid eval`` and the validation of a training run, whose processes sum
their totals through ``reduce``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..core.errors import DataError

if TYPE_CHECKING:
    from ..data.folder import Batch

__all__ = ["all_finite", "evaluate"]

Reduce = Callable[[torch.Tensor], None]  # sums a tensor in place over the processes of a run


def all_finite(model: nn.Module) -> bool:
    """Whether every parameter and floating-point buffer of ``model`` is finite."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    return all(bool(torch.isfinite(t).all()) for t in tensors)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Batch],
    device: torch.device,
    *,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    reduce: Reduce | None = None,
    on_skip: Callable[[list[str]], None] | None = None,
    confusion: bool = False,
) -> dict[str, Any]:
    """Loss, top-1 and top-5 accuracy of ``model`` on ``loader`` (summed over all processes of a run by ``reduce``).

    With ``confusion``, the result also holds ``"confusion"``: counts indexed [true class][predicted class].
    """
    was_training = model.training
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    totals = torch.zeros(5, dtype=torch.float64, device=device)  # loss, top1, top5, count, skipped
    matrix: torch.Tensor | None = None
    for batch in loader:
        if batch.skipped:
            totals[4] += len(batch.skipped)
            if on_skip:
                on_skip(batch.skipped)
        if batch.targets.numel() == 0:
            continue
        images = batch.images.to(device, non_blocking=True)
        targets = batch.targets.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            logits = model(images).float()
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hits = top.eq(targets[:, None])
        totals[0] += loss_fn(logits, targets).double()
        totals[1] += hits[:, 0].sum()
        totals[2] += hits.any(dim=1).sum()
        totals[3] += targets.numel()
        if confusion:
            n = logits.shape[1]
            counts = torch.bincount(targets * n + top[:, 0], minlength=n * n).view(n, n)
            matrix = counts if matrix is None else matrix + counts
    if reduce is not None:
        reduce(totals)
    model.train(was_training)
    loss, top1, top5, count, skipped = totals.tolist()
    if count == 0:
        raise DataError("no readable validation images: every validation image failed to decode")
    result: dict[str, Any] = {"loss": loss / count, "acc1": top1 / count, "acc5": top5 / count, "count": int(count), "skipped": int(skipped)}
    if confusion:
        result["confusion"] = matrix.cpu().tolist() if matrix is not None else []
    return result
