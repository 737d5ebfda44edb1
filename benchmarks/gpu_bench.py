"""lucid vs torchvision and timm on one NVIDIA GPU (written for an H100): inference and training.

ResNeXt-50 32x4d, 224x224, batch 256, bf16, channels-last, same weights and input, one process,
interleaved after warm-up (the first warm-up call of a compiled contender compiles it).
Needs torch, torchvision and timm; downloads nothing. Aims to finish in under 5 minutes.

Rows:
* inference: torchvision eager fp32 NCHW, eager bf16 channels-last, compiled bf16 channels-last;
  timm eager bf16 channels-last; lucid ``optimize_for_inference(bf16)`` eager and compiled;
* training step: torchvision eager bf16-autocast channels-last; lucid ``train_step`` with
  ``fast_defaults`` eager and compiled (what ``lucid train`` runs on CUDA for runs of 1,000,000+ images, or with ``--compile``).

Usage: ``python benchmarks/gpu_bench.py [--batch-size 256] [--rounds 10] [--no-compile] [--json OUT] [--result NAME]``;
``--dry-run`` runs every non-compiled row on the CPU at a tiny size to check the script itself (and
writes no result file unless ``--result`` is given). The output also goes to
``benchmarks/results/NAME.log`` (default ``gpu_bench``) under a header.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import _results
import torch

from lucid.benchmark import (
    Contender,
    describe,
    format_table,
    lucid_infer,
    lucid_train,
    machine_summary,
    make_batch,
    measure,
    peer_infer,
    peer_models,
    peer_train,
    ratio_lines,
)
from lucid.core.fileio import atomic_write
from lucid.models import create_model

BF16 = torch.bfloat16


def inference_rows(name: str, model: torch.nn.Module, batch: int, size: int, device: torch.device, compile: bool) -> list[Contender]:
    model = model.to(device).eval()
    x, _ = make_batch(model, batch, size, device)
    peers = peer_models(name, model)
    rows = []
    if "torchvision" in peers:
        tv = peers["torchvision"]
        rows.append(Contender("torchvision", describe(torch.float32, False, False), peer_infer(tv, x), batch, peer=True))
        rows.append(Contender("torchvision", describe(BF16, True, False), peer_infer(tv, x, BF16, True), batch, peer=True))
        if compile:
            rows.append(Contender("torchvision", describe(BF16, True, True), peer_infer(tv, x, BF16, True, True), batch, peer=True))
    if "timm" in peers:
        rows.append(Contender("timm", describe(BF16, True, False), peer_infer(peers["timm"], x, BF16, True), batch, peer=True))
    for c in (False, True) if compile else (False,):
        setup, run = lucid_infer(model, x, BF16, c)
        rows.append(Contender("lucid", setup, run, batch))
    return rows


def training_rows(name: str, model: torch.nn.Module, batch: int, size: int, device: torch.device, compile: bool) -> list[Contender]:
    model = model.to(device)
    x, y = make_batch(model, batch, size, device)
    peers = peer_models(name, model)
    rows = []
    if "torchvision" in peers:
        step = peer_train(peers["torchvision"], x, y, amp_dtype=BF16, channels_last=True)
        rows.append(Contender("torchvision", "train step, " + describe(BF16, True, False, autocast=True), step, batch, peer=True))
    for c in (False, True) if compile else (False,):
        setup, step = lucid_train(model, x, y, compile=c)
        rows.append(Contender("lucid", setup, step, batch))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnext_50_32x4d")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--train-batch-size", type=int, default=None, help="default: --batch-size")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows (they take most of the run)")
    p.add_argument("--dry-run", action="store_true", help="CPU, batch 2, 64x64, 1 round, no compile: checks the script runs")
    p.add_argument("--json", default=None, metavar="OUT", help="also write every timing to this JSON file")
    _results.add_result_option(p, "gpu_bench")
    args = p.parse_args()
    if args.dry_run:
        args.result = "-" if "--result" not in sys.argv else args.result
        device = torch.device("cpu")
        args.batch_size, args.image_size, args.warmup, args.rounds, args.no_compile = 2, 64, 1, 1, True
    elif not torch.cuda.is_available():
        p.error("no CUDA device; use --dry-run to check the script on a CPU")
    else:
        device = torch.device("cuda")
        torch.backends.cudnn.benchmark = True  # for every contender alike
    with _results.recording(args.result, device) as figures:
        run(args, device, figures)
    return 0


def run(args: argparse.Namespace, device: torch.device, figures: list[str]) -> None:
    """Time the inference rows, then the training rows; print the tables and the ratios."""
    train_batch = args.train_batch_size or args.batch_size
    compile = not args.no_compile
    start = time.perf_counter()
    print(f"{args.model}, batch {args.batch_size} (train {train_batch}), {args.image_size}x{args.image_size}")
    torch.manual_seed(0)
    model = create_model(args.model)
    record: dict[str, object] = {"machine": machine_summary(device), "argv": sys.argv, "runs": {}}
    summary = []
    log = lambda line: print(f"  [{time.perf_counter() - start:5.0f} s] {line}", file=sys.stderr, flush=True)  # noqa: E731
    for what, build, batch in (("inference", inference_rows, args.batch_size), ("training", training_rows, train_batch)):
        results = measure(build(args.model, model, batch, args.image_size, device, compile),
                          warmup=args.warmup, rounds=args.rounds, device=device, log=log)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        print(f"\n## {what} ({time.perf_counter() - start:.0f} s so far)\n")
        print(format_table(results))
        summary += ratio_lines(what, results)
        figures += [line for line in ratio_lines(what, results) if "torchvision" in line]
        record["runs"][what] = [r.to_dict() for r in results]  # type: ignore[index]
    print("\n## ratios (median time of the peer / median time of lucid)\n")
    print("\n".join(summary))
    print(f"\n# total {time.perf_counter() - start:.0f} s")
    if args.json:
        atomic_write(args.json, lambda tmp: tmp.write_text(json.dumps(record, indent=1)))


if __name__ == "__main__":
    sys.exit(main())
