"""``lucid data``: ``pack`` a data source into WebDataset shards (or a Hugging Face dataset), ``info`` on any source."""
from __future__ import annotations

import argparse
import json


def _source_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-split", dest="split", default=None, help="Hugging Face datasets: the split to read (default: train + validation)")
    p.add_argument("--image-column", default=None, help="Hugging Face datasets: the image column (default: the Image feature)")
    p.add_argument("--label-column", default=None, help="Hugging Face datasets: the label column (default: the ClassLabel feature)")


def add(sub: argparse._SubParsersAction) -> None:
    """Declare the ``data`` subcommand with its ``pack`` and ``info`` actions."""
    p = sub.add_parser("data", help="pack a data source as WebDataset shards; show what a data source holds")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    pack = actions.add_parser("pack", help="write SRC (image folder, shards or Hugging Face dataset) as WebDataset shards")
    pack.add_argument("src", metavar="SRC", help="any --data source: image folder, .tar shards, save_to_disk folder, parquet, hf:user/name")
    pack.add_argument("out", metavar="OUT", help="new folder to write (appears complete or not at all)")
    pack.add_argument("--shard-size", type=int, default=1000, help="samples per shard (default 1000)")
    pack.add_argument("--max-side", type=int, default=None, metavar="PX", help="re-encode images whose long side exceeds PX to PX (JPEG, quality 90)")
    pack.add_argument("--format", default="shards", choices=("shards", "hf"), help="shards: WebDataset .tar files; hf: a save_to_disk dataset")
    _source_options(pack)
    pack.set_defaults(func=run_pack)
    info = actions.add_parser("info", help="format, classes and sample counts of a data source")
    info.add_argument("path", metavar="PATH", help="any --data source")
    info.add_argument("--verify", action="store_true", help="check every file against the sha256 in manifest.json (pack output)")
    info.add_argument("--json", action="store_true", help="print the result as JSON")
    _source_options(info)
    info.set_defaults(func=run_info)


def _options(args: argparse.Namespace) -> dict[str, str | None]:
    return {"split": args.split, "image_column": args.image_column, "label_column": args.label_column}


def run_pack(args: argparse.Namespace) -> int:
    """Pack SRC into OUT and print what was written."""
    from ..data.pack import pack

    manifest = pack(args.src, args.out, shard_size=args.shard_size, max_side=args.max_side, fmt=args.format, **_options(args))
    for part, entry in manifest["parts"].items():
        print(f"{part}: {entry['samples']} sample(s) in {len(entry['files'])} file(s), {entry['skipped']} skipped")
    print(f"wrote {args.out} ({manifest['format']}, {len(manifest['classes'])} classes)")
    return 0


def run_info(args: argparse.Namespace) -> int:
    """Print the format, classes and counts of PATH (and the files that fail --verify); exit 1 on a mismatch."""
    from ..data.pack import data_info

    info = data_info(args.path, verify=args.verify, **_options(args))
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        classes = info["classes"]
        shown = ", ".join(classes[:10]) + (f", ... ({len(classes)} in all)" if len(classes) > 10 else "")
        print(f"format: {info['format']}\nlocation: {info['path']}\nclasses: {len(classes)} ({shown})")
        for part, count in info["samples"].items():
            print(f"{part}: {count} sample(s)" + (f", {info['skipped'][part]} skipped" if part in info["skipped"] else ""))
        for line in info.get("mismatched", []):
            print(f"mismatch: {line}")
        if args.verify:
            print(f"verify: {'all files match the manifest' if not info['mismatched'] else str(len(info['mismatched'])) + ' file(s) differ'}")
    return 1 if info.get("mismatched") else 0
