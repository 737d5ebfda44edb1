"""The training loop behind ``lucid train``: data, model, optimiser, schedule, checkpoints, resume, DDP.

Everything a run needs is in :class:`TrainConfig`; :func:`fit` runs it (in every process of a
distributed run) and returns a summary. The output folder is a ``save_pretrained`` folder of the
best model, plus ``metrics.jsonl`` (one line per epoch) and ``last.pt`` (the full training state,
rewritten atomically after every epoch, loadable with ``torch.load(weights_only=True)``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import torch
from torch import nn

from .._atomic import atomic_write, atomic_write_text
from . import distributed
from .data import DataError, Preprocessing, collate_skipping
from .step import fast_defaults, train_step

if TYPE_CHECKING:
    from .data import Batch

__all__ = ["TrainConfig", "fit", "load_state", "STATE_NAME", "METRICS_NAME", "evaluate", "resolve_device", "resolve_amp"]

STATE_NAME = "last.pt"
METRICS_NAME = "metrics.jsonl"
_STATE_FORMAT = "lucid-train-state/1"

# The specification's model for the bundled digits (applied unless --set says otherwise).
DIGITS_MODEL_DEFAULTS = {"in_channels": 1, "stem_type": "deep", "stem_width": 32}


@dataclass
class TrainConfig:
    """Every setting of a training run (saved in ``last.pt`` so that ``--resume`` repeats it exactly).

    ``data=None`` trains on scikit-learn's digits. ``channels_last``/``compile``/``fused_optimizer`` ``None`` and
    ``amp="auto"`` take :func:`lucid.train.step.fast_defaults` for the device (and, for ``compile``, the run's length). ``batch_size`` is
    per process. The defaults are the measured recipe for the digits run (see the README).
    """

    data: str | None = None
    val_split: float | None = None
    image_size: int | None = None
    model: str = "resnext_50_32x4d"
    overrides: dict[str, Any] = field(default_factory=dict)
    pretrained: str | bool | None = None
    epochs: int = 15
    batch_size: int = 64
    opt: str = "adamw"
    lr: float | None = None
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float | None = None
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    clip_grad: float | None = None
    amp: str = "auto"
    channels_last: bool | None = None
    compile: bool | None = None
    fused_optimizer: bool | None = None
    device: str = "auto"
    workers: int | None = None
    seed: int = 0
    out: str | None = None

    def validate(self) -> None:
        """Refuse settings that cannot work, naming the option."""
        checks = [
            (self.epochs >= 1, "--epochs", self.epochs, "a positive int"),
            (self.batch_size >= 1, "--batch-size", self.batch_size, "a positive int"),
            (self.opt in ("sgd", "adamw"), "--opt", self.opt, "'sgd' or 'adamw'"),
            (self.lr is None or self.lr > 0, "--lr", self.lr, "a positive number"),
            (self.weight_decay is None or self.weight_decay >= 0, "--weight-decay", self.weight_decay, "a number >= 0"),
            (self.warmup_epochs >= 0, "--warmup-epochs", self.warmup_epochs, "a number >= 0"),
            (0 <= self.label_smoothing < 1, "--label-smoothing", self.label_smoothing, "a number in [0, 1)"),
            (self.clip_grad is None or self.clip_grad > 0, "--clip-grad", self.clip_grad, "a positive number"),
            (self.amp in ("auto", "bf16", "fp16", "off"), "--amp", self.amp, "one of auto, bf16, fp16, off"),
            (self.workers is None or self.workers >= 0, "--workers", self.workers, "an int >= 0"),
            (self.image_size is None or self.image_size >= 8, "--image-size", self.image_size, "an int >= 8"),
            (self.val_split is None or 0 < self.val_split < 1, "--val-split", self.val_split, "a number between 0 and 1"),
        ]
        for ok, name, value, expected in checks:
            if not ok:
                raise ValueError(f"{name} must be {expected}, got {value!r}")

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimiser's default peak rate (SGD 0.1, AdamW 0.002)."""
        return self.lr if self.lr is not None else (0.1 if self.opt == "sgd" else 2e-3)

    @property
    def decay(self) -> float:
        """``weight_decay``, or the optimiser's default (SGD 5e-4, AdamW 0.05)."""
        return self.weight_decay if self.weight_decay is not None else (5e-4 if self.opt == "sgd" else 0.05)


# ----------------------------------------------------------------------------- choices


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when present, else CPU; anything else is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device: {name!r} is not a device (expected auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return device


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``--amp`` on ``device`` (``auto`` follows :func:`fast_defaults`)."""
    if amp == "off":
        return None
    if amp == "auto":
        return fast_defaults(device)["amp_dtype"]
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError(f"--amp fp16 needs a CUDA device (it uses a gradient scaler), got device {device}; use --amp bf16 or off")
        return torch.float16
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("--amp bf16: this GPU has no bf16 support; use --amp fp16")
    return torch.bfloat16


def _build_datasets(cfg: TrainConfig) -> tuple[Any, Any, list[str], Preprocessing, dict[str, Any], dict[str, Any]]:
    """Training/validation datasets, class names, preprocessing, model overrides and dataset description."""
    from .data import default_preprocessing, digits_splits, folder_splits

    overrides = dict(cfg.overrides)
    if cfg.data is None:
        overrides = {**DIGITS_MODEL_DEFAULTS, **overrides}
        if overrides["in_channels"] != 1:
            raise ValueError(f"--set in_channels: the digits are grey images (in_channels=1), got {overrides['in_channels']!r}")
        val_fraction = cfg.val_split if cfg.val_split is not None else 0.2
        train, val, classes, prep = digits_splits(cfg.image_size or 32, val_fraction, cfg.seed, augment=True)
        described = {"name": "digits", "val_fraction": val_fraction, "seed": cfg.seed}
    else:
        prep = default_preprocessing(cfg.image_size or 224, int(overrides.get("in_channels", 3)))
        train, val, classes = folder_splits(cfg.data, cfg.val_split, cfg.seed, prep)
        described = {"name": "folder", "path": str(Path(cfg.data).resolve())}
    given = overrides.get("num_classes")
    if given is not None and given != len(classes):
        raise ValueError(f"--set num_classes={given!r} disagrees with the {len(classes)} classes of the data")
    overrides["num_classes"] = len(classes)
    return train, val, classes, prep, overrides, described


def _build_model(cfg: TrainConfig, overrides: dict[str, Any], load_weights: bool) -> nn.Module:
    from ..models import create_model

    kwargs = dict(overrides)
    if load_weights and cfg.pretrained:
        if cfg.pretrained is True:
            kwargs["pretrained"] = True
        else:
            kwargs["weights"] = cfg.pretrained
    return create_model(cfg.model, **kwargs)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices and kernels only; none on norm parameters and biases (1-D tensors)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _build_optimizer(cfg: TrainConfig, model: nn.Module, fused: bool = False) -> torch.optim.Optimizer:
    """AdamW or SGD (Nesterov momentum) over :func:`_param_groups`; ``fused`` picks the single-kernel implementation."""
    groups = _param_groups(model, cfg.decay)
    kw = {"fused": True} if fused else {}
    if cfg.opt == "sgd":
        return torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0, **kw)
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, **kw)


def warmup_cosine(total_steps: int, warmup_steps: int):
    """LR factor per step: linear warm-up to 1 over ``warmup_steps``, then cosine decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


# ----------------------------------------------------------------------------- state files


def _rng_state() -> dict[str, Any]:
    """This process's RNG states as tensors and plain values (so ``weights_only`` loading accepts them)."""
    import numpy as np

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(cached)],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np

    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():  # the GPUs this machine has (a run may be resumed where there are fewer)
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))


