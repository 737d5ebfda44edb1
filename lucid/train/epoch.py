"""One epoch of training: batches through :func:`~lucid.train.step.train_step`, the schedule, the EMA, running figures."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ..core.console import warn
from . import distributed, faults
from .recipe import Schedule
from .runtime import Runtime
from .sampler import EpochSampler
from .step import NonFiniteLossError, train_step

__all__ = ["EpochResult", "Job", "train_one_epoch", "warn"]


@dataclass
class Job:
    """What one epoch needs: the model and its training wrapper, the recipe's pieces, the data, the policy."""

    model: nn.Module
    net: nn.Module  # the model as trained: DDP- and/or compile-wrapped
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    loader: Any
    steps_per_epoch: int
    runtime: Runtime
    info: distributed.DistInfo
    epochs: int
    grad_accum: int = 1
    clip_grad: float | None = None
    skip_nonfinite: bool = False
    may_skip_batches: bool = False  # image folders can lose images to unreadable files
    scaler: torch.amp.GradScaler | None = None
    mix: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None
    ema: Any = None
    warned: set[str] = field(default_factory=set)

    def on_skip(self, paths: list[str]) -> None:
        """Warn once per unreadable file (rank 0 only)."""
        for p in paths:
            if p not in self.warned and self.info.is_main:
                self.warned.add(p)
                warn(f"skipping unreadable image {p}")


@dataclass
class EpochResult:
    """Figures of one training epoch, summed over all processes."""

    loss: float
    acc1: float
    images: int
    skipped_images: int
    skipped_steps: int
    nonfinite_steps: int
    lr: float
    seconds: float


def _step(job: Job, batch: Any, update: bool, sums: torch.Tensor) -> None:
    device = job.runtime.device
    images = batch.images.to(device, non_blocking=True)
    targets = batch.targets.to(device, non_blocking=True)
    labels = targets
    if job.mix is not None:
        images, targets = job.mix(images, targets)
    loss, logits = train_step(
        job.net, images, targets, job.optimizer, job.loss_fn,
        amp_dtype=job.runtime.amp_dtype, channels_last=job.runtime.channels_last, scaler=job.scaler,
        clip_grad=job.clip_grad, update=update, accumulated=job.grad_accum, check_finite=True,
    )
    n = labels.numel()
    sums[0] += loss.double() * n
    sums[1] += (logits.argmax(1) == labels).sum()
    sums[2] += n


def _start_epoch(job: Job, epoch: int, start: int) -> None:
    """Point the sampler at ``epoch``, ``start`` batches in (and log the plan when asked to)."""
    sampler = getattr(job.loader, "sampler", None)
    if isinstance(sampler, EpochSampler):
        batch = job.loader.batch_size
        sampler.set_epoch(epoch, start * batch)
        faults.log_samples(epoch, job.info.rank, start * batch, lambda: sampler.plan(epoch)[0][start * batch: job.steps_per_epoch * batch])
    elif hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def train_one_epoch(job: Job, epoch: int, start: int = 0, sums: torch.Tensor | None = None,
                    on_update: Callable[[int, torch.Tensor], None] | None = None) -> EpochResult:
    """Train ``job`` for one epoch (0-based ``epoch``); a non-finite loss stops it, or skips the step when allowed.

    A resumed epoch begins after its first ``start`` batches, with this process's running ``sums``
    over them. ``on_update(step, sums)`` runs after every optimizer step (``step`` counts batches).
    """
    begun = time.perf_counter()
    job.model.train()
    _start_epoch(job, epoch, start)
    progress = _Progress(job.info.is_main, job.steps_per_epoch, epoch + 1, job.epochs)
    # loss*n, correct, n, skipped images, skipped steps, non-finite
    sums = torch.zeros(6, dtype=torch.float64, device=job.runtime.device) if sums is None else sums.to(job.runtime.device)
    lr = job.optimizer.param_groups[0]["lr"]
    for index, batch in enumerate(job.loader):
        step = start + index + 1
        if batch.skipped:
            sums[3] += len(batch.skipped)
            job.on_skip(batch.skipped)
        update = step % job.grad_accum == 0 or step == job.steps_per_epoch
        lr = job.optimizer.param_groups[0]["lr"]
        # BatchNorm cannot train on a single image; unreadable files can leave fewer. Every rank skips together.
        n = batch.targets.numel()
        if job.may_skip_batches and distributed.all_min(n, job.info, job.runtime.device) < 2:
            sums[4] += 1
        else:
            _guarded_step(job, batch, update, sums, epoch, step, lr)
        if update:
            job.schedule.step()
            if job.ema is not None:
                job.ema.update_parameters(job.model)
            if on_update is not None:
                on_update(step, sums)
        if progress.wants(step):
            loss_sum, correct, count = sums[:3].tolist()
            elapsed = time.perf_counter() - begun
            done = max(step - start, 1)
            progress.update(step, loss_sum / max(count, 1), correct / max(count, 1), done * n * job.info.world_size / elapsed,
                            elapsed / done * (job.steps_per_epoch - step))
        progress.tick()
    progress.close()
    distributed.all_reduce_sum(sums, job.info)
    loss_sum, correct, count, skipped, skipped_steps, nonfinite = sums.tolist()
    return EpochResult(loss_sum / max(count, 1.0), correct / max(count, 1.0), int(count), int(skipped), int(skipped_steps),
                       int(nonfinite), lr, time.perf_counter() - begun)


def _guarded_step(job: Job, batch: Any, update: bool, sums: torch.Tensor, epoch: int, step: int, lr: float) -> None:
    """One training step; a non-finite loss stops the run, or (when allowed) skips the step and counts it."""
    try:
        _step(job, batch, update, sums)
    except NonFiniteLossError as e:
        if not job.skip_nonfinite:
            raise NonFiniteLossError(
                f"{e} at epoch {epoch + 1}, step {step} (lr {lr:.3g}); the weights of the last finished epoch are kept. "
                "Lower --lr, add --clip-grad, or pass --on-nonfinite skip to skip such steps"
            ) from None
        job.optimizer.zero_grad(set_to_none=True)
        sums[5] += 1


class _Progress:
    """A tqdm bar on a terminal; otherwise a plain log line every quarter epoch.

    Figures are read from the device (a synchronisation) only at the steps :meth:`wants`;
    the bar advances on every step through :meth:`tick`.
    """

    def __init__(self, enabled: bool, total: int, epoch: int, epochs: int):
        self.enabled, self.total, self.epoch, self.epochs = enabled, total, epoch, epochs
        self.bar = None
        if enabled and sys.stdout.isatty():
            self.bar = tqdm(total=total, desc=f"epoch {epoch}/{epochs}", unit="batch", file=sys.stdout, leave=False, dynamic_ncols=True)
        self.every = max(1, total // 50)
        self.marks = {max(1, round(total * q)) for q in (0.25, 0.5, 0.75)} - {total}

    def wants(self, step: int) -> bool:
        if not self.enabled:
            return False
        return step % self.every == 0 or step == self.total if self.bar is not None else step in self.marks

    def tick(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def update(self, step: int, loss: float, acc: float, rate: float, eta: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.3f}", img_s=f"{rate:.0f}", refresh=False)
        else:
            print(f"epoch {self.epoch}/{self.epochs} step {step}/{self.total} loss {loss:.4f} acc {acc:.3f} {rate:.0f} img/s eta {eta:.0f}s", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
