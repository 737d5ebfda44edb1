"""The int8 model's image quantization in one buffer against torchao's step-by-step version, interleaved.

ResNeXt-50 32x4d (random weights, calibrated on random images), one process: the same lowered
graph (with the uint8 max-pool) with and without :func:`lucid.optimize.quantize.quantize_in_place`;
checks that both give identical outputs, prints median img/s and the ratio.

Usage: ``python benchmarks/int8_quantize_pass.py [--batch-size 8] [--rounds 10]``
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402
from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86  # noqa: E402

from lucid import optimize_for_inference  # noqa: E402
from lucid.benchmark import calibration_set  # noqa: E402
from lucid.models import create_model  # noqa: E402
from lucid.optimize.quantize import pool_in_uint8, quantize_in_place  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=10)
    args = p.parse_args()
    torch.manual_seed(0)
    model = create_model("resnext_50_32x4d").eval()
    batches = calibration_set(model, 8, 224)
    int8 = optimize_for_inference(model, dtype=torch.int8, calibration=batches, calibration_batches=len(batches))
    x = torch.randn(args.batch_size, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    runs = {}
    for name, passes in (("step by step", (pool_in_uint8,)), ("one buffer", (pool_in_uint8, quantize_in_place))):
        runs[name] = lower_pt2e_quantized_to_x86(copy.deepcopy(int8.net.quantized), (x,))
        for apply in passes:
            apply(runs[name])
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    with torch.inference_mode():
        assert torch.equal(*[f(x) for f in runs.values()])
        for f in runs.values():
            f(x), f(x)
        for r in range(args.rounds):
            for name, f in (list(runs.items()) if r % 2 == 0 else list(runs.items())[::-1]):
                start = time.perf_counter()
                f(x)
                seconds[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    for k, v in med.items():
        print(f"{k}: {args.batch_size / v:.1f} img/s")
    print(f"one buffer / step by step speed = {med['step by step'] / med['one buffer']:.3f}x (outputs identical)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