def _atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``last.pt`` training state (``path`` is the file or its run folder) with ``weights_only=True``."""
    from ..errors import CheckpointError

    path = Path(path)
    file = path / STATE_NAME if path.is_dir() else path
    if not file.is_file():
        where = f"{path} has no {STATE_NAME}" if path.is_dir() else f"{path} does not exist"
        raise CheckpointError(f"--resume: {where}; expected a run folder written by lucid train (with {STATE_NAME})")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged pickle/zip
        raise CheckpointError(f"{file}: not a readable training state ({type(e).__name__}: {e})") from None
    if not isinstance(state, dict) or state.get("format") != _STATE_FORMAT:
        raise CheckpointError(f"{file}: not a lucid training state (expected format {_STATE_FORMAT!r})")
    return state


def fresh_out_dir(model_name: str) -> Path:
    """A new ``runs/<model>-<date>-<time>[-n]`` path that does not exist yet."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{model_name}-{stamp}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def _write_metrics(out: Path, records: list[dict[str, Any]]) -> None:

    atomic_write_text(out / METRICS_NAME, "".join(json.dumps(r) + "\n" for r in records))


def _read_metrics(out: Path, upto_epoch: int) -> list[dict[str, Any]]:
    path = out / METRICS_NAME
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in records if r.get("epoch", 0) <= upto_epoch]


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[Batch],
    device: torch.device,
    *,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    info: distributed.DistInfo | None = None,
    on_skip: Callable[[list[str]], None] | None = None,
) -> dict[str, float]:
    """Loss, top-1 and top-5 accuracy of ``model`` on ``loader`` (summed over all processes of a DDP run)."""
    info = info or distributed.DistInfo()
    was_training = model.training
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    totals = torch.zeros(5, dtype=torch.float64, device=device)  # loss, top1, top5, count, skipped
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
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        hits = top.eq(targets[:, None])
        totals[0] += loss_fn(logits, targets).double()
        totals[1] += hits[:, 0].sum()
        totals[2] += hits.any(dim=1).sum()
        totals[3] += targets.numel()
    distributed.all_reduce_sum(totals, info)
    model.train(was_training)
    loss, top1, top5, count, skipped = totals.tolist()
    if count == 0:
        raise DataError("no readable validation images: every validation image failed to decode")
    return {"loss": loss / count, "acc1": top1 / count, "acc5": top5 / count, "count": int(count), "skipped": int(skipped)}


