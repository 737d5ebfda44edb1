"""``lucid train --data DIR`` against timm's ``train.py`` on the same image folder, same settings.

Writes scikit-learn's bundled digits as a class-folder tree (``DIR/train/<c>/*.png``, 1,438
images, and ``DIR/val/<c>/*.png``, 359 images, split by a seeded permutation), then runs both
tools back to back as separate processes on that folder: same model, epochs, batch, AdamW
(lr 2e-3, weight decay 0.05), cosine schedule with one warm-up epoch, label smoothing 0.1, bf16
autocast, channels-last and loader workers. Each tool keeps its own defaults for everything
else (augmentation, evaluation preprocessing, initialisation), which is what is compared.
Prints wall time, best validation top-1 and top-1 by epoch for each, and writes them as JSON.

timm's ``train.py`` is not part of the timm package: give the path of a copy from its public
repository (https://github.com/huggingface/pytorch-image-models/blob/main/train.py).

Usage: ``python benchmarks/train_vs_timm.py --timm-train PATH/train.py [--case resnext32|resnet18-48]
[--repeats N] [--timm-first] [--threads N] [--json OUT] [--result NAME]``; the output also goes to
``benchmarks/results/NAME.log`` (default ``train_vs_timm_<case>``) under a header.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _results
import numpy as np
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits

from lucid.core.fileio import atomic_write_text


@dataclass(frozen=True)
class Case:
    """One comparison: the folder written and the model both tools train on it."""

    lucid_model: str
    lucid_set: tuple[str, ...]
    timm_model: str
    timm_kwargs: tuple[str, ...]
    file_size: int  # pixels of the written images
    image_size: int  # training resolution
    epochs: int
    grey: bool = False  # write one-channel PNGs (both tools convert them to RGB)


CASES = {
    # The reported comparison: ResNeXt-50 32x4d with a deep stem of width 32, 32x32 RGB files.
    "resnext32": Case("resnext_50_32x4d", ("stem_type=deep", "stem_width=32"), "resnext50_32x4d",
                      ("stem_type=deep", "stem_width=32"), file_size=32, image_size=32, epochs=10),
    # A second folder so the defaults are not fitted to one: grey 64x64 files, ResNet-18 at 48 px.
    "resnet18-48": Case("resnet_18", (), "resnet18", (), file_size=64, image_size=48, epochs=15, grey=True),
}


def write_digits_folder(root: Path, size: int, grey: bool, seed: int = 0, val_fraction: float = 0.2) -> dict[str, int]:
    """The bundled digits as ``root/{train,val}/<digit>/<index>.png`` (``size`` px), split by a seeded permutation."""
    digits = load_digits()
    pixels = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    pixels = F.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)
    pixels = (pixels[:, 0] * 255).round().to(torch.uint8).numpy()
    order = torch.randperm(len(pixels), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = round(len(order) * val_fraction)
    counts = {"train": 0, "val": 0}
    for rank, index in enumerate(order):
        split = "val" if rank < n_val else "train"
        folder = root / split / str(int(digits.target[index]))
        folder.mkdir(parents=True, exist_ok=True)
        image = pixels[index] if grey else np.repeat(pixels[index][:, :, None], 3, axis=2)
        Image.fromarray(image).save(folder / f"{index:04d}.png")
        counts[split] += 1
    return counts


def lucid_command(case: Case, data: Path, out: Path, workers: int) -> list[str]:
    """``lucid train`` with the shared settings.

    Its defaults already are AdamW at 2e-3, weight decay 0.05, cosine with one warm-up epoch, label
    smoothing 0.1, and on a CPU with native bf16 bf16 autocast and channels-last.
    """
    command = [sys.executable, "-m", "lucid", "train", "--data", str(data), "--model", case.lucid_model]
    if case.lucid_set:
        command += ["--set", *case.lucid_set]
    return command + ["--image-size", str(case.image_size), "--epochs", str(case.epochs), "--batch-size", "64",
                      "--workers", str(workers), "--out", str(out)]


def timm_command(case: Case, train_py: Path, data: Path, out: Path, workers: int) -> list[str]:
    """timm's ``train.py`` with the same settings."""
    command = [sys.executable, str(train_py), str(data), "--model", case.timm_model]
    if case.timm_kwargs:
        command += ["--model-kwargs", *case.timm_kwargs]
    size = str(case.image_size)
    return command + ["--num-classes", "10", "--img-size", size, "--input-size", "3", size, size, "--epochs", str(case.epochs),
                      "-b", "64", "--opt", "adamw", "--lr", "2e-3", "--weight-decay", "0.05", "--sched", "cosine",
                      "--warmup-epochs", "1", "--smoothing", "0.1", "--device", "cpu", "--amp", "--amp-dtype", "bfloat16",
                      "--channels-last", "-j", str(workers), "--output", str(out.parent), "--experiment", out.name]


