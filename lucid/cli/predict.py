"""``lucid predict``: the top-k classes of a trained model for each image."""
from __future__ import annotations

import argparse
import json
import sys

from ..core.checks import printable
from .common import add_inference_args, load_trained_args


def add(sub: argparse._SubParsersAction) -> None:
    """Declare the ``predict`` subcommand and its options."""
    p = sub.add_parser("predict", help="top-k classes of a trained model for each image")
    add_inference_args(p)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the predictions the parsed options ask for; returns the exit status."""
    from ..inference.predict import predict_images

    trained, device, amp = load_trained_args(args)
    results = predict_images(trained, args.images, top_k=args.top_k, device=device, amp_dtype=amp)
    failed = 0
    for r in results:
        if "error" in r:
            failed += 1
            print(f"warning: {printable(r['image'])}: {r['error']}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps(r))
        else:
            print(f"{printable(r['image'])}: " + ", ".join(f"{t['class']} {t['probability']:.3f}" for t in r["top"]))
    if failed:
        print(f"lucid predict: {failed} of {len(results)} image(s) could not be read", file=sys.stderr)
    return 1 if failed else 0
