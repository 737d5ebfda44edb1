"""Check exported artefacts against the PyTorch model: on random images (:func:`verify`), or on the run's own
validation images with accuracy and speed per artefact (:func:`verify_artefacts`, :func:`format_table`)."""
from __future__ import annotations

import copy
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ..core.errors import OptionError
from ..nn.measure import model_device
from .common import check_model, eval_mode, model_dtype
from .metadata import ARTEFACT_SUFFIXES, artefact_format, artefact_size
from .runtime import Runner, load_runner

__all__ = ["FORMATS", "Difference", "VerifyRow", "format_table", "measure_speed", "verify", "verify_artefacts"]

# formats verify() accepts; "torch" is the older name of "torch-export"
FORMATS = ("onnx", "torch", *(f for f in ARTEFACT_SUFFIXES.values() if f != "onnx"))
Batch = tuple[torch.Tensor, torch.Tensor]  # images, targets


class Difference(NamedTuple):
    """How far an exported model's logits are from PyTorch's at one batch size."""

    max_abs: float  # max |exported - pytorch|
    relative: float  # max_abs / max |pytorch|


def verify(
    path: str | os.PathLike[str],
    model: nn.Module,
    format: str = "onnx",
    batch_sizes: Sequence[int] = (1, 3),
    seed: int = 0,
) -> dict[int, Difference]:
    """Run the exported file and ``model`` on the same random images; the difference per batch size.

    ``format`` names the file's format (``"onnx"``, ``"openvino"``, ``"executorch"``,
    ``"torch-export"`` or its older name ``"torch"``); it must agree with the file's suffix.
    Height and width come from the file; PyTorch's logits are the reference (``model`` in eval
    mode, unchanged).
    """
    check_model(model)
    if format not in FORMATS:
        raise OptionError(f"format must be one of {FORMATS}, got {format!r}", "format")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "no such file to verify", str(path))
    if artefact_format(path) != {"torch": "torch-export"}.get(format, format):
        raise OptionError(f"{path} is a {artefact_format(path)} file, not {format}", "format")
    runner = load_runner(path)
    generator = torch.Generator().manual_seed(seed)
    results: dict[int, Difference] = {}
    with eval_mode(model) as m, torch.no_grad():
        for n in batch_sizes:
            if isinstance(runner.input_shape[0], int) and runner.input_shape[0] != n:
                raise OptionError(f"{path} was exported for batch {runner.input_shape[0]} only; cannot verify batch {n}", "batch_sizes")
            x = torch.randn((n, *runner.input_shape[1:]), generator=generator)
            ref = m(x.to(device=model_device(m), dtype=model_dtype(m))).float().cpu()
            diff = (runner(x) - ref).abs().max().item()
            results[n] = Difference(diff, diff / max(ref.abs().max().item(), 1e-12))
    return results


@dataclass
class VerifyRow:
    """One artefact checked on validation images: accuracy against PyTorch's, and speed."""

    format: str
    dtype: str
    path: str
    size_mb: float
    top1: float
    pytorch_top1: float
    agreement: float  # share of images whose top-1 class equals PyTorch's
    max_logit_diff: float
    images_per_s: dict[int, float]
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        """The row as plain JSON values (``--json``)."""
        return asdict(self)


