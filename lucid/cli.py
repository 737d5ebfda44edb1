"""The ``lucid`` command line: one entry point, one subcommand per job.

Every subcommand is declared by an ``_add_<name>`` function below (its arguments) and
runs through a ``_run_<name>`` function that calls into the library. Library modules
are imported inside the ``_run_`` functions so that ``lucid --help`` stays fast.
Errors the user can fix are printed as one line with a non-zero exit; set
``LUCID_DEBUG=1`` to see the traceback instead.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["main", "CLIError", "parse_set", "parse_shape", "load_model"]


class CLIError(Exception):
    """A mistake in the command line, reported as one line."""


# --------------------------------------------------------------------- shared helpers


def _parse_value(text: str) -> Any:
    """Read a ``--set`` value: JSON or Python literals (``10``, ``true``, ``[3,4,6,3]``, ``None``), else a string."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        return value
    if "," in text:
        return [_parse_value(part) for part in text.split(",")]
    return text


def _add_set(parser: argparse.ArgumentParser | argparse._ArgumentGroup, help: str) -> None:
    """The ``--set KEY=VALUE ...`` option, the same for every command: values add up over repeats."""
    parser.add_argument("--set", nargs="+", action="extend", metavar="KEY=VALUE", help=f"{help} (repeatable)")


def parse_set(items: Sequence[str] | None) -> dict[str, Any]:
    """Turn ``["num_classes=10", "stem_type=deep"]`` into ``{"num_classes": 10, "stem_type": "deep"}``."""
    overrides: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CLIError(f"--set expects key=value, got {item!r}")
        overrides[key.strip()] = _parse_value(value)
    return overrides


def parse_shape(text: str) -> tuple[int, ...]:
    """Read ``"1,3,224,224"`` (or ``1x3x224x224``) as a tuple of positive ints."""
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise CLIError(f"--input-shape expects comma-separated positive ints such as 1,3,224,224, got {text!r}") from None
    if not shape or any(d <= 0 for d in shape):
        raise CLIError(f"--input-shape expects comma-separated positive ints such as 1,3,224,224, got {text!r}")
    return shape


def load_model(name_or_path: str, overrides: dict[str, Any] | None = None) -> Any:
    """A model from a preset name (with config overrides) or a ``save_pretrained`` folder."""
    from . import models

    if Path(name_or_path).exists():
        if overrides:
            raise CLIError("--set applies to preset names, not to a saved model folder")
        return models.from_pretrained(name_or_path)
    if "/" in name_or_path or os.sep in name_or_path:  # preset names never contain one
        raise FileNotFoundError(f"{name_or_path}: no such folder; expected a save_pretrained folder or a preset name")
    return models.create_model(name_or_path, **(overrides or {}))


# ------------------------------------------------------------------------- subcommands
# Each _add_<name>(sub) declares a subcommand and sets `func` to its _run_<name>.


def _add_models(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the model presets with their parameters and GMACs at 224x224")
    p.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'resnext*'")
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    import torch

    from .models import create_model, list_models
    from .visual import count_macs

    names = list_models(args.pattern)
    if not names:
        raise CLIError(f"no model matches {args.pattern!r}")
    width = max(len(n) for n in names + ["model"])
    print(f"{'model':<{width}}  {'params':>12}  {'GMACs@224':>9}")
    for name in names:
        with torch.device("meta"):  # shapes and counts only: nothing is allocated or initialised
            model = create_model(name)
        params = sum(p.numel() for p in model.parameters())
        macs = count_macs(model, (1, model.config.in_channels, 224, 224))
        print(f"{name:<{width}}  {params:>12,}  {macs / 1e9:>9.2f}")
    return 0


def _add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="per-layer table (shapes, parameters, MACs) or Mermaid diagram of a model")
    p.add_argument("model", metavar="NAME_OR_FOLDER", help="a preset name (see `lucid models`) or a save_pretrained folder")
    p.add_argument("--input-shape", metavar="N,C,H,W", help="input shape (default 1,IN_CHANNELS,224,224)")
    p.add_argument("--depth", type=int, default=None,
                   help="table/json: module levels listed (default 3); mermaid/markdown: container levels drawn as subgraphs (default 2)")
    _add_set(p, "config fields of a preset, e.g. --set num_classes=10 in_channels=1 stem_type=deep stem_width=32")
    p.add_argument("--format", choices=("table", "json", "mermaid", "markdown"), default="table",
                   help="markdown: the Mermaid diagram in a fenced block that renders on GitHub")
    p.add_argument("--collapse", choices=("shapes", "structure", "none"), default="shapes",
                   help="mermaid/markdown: fold repeated calls identical in structure and shapes (default), "
                        "alike in structure only (the folded picture), or none")
    p.add_argument("--direction", choices=("LR", "TB"), default="LR", help="mermaid/markdown: left to right or top to bottom")
    p.set_defaults(func=_run_summary)


