"""The training-state file ``last.pt``: what it holds, how it is written (atomically) and read (``weights_only``)."""
from __future__ import annotations

import dataclasses
import os
import random
from typing import Any

import numpy as np
import torch

from ..checkpoints.train_state import REQUIRED, STATE_FORMAT, STATE_NAME, load_state, save_state  # noqa: F401  (REQUIRED: older imports)
from ..core.checks import is_int
from ..core.errors import CheckpointError, ConfigError
from .config import TrainConfig

__all__ = ["STATE_FORMAT", "STATE_NAME", "check_state", "config_from_state", "load_state", "rng_state", "save_state", "set_rng_state"]

def rng_state() -> dict[str, Any]:
    """This process's RNG states as tensors and plain values (so ``weights_only`` loading accepts them)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(cached)],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():  # the GPUs this machine has (a run may be resumed where there are fewer)
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))


def config_from_state(state: dict[str, Any], file: str | os.PathLike[str]) -> TrainConfig:
    """The :class:`TrainConfig` a state was saved with (settings added since then take their defaults), validated."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(str(key)[:50] for key in set(state["config"]) - known)
    if unknown:
        raise CheckpointError(f"{file}: saved settings {unknown} are unknown to this version of lucid")
    cfg = TrainConfig(**state["config"])
    try:
        cfg.validate()
    except ConfigError as e:
        raise CheckpointError(f"{file}: key 'config': {e}") from None
    return cfg


def check_state(state: dict[str, Any], file: str | os.PathLike[str], epochs: int) -> None:
    """Refuse a damaged or edited state before the run continues, naming ``file`` and the key.

    Checks every value's type and range; whether the model, optimizer and schedule states fit the
    run is checked as they are loaded into it.
    """
    def bad(key: str, expected: str) -> CheckpointError:
        return CheckpointError(f"{file}: key {key!r} must be {expected}, got {_show(state.get(key))}")

    if not _int_in(state["epoch"], 0, epochs):
        raise bad("epoch", f"an int between 0 and {epochs} (the epochs done)")
    if not _int_in(state.get("step", 0), 0, MAX_INT):
        raise bad("step", "an int >= 0 (the batches done in the current epoch)")
    if not _int_in(state["best_epoch"], 0, state["epoch"]):
        raise bad("best_epoch", f"an int between 0 and epoch ({state['epoch']})")
    for key in ("best_acc1", "ema_best_acc1"):
        if not _number_in(state.get(key, -1.0), -1.0, 1.0):
            raise bad(key, "a number between -1 and 1")
    if not isinstance(state["model"], dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state["model"].items()):
        raise bad("model", "a dict of tensors")
    if not isinstance(state["optimizer"], dict) or not isinstance(state["optimizer"].get("state"), dict) or not isinstance(state["optimizer"].get("param_groups"), list):
        raise bad("optimizer", "an optimizer state (a dict with 'state' and 'param_groups')")
    for key, optional in (("scheduler", False), ("scaler", True), ("ema", True)):
        if not (isinstance(state.get(key), dict) or (optional and state.get(key) is None)):
            raise bad(key, "a dict" + (" or None" if optional else ""))
    rng = state["rng"]
    if not isinstance(rng, list) or not rng or len(rng) > MAX_PROCESSES or not all(_is_rng(r) for r in rng):
        raise bad("rng", f"a list of 1 to {MAX_PROCESSES} random-generator states, one per process")
    sums = state.get("epoch_sums")
    if sums is not None and not (isinstance(sums, list) and len(sums) == len(rng) and all(_is_sums(t) for t in sums)):
        raise bad("epoch_sums", "one tensor of 6 float64 running sums per process")


MAX_INT = 2**63 - 1
MAX_PROCESSES = 1_000_000


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, (dict, list, tuple, torch.Tensor)) else type(value).__name__
    return text[:80]


def _int_in(value: Any, low: int, high: int) -> bool:
    return is_int(value) and low <= value <= high


def _number_in(value: Any, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def _byte_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == torch.uint8 and value.dim() == 1


def _is_rng(state: Any) -> bool:
    """Whether ``state`` has the shape of what :func:`rng_state` returns."""
    if not isinstance(state, dict) or not _byte_tensor(state.get("torch")):
        return False
    cuda, python, numpy = state.get("cuda"), state.get("python"), state.get("numpy")
    if not isinstance(cuda, list) or not all(_byte_tensor(t) for t in cuda):
        return False
    if not (isinstance(python, (list, tuple)) and len(python) == 3 and isinstance(python[1], (list, tuple)) and len(python[1]) == 625
            and all(_int_in(v, 0, 2**32) for v in python[1]) and is_int(python[0]) and (python[2] is None or isinstance(python[2], float))):
        return False
    return (isinstance(numpy, (list, tuple)) and len(numpy) == 5 and numpy[0] == "MT19937" and isinstance(numpy[1], torch.Tensor)
            and numpy[1].shape == (624,) and _int_in(numpy[2], 0, 624) and _int_in(numpy[3], 0, 1) and isinstance(numpy[4], float))


def _is_sums(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.dtype == torch.float64 and value.shape == (6,) and bool(torch.isfinite(value).all())