def _accuracy(run: Callable[[torch.Tensor], torch.Tensor], batches: Sequence[Batch]) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes and logits of ``run`` over every batch."""
    logits = torch.cat([run(images).float().cpu() for images, _ in batches])
    return logits.argmax(1), logits


def measure_speed(runs: dict[str, Callable[[torch.Tensor], Any]], image: torch.Tensor, batch_sizes: Sequence[int] = (1, 8),
                  rounds: int = 5, min_seconds: float = 0.2) -> dict[str, dict[int, float]]:
    """Images per second of each callable at each batch size, the median of ``rounds`` interleaved rounds.

    In every round each callable runs once per batch size in turn, so a busy machine slows all of
    them alike. ``image`` is one ``C x H x W`` input, repeated to make each batch.
    """
    inputs = {n: image.unsqueeze(0).expand(n, *image.shape).contiguous() for n in batch_sizes}
    samples: dict[str, dict[int, list[float]]] = {label: {n: [] for n in batch_sizes} for label in runs}
    for run in runs.values():  # warm up: first calls allocate and plan
        for n in batch_sizes:
            run(inputs[n])
    for _ in range(rounds):
        for label, run in runs.items():
            for n in batch_sizes:
                calls, start = 0, time.perf_counter()
                while calls == 0 or time.perf_counter() - start < min_seconds:
                    run(inputs[n])
                    calls += 1
                samples[label][n].append(calls * n / (time.perf_counter() - start))
    return {label: {n: statistics.median(v) for n, v in per.items()} for label, per in samples.items()}


def verify_artefacts(model: nn.Module, artefacts: Sequence[tuple[str, str | os.PathLike[str]]], batches: Sequence[Batch],
                     max_drop: float = 1.0, batch_sizes: Sequence[int] = (1, 8), rounds: int = 5,
                     threads: int | None = None) -> list[VerifyRow]:
    """Run each ``(dtype, path)`` artefact in its runtime on ``batches`` of validation images and time it.

    A row passes when its top-1 is at most ``max_drop`` points below the PyTorch model's (float32,
    eval mode, on the CPU). The first row is PyTorch itself. All are timed in one process, interleaved,
    each runtime with ``threads`` threads (default: PyTorch's thread count), so no runtime gets more cores.
    """
    check_model(model)
    if not batches:
        raise OptionError("verification needs validation images; got none", "batches")
    threads = threads or torch.get_num_threads()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _verify(model, artefacts, batches, max_drop, batch_sizes, rounds, threads)
    finally:
        torch.set_num_threads(previous)


def _verify(model: nn.Module, artefacts: Sequence[tuple[str, str | os.PathLike[str]]], batches: Sequence[Batch],
            max_drop: float, batch_sizes: Sequence[int], rounds: int, threads: int) -> list[VerifyRow]:
    reference = copy.deepcopy(model).float().cpu().eval()  # the caller's model keeps its device, dtype and mode
    targets = torch.cat([t for _, t in batches])

    def pytorch(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return reference(x)

    ref_pred, ref_logits = _accuracy(pytorch, batches)
    runners: dict[str, Runner | Callable[[torch.Tensor], torch.Tensor]] = {"pytorch": pytorch}
    rows = []
    for dtype, path in artefacts:
        runner = load_runner(path, threads)
        runners[str(path)] = runner
        pred, logits = _accuracy(runner, batches)
        rows.append(_row(runner.format, dtype, Path(path), pred, logits, targets, ref_pred, ref_logits, max_drop))
    speed = measure_speed(runners, batches[0][0][0], batch_sizes, rounds)
    first = _row("pytorch", "float32", Path(""), ref_pred, ref_logits, targets, ref_pred, ref_logits, max_drop)
    first.size_mb = sum(t.numel() * t.element_size() for t in reference.state_dict().values()) / 1e6
    for row, label in zip([first, *rows], runners):
        row.images_per_s = speed[label]
    return [first, *rows]


def _row(fmt: str, dtype: str, path: Path, pred: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor,
         ref_pred: torch.Tensor, ref_logits: torch.Tensor, max_drop: float) -> VerifyRow:
    top1 = (pred == targets).float().mean().item()
    ref_top1 = (ref_pred == targets).float().mean().item()
    diff = (logits - ref_logits).abs().max().item()
    size = artefact_size(path) / 1e6 if path.is_file() else 0.0
    passed = math.isfinite(diff) and top1 >= ref_top1 - max_drop / 100 - 1e-12
    return VerifyRow(fmt, dtype, str(path) if str(path) != "." else "", size, top1, ref_top1,
                     (pred == ref_pred).float().mean().item(), diff, {}, passed)


def format_table(rows: Sequence[VerifyRow]) -> str:
    """A Markdown table of :func:`verify_artefacts` rows."""
    sizes = sorted({n for r in rows for n in r.images_per_s})
    head = ["format", "dtype", "size MB", "top-1", "PyTorch top-1", "agreement", "max logit diff",
            *(f"img/s b{n}" for n in sizes), "ok"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.format, r.dtype, f"{r.size_mb:.2f}", f"{r.top1:.4f}", f"{r.pytorch_top1:.4f}", f"{r.agreement:.4f}",
                 f"{r.max_logit_diff:.2e}", *(f"{r.images_per_s.get(n, float('nan')):.1f}" for n in sizes),
                 "yes" if r.passed else "NO"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
