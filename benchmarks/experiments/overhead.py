"""Per-call overhead of lucid's fp32 ResNeXt-50 at batch 1: a 32x32 input (almost no arithmetic) against 224x224.

Prints the median and fastest of 15 calls after 3 warm-up calls, and from one profiled call how
much of the operators' time was inside oneDNN. Usage: ``python benchmarks/experiments/overhead.py``
"""
from __future__ import annotations

import statistics
import sys
import time

import torch

from lucid import optimize_for_inference
from lucid.models import create_model


def main() -> int:
    fast = optimize_for_inference(create_model("resnext_50_32x4d").eval())
    for size in (32, 224):
        x = torch.randn(1, 3, size, size)
        for _ in range(3):
            fast(x)
        seconds = []
        for _ in range(15):
            start = time.perf_counter()
            fast(x)
            seconds.append(time.perf_counter() - start)
        with torch.profiler.profile() as prof:
            fast(x)
        events = prof.key_averages()
        onednn = sum(e.self_cpu_time_total for e in events if "mkldnn" in e.key) / 1e3
        total = sum(e.self_cpu_time_total for e in events) / 1e3
        print(f"{size}px batch 1: median {1000 * statistics.median(seconds):.1f} ms, fastest {1000 * min(seconds):.1f} ms; "
              f"profiled call: oneDNN {onednn:.1f} ms of {total:.1f} ms operator time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
