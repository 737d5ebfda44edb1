"""Training input pipeline, images/s per core: lucid against timm and torchvision on the same JPEGs.

Writes a class-folder tree of ImageNet-sized JPEGs (500x375, quality 90; smooth gradients, soft
blobs and noise, so the codec sees photo-like content), then in one process with one thread
(images/s per core) runs, in interleaved rounds over the same shuffled files:

- lucid: ``open_source`` + ``make_splits`` (reduced-size JPEG decode in the random-resized crop);
- timm: ``timm.data.create_dataset`` + ``create_transform(is_training=True)``, colour jitter off;
- torchvision: ``ImageFolder`` with ``v2`` RandomResizedCrop, flip, to-tensor and normalise on PIL;
- and the CPU side of lucid's ``--decode gpu`` (read, parse the header, draw the crop; the GPU decodes).

All three use the same crop scale (lucid's :func:`~lucid.data.min_crop_scale` for the size) and
aspect range, horizontal flip and ImageNet normalisation, and are collated into batches. Prints
the medians and the ratios and the share of lucid's crops decoded at each JPEG scale, into
``benchmarks/results/input_pipeline.log``.

Usage: ``python benchmarks/input_pipeline.py [--images 400] [--rounds 5] [--per-round 64] [--sizes 128 176 224] [--result NAME]``
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import _results
import numpy as np
import torch
from PIL import Image

from lucid.data import (
    EncodedRandomResizedCrop,
    collate_encoded,
    collate_skipping,
    default_preprocessing,
    make_splits,
    min_crop_scale,
    open_source,
)
from lucid.data.decode import draft_request

CLASSES = 10
GPU_SIDE = "lucid --decode gpu, CPU side"


def write_photos(root: Path, count: int, seed: int = 0) -> None:
    """``count`` 500x375 JPEGs (quality 90) in ``CLASSES`` class folders."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:375, 0:500].astype(np.float32)
    for i in range(count):
        angle, phase = rng.uniform(0, 2 * np.pi, 2)
        wave = np.sin((x * np.cos(angle) + y * np.sin(angle)) / rng.uniform(20, 120) + phase)
        base = np.stack([wave * rng.uniform(40, 90) + rng.uniform(60, 190) for _ in range(3)], axis=-1)
        for _ in range(4):  # soft blobs: objects with edges the codec must keep
            cx, cy, r = rng.uniform(0, 500), rng.uniform(0, 375), rng.uniform(20, 120)
            blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
            base = base * (1 - blob) + rng.uniform(0, 255, 3) * blob
        pixels = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
        folder = root / f"class{i % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)


def contenders(root: Path, size: int) -> dict[str, torch.utils.data.Dataset]:
    """The three training datasets at ``size`` px, same crop scale and aspect range, flip, normalisation."""
    from timm.data import create_dataset, create_transform
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2

    prep = default_preprocessing(size, 3)
    scale = (min_crop_scale(size), 1.0)
    lucid = make_splits(open_source(root), 0.01, 0, prep).train
    timm_tf = create_transform(size, is_training=True, scale=scale, ratio=(3 / 4, 4 / 3), hflip=0.5, color_jitter=None,
                               auto_augment=None, re_prob=0.0, interpolation="bilinear")
    timm = create_dataset("", root=str(root), split="", is_training=True, transform=timm_tf)
    tv_tf = v2.Compose([v2.RandomResizedCrop(size, scale=scale, antialias=True), v2.RandomHorizontalFlip(), v2.PILToTensor(),
                        v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(prep.mean), list(prep.std))])
    tv = ImageFolder(str(root), transform=tv_tf)
    encoded = make_splits(open_source(root), 0.01, 0, prep, train_steps=EncodedRandomResizedCrop(size, 3, scale=scale)).train
    return {"lucid": lucid, "timm": timm, "torchvision": tv, GPU_SIDE: encoded}


def collate(samples: list) -> torch.Tensor:
    """Stack a batch (lucid's collate functions for lucid; plain stacking for the peers)."""
    if isinstance(samples[0][0], tuple):
        return collate_encoded(samples).boxes
    if isinstance(samples[0], tuple) and isinstance(samples[0][0], torch.Tensor):
        return torch.stack([s[0] for s in samples])
    return collate_skipping(samples).images


