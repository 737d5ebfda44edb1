"""The training run behind ``lucid train``: :func:`fit` puts the seams together.

The seams: :mod:`~lucid.train.config` (the settings), :mod:`~lucid.train.runtime` (the policy, decided
once), :mod:`~lucid.train.recipe` (optimizer, schedule, loss, mixing, EMA), :mod:`~lucid.train.epoch`
(one epoch), :mod:`~lucid.train.evaluation`, :mod:`~lucid.train.state` (``last.pt``) and
:mod:`~lucid.train.rundir` (the output folder). The output folder is a ``save_pretrained`` folder of
the best model plus ``metrics.jsonl`` and ``last.pt`` (the full training state, rewritten atomically
after every epoch and every ``save_every`` optimizer steps, loadable with ``torch.load(weights_only=True)``).
A run resumed from a state saved mid-epoch continues at the next unseen batch
(:mod:`~lucid.train.sampler`), with every process's RNG states restored.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Subset

from ..checkpoints.io import load_file, load_into
from ..core.checks import is_int
from ..core.errors import CheckpointError, ConfigError, ConfigTypeError, LucidError
from ..data import (
    DataError,
    GpuBatchDecoder,
    Preprocessing,
    collate_skipping,
    default_preprocessing,
    describe_transform,
    digits_splits,
    eval_transform,
    gpu_decode_pipeline,
    loader_options,
    open_splits,
)
from ..data.split_record import split_record
from ..models import create_model
from ..models.limits import check_model_size
from . import distributed, faults, recipe
from .config import DIGITS_MODEL_DEFAULTS, FOLDER_MODEL_DEFAULTS, TrainConfig
from .epoch import EpochResult, Job, train_one_epoch, warn
from .evaluation import all_finite, evaluate
from .rundir import METRICS_NAME, RunFolder, fresh_out_dir, refuse_if_in_use
from .runtime import Runtime, resolve_amp, resolve_device, resolve_runtime
from .sampler import EpochSampler, SeededDataset, set_train_size
from .state import (
    STATE_NAME,
    check_state,
    config_from_state,
    load_state,
    rng_state,
    save_state,
    set_rng_state,
)
from .step import NonFiniteLossError

__all__ = ["AUTO", "METRICS_NAME", "STATE_NAME", "TrainConfig", "evaluate", "fit", "load_state", "resolve_amp", "resolve_device"]

AUTO = "auto"  # resume=AUTO: continue from OUT/last.pt when it exists, else start a new run


@dataclass
class Data:
    """The datasets of a run, with what the saved model needs to know about them."""

    train: Any
    val: Any
    classes: list[str]
    prep: Preprocessing
    overrides: dict[str, Any]  # the model's config overrides, num_classes included
    described: dict[str, Any]
    train_prep: Preprocessing  # the training image size (prep holds the evaluation size, which the model is saved with)

    @property
    def transforms(self) -> dict[str, list[str]]:
        """The training augmentation and the evaluation preprocessing, one line per step."""
        return {"train": describe_transform(self.train.transform), "eval": describe_transform(self.val.transform)}

    @property
    def metadata(self) -> dict[str, Any]:
        return {"class_names": self.classes, "preprocessing": self.prep.to_dict(), "dataset": self.described,
                "transforms": self.transforms}


@dataclass
class Progress:
    """Where the run stands: epochs done, the best validation accuracy so far, the metric records.

    ``step`` and ``sums`` say how far a resumed run had got into its next epoch: the batches done
    and this process's running sums over them.
    """

    epoch: int = 0
    best_acc1: float = -1.0
    best_epoch: int = 0
    ema_best_acc1: float = -1.0
    records: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    step: int = 0
    sums: torch.Tensor | None = None


def fit(cfg: TrainConfig, resume: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Train as ``cfg`` says (or continue the run in ``resume``); returns a summary dict.

    ``resume`` is a run folder (or its ``last.pt``), continued with its saved settings, or
    ``"auto"``: continue ``cfg.out``'s run when it holds a ``last.pt`` saved with the same settings,
    else start it, so that one command serves every restart (torchrun ``--max-restarts``, a requeue).
    Run it in every process of a torchrun job: ranks join the process group from the environment,
    shard the data, reduce metrics, and only rank 0 writes files or prints.
    """
    state, file = None, None
    if resume is not None and str(resume) != AUTO:
        state = load_state(resume)
        file = Path(resume) / STATE_NAME if Path(resume).is_dir() else Path(resume)
        cfg = config_from_state(state, file)
        cfg.out = str(file.parent)
    cfg.validate()
    if str(resume) == AUTO:
        _check_auto(cfg)
    info = distributed.setup(resolve_device(cfg.device).type)
    try:
        if str(resume) == AUTO:
            cfg, state = _auto_state(cfg, info)
            file = Path(cfg.out) / STATE_NAME
        summary = _fit(cfg, info, state, file)
        # No rank may close its connections while another still finishes (gloo aborts on a closed peer).
        distributed.barrier(info)
        return summary
    finally:
        distributed.cleanup(info)


