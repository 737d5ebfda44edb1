"""lucid's passes over the lowered int8 graph against torchao's lowering without them, interleaved.

ResNeXt-50 32x4d (random weights, calibrated on random images), one process, the same lowered
graph with and without one pass, every earlier pass applied to both sides:

* ``--pass pool``: the stem's max-pool on uint8 codes (:func:`lucid.optimize.quantize.pool_in_uint8`)
  against torchao's dequantize, float max-pool, quantize;
* ``--pass quantize``: the images' quantization in one float buffer
  (:func:`lucid.optimize.quantize.quantize_in_place`) against the step-by-step version.

Checks that both sides give identical outputs; prints median img/s and the ratio.

Usage: ``python benchmarks/experiments/int8_lowering_passes.py [--pass pool|quantize] [--batch-size 8] [--rounds 8]``
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch
from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86

from lucid import optimize_for_inference
from lucid.benchmark import calibration_set
from lucid.models import create_model
from lucid.optimize.quantize import pool_in_uint8, quantize_in_place

PASSES = {"pool": pool_in_uint8, "quantize": quantize_in_place}  # in the order lucid applies them


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pass", dest="name", choices=list(PASSES), default="pool")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args()
    torch.manual_seed(0)
    model = create_model("resnext_50_32x4d").eval()
    batches = calibration_set(model, 8, 224)
    int8 = optimize_for_inference(model, dtype=torch.int8, calibration=batches, calibration_batches=len(batches))
    x = torch.randn(args.batch_size, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    earlier = list(PASSES)[: list(PASSES).index(args.name)]
    runs = {}
    for side, passes in (("without", earlier), ("with", [*earlier, args.name])):
        runs[side] = lower_pt2e_quantized_to_x86(copy.deepcopy(int8.net.quantized), (x,))
        for name in passes:
            PASSES[name](runs[side])
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    with torch.inference_mode():
        assert torch.equal(*[f(x) for f in runs.values()])
        for f in runs.values():
            f(x), f(x)
        for r in range(args.rounds):
            for side, f in (list(runs.items()) if r % 2 == 0 else list(runs.items())[::-1]):
                start = time.perf_counter()
                f(x)
                seconds[side].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    for k, v in med.items():
        print(f"{k} the {args.name} pass: {args.batch_size / v:.1f} img/s")
    print(f"with / without the {args.name} pass speed = {med['without'] / med['with']:.3f}x (outputs identical)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
