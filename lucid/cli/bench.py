"""``lucid bench``: lucid against torchvision and timm, on the same weights and input."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.constants import BENCH_DTYPES
from .common import CLIError, add_set, load_model, parse_set, positive


def add(sub: argparse._SubParsersAction) -> None:
    """Declare the ``bench`` subcommand and its options."""
    p = sub.add_parser(
        "bench",
        help="time lucid against torchvision, timm, OpenVINO and ONNX Runtime on the same weights and input",
        description="Time lucid (optimize_for_inference, or train_step with its fast defaults) and, when installed, "
        "torchvision, timm, OpenVINO and ONNX Runtime (on lucid's ONNX export) on the same weights and batch, interleaved after warm-up; prints median images/s, "
        "peak memory and the ratio to each peer.",
    )
    p.add_argument("model", nargs="?", default="resnext_50_32x4d", metavar="NAME", help="preset name or save_pretrained folder (default: resnext_50_32x4d)")
    add_set(p, "config fields of the preset")
    p.add_argument("--mode", choices=("infer", "train"), default="infer")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--image-size", type=int, default=224, metavar="PX")
    p.add_argument("--dtype", choices=BENCH_DTYPES, default=None,
                   help="inference dtype (default float32; int8 calibrates on random images, for speed only; training uses its fast defaults)")
    p.add_argument("--compile", action="store_true", help="torch.compile lucid (optimize_for_inference(compile=True)) and the peers' matched runs")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls per contender first (oneDNN/cuDNN tune on them)")
    p.add_argument("--rounds", type=int, default=10, help="timed calls per contender, interleaved")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-peers", action="store_true", help="time lucid alone")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark the parsed options ask for; returns the exit status."""
    import torch

    from ..bench import (
        format_table,
        infer_contenders,
        machine_summary,
        measure,
        train_contenders,
    )
    from ..inference.runtime import resolve_device

    positive(args, "batch_size", "image_size", "warmup", "rounds", "threads")
    if args.mode == "train" and (args.dtype is not None or args.compile):
        raise CLIError("--dtype and --compile apply to --mode infer; --mode train times train_step with lucid's fast defaults")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    model = load_model(args.model, parse_set(args.set))
    name = args.model if not Path(args.model).exists() else ""
    common = {"batch": args.batch_size, "size": args.image_size, "device": device, "peers": not args.no_peers}
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
