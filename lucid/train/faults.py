"""Hooks for testing fault tolerance, each off unless its environment variable is set.

``LUCID_SAMPLE_LOG=DIR``
    Every process appends one JSON line per epoch to ``DIR/samples-rank<R>.jsonl``:
    ``{"epoch": E, "rank": R, "restart": N, "start": S, "indices": [...]}``, the dataset indices it
    trains on in epoch ``E`` (0-based) from position ``S`` of its share on (``N`` is torchrun's
    restart count). Tests read it to check that an epoch covers every sample once.
``LUCID_KILL_AT=RANK:STEP``
    The process of rank ``RANK`` kills itself with SIGKILL right after optimizer step ``STEP`` of the
    run (counted over all epochs, after any state saved at that step), on the first attempt only
    (``TORCHELASTIC_RESTART_COUNT`` unset or 0): a worker lost mid-epoch, for restart tests.
"""
from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

__all__ = ["log_samples", "maybe_kill"]


def _restart_count() -> int:
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT") or 0)


def log_samples(epoch: int, rank: int, start: int, indices: Callable[[], list[int]]) -> None:
    """Record the indices this process trains on in ``epoch`` (when ``LUCID_SAMPLE_LOG`` is set; ``indices`` lists them)."""
    folder = os.environ.get("LUCID_SAMPLE_LOG")
    if not folder:
        return
    line = json.dumps({"epoch": epoch, "rank": rank, "restart": _restart_count(), "start": start, "indices": indices()})
    with open(Path(folder) / f"samples-rank{rank}.jsonl", "a", encoding="utf-8") as f:
        f.write(line + "\n")


def maybe_kill(rank: int, step: int) -> None:
    """SIGKILL this process after optimizer step ``step`` when ``LUCID_KILL_AT`` asks for it (first attempt only)."""
    target = os.environ.get("LUCID_KILL_AT")
    if target and _restart_count() == 0 and target == f"{rank}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)
