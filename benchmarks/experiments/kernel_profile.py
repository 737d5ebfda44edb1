"""Where a forward pass spends its time: lucid's oneDNN kernels against OpenVINO's, and the time around them.

For one model, batch and dtype, in one process: lucid's ``optimize_for_inference`` module with
oneDNN's verbose log on (each primitive's own execution time), and OpenVINO running lucid's ONNX
export with its per-layer performance counters. Prints, per kernel kind, the count and the time
per call on each side, then each side's wall time per call and the share of it outside the
kernels (framework overhead: operator dispatch, allocation, element-wise passes, Python).

Usage: ``python benchmarks/experiments/kernel_profile.py [--model resnext_50_32x4d] [--batch-size 8] [--dtype float32|bfloat16|int8] [--calls 5] [--backend onednn-fused]``
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

import openvino as ov
import torch

import lucid
from lucid.benchmark import calibration_set, onnx_models, runtime_threads
from lucid.models import create_model

_HINTS = {"float32": "f32", "bfloat16": "bf16", "int8": None}


def _lucid_kernels(fast: torch.nn.Module, x: torch.Tensor, calls: int) -> tuple[dict[str, list[float]], float]:
    """oneDNN's verbose primitive exec lines of ``calls`` calls (captured from the C-level stdout), and the wall ms per call.

    Only primitives count: with the oneDNN Graph backend each compiled partition also logs its own
    exec line, whose time is that of the primitives inside it.
    """
    log = tempfile.TemporaryFile(mode="w+")
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(log.fileno(), 1)
    try:
        torch._C._verbose.mkldnn_set_verbose(1)
        start = time.perf_counter()
        for _ in range(calls):
            fast(x)
        wall = (time.perf_counter() - start) / calls * 1e3
    finally:
        torch._C._verbose.mkldnn_set_verbose(0)
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    log.seek(0)
    kernels: dict[str, list[float]] = collections.defaultdict(list)
    for line in log:
        fields = line.strip().split(",")
        if line.startswith("onednn_verbose") and "primitive" in fields and "exec" in fields and fields[fields.index("exec") + 1] == "cpu":
            i = fields.index("exec")
            kernels[f"{fields[i + 2]} {fields[i + 3]}"].append(float(fields[-1]) / calls)
    return kernels, wall


def _openvino_kernels(path: Path, x: torch.Tensor, hint: str | None, calls: int) -> tuple[dict[str, list[float]], float]:
    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape(list(x.shape))
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": runtime_threads(), "NUM_STREAMS": 1, "PERF_COUNT": True}
    if hint:
        config["INFERENCE_PRECISION_HINT"] = hint
    request = core.compile_model(model, "CPU", config).create_infer_request()
    data = x.numpy()
    for _ in range(3):
        request.infer({0: data})
    kernels: dict[str, list[float]] = collections.defaultdict(list)
    wall = 0.0
    for _ in range(calls):
        start = time.perf_counter()
        request.infer({0: data})
        wall += (time.perf_counter() - start) * 1e3 / calls
        for layer in request.profiling_info:
            if layer.status.name == "EXECUTED":
                kernels[f"{layer.node_type} {layer.exec_type}"].append(layer.real_time.total_seconds() * 1e3 / calls)
    return kernels, wall


def _print(name: str, kernels: dict[str, list[float]], wall: float, calls: int) -> None:
    total = sum(sum(v) for v in kernels.values())
    print(f"\n{name}: wall {wall:.1f} ms/call, kernels {total:.1f} ms/call, outside the kernels {wall - total:.1f} ms ({(wall - total) / wall:.0%})")
    print("| kernel | count/call | ms/call |\n|---|---|---|")
    for kind, times in sorted(kernels.items(), key=lambda kv: -sum(kv[1])):
        print(f"| {kind} | {len(times) // calls} | {sum(times):.2f} |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnext_50_32x4d")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--dtype", choices=sorted(_HINTS), default="float32")
    p.add_argument("--calls", type=int, default=5)
    p.add_argument("--backend", default=None, help="optimize_for_inference backend for the dtype (default: lucid's default)")
    args = p.parse_args()
    torch.manual_seed(0)
    model = create_model(args.model).eval()
    x = torch.randn(args.batch_size, model.config.in_channels, args.image_size, args.image_size)
    int8 = args.dtype == "int8"
    calibration = calibration_set(model, 8, args.image_size) if int8 else None
    files = tempfile.TemporaryDirectory()  # the ONNX files, removed at exit
    paths = onnx_models(model, x[:1], Path(files.name), int8=int8, calibration=calibration)
    kw = {"backend": args.backend, **({"calibration": calibration, "calibration_batches": len(calibration)} if int8 else {})}
    fast = lucid.optimize_for_inference(model, dtype=getattr(torch, args.dtype), **kw)
    for _ in range(3):
        fast(x)
    ov_kernels, ov_wall = _openvino_kernels(paths["int8" if int8 else "fp32"], x, _HINTS[args.dtype], args.calls)
    lucid_kernels, lucid_wall = _lucid_kernels(fast, x, args.calls)
    print(f"# {args.model}, {args.image_size}px, batch {args.batch_size}, {args.dtype}, lucid backend {fast.backend}, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}; torch {torch.__version__}, OpenVINO {ov.__version__}")
    _print("lucid (oneDNN verbose; logging adds a little to the wall time)", lucid_kernels, lucid_wall, args.calls)
    _print("OpenVINO (performance counters)", ov_kernels, ov_wall, args.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
