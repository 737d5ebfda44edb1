"""Print the worst relative logit difference of every torchvision/timm <-> lucid conversion the tests check.

Each row builds the real torchvision or timm model with random weights and realistic BatchNorm
statistics, converts its state dict, and compares logits (fp32, eval mode) with the lucid model:
max |difference| / max |logit|. The cases live in tests/test_weights_convert.py.

    .venv/bin/python scripts/check_conversion.py              # 2 x C x 64 x 64, as in the tests
    .venv/bin/python scripts/check_conversion.py --size 224
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_weights_convert as cases  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="image height and width (default 64)")
    parser.add_argument("--batch", type=int, default=2, help="images per batch (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pairs = [lambda c=c: cases.torchvision_pair(*c) for c in cases.TORCHVISION_CASES]
    pairs += [lambda c=c: cases.timm_pair(*c) for c in cases.TIMM_CASES]
    pairs += [cases.lucid_to_torchvision_pair, cases.lucid_to_timm_pair]
    print(f"input {args.batch} x C x {args.size} x {args.size}, fp32, eval mode; tolerance {cases.TOL:g}")
    worst = max(cases.compare(*make(), size=args.size, batch=args.batch) for make in pairs)
    print(f"\nworst: {worst:.2e} ({'within' if worst < cases.TOL else 'OVER'} {cases.TOL:g})")


if __name__ == "__main__":
    main()
