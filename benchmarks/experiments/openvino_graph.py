"""What OpenVINO's CPU plugin runs for lucid's ONNX export: kernel implementation and precision per layer type.

Compiles lucid's own ONNX export of a preset (BatchNorm folded) at the requested precision hint
and prints, from the compiled model's execution graph, how many layers of each type ran with
each implementation (``primitiveType``: e.g. ``brgconv_avx512``, ``jit_avx512_winograd``) and
precision, and how many reorders (layout conversions) it inserted. Nothing is timed.

Usage: ``python benchmarks/experiments/openvino_graph.py [--model resnext_50_32x4d] [--image-size 224] [--precision f32|bf16|int8]``
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

import openvino as ov
import torch

from lucid.benchmark import calibration_set, onnx_models, runtime_threads
from lucid.models import create_model


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnext_50_32x4d")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--precision", choices=("f32", "bf16", "int8"), default="f32")
    args = p.parse_args()
    torch.manual_seed(0)
    model = create_model(args.model).eval()
    x = torch.zeros(1, model.config.in_channels, args.image_size, args.image_size)
    int8 = args.precision == "int8"
    files = tempfile.TemporaryDirectory()  # the ONNX files, removed at exit
    paths = onnx_models(model, x, Path(files.name), int8=int8, calibration=calibration_set(model, 8, args.image_size) if int8 else None)
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": runtime_threads(), "NUM_STREAMS": 1}
    if not int8:
        config["INFERENCE_PRECISION_HINT"] = args.precision
    compiled = ov.Core().compile_model(str(paths["int8" if int8 else "fp32"]), "CPU", config)
    counts: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        counts[tuple(str(info[key].astype(str)) if key in info else "?" for key in ("layerType", "primitiveType", "runtimePrecision"))] += 1
    print(f"# {args.model} {args.image_size}px, OpenVINO {ov.__version__}, hint {args.precision}: layers of the execution graph")
    print("| layer type | implementation | precision | count |\n|---|---|---|---|")
    for (layer, prim, prec), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"| {layer} | {prim} | {prec} | {n} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
