"""Timing contenders fairly: warm-up, then one call at a time in interleaved rounds, with peak memory and page faults."""
from __future__ import annotations

import ctypes
import gc
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..core.errors import OptionError

try:
    import resource  # page-fault counts; not on Windows
except ImportError:
    resource = None

__all__ = ["Contender", "Result", "measure"]


@dataclass
class Contender:
    """One thing to time: ``run()`` processes one batch of ``batch`` images."""

    name: str
    setup: str
    run: Callable[[], Any]
    batch: int
    peer: bool = False


@dataclass
class Result:
    """The timings of one contender: seconds per batch of ``batch`` images, peak memory if measured."""

    name: str
    setup: str
    batch: int
    seconds: list[float] = field(default_factory=list)
    peak_mib: float | None = None
    peer: bool = False
    faults: list[int] = field(default_factory=list)  # minor page faults of the whole process per timed call

    @property
    def median_faults(self) -> float | None:
        """Median minor page faults per call (``None`` where the OS does not count them)."""
        return statistics.median(self.faults) if self.faults else None

    @property
    def median(self) -> float:
        """Median seconds per batch."""
        return statistics.median(self.seconds)

    @property
    def images_per_second(self) -> float:
        """Throughput at the median time."""
        return self.batch / self.median

    def to_dict(self) -> dict[str, Any]:
        """Every timing and summary figure, for JSON reports."""
        return {
            "library": self.name, "setup": self.setup, "peer": self.peer, "batch": self.batch,
            "images_per_second": self.images_per_second, "median_ms": 1000 * self.median,
            "peak_mib": self.peak_mib, "seconds": self.seconds, "page_faults": self.faults,
        }


def _minor_faults() -> int | None:
    """Minor page faults of this process so far (fresh memory pages handed out by the kernel).

    On a CPU a call that gets new pages from the OS pays for each of them, so the count shows why
    the same contender's time can swing between runs (the allocator's state differs).
    """
    if resource is None:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _release_free_heap() -> None:
    """Hand freed heap pages back to the OS (glibc), so resident-set growth shows what a call allocates."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _peak_mib(run: Callable[[], Any], device: torch.device) -> float | None:
    """Peak memory of one call: CUDA's allocator peak, or on CPU the resident-set growth seen by a 2 ms sampler."""
    gc.collect()
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run()
        _sync(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    if not os.path.exists("/proc/self/statm"):
        return None
    _release_free_heap()
    base = peak = _rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run()
    finally:
        done.set()
        sampler.join()
    return (max(peak, _rss_bytes()) - base) / 2**20


def measure(
    contenders: list[Contender],
    *,
    warmup: int = 3,
    rounds: int = 10,
    device: torch.device | str = "cpu",
    memory: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[Result]:
    """Warm every contender up, then time one call of each per round, rotating the order each round."""
    device = torch.device(device)
    if warmup < 1 or rounds < 1:
        raise OptionError(f"warmup and rounds must be at least 1, got warmup={warmup}, rounds={rounds}")
    results = [Result(c.name, c.setup, c.batch, peer=c.peer) for c in contenders]
    for c in contenders:
        start = time.perf_counter()
        for _ in range(warmup):
            c.run()
        _sync(device)
        if log:
            log(f"warmed up {c.name} ({c.setup}) in {time.perf_counter() - start:.1f} s")
    n = len(contenders)
    for r in range(rounds):
        for i in range(n):
            k = (i + r) % n
            _sync(device)
            faults = _minor_faults()
            start = time.perf_counter()
            contenders[k].run()
            _sync(device)
            results[k].seconds.append(time.perf_counter() - start)
            if faults is not None:
                results[k].faults.append(_minor_faults() - faults)
        if log:
            log(f"round {r + 1}/{rounds}: " + ", ".join(f"{res.name} {res.batch / res.seconds[-1]:.1f}" for res in results) + " img/s")
    if memory:
        for c, res in zip(contenders, results):
            res.peak_mib = _peak_mib(c.run, device)
    return results