# ----------------------------------------------------------------------------- progress


class _Progress:
    """A tqdm bar on a terminal; otherwise a plain log line every quarter epoch.

    Figures are read from the device (a synchronisation) only at the steps :meth:`wants`;
    the bar advances on every step through :meth:`tick`.
    """

    def __init__(self, enabled: bool, total: int, epoch: int, epochs: int):
        self.enabled, self.total, self.epoch, self.epochs = enabled, total, epoch, epochs
        self.bar = None
        if enabled and sys.stdout.isatty():
            from tqdm import tqdm

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


# ----------------------------------------------------------------------------- the run


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def fit(cfg: TrainConfig, resume: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Train as ``cfg`` says (or continue the run in ``resume``); returns a summary dict.

    Run it in every process of a torchrun job: ranks join the process group from the environment,
    shard the data, reduce metrics, and only rank 0 writes files or prints.
    """
    state = None
    if resume is not None:
        state = load_state(resume)
        cfg = TrainConfig(**state["config"])
        cfg.out = str(Path(resume) if Path(resume).is_dir() else Path(resume).parent)
    cfg.validate()
    device = resolve_device(cfg.device)
    info = distributed.setup(device.type)
    try:
        summary = _fit(cfg, device, info, state)
        # No rank may close its connections while another still finishes (gloo aborts on a closed peer).
        distributed.barrier(info)
        return summary
    finally:
        distributed.cleanup(info)


def _fit(cfg: TrainConfig, device: torch.device, info: distributed.DistInfo, state: dict[str, Any] | None) -> dict[str, Any]:
    from torch.utils.data import DataLoader, DistributedSampler, Subset

    wall_start = time.perf_counter()
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    defaults = fast_defaults(device)
    amp_dtype = resolve_amp(cfg.amp, device)
    channels_last = defaults["channels_last"] if cfg.channels_last is None else cfg.channels_last

    # The model is initialised from the seed; every rank then offsets its RNG for its own augmentation.
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    train_set, val_set, classes, prep, overrides, described = _build_datasets(cfg)
    model = _build_model(cfg, overrides, load_weights=state is None)
    torch.manual_seed(cfg.seed + info.rank)
    random.seed(cfg.seed + info.rank)
    if len(train_set) < info.world_size:
        raise DataError(f"--data: {len(train_set)} training images cannot be shared by {info.world_size} processes")

    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    fused = defaults["fused_optimizer"] if cfg.fused_optimizer is None else cfg.fused_optimizer
    optimizer = _build_optimizer(cfg, model, fused=fused)
    sampler = DistributedSampler(train_set, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.seed)
    per_rank = len(sampler)
    # Drop the ragged last batch: equal steps on every rank, and never a lone sample (BatchNorm at 1x1 fails).
    drop_last = per_rank > cfg.batch_size
    steps_per_epoch = per_rank // cfg.batch_size if drop_last else 1
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = min(total_steps, round(cfg.warmup_epochs * steps_per_epoch))
    if cfg.compile is None:
        use_compile = fast_defaults(device, images=total_steps * cfg.batch_size)["compile"]
    else:
        use_compile = cfg.compile
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, warmup_steps))
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    workers = cfg.workers if cfg.workers is not None else (0 if cfg.data is None else min(4, max(1, (os.cpu_count() or 1) // info.local_world_size)))
    loader_kw = {"num_workers": workers, "collate_fn": collate_skipping, "pin_memory": device.type == "cuda", "persistent_workers": workers > 0}
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, drop_last=drop_last, **loader_kw)
    val_shard = Subset(val_set, range(info.rank, len(val_set), info.world_size))
    val_loader = DataLoader(val_shard, batch_size=cfg.batch_size * 2, shuffle=False, **loader_kw)

    start_epoch, best_acc1, best_epoch, records = 0, -1.0, 0, []
    if cfg.out is None:
        cfg.out = distributed.broadcast_object(str(fresh_out_dir(cfg.model)) if info.is_main else None, info)
    out = Path(cfg.out)
    if state is not None:
        from ..io import load_into

        load_into(model, state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, best_acc1, best_epoch = state["epoch"], state["best_acc1"], state["best_epoch"]
        rng = state["rng"]
        if len(rng) == info.world_size:
            _set_rng_state(rng[info.rank])
        elif info.is_main:
            warn(f"the state was saved by {len(rng)} processes and is resumed by {info.world_size}: data order and augmentation will differ")
        records = _read_metrics(out, start_epoch) if info.is_main else []
    elif distributed.broadcast_object(info.is_main and (out / STATE_NAME).exists(), info):
        raise ValueError(f"--out {out} already holds a training run; continue it with --resume {out} or choose another --out")

    train_net: nn.Module = model
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        train_net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if use_compile:
        train_net = torch.compile(train_net)

    metadata = {"class_names": classes, "preprocessing": prep.to_dict(), "dataset": described}
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        n_params = sum(p.numel() for p in model.parameters())
        print(
            f"lucid train: {cfg.model} ({n_params / 1e6:.2f}M params, {len(classes)} classes) on "
            f"{'digits' if cfg.data is None else cfg.data}: {len(train_set)} train / {len(val_set)} val images; "
            f"device {device} x{info.world_size}, amp {str(amp_dtype).replace('torch.', '') if amp_dtype else 'off'}, "
            f"channels_last {channels_last}, compile {use_compile}; {cfg.epochs} epochs of {steps_per_epoch} steps, "
            f"batch {cfg.batch_size}{' per process' if info.enabled else ''}; writing {out}",
            flush=True,
        )

    # The logits of each training forward pass, for the running accuracy (train_step returns only the loss).
    logits_seen: list[torch.Tensor] = [torch.empty(0)]
    model.register_forward_hook(lambda module, inputs, output: logits_seen.__setitem__(0, output.detach()))
    warned: set[str] = set()

    def on_skip(paths: list[str]) -> None:
        for p in paths:
            if p not in warned:
                warned.add(p)
                warn(f"skipping unreadable image {p}")

    def save_state(epoch: int) -> None:
        rng_all = distributed.gather_objects(_rng_state(), info)
        if not info.is_main:
            return
        _atomic_torch_save(
            {
                "format": _STATE_FORMAT,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "rng": rng_all,
                "config": dataclasses.asdict(cfg),
                "model_config": model.config.to_dict(),
                "metadata": metadata,
                "best_acc1": best_acc1,
                "best_epoch": best_epoch,
            },
            out / STATE_NAME,
        )

    if state is None:
        save_state(0)  # so that an interruption during the first epoch can be resumed too
    elif start_epoch >= cfg.epochs and info.is_main:
        print(f"lucid train: {out} already finished its {cfg.epochs} epochs", flush=True)

    skipped_total = 0
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, cfg.epochs):
            epoch_start = time.perf_counter()
            sampler.set_epoch(epoch)
            model.train()
            progress = _Progress(info.is_main, steps_per_epoch, epoch + 1, cfg.epochs)
            sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss*n, correct, n, skipped
            seen, last_lr = 0, optimizer.param_groups[0]["lr"]
            for step, batch in enumerate(train_loader, start=1):
                if batch.skipped:
                    sums[3] += len(batch.skipped)
                    on_skip(batch.skipped)
                n = batch.targets.numel()
                last_lr = optimizer.param_groups[0]["lr"]
                # Only image folders can lose a whole batch to unreadable files; then every rank skips the step
                # together (an all-reduce that waits for the GPU, so digits runs, which never skip, leave it out).
                if cfg.data is not None and distributed.all_min(n, info, device) == 0:
                    scheduler.step()
                    continue
                images = batch.images.to(device, non_blocking=True)
                targets = batch.targets.to(device, non_blocking=True)
                loss = train_step(
                    train_net, images, targets, optimizer, loss_fn,
                    amp_dtype=amp_dtype, channels_last=channels_last, scaler=scaler, clip_grad=cfg.clip_grad,
                )
                scheduler.step()
                sums[0] += loss.double() * n
                sums[1] += (logits_seen[0].argmax(1) == targets).sum()
                sums[2] += n
                seen += n
                if progress.wants(step):
                    elapsed = time.perf_counter() - epoch_start
                    loss_sum, correct, count, _ = sums.tolist()
                    progress.update(step, loss_sum / count, correct / count, seen * info.world_size / elapsed, elapsed / step * (steps_per_epoch - step))
                progress.tick()
            progress.close()
            train_seconds = time.perf_counter() - epoch_start
            distributed.all_reduce_sum(sums, info)
            train_loss, train_correct, train_count, train_skipped = sums.tolist()
            distributed.sync_buffers(model, info)
            val = evaluate(model, val_loader, device, amp_dtype=amp_dtype, channels_last=channels_last, info=info, on_skip=on_skip)
            skipped_total += int(train_skipped) + val["skipped"]
            epoch_seconds = time.perf_counter() - epoch_start
            is_best = val["acc1"] > best_acc1
            if is_best:
                best_acc1, best_epoch = val["acc1"], epoch + 1
            record = {
                "epoch": epoch + 1,
                "train_loss": train_loss / max(1.0, train_count),
                "train_acc1": train_correct / max(1.0, train_count),
                "val_loss": val["loss"],
                "val_acc1": val["acc1"],
                "val_acc5": val["acc5"],
                "lr": last_lr,
                "epoch_seconds": round(epoch_seconds, 3),
                "images_per_second": round(train_count / train_seconds, 1),
                "skipped_images": int(train_skipped) + val["skipped"],
            }
            if info.is_main:
                records.append(record)
                if is_best:
                    model.save_pretrained(out, metadata=metadata)
                _write_metrics(out, records)
                print(
                    f"epoch {epoch + 1}/{cfg.epochs}: train_loss {record['train_loss']:.4f} val_loss {val['loss']:.4f} "
                    f"val_acc1 {val['acc1']:.4f} val_acc5 {val['acc5']:.4f} lr {record['lr']:.4g} "
                    f"{record['images_per_second']:.0f} img/s {epoch_seconds:.1f}s{' *' if is_best else ''}",
                    flush=True,
                )
            save_state(epoch + 1)
    except KeyboardInterrupt:
        if info.is_main:
            print(
                f"\nlucid train: interrupted during epoch {epoch + 1}; the state after epoch {epoch} is in {out / STATE_NAME}. "
                f"Continue with: lucid train --resume {out}",
                file=sys.stderr, flush=True,
            )
        raise
    wall = time.perf_counter() - wall_start
    summary = {
        "out": str(out),
        "best_val_acc1": best_acc1,
        "best_epoch": best_epoch,
        "epochs": cfg.epochs,
        "wall_seconds": round(wall, 1),
        "skipped_images": skipped_total,
        "last": records[-1] if records else None,
    }
    if info.is_main:
        if skipped_total:
            warn(f"{skipped_total} unreadable image(s) were skipped")
        print(f"lucid train: best val_acc1 {best_acc1:.4f} at epoch {best_epoch}; {wall:.1f}s; model saved in {out}", flush=True)
    return summary