def rate(dataset: torch.utils.data.Dataset, order: list[int], batch: int = 32) -> float:
    """Images/s decoding, augmenting and collating ``order`` from ``dataset`` in this thread."""
    start = time.perf_counter()
    for i in range(0, len(order), batch):
        images = collate([dataset[j] for j in order[i:i + batch]])
        assert images.shape[0] == len(order[i:i + batch])
    return len(order) / (time.perf_counter() - start)


def draft_scales(root: Path, size: int, draws: int = 2000) -> Counter:
    """How often lucid's crop decodes a 500x375 JPEG at 1/1, 1/2, 1/4, 1/8 (from the crop boxes it draws)."""
    from lucid.data import DecodeRandomResizedCrop

    crop = DecodeRandomResizedCrop(size, 3, scale=(min_crop_scale(size), 1.0))
    path = next(root.rglob("*.jpg"))
    counts: Counter = Counter()
    for _ in range(draws):
        top, left, h, w = crop.crop_box(500, 375)
        with Image.open(path) as image:
            image.draft("RGB", draft_request(500, 375, w, h, size))
            counts[f"1/{500 // image.size[0]}"] += 1
    return counts


def measure(root: Path, size: int, rounds: int, per_round: int, count: int) -> dict[str, list[float]]:
    """Interleaved rounds: each round every contender takes the same shuffled files, in a rotating order."""
    datasets = contenders(root, size)
    names = list(datasets)
    results: dict[str, list[float]] = {n: [] for n in names}
    for name in names:  # warm up: open files, build transforms
        rate(datasets[name], list(range(8)))
    for r in range(rounds):
        order = random.Random(r).sample(range(len(datasets["lucid"])), per_round)
        for name in names[r % len(names):] + names[:r % len(names)]:
            results[name].append(rate(datasets[name], order))
    return results


def report(args: argparse.Namespace, table: dict[int, dict[str, list[float]]], scales: dict[int, Counter]) -> str:
    lines = [
        f"data: {args.images} generated 500x375 JPEGs (quality 90), {args.rounds} interleaved rounds of {args.per_round} images per contender",
        "",
        "| size | lucid img/s | timm img/s | torchvision img/s | lucid / timm | lucid / torchvision |",
        "|---|---|---|---|---|---|",
    ]
    for size, results in table.items():
        med = {n: statistics.median(v) for n, v in results.items()}
        lines.append(f"| {size} | {med['lucid']:.0f} | {med['timm']:.0f} | {med['torchvision']:.0f} | "
                     f"{med['lucid'] / med['timm']:.2f}x | {med['lucid'] / med['torchvision']:.2f}x |")
    lines += ["", "With `--decode gpu` the loader workers only read each file, parse its header and draw the crop; decoding, "
              "cropping and resizing run on the GPU (not measured here). The CPU work per image that remains:", ""]
    for size, results in table.items():
        side = statistics.median(results[GPU_SIDE])
        lines.append(f"- {size} px: {side:.0f} img/s per core ({side / statistics.median(results['timm']):.1f}x timm's full CPU pipeline)")
    lines += ["", "Share of lucid's crops decoded at each JPEG scale (500x375 input):", ""]
    for size, counts in scales.items():
        total = sum(counts.values())
        lines.append(f"- {size} px: " + ", ".join(f"{k}: {v / total:.0%}" for k, v in sorted(counts.items())))
    lines += ["", "Per-round figures (img/s):", ""]
    for size, results in table.items():
        for name, values in results.items():
            lines.append(f"- {size} px {name}: " + ", ".join(f"{v:.0f}" for v in values))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=64)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 176, 224])
    _results.add_result_option(parser, "input_pipeline")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with _results.recording(args.result) as figures, tempfile.TemporaryDirectory(prefix="lucid-input-bench-") as tmp:
        print(f"load average at the start: {os.getloadavg()[0]:.1f}; one process, one thread")
        root = Path(tmp)
        write_photos(root, args.images)
        table = {size: measure(root, size, args.rounds, args.per_round, args.images) for size in args.sizes}
        scales = {size: draft_scales(root, size) for size in args.sizes}
        print(report(args, table, scales))
        for size, results in table.items():
            lucid, timm = statistics.median(results["lucid"]), statistics.median(results["timm"])
            figures.append(f"input pipeline {size} px, images/s per core: lucid {lucid:.0f} vs timm {timm:.0f} = {lucid / timm:.2f}x")


if __name__ == "__main__":
    main()
