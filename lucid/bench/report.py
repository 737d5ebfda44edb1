"""Benchmark results as text: the table, the ratios to each peer and a one-line description of the machine."""
from __future__ import annotations

import os
from typing import Any

import torch

from .measure import Result

__all__ = ["format_scaling", "format_table", "machine_summary", "ratio_lines"]


def format_table(results: list[Result]) -> str:
    """A Markdown table: median images/s, ms per batch, peak memory, page faults per call and ratio to each peer's rows."""
    peers = [r for r in results if r.peer]
    head = ["library", "setup", "img/s (median)", "ms/batch", "peak MiB", "page faults/call"] + [f"x {p.name} {p.setup}" for p in peers]
    rows = [head, ["---"] * len(head)]
    for r in results:
        mem = "n/a" if r.peak_mib is None else f"{r.peak_mib:.0f}"
        faults = "n/a" if r.median_faults is None else f"{r.median_faults:.0f}"
        row = [r.name, r.setup, f"{r.images_per_second:.1f}", f"{1000 * r.median:.1f}", mem, faults]
        row += [f"{p.median / r.median:.2f}" for p in peers]
        rows.append(row)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def ratio_lines(what: str, results: list[Result]) -> list[str]:
    """One line per (lucid row, peer row) pair: both speeds and the peer's median time over lucid's."""
    return [
        f"{what}: lucid {mine.setup} {mine.images_per_second:.1f} img/s vs {peer.name} {peer.setup} "
        f"{peer.images_per_second:.1f} img/s = {peer.median / mine.median:.2f}x"
        for mine in results if not mine.peer
        for peer in results if peer.peer
    ]


def machine_summary(device: torch.device | str) -> str:
    """One line naming the hardware and software a table was measured on."""
    device = torch.device(device)
    if device.type == "cuda":
        hw = f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    else:
        model = "CPU"
        try:
            with open("/proc/cpuinfo") as f:
                model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
        except OSError:
            pass
        wait = os.environ.get("OMP_WAIT_POLICY", "unset")
        hw = f"{model}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}, OMP_WAIT_POLICY {wait}"
    return f"{hw}; torch {torch.__version__}"


def format_scaling(rows: list[dict[str, Any]]) -> str:
    """The scaling table in Markdown: img/s of lucid and of each runtime, and lucid's speed over each runtime's."""
    keys = ["model", "size", "batch", "dtype", "lucid"]
    for row in rows:
        keys += [k for k in row if k not in keys]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [row.get(k, "") for k in keys]
        lines.append("| " + " | ".join(f"{c:.2f}" if isinstance(c, float) else str(c) for c in cells) + " |")
    return "\n".join(lines)
