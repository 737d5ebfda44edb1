"""The int8 model's stem max-pool on uint8 codes against torchao's lowering (dequantize, float max-pool, quantize), interleaved.

ResNeXt-50 32x4d (random weights, calibrated on random images), one process, the same lowered
graph with and without :func:`lucid.optimize.quantize.pool_in_uint8`; prints median img/s and the ratio.

Usage: ``python benchmarks/int8_pool_pass.py [--batch-size 8] [--rounds 8]``
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
from lucid.optimize.quantize import pool_in_uint8  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args()
    torch.manual_seed(0)
    model = create_model("resnext_50_32x4d").eval()
    batches = calibration_set(model, 8, 224)
    int8 = optimize_for_inference(model, dtype=torch.int8, calibration=batches, calibration_batches=len(batches))
    x = torch.randn(args.batch_size, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    runs = {"torchao lowering": lower_pt2e_quantized_to_x86(copy.deepcopy(int8.net.quantized), (x,))}
    runs["max-pool on uint8 codes"] = lower_pt2e_quantized_to_x86(copy.deepcopy(int8.net.quantized), (x,))
    pool_in_uint8(runs["max-pool on uint8 codes"])
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    with torch.no_grad():
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
    print(f"uint8 max-pool / torchao lowering speed = {med['torchao lowering'] / med['max-pool on uint8 codes']:.2f}x (outputs identical)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
