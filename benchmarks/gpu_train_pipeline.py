"""ResNet-50 training on a GPU machine from WebDataset shards: is the input pipeline the bottleneck?

One script, prepared to run as it is on a CUDA machine:

1. writes ImageNet-sized JPEGs (500x375, quality 90) and packs them as shards with ``lucid data pack``;
2. the model's training images/s on synthetic batches already on the GPU (bf16 autocast, channels-last);
3. the input pipeline's images/s alone (loader workers, reduced-size CPU decode; then ``--decode gpu``:
   workers pass the bytes on and TorchCodec/nvJPEG decodes each batch on the GPU);
4. a short training run from the shards with CPU decode, then with GPU decode;
5. a two-process DDP run from the shards (one process per GPU with NCCL when there are two or more
   GPUs; two processes sharing one GPU through gloo when there is one), checking that each sample
   is seen exactly once.

Writes ``benchmarks/results/gpu_train_pipeline.log``. ``--dry-run`` runs every step at tiny sizes on
the CPU (a small ResNet, 64 px, a few steps) to check the script; it writes only to ``--out`` when given.

Usage: ``python benchmarks/gpu_train_pipeline.py [--dry-run] [--images 4096] [--batch 256] [--steps 40] [--out FILE]``
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _results
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from input_pipeline import write_photos
from torch.utils.data import DataLoader, DistributedSampler

from lucid.data import (
    EncodedRandomResizedCrop,
    GpuBatchDecoder,
    collate_encoded,
    collate_skipping,
    default_preprocessing,
    default_workers,
    gpu_decode_pipeline,
    loader_options,
    make_splits,
    open_source,
)
from lucid.data.pack import pack
from lucid.models import create_model


@dataclass
class Settings:
    """Sizes of one run: the real GPU run, or the tiny CPU check of ``--dry-run``."""

    images: int
    batch: int
    steps: int
    size: int
    model: dict[str, Any]
    device: torch.device
    workers: int


def settings(args: argparse.Namespace) -> Settings:
    if args.dry_run:
        tiny = {"channels": [8, 16, 32, 64]}
        return Settings(24, 2, 1, 32, {"name": "resnet_18", **tiny}, torch.device("cpu"), 1)
    if not torch.cuda.is_available():
        raise SystemExit("gpu_train_pipeline: no CUDA device here; use --dry-run to check the script on a CPU")
    return Settings(args.images, args.batch, args.steps, 176, {"name": "resnet_50"}, torch.device("cuda"), default_workers())


def build_model(s: Settings, classes: int) -> torch.nn.Module:
    options = dict(s.model)
    model = create_model(options.pop("name"), num_classes=classes, **options)
    return model.to(s.device, memory_format=torch.channels_last)


def train(model: torch.nn.Module, batches: Any, steps: int, device: torch.device, decode: Any = None) -> float:
    """Images/s of ``steps`` training steps (bf16 autocast) after two warm-up steps; ``decode`` turns a loader batch into one on the device."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    iterator, seen, start = iter(batches), 0, 0.0
    for step in range(steps + 2):
        if step == 2:
            _sync(device)
            start, seen = time.perf_counter(), 0
        batch = decode(next(iterator)) if decode else next(iterator)
        images = batch.images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = loss_fn(model(images), batch.targets.to(device, non_blocking=True))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seen += len(images)
    _sync(device)
    return seen / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class Synthetic:
    """Endless batches of random images already on the device: the model's own speed."""

    def __init__(self, s: Settings, classes: int) -> None:
        self.images = torch.randn(s.batch, 3, s.size, s.size, device=s.device)
        self.targets = torch.randint(0, classes, (s.batch,), device=s.device)

    def __iter__(self) -> Synthetic:
        return self

    def __next__(self) -> Any:
        return self


def loaders(s: Settings, shards: Path) -> tuple[DataLoader, DataLoader, Any]:
    """The CPU-decode loader, and the GPU-decode loader with its batch decoder (in a dry run, that decoder runs on the CPU)."""
    prep = default_preprocessing(s.size, 3)
    options = loader_options(s.device.type, s.workers)
    cpu = make_splits(open_source(shards), 0.01, 0, prep).train
    cpu_loader = DataLoader(cpu, batch_size=s.batch, shuffle=True, drop_last=True, collate_fn=collate_skipping, **options)
    if s.device.type == "cuda":
        crop, collate, decoder = gpu_decode_pipeline(prep, s.device)
    else:
        crop, collate, decoder = EncodedRandomResizedCrop(s.size, 3), collate_encoded, GpuBatchDecoder(prep, s.device)
    gpu = make_splits(open_source(shards), 0.01, 0, prep, train_steps=crop).train
    return cpu_loader, DataLoader(gpu, batch_size=s.batch, shuffle=True, drop_last=True, collate_fn=collate, **options), decoder