def _run_summary(args: argparse.Namespace) -> int:
    import contextlib

    import torch

    from . import visual

    # A preset is built on the meta device: the summary needs shapes, not weights.
    where = contextlib.nullcontext() if Path(args.model).exists() else torch.device("meta")
    with where:
        model = load_model(args.model, parse_set(args.set))
    in_channels = getattr(getattr(model, "config", None), "in_channels", 3)
    shape = parse_shape(args.input_shape) if args.input_shape else (1, in_channels, 224, 224)
    depth = {} if args.depth is None else {"depth": args.depth}
    if args.format in ("table", "json"):
        result = visual.summary(model, shape, **depth)
        print(result if args.format == "table" else json.dumps(result.to_dict(), indent=2))
        return 0
    text = visual.mermaid(model, shape, title=Path(args.model).name, collapse=args.collapse, direction=args.direction, **depth)
    print(f"```mermaid\n{text}```" if args.format == "markdown" else text.rstrip("\n"))
    return 0


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to ONNX or torch.export, optionally verified")
    p.add_argument("model", metavar="NAME_OR_FOLDER", help="a preset name (see `lucid models`) or a save_pretrained folder")
    p.add_argument("--format", choices=("onnx", "torch"), default="onnx",
                   help="onnx: a .onnx file for ONNX Runtime/TensorRT (default); torch: a torch.export program (.pt2)")
    p.add_argument("--out", required=True, metavar="FILE", help="file to write (atomically)")
    p.add_argument("--input-shape", metavar="N,C,H,W",
                   help="example input; the batch stays dynamic (default 1,IN_CHANNELS,224,224)")
    _add_set(p, "config fields of a preset")
    p.add_argument("--opset", type=int, help="ONNX opset version (default: the exporter's)")
    p.add_argument("--verify", action="store_true",
                   help="run the file on random images at batch 1 and 3 and print the largest difference against PyTorch")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="with --verify, fail when max|diff| / max|logits| exceeds this (default 1e-4)")
    p.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from . import export

    model = load_model(args.model, parse_set(args.set))
    shape = parse_shape(args.input_shape) if args.input_shape else None
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
    worst = 0.0
    for batch, diff in export.verify(path, model, format=args.format).items():
        print(f"verify batch {batch}: max |diff| {diff.max_abs:.3g}, relative {diff.relative:.3g}")
        worst = max(worst, diff.relative)
    if worst > args.tolerance:
        print(f"lucid export: verify failed: relative difference {worst:.3g} exceeds --tolerance {args.tolerance:g}", file=sys.stderr)
        return 1
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (no arguments: the spec's ResNeXt-50 on the bundled digits)",
        description="Train a preset on scikit-learn's bundled digits (default) or an image folder. "
        "Run under torchrun (or with --nproc N) for DistributedDataParallel training. "
        "Options left out take lucid.train.TrainConfig's defaults (the measured digits recipe).",
        argument_default=argparse.SUPPRESS,
    )
    d = p.add_argument_group("data")
    d.add_argument("--data", metavar="DIR", help="image folder: DIR/train/<class>/... and DIR/val/<class>/..., or one class tree with --val-split (default: the bundled digits)")
    d.add_argument("--val-split", type=float, metavar="F", help="fraction held out for validation from a single class tree (digits: 0.2)")
    d.add_argument("--image-size", type=int, metavar="PX", help="training resolution (digits: 32, folders: 224)")
    d.add_argument("--workers", type=int, help="data loader processes per training process (digits: 0, folders: up to 4)")
    m = p.add_argument_group("model")
    m.add_argument("--model", help="preset name, see `lucid models` (default: resnext_50_32x4d)")
    _add_set(m, "config fields, e.g. --set stem_type=deep drop_path=0.1 (digits default: in_channels=1 stem_type=deep stem_width=32)")
    m.add_argument("--pretrained", nargs="?", const=True, metavar="TAG", help="start from published weights (optionally a weights tag)")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, help="default 15")
    o.add_argument("--batch-size", type=int, help="per process (default 64)")
    o.add_argument("--opt", choices=("sgd", "adamw"), help="AdamW (default), or SGD with (Nesterov) momentum")
    o.add_argument("--lr", type=float, help="peak learning rate (adamw: 0.002, sgd: 0.1)")
    o.add_argument("--momentum", type=float, help="SGD momentum (default 0.9)")
    o.add_argument("--nesterov", action=argparse.BooleanOptionalAction, help="Nesterov momentum for SGD (default on)")
    o.add_argument("--weight-decay", type=float, help="on weights only, never on norms/biases (adamw: 0.05, sgd: 5e-4)")
    o.add_argument("--warmup-epochs", type=float, help="linear warm-up before the cosine decay (default 1)")
    o.add_argument("--label-smoothing", type=float, help="default 0.1")
    o.add_argument("--clip-grad", type=float, metavar="NORM", help="clip the global gradient norm (default off)")
    s = p.add_argument_group("speed and devices")
    s.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), help="mixed precision (auto: bf16 where the hardware runs it natively; fp16 adds a gradient scaler, CUDA only)")
    s.add_argument("--channels-last", action=argparse.BooleanOptionalAction, help="channels-last memory format (default: per device)")
    s.add_argument("--compile", action=argparse.BooleanOptionalAction, help="torch.compile the model (default: on CUDA for runs of at least 1,000,000 images, else off)")
    s.add_argument("--fused-optimizer", action=argparse.BooleanOptionalAction, help="single-kernel optimizer step (default: per device)")
    s.add_argument("--device", help="auto (CUDA if present, the default), cpu, cuda, cuda:N")
    s.add_argument("--nproc", type=int, metavar="N", help="start N training processes on this machine (DDP, like torchrun --standalone)")
    r = p.add_argument_group("run")
    r.add_argument("--seed", type=int, help="default 0")
    r.add_argument("--out", metavar="DIR", help="output folder (default: a fresh folder under runs/)")
    r.add_argument("--resume", metavar="OUT", help="continue the run saved in OUT with its saved settings")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from .train.distributed import launch_local
    from .train.engine import TrainConfig, fit

    given = {k: v for k, v in vars(args).items() if k not in ("command", "func", "nproc", "resume")}
    if "set" in given:
        given["overrides"] = parse_set(given.pop("set"))
    resume = getattr(args, "resume", None)
    if resume is not None:
        if given:
            names = ", ".join("--" + k.replace("_", "-") for k in sorted(given))
            raise CLIError(f"--resume continues with the saved settings; drop {names}")
        config = TrainConfig()
    else:
        config = TrainConfig(**given)
        config.validate()
    nproc = getattr(args, "nproc", None)
    if nproc is None:
        fit(config, resume=resume)
        return 0
    if "WORLD_SIZE" in os.environ:
        raise CLIError("--nproc starts its own processes; do not combine it with torchrun")
    try:
        launch_local(nproc, fit, config, resume)
    except RuntimeError as e:
        raise CLIError(str(e)) from None
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="top-1/top-5 accuracy and loss of a trained model on an image folder")
    p.add_argument("checkpoint", metavar="OUT_OR_CHECKPOINT", help="a lucid train output folder, its last.pt, or a weight file (with --model)")
    p.add_argument("--data", metavar="DIR", default=None, help="class folders (DIR/val is used when present; default for digits models: their validation split)")
    _add_inference_args(p)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run_eval)


