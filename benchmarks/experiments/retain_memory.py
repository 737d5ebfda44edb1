"""What keeping freed memory in the process (``optimize_for_inference(retain_memory=...)``) does to CPU inference.

The setting is process-wide, so each variant runs in its own fresh process; the processes
alternate (True, False, True, ...) so that drifts in the machine's speed hit both alike. Each
process optimizes the same model, warms up, then reports the median time and the minor page
faults per call; the summary gives the median over processes of each.

Usage: ``python benchmarks/experiments/retain_memory.py [--model resnext_50_32x4d] [--batch-size 8] [--image-size 224] [--dtype float32] [--pairs 3]``
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

_CHILD = """
import json, resource, statistics, sys, time
import torch, lucid
from lucid.models import create_model
model, batch, dtype, retain, size = sys.argv[1], int(sys.argv[2]), getattr(torch, sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])
torch.manual_seed(0)
fast = lucid.optimize_for_inference(create_model(model).eval(), dtype=dtype, retain_memory=retain)
x = torch.randn(batch, 3, size, size)
for _ in range(3):
    fast(x)
times, faults = [], []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    fast(x)
    times.append(time.perf_counter() - start)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"ms": statistics.median(times) * 1e3, "faults": statistics.median(faults)}))
"""


def _run(args: argparse.Namespace, retain: bool) -> dict:
    done = subprocess.run([sys.executable, "-c", _CHILD, args.model, str(args.batch_size), args.dtype, str(int(retain)), str(args.image_size)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnext_50_32x4d")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    p.add_argument("--pairs", type=int, default=3)
    args = p.parse_args()
    runs: dict[bool, list[dict]] = {True: [], False: []}
    for i in range(args.pairs):
        for retain in (True, False):
            runs[retain].append(_run(args, retain))
            print(f"pair {i + 1}: retain_memory={retain}: {runs[retain][-1]['ms']:.1f} ms/call, "
                  f"{runs[retain][-1]['faults']:.0f} page faults/call", flush=True)
    ms = {k: statistics.median(r["ms"] for r in v) for k, v in runs.items()}
    faults = {k: statistics.median(r["faults"] for r in v) for k, v in runs.items()}
    print(f"{args.model}, {args.image_size}px, batch {args.batch_size}, {args.dtype}: retain_memory=True {ms[True]:.1f} ms/call "
          f"({faults[True]:.0f} faults), False {ms[False]:.1f} ms/call ({faults[False]:.0f} faults): "
          f"{ms[False] / ms[True]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
