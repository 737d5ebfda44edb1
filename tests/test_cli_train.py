"""``lucid train``'s flags come from TrainConfig's fields: every field has one, with the field's default in its help."""
from __future__ import annotations

import dataclasses

from lucid.cli import build_parser
from lucid.cli.train import flag
from lucid.train.config import TrainConfig


def _train_parser():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices["train"]


def test_every_field_is_a_flag_whose_help_shows_the_default() -> None:
    actions = {a.dest: a for a in _train_parser()._actions}
    for f in dataclasses.fields(TrainConfig):
        action = actions[f.name]
        assert flag(f.name) in action.option_strings, f.name
        assert f.metadata["help"] in action.help
        if f.default not in (None, dataclasses.MISSING) and not isinstance(f.default, bool):
            assert f"(default {f.default})" in action.help, f.name
    assert "(default 8)" in actions["epochs"].help and actions["sched"].choices == ("cosine", "step", "plateau")


def test_flags_parse_to_the_fields_and_absent_flags_keep_the_config_defaults() -> None:
    parser = build_parser()
    args = vars(parser.parse_args(["train", "--epochs", "3", "--no-nesterov", "--model-ema", "--lr", "0.01", "--set", "stem_width=16"]))
    given = {k: v for k, v in args.items() if k not in ("command", "func")}
    assert given == {"epochs": 3, "nesterov": False, "model_ema": True, "lr": 0.01, "overrides": ["stem_width=16"]}
    assert vars(parser.parse_args(["train"])).keys() == {"command", "func"}  # everything else: TrainConfig's default