def lucid_curve(out: Path) -> list[float]:
    """Validation top-1 (percent) by epoch from the run's ``metrics.jsonl``."""
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [round(100 * json.loads(line)["val_acc1"], 2) for line in lines if line.strip()]


def timm_curve(out: Path) -> list[float]:
    """Validation top-1 (percent) by epoch from timm's ``summary.csv``."""
    with open(out / "summary.csv", newline="", encoding="utf-8") as f:
        return [round(float(row["eval_top1"]), 2) for row in csv.DictReader(f)]


def run_tool(name: str, command: list[str], out: Path, curve, log: Path, threads: int | None) -> dict[str, object]:
    """Run one training process to the end; its wall time (process start to exit) and curve."""
    print(f"$ {shlex.join(command)}", flush=True)
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as f:
        done = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=out.parent, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{name} failed (exit {done.returncode}); its output is in {log}:\n{log.read_text()[-3000:]}")
    top1 = curve(out)
    load = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    result = {"tool": name, "wall_s": round(wall, 1), "best_top1": max(top1), "top1_by_epoch": top1, "load_average_before_after": load,
              "command": shlex.join(command)}
    print(f"{name}: {wall:.1f} s, best val top-1 {max(top1):.2f}%, by epoch {', '.join(f'{a:.1f}' for a in top1)}; "
          f"load average {load[0]} before, {load[1]} after", flush=True)
    return result


def format_table(results: list[dict[str, object]]) -> str:
    """A Markdown table: tool, wall, best val top-1 and top-1 by epoch."""
    rows = ["| run | tool | wall | best val top-1 | val top-1 by epoch |", "|---|---|---|---|---|"]
    for r in results:
        by_epoch = ", ".join(f"{a:.1f}" for a in r["top1_by_epoch"])  # type: ignore[union-attr]
        rows.append(f"| {r['repeat']} | {r['tool']} | {r['wall_s']:.0f} s | {r['best_top1']:.1f}% | {by_epoch} |")
    return "\n".join(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timm-train", type=Path, required=True, metavar="PATH",
                   help="timm's train.py from https://github.com/huggingface/pytorch-image-models (not in the timm package)")
    p.add_argument("--case", choices=sorted(CASES), default="resnext32")
    p.add_argument("--repeats", type=int, default=1, help="back-to-back pairs to run (the order alternates)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timm-first", action="store_true", help="start with timm (then alternate)")
    p.add_argument("--threads", type=int, default=None,
                   help="OMP_NUM_THREADS for both tools (default: each tool's own choice, one thread per core)")
    p.add_argument("--work-dir", type=Path, default=None, help="where the folder and runs go (default: a temporary folder)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write every result to this JSON file")
    _results.add_result_option(p, "train_vs_timm_<case>")
    args = p.parse_args()
    if not args.timm_train.is_file():
        p.error(f"--timm-train: {str(args.timm_train)!r} does not exist; timm's train.py is not part of the timm package, "
                "download it from https://github.com/huggingface/pytorch-image-models (train.py at the repository root)")
    case = CASES[args.case]
    with _results.recording(args.result.replace("<case>", args.case)) as figures:
        results = run_pairs(args, case)
        for tool in ("lucid", "timm"):
            best = max(r["best_top1"] for r in results if r["tool"] == tool)
            figures.append(f"{tool}: best val top-1 {best:.1f}% ({args.case}, {case.epochs} epochs)")
    return 0


def run_pairs(args: argparse.Namespace, case: Case) -> list[dict[str, object]]:
    """Write the folder, run ``--repeats`` pairs of lucid and timm, print the table; every run's result."""
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="train_vs_timm-"))
    data = work / "data"
    if not data.exists():
        counts = write_digits_folder(data, case.file_size, case.grey)
        print(f"wrote {data}: {counts['train']} train / {counts['val']} val images, {case.file_size} px", flush=True)
    print(f"case {args.case}: {case}; torch {torch.__version__}, timm {timm.__version__}, {os.cpu_count()} CPUs, "
          f"threads {args.threads or 'default'}, load average {os.getloadavg()[0]:.1f}", flush=True)
    results = []
    for repeat in range(args.repeats):
        order = ["lucid", "timm"] if (repeat + args.timm_first) % 2 == 0 else ["timm", "lucid"]
        for tool in order:
            out = work / f"{tool}-{repeat}"
            if tool == "lucid":
                r = run_tool(tool, lucid_command(case, data, out, args.workers), out, lucid_curve, work / f"{tool}-{repeat}.log", args.threads)
            else:
                r = run_tool(tool, timm_command(case, args.timm_train, data, out, args.workers), out, timm_curve, work / f"{tool}-{repeat}.log", args.threads)
            results.append({"repeat": repeat, **r})
            if args.json:  # after every run, so an interrupted benchmark keeps what it measured
                atomic_write_text(args.json, json.dumps({"case": args.case, "argv": sys.argv, "results": results}, indent=1))
    print("\n" + format_table(results))
    return results


if __name__ == "__main__":
    sys.exit(main())
