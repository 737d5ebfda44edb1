"""``lucid export``: a run or model as ONNX, OpenVINO, ExecuTorch or torch.export, optionally verified on the
run's validation images (accuracy against PyTorch, and speed) in one table."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from .common import CLIError, add_set, load_model, parse_set, parse_shape

FORMAT_CHOICES = ("onnx", "openvino", "executorch", "torch-export", "torch", "all")


def add(sub: argparse._SubParsersAction) -> None:
    """Declare the ``export`` subcommand and its options."""
    p = sub.add_parser("export", help="export a model to ONNX, OpenVINO, ExecuTorch or torch.export, optionally verified")
    p.add_argument("model", metavar="RUN_OR_NAME", help="a lucid train output folder (or its last.pt), a save_pretrained folder, or a preset name")
    p.add_argument("--format", choices=FORMAT_CHOICES, default="onnx",
                   help="onnx (default), openvino (.xml + .bin), executorch (.pte, XNNPACK), torch-export (.pt2; 'torch' is its "
                        "older name), or all of them")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16", "int8"), default=None,
                   help="number format (default float32; with --format all: float32, and int8 where the model records its "
                        "training images); int8 calibrates on the run's training images")
    p.add_argument("--out", metavar="PATH", default=None,
                   help="file to write (a folder with --format all); default RUN/export/model[.DTYPE].SUFFIX")
    p.add_argument("--input-shape", metavar="N,C,H,W", help="example input (default 1,IN_CHANNELS,S,S, S the size the model was trained at)")
    p.add_argument("--dynamic-size", action="store_true", help="let height and width vary too (ONNX, OpenVINO, torch.export)")
    add_set(p, "config fields of a preset")
    p.add_argument("--opset", type=int, help="ONNX opset version (default: the exporter's)")
    p.add_argument("--verify", action="store_true",
                   help="run each file in its runtime on the run's validation images: accuracy against PyTorch and img/s "
                        "(a model without recorded data: random images, see --tolerance)")
    p.add_argument("--data", metavar="DIR", default=None, help="validation images for --verify and --accuracy-drop (default: the run's)")
    p.add_argument("--accuracy-drop", type=float, default=None, metavar="POINTS",
                   help="top-1 points a row may lose against PyTorch before --verify fails (default 1.0); with openvino int8 "
                        "also NNCF's accuracy control, keeping layers in float until the drop is within it")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="with --verify on random images, fail when max|diff| / max|logits| exceeds this (default 1e-4)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads each runtime gets when --verify times it (default: PyTorch's thread count)")
    p.add_argument("--rounds", type=int, default=5, metavar="N",
                   help="interleaved timing rounds per artefact and batch size for --verify; the median is reported (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the files, and the --verify rows)")
    p.set_defaults(func=run)


def _check_numbers(args: argparse.Namespace) -> None:
    if not math.isfinite(args.tolerance) or args.tolerance < 0:
        raise CLIError(f"--tolerance must be a finite number >= 0, got {args.tolerance}")
    if args.threads is not None and not 1 <= args.threads <= 1024:
        raise CLIError(f"--threads must be an int from 1 to 1024, got {args.threads}")
    if not 1 <= args.rounds <= 1000:
        raise CLIError(f"--rounds must be an int from 1 to 1000, got {args.rounds}")
    if args.accuracy_drop is not None and not (math.isfinite(args.accuracy_drop) and 0 <= args.accuracy_drop <= 100):
        raise CLIError(f"--accuracy-drop must be a number of top-1 points from 0 to 100, got {args.accuracy_drop}")


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    """The model, and the trained run it came from (``None`` for a preset or a folder without preprocessing)."""
    from ..core.errors import ConfigError
    from ..inference.predict import load_trained

    if not Path(args.model).exists():
        return load_model(args.model, parse_set(args.set)), None
    if args.set:
        raise CLIError("--set applies to preset names, not to a saved model folder")
    try:
        trained = load_trained(args.model)
    except ConfigError as e:
        if e.field != "image_size":  # only "saved without its preprocessing" means: a plain model folder
            raise
        return load_model(args.model), None
    model = trained.model
    model.metadata = {**(getattr(model, "metadata", None) or {}), "class_names": trained.class_names,
                      "preprocessing": trained.preprocessing.to_dict(), "dataset": trained.dataset}
    return model, trained


def _jobs(args: argparse.Namespace, trained: Any) -> list[tuple[str, str]]:
    """The (format, dtype) pairs to write; with ``--format all``, every format that can write the dtype."""
    from ..export import EXPORT_FORMATS, check_combination
    from ..export.writer import refusal

    fmt = "torch-export" if args.format == "torch" else args.format
    if fmt != "all":
        check_combination(fmt, args.dtype or "float32", args.dynamic_size)
        return [(fmt, args.dtype or "float32")]
    dtypes = [args.dtype] if args.dtype else ["float32", *(["int8"] if trained is not None else [])]
    jobs = [(f, d) for d in dtypes for f in EXPORT_FORMATS if refusal(f, d, args.dynamic_size) is None]
    for f, d in [(f, d) for d in dtypes for f in EXPORT_FORMATS if (f, d) not in jobs]:
        print(f"note: skipping {f} {d}: {refusal(f, d, args.dynamic_size)}", file=sys.stderr)
    if not jobs:
        check_combination(EXPORT_FORMATS[0], dtypes[0], args.dynamic_size)  # raises the reason
    return jobs


def _target(args: argparse.Namespace, fmt: str, dtype: str, many: bool) -> Path:
    from ..export import default_path
    from ..export.writer import SUFFIXES

    if args.out is None:
        if not Path(args.model).exists():
            raise CLIError(f"--out is needed for a preset name ({args.model}): there is no run folder to write next to")
        return default_path(args.model, fmt, dtype)
    if not many:
        return Path(args.out)
    return Path(args.out) / f"model{'' if dtype == 'float32' else '.' + dtype}{SUFFIXES[fmt]}"


def _write(args: argparse.Namespace, model: Any, trained: Any, jobs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Write every artefact; int8 calibrates on the run's training images."""
    from ..export import export_model
    from ..export.metadata import artefact_size
    from ..inference.artefacts import validation_batches
    from ..inference.predict import calibration_batches
    from ..models.limits import check_input_memory

    shape = parse_shape(args.input_shape) if args.input_shape else None
    if shape is not None and len(shape) != 4:
        raise CLIError(f"--input-shape expects four ints N,C,H,W, got {args.input_shape!r}")
    if shape is not None:
        check_input_memory(model, shape, "--input-shape")
    if any(d == "int8" for _, d in jobs) and trained is None:
        raise CLIError(f"--dtype int8 calibrates on the run's training images, but {args.model} records none; export a lucid train run")
    calibration = calibration_batches(trained) if any(d == "int8" for _, d in jobs) else None
    control = args.accuracy_drop is not None and ("openvino", "int8") in jobs
    validation = validation_batches(trained, args.data) if control else None
    written = []
    for fmt, dtype in jobs:
        path = export_model(model, fmt, _target(args, fmt, dtype, len(jobs) > 1), dtype, input_shape=shape,
                            dynamic_size=args.dynamic_size, calibration=calibration if dtype == "int8" else None,
                            validation=validation, accuracy_drop=args.accuracy_drop if (fmt, dtype) == ("openvino", "int8") else None,
                            opset=args.opset)
        if not args.json:
            print(f"wrote {path} ({fmt}, {dtype}, {artefact_size(path) / 1e6:.2f} MB)")
        written.append({"format": fmt, "dtype": dtype, "path": str(path)})
    return written


