"""``lucid eval``: accuracy and loss of a trained model on an image folder (or its digits split), and its confusion matrix."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import add_inference_args, load_trained_args, positive


def add(sub: argparse._SubParsersAction) -> None:
    """Declare the ``eval`` subcommand and its options."""
    p = sub.add_parser("eval", help="top-1/top-5 accuracy and loss of a trained model on an image folder")
    add_inference_args(p)
    p.add_argument("--data", metavar="DIR", default=None, help="image folder, WebDataset shards or Hugging Face dataset (its val part is used when present; default for digits models: their validation split)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--confusion", metavar="PNG", default=None, help="also draw the confusion matrix into this PNG (needs matplotlib)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation the parsed options ask for; returns the exit status."""
    from ..inference.predict import evaluate_digits, evaluate_folder

    positive(args, "batch_size")
    if args.workers < 0:
        positive(args, "workers")
    if args.confusion:
        from ..train.plots import pyplot

        pyplot()  # fail before the evaluation when matplotlib is missing
    trained, device, amp = load_trained_args(args)
    common = {"device": device, "amp_dtype": amp, "channels_last": False, "batch_size": args.batch_size, "confusion": bool(args.confusion)}
    if args.data is None:
        result = evaluate_digits(trained, **common)
    else:
        result = evaluate_folder(trained, args.data, workers=args.workers, **common)
    if args.confusion:
        from ..train.plots import plot_confusion

        plot_confusion(result["confusion"], trained.class_names, args.confusion,
                       title=f"{Path(args.checkpoint).resolve().name}: {result['count']} images, top-1 {result['acc1']:.4f}")
    matrix = result.pop("confusion", None)
    if args.json:
        print(json.dumps({**result, **({"confusion": matrix} if matrix is not None else {})}))
    else:
        skipped = f", {result['skipped']} unreadable skipped" if result["skipped"] else ""
        print(f"{result['count']} images{skipped}: acc1 {result['acc1']:.4f} acc5 {result['acc5']:.4f} loss {result['loss']:.4f}")
        if args.confusion:
            print(f"wrote {args.confusion}")
    return 0