def _check_auto(cfg: TrainConfig) -> None:
    if cfg.out is None:
        raise ConfigError("resume: --resume auto needs --out, the run folder to continue or start", "resume")
    if cfg.overwrite:
        raise ConfigError("resume: --resume auto continues the run in --out; it cannot be combined with --overwrite", "resume")


def _auto_state(cfg: TrainConfig, info: distributed.DistInfo) -> tuple[TrainConfig, dict[str, Any] | None]:
    """For ``--resume auto``: rank 0's reading of ``OUT/last.pt`` (or ``None``: a new run), shared with every rank."""
    file = Path(cfg.out) / STATE_NAME

    def read() -> dict[str, Any] | None:
        if not file.exists():
            return None
        state = load_state(file)
        _same_settings(cfg, config_from_state(state, file), file)
        return state

    state = _on_main(read, info, share=True)
    if state is None:
        return cfg, None
    saved = config_from_state(state, file)
    saved.out = cfg.out
    return saved, state


def _same_settings(given: TrainConfig, saved: TrainConfig, file: Path) -> None:
    """Refuse to continue a run whose saved settings differ from the command's."""
    for f in dataclasses.fields(TrainConfig):
        if f.name in ("out", "overwrite"):
            continue
        mine, theirs = getattr(given, f.name), getattr(saved, f.name)
        if f.name == "data" and mine is not None:
            mine = data_location(mine)
        if mine != theirs:
            raise ConfigError(f"resume: {file} was saved with {f.name}={theirs!r}, this command gives {mine!r}; "
                              "repeat the run's own command, or choose another --out", "resume")


def _on_main(fn: Any, info: distributed.DistInfo, share: bool = False) -> Any:
    """``fn()`` on rank 0 (its value shared with every rank if ``share``, else ``None`` elsewhere).

    An error it raises is raised on every rank, so that no rank goes on to wait for the others.
    """
    value, error = None, None
    if info.is_main:
        try:
            value = fn()
        except (LucidError, OSError) as e:
            error = e
    error = distributed.broadcast_object(error, info)
    if error is not None:
        raise error
    return distributed.broadcast_object(value, info) if share else value


def _fit(cfg: TrainConfig, info: distributed.DistInfo, state: dict[str, Any] | None, file: Path | None) -> dict[str, Any]:
    wall_start = time.perf_counter()
    if info.is_main and cfg.out is not None:
        refuse_if_in_use(cfg.out)  # before seconds of building data and model
    torch.manual_seed(cfg.seed)  # the model is initialised from the seed; each rank then offsets its RNG
    random.seed(cfg.seed)
    data = build_data(cfg, resumed=state is not None)
    model = build_model(cfg, data.overrides, load_weights=state is None)
    torch.manual_seed(cfg.seed + info.rank)
    random.seed(cfg.seed + info.rank)
    job = build_job(cfg, model, data, info)
    run = _open_run(cfg, info, resumed=state is not None)
    try:
        progress = _restore(job, state, run, file) if state is not None else Progress()
        if info.is_main:
            _announce(cfg, job, data, progress)
        if state is None:
            _save_state(job, cfg, data, progress, run)  # so that an interruption in the first epoch can be resumed too
        _run_epochs(cfg, job, data, progress, run)
    finally:
        if run is not None:
            run.close()
    return _finish(cfg, progress, time.perf_counter() - wall_start, info)


