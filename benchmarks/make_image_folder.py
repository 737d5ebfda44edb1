"""Write a small generated image folder (``train/`` and ``val/`` class folders of PNGs) for export and
evaluation benchmarks that need real image files at a chosen size, offline.

Each class is a colour; every image is that colour with noise, a random bright square and a random
brightness, so the classes are learnable but not trivially separable after int8 rounding.

    python benchmarks/make_image_folder.py OUT --size 160 --train 40 --val 15
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

COLOURS = {"blue": (0.2, 0.3, 0.8), "green": (0.2, 0.7, 0.3), "red": (0.8, 0.25, 0.2), "yellow": (0.75, 0.7, 0.2)}


def write_split(root: Path, count: int, size: int, generator: torch.Generator) -> None:
    """``count`` PNGs of ``size`` px per class under ``root/<class>/``."""
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        base = torch.tensor(colour).view(3, 1, 1)
        for i in range(count):
            brightness = 0.6 + 0.8 * torch.rand(1, generator=generator)
            image = base * brightness + 0.35 * torch.randn(3, size, size, generator=generator)
            x, y = torch.randint(0, size // 2, (2,), generator=generator).tolist()
            image[:, y:y + size // 3, x:x + size // 3] += 0.4
            pixels = (image.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
            Image.fromarray(pixels).save(root / name / f"{i:04d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=160, help="image side in px")
    parser.add_argument("--train", type=int, default=40, help="training images per class")
    parser.add_argument("--val", type=int, default=15, help="validation images per class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(args.seed)
    write_split(args.out / "train", args.train, args.size, generator)
    write_split(args.out / "val", args.val, args.size, generator)
    print(f"wrote {len(COLOURS) * (args.train + args.val)} images to {args.out}")


if __name__ == "__main__":
    main()
