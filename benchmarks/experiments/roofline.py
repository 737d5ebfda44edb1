"""The CPU's matrix-product peak as PyTorch reaches it two ways, interleaved: MKL (``torch.mm``) and oneDNN.

The same 2048x2048x2048 product (17.2 GFLOP) runs as ``torch.mm`` (MKL for fp32) and as a oneDNN
1x1 convolution with its weight prepacked (the kernel family lucid's optimized models and
OpenVINO run), in fp32 and bf16. Prints GFLOP/s per round and the medians: the peak a
convolution network's throughput is held against.

Usage: ``python benchmarks/experiments/roofline.py [--rounds 5] [--threads N]``
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch


def _runners(dtype: torch.dtype, n: int = 2048) -> dict[str, object]:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g).to(dtype), torch.randn(n, n, generator=g).to(dtype)
    # a 1x1 convolution over a 32x64 image with n channels in and out is the same product
    x = a.t().reshape(1, n, 32, 64).contiguous(memory_format=torch.channels_last)
    w = b.t().reshape(n, n, 1, 1).contiguous()
    packed = torch.ops.mkldnn._reorder_convolution_weight(w, [0, 0], [1, 1], [1, 1], 1, list(x.shape))
    return {
        "torch.mm": lambda: torch.mm(a, b),
        "onednn 1x1 conv": lambda: torch.ops.mkldnn._convolution_pointwise(x, packed, None, [0, 0], [1, 1], [1, 1], 1, "none", [], ""),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    flop = 2 * 2048**3
    print(f"# {torch.get_num_threads()} threads, torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()}")
    for dtype in (torch.float32, torch.bfloat16):
        runs = _runners(dtype)
        seconds: dict[str, list[float]] = {k: [] for k in runs}
        for fn in runs.values():
            fn(), fn()  # warm-up
        for r in range(args.rounds):
            for name, fn in (list(runs.items()) if r % 2 == 0 else list(runs.items())[::-1]):
                start = time.perf_counter()
                fn()
                seconds[name].append(time.perf_counter() - start)
        line = ", ".join(f"{k} {flop / statistics.median(v) / 1e9:.0f} GFLOP/s" for k, v in seconds.items())
        ratio = statistics.median(seconds["torch.mm"]) / statistics.median(seconds["onednn 1x1 conv"])
        print(f"{str(dtype).replace('torch.', '')}: {line}; oneDNN / torch.mm = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
