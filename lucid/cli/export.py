"""``lucid export``: ONNX or torch.export files, optionally verified against PyTorch."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .common import CLIError, add_set, load_model, parse_set, parse_shape


def add(sub: argparse._SubParsersAction) -> None:
    """Declare the ``export`` subcommand and its options."""
    p = sub.add_parser("export", help="export a model to ONNX or torch.export, optionally verified")
    p.add_argument("model", metavar="NAME_OR_FOLDER", help="a preset name (see `lucid models`) or a save_pretrained folder")
    p.add_argument("--format", choices=("onnx", "torch"), default="onnx",
                   help="onnx: a .onnx file for ONNX Runtime/TensorRT (default); torch: a torch.export program (.pt2)")
    p.add_argument("--out", required=True, metavar="FILE", help="file to write (atomically)")
    p.add_argument("--input-shape", metavar="N,C,H,W",
                   help="example input; the batch stays dynamic (default 1,IN_CHANNELS,224,224)")
    add_set(p, "config fields of a preset")
    p.add_argument("--opset", type=int, help="ONNX opset version (default: the exporter's)")
    p.add_argument("--verify", action="store_true",
                   help="run the file on random images at batch 1 and 3 and print the largest difference against PyTorch")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="with --verify, fail when max|diff| / max|logits| exceeds this (default 1e-4)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the exported file the parsed options ask for; returns the exit status."""
    from .. import export
    from ..models.limits import check_input_memory

    if not math.isfinite(args.tolerance) or args.tolerance < 0:
        raise CLIError(f"--tolerance must be a finite number >= 0, got {args.tolerance}")
    model = load_model(args.model, parse_set(args.set))
    shape = parse_shape(args.input_shape) if args.input_shape else None
    if shape is not None:
        check_input_memory(model, shape, "--input-shape")
    if args.format == "onnx":
        path = export.to_onnx(model, args.out, input_shape=shape, opset=args.opset)
    else:
        if args.opset is not None:
            raise CLIError("--opset applies to --format onnx only")
        export.to_exported_program(model, shape, path=args.out)
        path = Path(args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if not args.verify:
        return 0
    relatives = []
    for batch, diff in export.verify(path, model, format=args.format).items():
        print(f"verify batch {batch}: max |diff| {diff.max_abs:.3g}, relative {diff.relative:.3g}")
        relatives.append(diff.relative)
    if not all(math.isfinite(r) for r in relatives):
        print("lucid export: verify failed: the outputs are not finite (NaN/inf weights or logits); the model cannot be verified", file=sys.stderr)
        return 1
    worst = max(relatives)
    if worst > args.tolerance:
        print(f"lucid export: verify failed: relative difference {worst:.3g} exceeds --tolerance {args.tolerance:g}", file=sys.stderr)
        return 1
    return 0
