"""The pieces of a training recipe: optimizer, learning-rate schedule, loss, batch mixing and the EMA of the weights.

Each is built from the :class:`~lucid.train.config.TrainConfig` by one function, using the
libraries' own implementations (``torch.optim``, ``torchvision.transforms.v2`` MixUp/CutMix,
``torch.optim.swa_utils`` for the weight average).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchvision.transforms import v2

from .config import TrainConfig

__all__ = ["Schedule", "build_batch_mix", "build_ema", "build_loss", "build_optimizer", "param_groups", "progressive_sizes", "warmup_cosine",
           "warmup_step"]

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices and kernels only; none on norm parameters and biases (1-D tensors)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(cfg: TrainConfig, model: nn.Module, fused: bool = False) -> torch.optim.Optimizer:
    """AdamW or SGD (Nesterov momentum) over :func:`param_groups`; ``fused`` picks the single-kernel implementation."""
    groups = param_groups(model, cfg.decay)
    kw = {"fused": True} if fused else {}
    if cfg.opt == "sgd":
        return torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0, **kw)
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, **kw)


def warmup_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LR factor per step: linear warm-up to 1 over ``warmup_steps``, then cosine decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def warmup_step(total_steps: int, warmup_steps: int, milestones: tuple[float, ...] = (0.5, 0.75)) -> Callable[[int], float]:
    """LR factor per step: linear warm-up, then x0.1 at each milestone (a fraction of ``total_steps``)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return 0.1 ** sum(step >= m * total_steps for m in milestones)

    return factor


def progressive_sizes(first: int, last: int, epochs: int, multiple: int = 16) -> list[int]:
    """The training image size of each epoch for progressive resizing (as FFCV's and MosaicML's ImageNet recipes).

    Exactly ``first`` px in the first epoch and ``last`` px in the last; in between linear, rounded to
    a multiple of ``multiple`` px and kept within [``first``, ``last``]. Small images early make the
    early epochs cheap; the last epochs train at the full size the model is evaluated near.
    """
    sizes = []
    for epoch in range(epochs - 1):
        size = round((first + (last - first) * epoch / (epochs - 1)) / multiple) * multiple
        sizes.append(first if epoch == 0 else min(last, max(first, size)))
    return [*sizes, last]


class Schedule:
    """The learning rate per optimizer step (warm-up, then cosine or step decay) or per epoch (plateau).

    ``plateau`` warms up per step, then divides the rate by 10 when ``val_acc1`` has not improved
    for two epochs (``torch.optim.lr_scheduler.ReduceLROnPlateau``).
    """

    def __init__(self, kind: str, optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int):
        self.kind, self.warmup_steps = kind, warmup_steps
        shape = {"cosine": warmup_cosine, "step": warmup_step}.get(kind)
        factor = shape(total_steps, warmup_steps) if shape else (lambda s: min(1.0, (s + 1) / warmup_steps) if warmup_steps else 1.0)
        self.per_step = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1, patience=1) if kind == "plateau" else None

    def step(self) -> None:
        """After each optimizer step."""
        if self.plateau is None or self.per_step.last_epoch < self.warmup_steps:
            self.per_step.step()

    def epoch_end(self, val_acc1: float) -> None:
        """After each epoch's validation."""
        if self.plateau is not None and self.per_step.last_epoch >= self.warmup_steps:
            self.plateau.step(val_acc1)

    def state_dict(self) -> dict[str, Any]:
        """Both schedulers' state, for ``last.pt``."""
        return {**self.per_step.state_dict(), "plateau": self.plateau.state_dict() if self.plateau else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        state = dict(state)
        plateau = state.pop("plateau", None)
        self.per_step.load_state_dict(state)
        if self.plateau is not None and plateau:
            self.plateau.load_state_dict(plateau)


def build_loss(cfg: TrainConfig, num_classes: int) -> Loss:
    """Softmax cross-entropy, or (``bce_loss``) binary cross-entropy per class, both with label smoothing.

    Targets are class indices or, after MixUp/CutMix, per-class probabilities.
    """
    if not cfg.bce_loss:
        return nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    bce, smoothing = nn.BCEWithLogitsLoss(), cfg.label_smoothing

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.dim() == 1:
            targets = nn.functional.one_hot(targets, num_classes).to(logits.dtype)
        return bce(logits, targets * (1 - smoothing) + smoothing / num_classes)

    return loss


def build_batch_mix(cfg: TrainConfig, num_classes: int) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None:
    """torchvision's MixUp and/or CutMix on a batch (one of the two, picked at random, when both are on)."""
    mixes = []
    if cfg.mixup > 0:
        mixes.append(v2.MixUp(alpha=cfg.mixup, num_classes=num_classes))
    if cfg.cutmix > 0:
        mixes.append(v2.CutMix(alpha=cfg.cutmix, num_classes=num_classes))
    if not mixes:
        return None
    return mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)


def build_ema(cfg: TrainConfig, model: nn.Module) -> AveragedModel | None:
    """An exponential moving average of the weights, updated after every optimizer step.

    Only the parameters are averaged; the BatchNorm running statistics are the model's own,
    copied at each update. Averaging the statistics too left them behind the weights: on the
    digits run (9 epochs, decay 0.98) that EMA validated at 0.21, the same weights with the
    model's statistics at 0.96.
    """
    if not cfg.model_ema:
        return None
    class WeightEMA(AveragedModel):
        @torch.no_grad()
        def update_parameters(self, model: nn.Module) -> None:
            super().update_parameters(model)
            for own, current in zip(self.module.buffers(), model.buffers()):
                own.copy_(current)

    return WeightEMA(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.model_ema_decay), use_buffers=False)
