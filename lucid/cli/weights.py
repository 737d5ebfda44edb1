"""``lucid weights``: published weights; converting, importing and averaging checkpoints."""
from __future__ import annotations

import argparse
from pathlib import Path

from .common import CLIError, add_set, load_model, parse_set


def add(sub: argparse._SubParsersAction) -> None:
    """Declare the ``weights`` subcommand and its options."""
    p = sub.add_parser("weights", help="published weights; convert and import torchvision/timm checkpoints")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = actions.add_parser("list", help="presets with published weights: tags, ImageNet accuracy, preprocessing")
    q.add_argument("preset", nargs="?", help="one preset (default: all)")
    q = actions.add_parser("download", help="download (once) and verify published weights; prints the cached file")
    q.add_argument("preset")
    q.add_argument("--tag", help="which weights (default: the preset's default tag)")
    layouts = ("auto", "lucid", "torchvision", "timm")
    q = actions.add_parser("convert", help="rename a checkpoint between the lucid, torchvision and timm layouts")
    q.add_argument("checkpoint", help=".safetensors, .pth, .pt or .bin (read without executing code)")
    q.add_argument("out", help="file to write: .safetensors, or .pth/.pt for torch.load users")
    q.add_argument("--source", choices=layouts, default="auto", help="layout of the checkpoint (default: detected)")
    q.add_argument("--to", choices=layouts[1:], default="lucid", help="layout to write (default lucid)")
    q = actions.add_parser("import", help="load a torchvision/timm/lucid checkpoint into a preset; write a save_pretrained folder")
    q.add_argument("checkpoint", help=".safetensors, .pth, .pt or .bin (read without executing code)")
    q.add_argument("--model", required=True, metavar="NAME", help="the preset it fits (see `lucid models`)")
    add_set(q, "config fields of the preset; timm's resnet50d: --set stem_type=deep stem_width=32 avg_down=true")
    q.add_argument("--source", choices=layouts, default="auto", help="layout of the checkpoint (default: detected)")
    q.add_argument("--out", required=True, metavar="FOLDER", help="folder to write config.json and model.safetensors to")
    q = actions.add_parser("average", help="average the weights of a run's last checkpoints (train with --keep-checkpoints K)")
    q.add_argument("sources", nargs="+", metavar="RUN_OR_FILE", help="run folders (their checkpoints/ in epoch order) or weight files")
    q.add_argument("--last", type=int, default=None, metavar="K", help="average only the last K checkpoints (default: all)")
    q.add_argument("--out", required=True, metavar="FOLDER", help="save_pretrained folder to write (the first run's model and metadata)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the weights action the parsed options ask for; returns the exit status."""
    from .. import weights

    if args.action == "list":
        presets = [args.preset] if args.preset else weights.list_pretrained()
        rows = [weights.info(preset, tag) for preset in presets for tag in weights.list_pretrained(preset)]
        width = max([len("tag"), *(len(w.tag) for w in rows)])
        print(f"{'preset':<18} {'tag':<{width}} {'top-1':>6} {'top-5':>6}  {'resize/crop':<11}  {'interp.':<8}  file")
        for w in rows:
            top1, top5 = (f"{v:.2f}" if v is not None else "-" for v in (w.top1, w.top5))
            where = f"{w.hf_hub_id} (Hugging Face Hub)" if w.hf_hub_id else w.filename
            print(f"{w.preset:<18} {w.tag:<{width}} {top1:>6} {top5:>6}  {f'{w.resize}/{w.crop}':<11}  {w.interpolation:<8}  {where}")
    elif args.action == "download":
        print(weights.download(args.preset, args.tag))
    elif args.action == "convert":
        state_dict = weights.convert(weights.load_file(args.checkpoint), args.source, to=args.to)
        print(f"wrote {weights.save_file(state_dict, args.out)} ({len(state_dict)} tensors, {args.to} layout)")
    elif args.action == "average":
        return _average(args)
    else:
        model = weights.load_checkpoint(load_model(args.model, parse_set(args.set)), args.checkpoint, source=args.source)
        print(f"wrote {model.save_pretrained(args.out)} ({args.model}); use it wherever a NAME_OR_FOLDER is accepted")
    return 0


def _average(args: argparse.Namespace) -> int:
    from ..checkpoints.io import load_into
    from ..inference.predict import load_trained
    from ..train.average import average_files, checkpoint_files

    runs = [Path(s) for s in args.sources if Path(s).is_dir()]
    if not runs:
        raise CLIError("weights average needs at least one run folder (it gives the architecture and class names)")
    files = checkpoint_files(args.sources, args.last)
    trained = load_trained(runs[0])
    load_into(trained.model, average_files(files))
    metadata = {"class_names": trained.class_names, "preprocessing": trained.preprocessing.to_dict(), "dataset": trained.dataset,
                "averaged": [str(f) for f in files]}
    trained.model.save_pretrained(args.out, metadata=metadata)
    print(f"wrote {args.out}: the mean of {len(files)} checkpoint(s) ({files[0].name} .. {files[-1].name})")
    return 0