def _run_epochs(cfg: TrainConfig, job: Job, data: Data, progress: Progress, run: RunFolder | None) -> None:
    val_loader = _loader(data.val, cfg.batch_size * 2, job)
    writer = _tensorboard(cfg, run)
    epoch = progress.epoch
    try:
        for epoch in range(progress.epoch, cfg.epochs):
            start, sums = (progress.step, progress.sums) if epoch == progress.epoch else (0, None)
            after_update = functools.partial(_after_update, cfg, job, data, progress, run, epoch)
            result = train_one_epoch(job, epoch, start, sums, after_update)
            distributed.sync_buffers(job.model, job.info)
            record = _validate(job, val_loader, result, epoch)
            _end_epoch(cfg, job, data, progress, run, record, writer)
    except KeyboardInterrupt:
        if job.info.is_main:
            print(f"\nlucid train: interrupted during epoch {epoch + 1}; the state after epoch {epoch} is in {Path(cfg.out or '.') / STATE_NAME}. "
                  f"Continue with: lucid train --resume {cfg.out}", file=sys.stderr, flush=True)
        raise
    finally:
        if writer is not None:
            writer.close()


def _after_update(cfg: TrainConfig, job: Job, data: Data, progress: Progress, run: RunFolder | None, epoch: int,
                  step: int, sums: torch.Tensor) -> None:
    """After each optimizer step: save the state every ``save_every`` steps of the run (epoch ends save anyway)."""
    updates_per_epoch = -(-job.steps_per_epoch // job.grad_accum)
    update = epoch * updates_per_epoch + -(-step // job.grad_accum)
    if cfg.save_every and update % cfg.save_every == 0 and step < job.steps_per_epoch:
        _save_state(job, cfg, data, progress, run, step, sums)
    faults.maybe_kill(job.info.rank, update)


def _validate(job: Job, loader: Any, result: EpochResult, epoch: int) -> dict[str, Any]:
    """The epoch's metrics record: training figures, validation of the model (and of its EMA)."""
    started, rt = time.perf_counter(), job.runtime
    kw = {"amp_dtype": rt.amp_dtype, "channels_last": rt.channels_last, "info": job.info, "on_skip": job.on_skip}
    if not all_finite(job.model):
        raise NonFiniteLossError(f"the weights became NaN or infinite during epoch {epoch + 1}; the weights of the last finished epoch are kept. "
                                 "Lower --lr or add --clip-grad")
    val = evaluate(job.model, loader, rt.device, **kw)
    record = {
        "epoch": epoch + 1, "train_loss": result.loss, "train_acc1": result.acc1,
        "val_loss": val["loss"], "val_acc1": val["acc1"], "val_acc5": val["acc5"], "lr": result.lr,
        "epoch_seconds": round(result.seconds, 3), "images_per_second": round(result.images / max(result.seconds, 1e-9), 1),
        "skipped_images": result.skipped_images + val["skipped"], "skipped_steps": result.skipped_steps, "nonfinite_steps": result.nonfinite_steps,
    }
    if job.ema is not None:
        ema_val = evaluate(job.ema.module, loader, rt.device, **kw)
        record.update(ema_val_loss=ema_val["loss"], ema_val_acc1=ema_val["acc1"], ema_val_acc5=ema_val["acc5"])
    record["epoch_seconds"] = round(result.seconds + time.perf_counter() - started, 3)
    return record


def _end_epoch(cfg: TrainConfig, job: Job, data: Data, progress: Progress, run: RunFolder | None, record: dict[str, Any], writer: Any) -> None:
    """Keep the best model(s), append the metrics, save the state; print the epoch's line."""
    epoch = record["epoch"]
    is_best = math.isfinite(record["val_loss"]) and record["val_acc1"] > progress.best_acc1
    if is_best:
        progress.best_acc1, progress.best_epoch = record["val_acc1"], epoch
    ema_best = job.ema is not None and math.isfinite(record["ema_val_loss"]) and record["ema_val_acc1"] > progress.ema_best_acc1
    if ema_best:
        progress.ema_best_acc1 = record["ema_val_acc1"]
    job.schedule.epoch_end(record["val_acc1"])
    progress.epoch, progress.step, progress.sums = epoch, 0, None
    if run is not None:
        progress.records.append(record)
        if is_best:
            run.save_model(job.model, data.metadata)
        if ema_best:
            run.save_model(job.ema.module, data.metadata, sub="ema")
        if cfg.keep_checkpoints:
            run.save_checkpoint(job.model.state_dict(), epoch, cfg.keep_checkpoints)
        run.write_metrics(progress.records)
        if writer is not None:
            for key, value in record.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    writer.add_scalar(key, value, epoch)
        ema = f" ema_val_acc1 {record['ema_val_acc1']:.4f}" if job.ema is not None else ""
        acc5 = f" val_acc5 {record['val_acc5']:.4f}" if len(data.classes) > 5 else ""  # always 1.0 with 5 classes or fewer
        print(f"epoch {epoch}/{cfg.epochs}: train_loss {record['train_loss']:.4f} val_loss {record['val_loss']:.4f} "
              f"val_acc1 {record['val_acc1']:.4f}{acc5}{ema} lr {record['lr']:.4g} "
              f"{record['images_per_second']:.0f} img/s {record['epoch_seconds']:.1f}s{' *' if is_best else ''}", flush=True)
    _save_state(job, cfg, data, progress, run)


# ----------------------------------------------------------------------------- building the run


def build_data(cfg: TrainConfig, resumed: bool = False) -> Data:
    """Training/validation datasets, class names, preprocessing and the model's config overrides."""
    overrides = dict(cfg.overrides)
    if cfg.drop_path:
        overrides["block_args"] = {**dict(overrides.get("block_args") or {}), "drop_path": cfg.drop_path}
    data = _digits_data(cfg, overrides) if cfg.data is None else _source_data(cfg, overrides, resumed)
    given = data.overrides.get("num_classes")
    if given is not None and not is_int(given):
        raise ConfigTypeError(f"num_classes must be an int, got {given!r}", "num_classes")
    if given is not None and given != len(data.classes):
        raise ConfigError(f"num_classes={given} disagrees with the {len(data.classes)} classes of the data (leave it out to follow the data)", "num_classes")
    data.overrides["num_classes"] = len(data.classes)
    return data


def _digits_data(cfg: TrainConfig, overrides: dict[str, Any]) -> Data:
    """The bundled digits, split by ``val_split`` (default 0.2) and the seed."""
    for name in ("eval_size", "progressive_resize"):
        if getattr(cfg, name) is not None:
            raise ConfigError(f"{name} needs --data; the bundled digits come at one size (--image-size)", name)
    overrides = {**DIGITS_MODEL_DEFAULTS, **overrides}
    if overrides["in_channels"] != 1:
        raise ConfigError(f"overrides in_channels: the digits are grey images (in_channels=1), got {overrides['in_channels']!r}", "in_channels")
    val_fraction = cfg.val_split if cfg.val_split is not None else 0.2
    train, val, classes, prep = digits_splits(cfg.image_size or 32, val_fraction, cfg.seed, augment=True,
                                              auto_augment=cfg.auto_augment, random_erase=cfg.random_erase)
    described = {"name": "digits", "val_fraction": val_fraction, "seed": cfg.seed}
    return Data(train, val, classes, prep, overrides, described, prep)


def _source_data(cfg: TrainConfig, overrides: dict[str, Any], resumed: bool) -> Data:
    """``--data`` in any format lucid.data reads (image folder, WebDataset shards, Hugging Face dataset)."""
    if resumed and not data_present(cfg.data):
        error = DataError(f"resume: the run's data {cfg.data} is no longer there; put it back to continue the run")
        error.field = "resume"  # type: ignore[attr-defined]
        raise error
    if not cfg.pretrained:
        overrides = {**FOLDER_MODEL_DEFAULTS, **overrides}
    channels = overrides.get("in_channels", 3)
    if not is_int(channels):
        raise ConfigTypeError(f"in_channels must be an int, got {channels!r}", "in_channels")
    train_size = cfg.resize_range()[1] if cfg.progressive_resize else cfg.image_size or 224
    train_prep = default_preprocessing(train_size, channels)
    options = source_options(cfg)
    splits = open_splits(cfg.data, cfg.val_split, cfg.seed, train_prep, auto_augment=cfg.auto_augment, random_erase=cfg.random_erase, **options)
    prep = train_prep
    if cfg.eval_size is not None:  # evaluation (and the saved model's input size) at its own size
        prep = dataclasses.replace(prep, image_size=cfg.eval_size)
        splits.val.transform = eval_transform(prep)
    described = {**splits.description, **{key: value for key, value in options.items() if value is not None}}
    if described["name"] == "folder":  # lets `lucid eval` rebuild the split and never score training images
        described["split"] = split_record(cfg.data, cfg.val_split, cfg.seed, splits.val.samples)
    return Data(splits.train, splits.val, splits.classes, prep, overrides, described, train_prep)


def source_options(cfg: TrainConfig) -> dict[str, str | None]:
    """How to read a Hugging Face dataset (its split and columns); other formats ignore them."""
    return {"split": cfg.data_split, "image_column": cfg.image_column, "label_column": cfg.label_column}


def data_location(spec: str) -> str:
    """``--data`` as a run records it: a path made absolute (so that a resume from another folder finds it); ``hf:`` ids as given."""
    return spec if spec.startswith("hf:") else str(Path(spec).resolve())


def data_present(spec: str) -> bool:
    """Whether a run's ``--data`` is still there: the path, or the folder of a brace pattern (``hf:`` ids are looked up when opened)."""
    if spec.startswith("hf:"):
        return True
    return (Path(spec.partition("{")[0]).parent if "{" in spec else Path(spec)).exists()


def build_model(cfg: TrainConfig, overrides: dict[str, Any], load_weights: bool) -> nn.Module:
    """The preset with its overrides (and, for a new run, the requested pretrained weights)."""
    check_model_size(lambda: create_model(cfg.model, **overrides), f"{cfg.model} with its config overrides")
    kwargs = dict(overrides)
    if load_weights and cfg.pretrained:
        kwargs["pretrained" if cfg.pretrained is True else "weights"] = cfg.pretrained
    return create_model(cfg.model, **kwargs)


def build_job(cfg: TrainConfig, model: nn.Module, data: Data, info: distributed.DistInfo) -> Job:
    """Policy, optimizer, schedule, loss, mixing, EMA and the training loader around ``model``."""
    if len(data.train) < 2 * info.world_size:
        raise DataError(f"--data: {len(data.train)} training image(s) are too few for {info.world_size} process(es) (at least 2 each)")
    sizes = recipe.progressive_sizes(*cfg.resize_range(), cfg.epochs) if cfg.progressive_resize else None
    if sizes:
        set_train_size(data.train, sizes[0])  # refused here, before training, if the data cannot be resized
    sampler = EpochSampler(len(data.train), info.world_size, info.rank, cfg.seed, cfg.repeated_aug, sizes)
    # Drop the ragged last batch: equal steps on every rank, and never a lone sample (BatchNorm cannot train on one).
    drop_last = len(sampler) > cfg.batch_size
    steps = len(sampler) // cfg.batch_size if drop_last else 1
    runtime = resolve_runtime(cfg, info, images=steps * cfg.batch_size * cfg.epochs)
    model.to(runtime.device)
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = recipe.build_optimizer(cfg, model, fused=runtime.fused_optimizer)
    updates = -(-steps // cfg.grad_accum) * cfg.epochs
    schedule = recipe.Schedule(cfg.sched, optimizer, updates, min(updates, round(cfg.warmup_epochs * updates / cfg.epochs)))
    net = _wrap(model, runtime, info)
    job = Job(model=model, net=net, optimizer=optimizer, schedule=schedule, loss_fn=recipe.build_loss(cfg, len(data.classes)),
              loader=None, steps_per_epoch=steps, runtime=runtime, info=info, epochs=cfg.epochs, grad_accum=cfg.grad_accum,
              clip_grad=cfg.clip_grad, skip_nonfinite=cfg.on_nonfinite == "skip", may_skip_batches=cfg.data is not None,
              scaler=torch.amp.GradScaler(runtime.device.type) if runtime.amp_dtype == torch.float16 else None,
              mix=recipe.build_batch_mix(cfg, len(data.classes)), ema=recipe.build_ema(cfg, model))
    job.loader = _train_loader(cfg, data, job, sampler, drop_last)
    return job


def _train_loader(cfg: TrainConfig, data: Data, job: Job, sampler: EpochSampler, drop_last: bool) -> Any:
    """The training loader; with ``decode="gpu"`` its workers pass encoded crops on and the batch is decoded on the device."""
    if cfg.decode != "gpu":
        return _loader(SeededDataset(data.train), cfg.batch_size, job, sampler=sampler, drop_last=drop_last)
    data.train.transform, collate, decoder = gpu_decode_pipeline(data.train_prep, job.runtime.device)
    loader = _loader(SeededDataset(data.train), cfg.batch_size, job, collate=collate, sampler=sampler, drop_last=drop_last)
    return DecodedLoader(loader, decoder)


class DecodedLoader:
    """A training loader whose batches :class:`~lucid.data.GpuBatchDecoder` decodes on the device (``--decode gpu``).

    It shows the wrapped loader's ``sampler`` and ``batch_size``, which the epoch loop reads, and
    sets the decoder's output size to the epoch's training size (progressive resizing).
    """

    def __init__(self, loader: Any, decoder: GpuBatchDecoder) -> None:
        self.loader, self.decoder = loader, decoder
        self.sampler, self.batch_size = loader.sampler, loader.batch_size

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Any:
        size = self.sampler.image_size(self.sampler.epoch)
        if size is not None:
            self.decoder.size = size
        return map(self.decoder, self.loader)


def _wrap(model: nn.Module, runtime: Runtime, info: distributed.DistInfo) -> nn.Module:
    net: nn.Module = model
    if info.enabled:
        net = DistributedDataParallel(model, device_ids=[runtime.device.index] if runtime.device.type == "cuda" else None)
    return torch.compile(net) if runtime.compile else net


def _loader(dataset: Any, batch_size: int, job: Job, collate: Any = collate_skipping, **kw: Any) -> Any:
    """A loader with lucid.data's defaults for the machine (workers kept alive, prefetching, pinned memory on CUDA)."""
    if "sampler" not in kw:  # validation: each rank takes its own share
        dataset = Subset(dataset, range(job.info.rank, len(dataset), job.info.world_size))
    options = loader_options(job.runtime.device.type, job.runtime.workers)
    # Its own generator: creating an iterator never draws from the global RNG (a resumed run's stream stays the same).
    return DataLoader(dataset, batch_size=batch_size, collate_fn=collate, generator=torch.Generator(), **options, **kw)


def _tensorboard(cfg: TrainConfig, run: RunFolder | None) -> Any:
    if not cfg.tensorboard or run is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter  # needs tensorboard, the "plot" extra
    except ImportError:
        raise ConfigError("tensorboard: the tensorboard package is not installed (pip install 'lucid[plot]')", "tensorboard") from None
    return SummaryWriter(log_dir=str(run.path / "tensorboard"))


# ----------------------------------------------------------------------------- the output folder and the state


def _open_run(cfg: TrainConfig, info: distributed.DistInfo, resumed: bool) -> RunFolder | None:
    """Rank 0 locks and checks the output folder; every rank learns its path, or the error that stopped it."""
    if cfg.out is None:
        cfg.out = distributed.broadcast_object(str(fresh_out_dir(cfg.model)) if info.is_main else None, info)
    if cfg.data is not None:
        cfg.data = data_location(cfg.data)  # so that --resume from another working folder finds it
    return _on_main(lambda: RunFolder.open(cfg.out, resume=resumed, overwrite=cfg.overwrite), info)


def _save_state(job: Job, cfg: TrainConfig, data: Data, progress: Progress, run: RunFolder | None,
                step: int = 0, sums: torch.Tensor | None = None) -> None:
    """Rank 0 writes ``last.pt`` (atomically), with every rank's RNG states and, mid-epoch, running sums.

    The other ranks wait until it is written, so a process lost after this call can resume from here.
    """
    ranks = distributed.gather_objects((rng_state(), None if sums is None else sums.detach().cpu()), job.info)
    if run is not None:
        _write_state(job, cfg, data, progress, run, step, ranks)
    distributed.barrier(job.info)


def _write_state(job: Job, cfg: TrainConfig, data: Data, progress: Progress, run: RunFolder, step: int, ranks: list[Any]) -> None:
    save_state(run.state_file, {
        "epoch": progress.epoch,
        "step": step,
        "epoch_sums": [sums for _, sums in ranks] if step else None,
        "model": job.model.state_dict(),
        "optimizer": job.optimizer.state_dict(),
        "scheduler": job.schedule.state_dict(),
        "scaler": job.scaler.state_dict() if job.scaler is not None else None,
        "ema": job.ema.state_dict() if job.ema is not None else None,
        "rng": [rng for rng, _ in ranks],
        "config": dataclasses.asdict(cfg),
        "model_config": job.model.config.to_dict(),
        "metadata": data.metadata,
        "best_acc1": progress.best_acc1,
        "best_epoch": progress.best_epoch,
        "ema_best_acc1": progress.ema_best_acc1,
    })


def _restore(job: Job, state: dict[str, Any], run: RunFolder | None, file: Path) -> Progress:
    """Load a saved state into the job, checking all of it before the first step; the Progress it had reached."""
    check_state(state, file, job.epochs)
    _load_part(file, "model", lambda: load_into(job.model, state["model"]))
    _load_part(file, "optimizer", lambda: _load_optimizer(job.optimizer, state["optimizer"]))
    _load_part(file, "scheduler", lambda: _load_schedule(job.schedule, state["scheduler"]))
    if job.scaler is not None and state.get("scaler"):
        _load_part(file, "scaler", lambda: job.scaler.load_state_dict(state["scaler"]))
    if job.ema is not None and state.get("ema"):
        _load_part(file, "ema", lambda: job.ema.load_state_dict(state["ema"]))
    epoch, step, info = state["epoch"], state.get("step", 0), job.info
    if step >= job.steps_per_epoch:
        raise CheckpointError(f"{file}: key 'step' must be below the {job.steps_per_epoch} steps of an epoch, got {step}")
    rng, sums = state["rng"], state.get("epoch_sums")
    if len(rng) == info.world_size:
        _load_part(file, "rng", lambda: set_rng_state(rng[info.rank]))
    else:
        if info.is_main:
            warn(f"the state was saved by {len(rng)} processes and is resumed by {info.world_size}: data order and augmentation will differ"
                 + (f"; epoch {epoch + 1} starts again from its first batch" if step else ""))
        step, sums = 0, None
    records = _on_main(lambda: _checked_run(run, state, epoch), info)
    progress = Progress(epoch, float(state["best_acc1"]), int(state["best_epoch"]), float(state.get("ema_best_acc1", -1.0)), records or [])
    progress.step, progress.sums = step, (sums[info.rank] if step and sums else None)
    return progress


def _load_part(file: Path, key: str, load: Any) -> None:
    """Run ``load``; any failure becomes one line naming the file and the key."""
    try:
        load()
    except (CheckpointError, ValueError, KeyError, TypeError, RuntimeError, IndexError, AttributeError) as e:
        raise CheckpointError(f"{file}: key {key!r} does not fit this run ({type(e).__name__}: {' '.join(str(e).split())[:300]})") from None


def _load_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load an optimizer state; every per-parameter tensor must have its parameter's shape."""
    optimizer.load_state_dict(state)
    for group in optimizer.param_groups:
        for p in group["params"]:
            for name, value in optimizer.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != p.shape:
                    raise ValueError(f"{name} has shape {tuple(value.shape)} for a parameter of shape {tuple(p.shape)}")
                if isinstance(value, torch.Tensor) and not bool(torch.isfinite(value).all()):
                    raise ValueError(f"{name} holds NaN or infinite values")


def _load_schedule(schedule: recipe.Schedule, state: dict[str, Any]) -> None:
    """Load a schedule state that has every key of this run's schedule (a missing one would silently keep a fresh value)."""
    missing = sorted(set(schedule.state_dict()) - set(state))
    if missing:
        raise KeyError(f"{', '.join(missing)} missing")
    step = state["last_epoch"]
    if not is_int(step) or step < 0:
        raise ValueError(f"last_epoch must be an int >= 0, got {step!r}"[:100])
    schedule.load_state_dict(state)


def _checked_run(run: RunFolder | None, state: dict[str, Any], epoch: int) -> list[dict[str, Any]]:
    """The metric records of the epochs done; the saved best model(s) must be readable."""
    if run is None:
        return []
    folders = [run.path] * (state["best_epoch"] > 0) + [run.path / "ema"] * (state.get("ema_best_acc1", -1.0) >= 0)
    for folder in folders:
        weights = folder / "model.safetensors"
        try:
            load_file(weights)
        except (CheckpointError, OSError) as e:
            raise CheckpointError(f"{weights}: the run's best model is damaged ({' '.join(str(e).split())[:200]}); "
                                  "restore the file, or start the run again with --overwrite") from None
    return run.metrics_upto(epoch)


def _announce(cfg: TrainConfig, job: Job, data: Data, progress: Progress) -> None:
    n_params = sum(p.numel() for p in job.model.parameters())
    where = "digits" if cfg.data is None else cfg.data
    print(f"lucid train: {cfg.model} ({n_params / 1e6:.2f}M params, {len(data.classes)} classes) on {where}: "
          f"{len(data.train)} train / {len(data.val)} val images; writing {cfg.out}", flush=True)
    print(f"  {job.runtime.describe()} x{job.info.world_size}; {cfg.epochs} epochs of {job.steps_per_epoch} steps, "
          f"batch {cfg.batch_size}{' per process' if job.info.enabled else ''}", flush=True)
    for what, key in (("train augmentation", "train"), ("eval preprocessing", "eval")):  # one step per line: no line wraps
        print("\n    ".join([f"  {what}:", *data.transforms[key]] if data.transforms[key] else [f"  {what}: none"]), flush=True)
    if cfg.progressive_resize:
        print(f"  image size per epoch: {', '.join(map(str, job.loader.sampler.sizes))} px", flush=True)
    if progress.epoch >= cfg.epochs:
        print(f"lucid train: {cfg.out} already finished its {cfg.epochs} epochs", flush=True)


def _finish(cfg: TrainConfig, progress: Progress, wall: float, info: distributed.DistInfo) -> dict[str, Any]:
    skipped = sum(r.get("skipped_images", 0) for r in progress.records)
    nonfinite = sum(r.get("nonfinite_steps", 0) for r in progress.records)
    summary = {"out": cfg.out, "best_val_acc1": progress.best_acc1, "best_epoch": progress.best_epoch, "epochs": cfg.epochs,
               "wall_seconds": round(wall, 1), "skipped_images": skipped, "nonfinite_steps": nonfinite,
               "last": progress.records[-1] if progress.records else None}
    if info.is_main:
        if skipped:
            warn(f"{skipped} unreadable image(s) were skipped")
        if nonfinite:
            warn(f"{nonfinite} step(s) with a non-finite loss were skipped")
        if progress.best_epoch == 0:
            raise NonFiniteLossError(f"no epoch gave a finite validation loss; no model was saved in {cfg.out}")
        print(f"lucid train: best val_acc1 {progress.best_acc1:.4f} at epoch {progress.best_epoch}; {wall:.1f}s; model saved in {cfg.out}", flush=True)
    return summary
