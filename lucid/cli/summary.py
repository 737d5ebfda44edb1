"""``lucid summary``: a per-layer table or a Mermaid diagram of a model."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import add_set, load_model, parse_set, parse_shape


def add(sub: argparse._SubParsersAction) -> None:
    """Declare the ``summary`` subcommand and its options."""
    p = sub.add_parser("summary", help="per-layer table (shapes, parameters, MACs) or Mermaid diagram of a model")
    p.add_argument("model", metavar="NAME_OR_FOLDER", help="a preset name (see `lucid models`) or a save_pretrained folder")
    p.add_argument("--input-shape", metavar="N,C,H,W", help="input shape (default 1,IN_CHANNELS,224,224)")
    p.add_argument("--depth", type=int, default=None,
                   help="table/json: module levels listed (default 3); mermaid/markdown: container levels drawn as subgraphs (default 2)")
    add_set(p, "config fields of a preset, e.g. --set num_classes=10 in_channels=1 stem_type=deep stem_width=32")
    p.add_argument("--format", choices=("table", "json", "mermaid", "markdown"), default="table",
                   help="markdown: the Mermaid diagram in a fenced block that renders on GitHub")
    p.add_argument("--collapse", choices=("shapes", "structure", "none"), default="shapes",
                   help="mermaid/markdown: fold repeated calls identical in structure and shapes (default), "
                        "alike in structure only (the folded picture), or none")
    p.add_argument("--direction", choices=("LR", "TB"), default="LR", help="mermaid/markdown: left to right or top to bottom")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the summary of a model the parsed options ask for; returns the exit status."""
    import contextlib

    import torch

    from .. import visual

    # A preset is built on the meta device: the summary needs shapes, not weights.
    where = contextlib.nullcontext() if Path(args.model).exists() else torch.device("meta")
    with where:
        model = load_model(args.model, parse_set(args.set))
    in_channels = getattr(getattr(model, "config", None), "in_channels", 3)
    shape = parse_shape(args.input_shape) if args.input_shape else (1, in_channels, 224, 224)
    depth = {} if args.depth is None else {"depth": args.depth}
    if args.format in ("table", "json"):
        result = visual.summary(model, shape, **depth)
        print(result if args.format == "table" else json.dumps(result.to_dict(), indent=2))
        return 0
    text = visual.mermaid(model, shape, title=Path(args.model).name, collapse=args.collapse, direction=args.direction, **depth)
    print(f"```mermaid\n{text}```" if args.format == "markdown" else text.rstrip("\n"))
    return 0
