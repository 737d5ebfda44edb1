"""Page faults and speed of lucid's fp32 ResNeXt-50 on 32 images: one batch of 32 against four batches of 8, interleaved.

Prints, per call, images/s and the minor page faults of the process (fresh pages from the kernel).
Usage: ``python benchmarks/experiments/batch_split_faults.py``
"""
from __future__ import annotations

import resource
import sys
import time

import torch

from lucid import optimize_for_inference
from lucid.models import create_model


def main() -> int:
    fast = optimize_for_inference(create_model("resnext_50_32x4d").eval())
    x = torch.randn(32, 3, 224, 224)
    runs = {"whole": lambda: fast(x), "chunked": lambda: torch.cat([fast(c) for c in x.split(8)])}
    for run in runs.values():
        run()
    for r in range(3):
        for name, run in (list(runs.items()) if r % 2 == 0 else list(runs.items())[::-1]):
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            run()
            seconds = time.perf_counter() - start
            print(r, name, f"{32 / seconds:.1f} img/s", resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults, "faults", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