def loader_rate(loader: DataLoader, batches: int, decode: Any = None, device: torch.device | None = None) -> float:
    """Images/s of the input pipeline alone (one warm-up batch, then ``batches``)."""
    iterator = iter(loader)
    next(iterator)
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
        batch = next(iterator)
        if decode:
            batch = decode(batch)
        seen += len(batch.targets)
    if device is not None:
        _sync(device)
    return seen / (time.perf_counter() - start)


def repeat(loader: DataLoader) -> Any:
    """Batches of ``loader`` without end (new epochs as needed)."""
    while True:
        yield from loader


def ddp_worker(rank: int, world: int, shards: str, s: Settings, port: int, results: Any) -> None:
    """One DDP process: trains ``s.steps`` steps and reports its img/s and the sample indices it saw in one epoch."""
    use_cuda = s.device.type == "cuda"
    device = torch.device("cuda", rank % torch.cuda.device_count()) if use_cuda else torch.device("cpu")
    # NCCL needs one GPU per process; two processes sharing one GPU reduce their gradients through gloo.
    nccl = use_cuda and torch.cuda.device_count() >= world
    dist.init_process_group("nccl" if nccl else "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    dataset = make_splits(open_source(shards), 0.01, 0, default_preprocessing(s.size, 3)).train
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=0)
    seen = list(iter(sampler))
    model = build_model(Settings(**{**s.__dict__, "device": device}), len(dataset.classes))
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if use_cuda else None)
    loader = DataLoader(dataset, batch_size=s.batch, sampler=sampler, drop_last=True, collate_fn=collate_skipping,
                        **loader_options(device.type, max(1, s.workers // world)))
    rate = train(net, repeat(loader), s.steps, device)
    results.put((rank, rate, [dataset.indices[i] for i in seen], len(dataset), device.type))
    dist.destroy_process_group()


def ddp(s: Settings, shards: Path) -> dict[str, Any]:
    world, port = 2, 29500 + os.getpid() % 1000
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    mp.start_processes(ddp_worker, args=(world, str(shards), s, port, results), nprocs=world, start_method="spawn")
    rows = sorted(results.get() for _ in range(world))
    indices = [i for row in rows for i in row[2]]
    padded = len(indices) - rows[0][3]  # DistributedSampler pads the last uneven share with repeats
    return {"processes": world, "device": rows[0][4], "img_s": sum(r[1] for r in rows),
            "exactly_once": len(set(indices)) == rows[0][3] and padded < world, "padded": padded}


def run(args: argparse.Namespace, s: Settings, tmp: Path) -> dict[str, Any]:
    write_photos(tmp / "photos", s.images)
    pack(str(tmp / "photos"), tmp / "shards", shard_size=max(8, s.images // 8))
    classes = len(open_source(tmp / "shards").classes)
    figures: dict[str, Any] = {}
    model = build_model(s, classes)
    figures["model (synthetic batches on the device)"] = train(model, Synthetic(s, classes), s.steps, s.device)
    cpu_loader, gpu_loader, decoder = loaders(s, tmp / "shards")
    figures["input pipeline, CPU decode"] = loader_rate(cpu_loader, s.steps)
    figures["training from shards, CPU decode"] = train(model, repeat(cpu_loader), s.steps, s.device)
    figures["input pipeline, GPU decode"] = loader_rate(gpu_loader, s.steps, decoder, s.device)
    figures["training from shards, GPU decode"] = train(model, repeat(gpu_loader), s.steps, s.device, decoder)
    figures["ddp"] = ddp(s, tmp / "shards")
    return figures


def report(args: argparse.Namespace, s: Settings, figures: dict[str, Any]) -> str:
    name = torch.cuda.get_device_name() if s.device.type == "cuda" else "CPU (dry run)"
    lines = [f"machine: {name}; {len(os.sched_getaffinity(0))} CPU cores, {s.workers} loader workers",
             f"{s.images} generated 500x375 JPEGs (quality 90), {s.size} px crops, batch {s.batch}, {s.steps} timed steps, bf16 autocast, channels-last",
             "", "| what | images/s |", "|---|---|"]
    for what, value in figures.items():
        if what != "ddp":
            lines.append(f"| {what} | {value:.0f} |")
    d = figures["ddp"]
    lines += ["", f"DDP: {d['processes']} processes on {d['device']}, {d['img_s']:.0f} img/s in all; every sample once per epoch: "
              f"{d['exactly_once']} (DistributedSampler repeated {d['padded']} sample(s) to even out the shares)"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="every step at tiny sizes on the CPU")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40)
    _results.add_result_option(parser, "gpu_train_pipeline")
    args = parser.parse_args()
    s = settings(args)
    name = "-" if args.dry_run else args.result  # a dry run's figures mean nothing as speeds
    with _results.recording(name, s.device) as headline, tempfile.TemporaryDirectory(prefix="lucid-gpu-bench-") as tmp:
        figures = run(args, s, Path(tmp))
        print(report(args, s, figures))
        headline += [f"{what}: {value:.0f} img/s" for what, value in figures.items() if what != "ddp"]


if __name__ == "__main__":
    main()
