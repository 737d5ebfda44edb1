"""Latency of lucid's fp32 ResNeXt-50 at batch 1 in this process: shows what OpenMP's waiting policy costs on a busy CPU.

Run it once per setting, e.g. ``python benchmarks/experiments/omp_wait_policy.py``, then
``OMP_WAIT_POLICY=PASSIVE python benchmarks/experiments/omp_wait_policy.py``, and ``--threads 1``: OpenMP reads
the variable when torch loads, so it cannot change inside one process. Prints the median and the
fastest of 10 calls after 3 warm-up calls.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from lucid import optimize_for_inference
from lucid.models import create_model


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--calls", type=int, default=10)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    fast = optimize_for_inference(create_model("resnext_50_32x4d").eval())
    x = torch.randn(1, 3, 224, 224)
    for _ in range(3):
        fast(x)
    seconds = []
    for _ in range(args.calls):
        start = time.perf_counter()
        fast(x)
        seconds.append(time.perf_counter() - start)
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')} threads={torch.get_num_threads()}: "
          f"median {1000 * statistics.median(seconds):.0f} ms, fastest {1000 * min(seconds):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
