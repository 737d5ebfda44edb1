"""``lucid models``: the presets with their parameters and GMACs."""
from __future__ import annotations

import argparse

from .common import CLIError


def add(sub: argparse._SubParsersAction) -> None:
    """Declare the ``models`` subcommand and its options."""
    p = sub.add_parser("models", help="list the model presets with their parameters and GMACs at 224x224")
    p.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'resnext*'")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the presets the parsed options ask for; returns the exit status."""
    import torch

    from ..models import create_model, list_models
    from ..visual import count_macs

    names = list_models(args.pattern)
    if not names:
        raise CLIError(f"no model matches {args.pattern!r}")
    width = max(len(n) for n in names + ["model"])
    print(f"{'model':<{width}}  {'params':>12}  {'GMACs@224':>9}")
    for name in names:
        with torch.device("meta"):  # shapes and counts only: nothing is allocated or initialised
            model = create_model(name)
        params = sum(p.numel() for p in model.parameters())
        macs = count_macs(model, (1, model.config.in_channels, 224, 224))
        print(f"{name:<{width}}  {params:>12,}  {macs / 1e9:>9.2f}")
    return 0
