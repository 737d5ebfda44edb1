"""``lucid plot``: learning curves of a run as a PNG."""
from __future__ import annotations

import argparse
from pathlib import Path


def add(sub: argparse._SubParsersAction) -> None:
    """Declare the ``plot`` subcommand and its options."""
    p = sub.add_parser("plot", help="learning curves of a run (loss, accuracy, learning rate per epoch) as a PNG")
    p.add_argument("run", metavar="RUN", help="a lucid train output folder (with metrics.jsonl)")
    p.add_argument("--out", metavar="PNG", default=None, help="file to write (default RUN/curves.png)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the learning curves the parsed options ask for; returns the exit status."""
    from ..train.plots import plot_curves
    from ..train.rundir import read_metrics

    out = Path(args.out) if args.out else Path(args.run) / "curves.png"
    title = f"{Path(args.run).resolve().name}: learning curves"
    print(f"wrote {plot_curves(read_metrics(args.run), out, title=title)}")
    return 0
