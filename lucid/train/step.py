"""One optimisation step and the speed settings it runs with by default.

This file is the contract between ``lucid train`` and ``lucid bench --mode train``: both
run exactly :func:`train_step`, with the settings :func:`fast_defaults` picks for the
device, so a benchmark measures what training does.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..core.errors import LucidError
from ..inference.runtime import cpu_has_fast_bf16

__all__ = ["COMPILE_MIN_IMAGES", "NonFiniteLossError", "cpu_has_fast_bf16", "fast_defaults", "train_step"]


# torch.compile pays off once a run's saving outweighs its start-up. Measured on H100s (torch 2.11,
# ResNeXt-50 at 224 px, batch 256, bf16 autocast, channels-last): compiling and warming up took
# 36-47 s, after which a step took about 60 ms instead of 82 ms (0.086 ms saved per image), so it
# breaks even after 420,000-550,000 images; compiling from 1,000,000 images on leaves a margin.
COMPILE_MIN_IMAGES = 1_000_000


def fast_defaults(device: torch.device, images: int | None = None) -> dict[str, Any]:
    """Default speed settings for training on ``device``, for a run that processes ``images`` images.

    Returns ``{"channels_last": bool, "amp_dtype": torch.dtype | None, "compile": bool, "fused_optimizer": bool}``:

    * bf16 autocast where the hardware runs bf16 natively (CUDA with bf16, CPUs with AVX512-BF16/AMX);
    * channels-last memory format;
    * ``torch.compile`` on CUDA for runs of at least :data:`COMPILE_MIN_IMAGES` images per process
      (long enough to repay its start-up), never on CPU (minutes to compile on a small CPU) and never
      when ``images`` is unknown;
    * the fused SGD/AdamW kernels (``fused=True``).

    The performance guide has the measured effect of each.
    """
    device = torch.device(device)
    if device.type == "cuda":
        amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    elif device.type == "cpu":
        amp = torch.bfloat16 if cpu_has_fast_bf16() else None
    else:
        amp = None
    compile = device.type == "cuda" and images is not None and images >= COMPILE_MIN_IMAGES
    return {"channels_last": True, "amp_dtype": amp, "compile": compile, "fused_optimizer": device.type in ("cpu", "cuda")}


class NonFiniteLossError(LucidError, FloatingPointError):
    """The loss of a training step was NaN or infinite (the step was not applied)."""


def train_step(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    scaler: torch.amp.GradScaler | None = None,
    clip_grad: float | None = None,
    update: bool = True,
    accumulated: int = 1,
    check_finite: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward and backward on one batch, then (``update``) the optimizer step; returns the detached loss and logits.

    ``amp_dtype`` autocasts the forward pass (bf16 or fp16); ``scaler`` (a GradScaler, needed for
    fp16) scales the loss and skips steps with non-finite gradients; ``clip_grad`` clips the global
    gradient norm. For gradient accumulation, call it with ``update=False`` on all but the last of
    ``accumulated`` batches: each loss is divided by ``accumulated`` so the sum is their mean.
    ``check_finite`` raises :class:`NonFiniteLossError` before the backward pass when the loss is
    NaN or infinite (a device synchronisation), leaving the weights untouched. ``images`` and
    ``targets`` should already be on the model's device.
    """
    if channels_last and images.dim() == 4:
        images = images.contiguous(memory_format=torch.channels_last)
    with torch.autocast(images.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        logits = model(images)
        loss = loss_fn(logits.float(), targets)
    if check_finite and not bool(torch.isfinite(loss)):
        raise NonFiniteLossError(f"the training loss is {loss.item()}")
    scaled = loss / accumulated if accumulated > 1 else loss
    (scaler.scale(scaled) if scaler is not None else scaled).backward()
    if update:
        if clip_grad is not None:
            if scaler is not None:
                scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return loss.detach(), logits.detach()