def _add_inference_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="preset of a bare weight file")
    _add_set(p, "config fields of a bare weight file's preset")
    p.add_argument("--image-size", type=int, default=None, metavar="PX", help="input resolution (default: the one saved with the model)")
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), default="off", help="autocast for inference (default off: exact fp32)")


def _load_trained(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from .train.engine import resolve_amp, resolve_device
    from .train.predict import load_trained

    device = resolve_device(args.device)
    amp = resolve_amp(args.amp, device)
    trained = load_trained(args.checkpoint, args.model, parse_set(args.set), args.image_size)
    return trained, device, amp


def _run_eval(args: argparse.Namespace) -> int:
    from .train.predict import evaluate_digits, evaluate_folder

    trained, device, amp = _load_trained(args)
    if args.data is None:
        result = evaluate_digits(trained, device=device, amp_dtype=amp, channels_last=False, batch_size=args.batch_size)
    else:
        result = evaluate_folder(trained, args.data, device=device, amp_dtype=amp, channels_last=False, batch_size=args.batch_size, workers=args.workers)
    if args.json:
        print(json.dumps(result))
    else:
        skipped = f", {result['skipped']} unreadable skipped" if result["skipped"] else ""
        print(f"{result['count']} images{skipped}: acc1 {result['acc1']:.4f} acc5 {result['acc5']:.4f} loss {result['loss']:.4f}")
    return 0


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="top-k classes of a trained model for each image")
    p.add_argument("checkpoint", metavar="OUT_OR_CHECKPOINT", help="a lucid train output folder, its last.pt, or a weight file (with --model)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top-k", type=int, default=5)
    _add_inference_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    p.set_defaults(func=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    from .train.predict import predict_images

    trained, device, amp = _load_trained(args)
    results = predict_images(trained, args.images, top_k=args.top_k, device=device, amp_dtype=amp)
    failed = 0
    for r in results:
        if "error" in r:
            failed += 1
            print(f"warning: {r['image']}: {r['error']}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps(r))
        else:
            print(f"{r['image']}: " + ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"]))
    if failed:
        print(f"lucid predict: {failed} of {len(results)} image(s) could not be read", file=sys.stderr)
    return 1 if failed else 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="time lucid against torchvision, timm, OpenVINO and ONNX Runtime on the same weights and input",
        description="Time lucid (optimize_for_inference, or train_step with its fast defaults) and, when installed, "
        "torchvision, timm, OpenVINO and ONNX Runtime (on lucid's ONNX export) on the same weights and batch, interleaved after warm-up; prints median images/s, "
        "peak memory and the ratio to each peer.",
    )
    p.add_argument("model", nargs="?", default="resnext_50_32x4d", metavar="NAME", help="preset name or save_pretrained folder (default: resnext_50_32x4d)")
    _add_set(p, "config fields of the preset")
    p.add_argument("--mode", choices=("infer", "train"), default="infer")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--image-size", type=int, default=224, metavar="PX")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16", "int8"), default=None,
                   help="inference dtype (default float32; int8 calibrates on random images, for speed only; training uses its fast defaults)")
    p.add_argument("--compile", action="store_true", help="torch.compile lucid (optimize_for_inference(compile=True)) and the peers' matched runs")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per contender first (oneDNN/cuDNN tune on them)")
    p.add_argument("--rounds", type=int, default=10, help="timed calls per contender, interleaved")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-peers", action="store_true", help="time lucid alone")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    import torch

    from .benchmark import infer_contenders, format_table, machine_summary, measure, train_contenders
    from .train.engine import resolve_device

    for name in ("batch_size", "image_size", "warmup", "rounds"):
        if getattr(args, name) < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be a positive int, got {getattr(args, name)}")
    if args.mode == "train" and (args.dtype is not None or args.compile):
        raise CLIError("--dtype and --compile apply to --mode infer; --mode train times train_step with lucid's fast defaults")
    if args.threads is not None:
        if args.threads < 1:
            raise CLIError(f"--threads must be a positive int, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = load_model(args.model, parse_set(args.set))
    name = args.model if not Path(args.model).exists() else ""
    common = dict(batch=args.batch_size, size=args.image_size, device=device, peers=not args.no_peers)
    if args.mode == "train":
        contenders = train_contenders(name, model, **common)
    else:
        dtype = getattr(torch, args.dtype or "float32")
        contenders = infer_contenders(name, model, dtype=dtype, compile=args.compile, **common)
    log = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    results = measure(contenders, warmup=args.warmup, rounds=args.rounds, device=device, log=log)
    machine = machine_summary(device)
    if args.json:
        print(json.dumps({
            "machine": machine, "model": args.model, "mode": args.mode, "batch_size": args.batch_size, "image_size": args.image_size,
            "results": [r.to_dict() for r in results],
        }))
    else:
        print(f"{args.model}, {args.mode}, batch {args.batch_size}, {args.image_size}x{args.image_size}, "
              f"{args.warmup} warm-up + {args.rounds} interleaved rounds; {machine}")
        print(format_table(results))
    return 0


def _add_weights(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="published weights; convert and import torchvision/timm checkpoints")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = actions.add_parser("list", help="presets with published weights: tags, ImageNet accuracy, preprocessing")
    q.add_argument("preset", nargs="?", help="one preset (default: all)")
    q = actions.add_parser("download", help="download (once) and verify published weights; prints the cached file")
    q.add_argument("preset")
    q.add_argument("--tag", help="which weights (default: the preset's default tag)")
    layouts = ("auto", "lucid", "torchvision", "timm")
    q = actions.add_parser("convert", help="rename a checkpoint between the lucid, torchvision and timm layouts")
    q.add_argument("checkpoint", help=".safetensors, .pth, .pt or .bin (read without executing code)")
    q.add_argument("out", help="file to write: .safetensors, or .pth/.pt for torch.load users")
    q.add_argument("--source", choices=layouts, default="auto", help="layout of the checkpoint (default: detected)")
    q.add_argument("--to", choices=layouts[1:], default="lucid", help="layout to write (default lucid)")
    q = actions.add_parser("import", help="load a torchvision/timm/lucid checkpoint into a preset; write a save_pretrained folder")
    q.add_argument("checkpoint", help=".safetensors, .pth, .pt or .bin (read without executing code)")
    q.add_argument("--model", required=True, metavar="NAME", help="the preset it fits (see `lucid models`)")
    _add_set(q, "config fields of the preset; timm's resnet50d: --set stem_type=deep stem_width=32 avg_down=true")
    q.add_argument("--source", choices=layouts, default="auto", help="layout of the checkpoint (default: detected)")
    q.add_argument("--out", required=True, metavar="FOLDER", help="folder to write config.json and model.safetensors to")
    p.set_defaults(func=_run_weights)


def _run_weights(args: argparse.Namespace) -> int:
    from . import weights

    if args.action == "list":
        presets = [args.preset] if args.preset else weights.list_pretrained()
        rows = [weights.info(preset, tag) for preset in presets for tag in weights.list_pretrained(preset)]
        width = max([len("tag"), *(len(w.tag) for w in rows)])
        print(f"{'preset':<18} {'tag':<{width}} {'top-1':>6} {'top-5':>6}  {'resize/crop':<11}  {'interp.':<8}  file")
        for w in rows:
            top1, top5 = (f"{v:.2f}" if v is not None else "-" for v in (w.top1, w.top5))
            where = f"{w.hf_hub_id} (Hugging Face Hub)" if w.hf_hub_id else w.filename
            print(f"{w.preset:<18} {w.tag:<{width}} {top1:>6} {top5:>6}  {f'{w.resize}/{w.crop}':<11}  {w.interpolation:<8}  {where}")
    elif args.action == "download":
        print(weights.download(args.preset, args.tag))
    elif args.action == "convert":
        state_dict = weights.convert(weights.load_file(args.checkpoint), args.source, to=args.to)
        print(f"wrote {weights.save_file(state_dict, args.out)} ({len(state_dict)} tensors, {args.to} layout)")
    else:
        model = weights.load_checkpoint(load_model(args.model, parse_set(args.set)), args.checkpoint, source=args.source)
        print(f"wrote {model.save_pretrained(args.out)} ({args.model}); use it wherever a NAME_OR_FOLDER is accepted")
    return 0


_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_models, _add_summary, _add_export, _add_train, _add_eval, _add_predict, _add_bench, _add_weights]


# ------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="lucid", description="ResNet/ResNeXt models on PyTorch: inspect, train, evaluate, export.")
    parser.add_argument("--version", action="version", version=f"lucid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from .errors import CheckpointError

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"lucid {args.command}: interrupted", file=sys.stderr)
        return 130
    except (CLIError, CheckpointError, ValueError, TypeError, FileNotFoundError, NotADirectoryError) as e:
        if os.environ.get("LUCID_DEBUG"):
            raise
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"lucid {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
