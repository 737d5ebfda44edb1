"""``lucid train``: its flags are generated from :class:`lucid.train.TrainConfig`'s fields (help and defaults live there)."""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
from typing import Any

from .common import CLIError, Terminated, parse_set

_TYPES = {"int": int, "float": float, "str": str}
_GROUPS = ("data", "model", "optimisation", "speed and devices", "run")


def flag(field_name: str) -> str:
    """The command-line flag of a TrainConfig field."""
    return "--set" if field_name == "overrides" else "--" + field_name.replace("_", "-")


def _default_text(f: dataclasses.Field) -> str:
    if f.default is dataclasses.MISSING or f.default is None:
        return ""
    if isinstance(f.default, bool):
        return f" (default {'on' if f.default else 'off'})"
    return f" (default {f.default})"


def _add_field(group: argparse._ArgumentGroup, f: dataclasses.Field) -> None:
    meta = f.metadata
    kwargs: dict[str, Any] = {"help": meta["help"] + _default_text(f), "dest": f.name, **meta["cli"]}
    kwargs.pop("flag", None)
    base = str(f.type).replace(" | None", "")
    if f.name == "overrides":
        kwargs.update(nargs="+", action="extend", metavar="KEY=VALUE")
        kwargs["help"] = meta["help"] + " (repeatable)"
    elif base == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    elif base in _TYPES:
        kwargs["type"] = _TYPES[base]
    group.add_argument(flag(f.name), **kwargs)


def add(sub: argparse._SubParsersAction) -> None:
    """Declare the ``train`` subcommand and its options."""
    from ..train.config import TrainConfig

    p = sub.add_parser(
        "train",
        help="train a model (no arguments: the ResNeXt-50 32x4d on the bundled digits)",
        description="Train a preset on scikit-learn's bundled digits (default) or an image folder. "
        "Run under torchrun (or with --nproc N) for DistributedDataParallel training. "
        "Options left out take lucid.train.TrainConfig's defaults (the measured digits recipe).",
        argument_default=argparse.SUPPRESS,
    )
    groups = {name: p.add_argument_group(name) for name in _GROUPS}
    for f in dataclasses.fields(TrainConfig):
        _add_field(groups[f.metadata["group"]], f)
    groups["speed and devices"].add_argument("--nproc", type=int, metavar="N", help="start N training processes on this machine (DDP, like torchrun --standalone)")
    groups["run"].add_argument("--resume", metavar="OUT|auto", help="continue the run saved in OUT with its saved settings; "
                               "'auto' (with the run's own options and --out) continues --out's run if it has saved one, else starts it: "
                               "one command for every restart (torchrun --max-restarts, a requeued job)")
    p.set_defaults(func=run)


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated()


def run(args: argparse.Namespace) -> int:
    """Run the training run the parsed options ask for; returns the exit status."""
    from ..train.config import TrainConfig
    from ..train.distributed import launch_local
    from ..train.engine import fit

    given = {k: v for k, v in vars(args).items() if k not in ("command", "func", "nproc", "resume")}
    if "overrides" in given:
        given["overrides"] = parse_set(given["overrides"])
    resume = getattr(args, "resume", None)
    if resume is not None and resume != "auto":
        if given:
            raise CLIError(f"--resume continues with the saved settings; drop {', '.join(flag(k) for k in sorted(given))}")
        config = TrainConfig()
    else:
        config = TrainConfig(**given)
        config.validate()
    if "TORCHELASTIC_RUN_ID" not in os.environ:
        # Under torchrun the agent stops its workers with SIGTERM to restart them; a worker blocked in a
        # collective (waiting for a lost peer) runs no Python handler, so it keeps the default: exit at once.
        signal.signal(signal.SIGTERM, _terminate)
    nproc = getattr(args, "nproc", None)
    if nproc is None:
        fit(config, resume=resume)
        return 0
    if nproc < 1:
        raise CLIError(f"--nproc must be a positive int, got {nproc}")
    if "WORLD_SIZE" in os.environ:
        raise CLIError("--nproc starts its own processes; do not combine it with torchrun")
    try:
        launch_local(nproc, fit, config, resume)
    except RuntimeError as e:
        raise CLIError(str(e)) from None
    return 0