def _verify_random(args: argparse.Namespace, model: Any, written: list[dict[str, Any]]) -> int:
    """Without validation images: the largest difference against PyTorch on random images, per batch size."""
    from ..export import verify

    worst = 0.0
    for item in written:
        for batch, diff in verify(item["path"], model, format=item["format"]).items():
            item.setdefault("random_images", {})[batch] = diff._asdict()
            if not args.json:
                print(f"verify batch {batch}: max |diff| {diff.max_abs:.3g}, relative {diff.relative:.3g} ({item['path']})")
            worst = max(worst, diff.relative) if math.isfinite(diff.relative) else math.inf
    if args.json:
        print(json.dumps({"artefacts": written}))
    if not math.isfinite(worst):
        print("lucid export: verify failed: the outputs are not finite (NaN/inf weights or logits); the model cannot be verified", file=sys.stderr)
        return 1
    if worst > args.tolerance:
        print(f"lucid export: verify failed: relative difference {worst:.3g} exceeds --tolerance {args.tolerance:g}", file=sys.stderr)
        return 1
    return 0


def _verify_table(args: argparse.Namespace, model: Any, trained: Any, written: list[dict[str, Any]]) -> int:
    """The table: each artefact on the run's validation images against PyTorch, and its speed."""
    from ..export import format_table, verify_artefacts
    from ..inference.artefacts import validation_batches

    root = Path(args.data or str(trained.dataset.get("path", "")))
    if trained.dataset.get("name") != "digits" and not (root / "val").is_dir():
        print(f"note: {root} has no val/ folder: verifying on every image under it (training images included)", file=sys.stderr)
    batches = validation_batches(trained, args.data)
    drop = 1.0 if args.accuracy_drop is None else args.accuracy_drop
    rows = verify_artefacts(model, [(w["dtype"], w["path"]) for w in written], batches, max_drop=drop,
                            rounds=args.rounds, threads=args.threads)
    count = sum(len(t) for _, t in batches)
    if args.json:
        print(json.dumps({"artefacts": written, "images": count, "accuracy_drop": drop, "rows": [r.to_dict() for r in rows]}))
    else:
        print(f"verified on {count} validation images; a row fails below PyTorch's top-1 - {drop:g} points")
        print(format_table(rows))
    failed = [f"{r.format} {r.dtype}" for r in rows if not r.passed]
    if failed:
        print(f"lucid export: verify failed: {', '.join(failed)} below the accuracy bound", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    """Export (and verify) as the parsed options ask; returns the exit status."""
    _check_numbers(args)
    model, trained = _load(args)
    jobs = _jobs(args, trained)
    written = _write(args, model, trained, jobs)
    if not args.verify:
        if args.json:
            print(json.dumps({"artefacts": written}))
        return 0
    if trained is None or (trained.dataset.get("name") != "digits" and args.data is None and not trained.dataset.get("path")):
        return _verify_random(args, model, written)
    return _verify_table(args, model, trained, written)
