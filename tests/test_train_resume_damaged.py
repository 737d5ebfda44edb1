"""``--resume`` of an edited or damaged ``last.pt`` or ``metrics.jsonl``: refused in one line, before any step.

Each case edits one key of a real interrupted run's state (or one of its files); the error names
the file and the key, and the state on disk is left as it was: nothing was trained.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import interrupt_at, make_folder, one_line_error, tiny_config

from lucid.train.engine import fit
from lucid.train.state import save_state


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of 3 epochs stopped in its 2nd: last.pt holds epoch 1, the best model is that of epoch 1."""
    folder = make_folder(tmp_path_factory.mktemp("images"))
    out = tmp_path_factory.mktemp("run") / "out"
    with pytest.MonkeyPatch.context() as monkeypatch, pytest.raises(KeyboardInterrupt):
        interrupt_at(monkeypatch, 6)
        fit(tiny_config(folder, out, epochs=3))
    return out


def _edit(key: str, change: Callable[[Any], Any]) -> Callable[[Path], None]:
    def edit(out: Path) -> None:
        state = torch.load(out / "last.pt", weights_only=True)
        state[key] = change(state[key])
        save_state(out / "last.pt", {k: v for k, v in state.items() if k != "format"})
    return edit


def _drop_group(optimizer: dict) -> dict:
    return {**optimizer, "param_groups": optimizer["param_groups"][:1]}


def _bad_shape(optimizer: dict) -> dict:
    state = dict(optimizer["state"])
    first = next(iter(state))
    state[first] = {**state[first], "exp_avg": torch.zeros(3)}
    return {**optimizer, "state": state}


def _truncate(name: str) -> Callable[[Path], None]:
    def edit(out: Path) -> None:
        data = (out / name).read_bytes()
        (out / name).write_bytes(data[: len(data) // 2])
    return edit


def _metrics_line(line: str) -> Callable[[Path], None]:
    def edit(out: Path) -> None:
        with open(out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(line + "\n")
    return edit


CASES = {
    "epoch-text": (_edit("epoch", lambda v: "x"), ["last.pt", "'epoch'", "'x'"]),
    "epoch-negative": (_edit("epoch", lambda v: -5), ["last.pt", "'epoch'", "-5"]),
    "epoch-beyond": (_edit("epoch", lambda v: 7), ["last.pt", "'epoch'", "between 0 and 3"]),
    "step-beyond": (_edit("step", lambda v: 99), ["last.pt", "'step'", "99"]),
    "best-acc1-text": (_edit("best_acc1", lambda v: "abc"), ["last.pt", "'best_acc1'", "'abc'"]),
    "model-list": (_edit("model", lambda v: [1, 2]), ["last.pt", "'model'", "dict of tensors"]),
    "model-wrong-shape": (_edit("model", lambda v: {**v, "fc.weight": torch.zeros(2, 2)}), ["last.pt", "'model'", "fc.weight"]),
    "optimizer-groups": (_edit("optimizer", _drop_group), ["last.pt", "'optimizer'", "parameter groups"]),
    "optimizer-shapes": (_edit("optimizer", _bad_shape), ["last.pt", "'optimizer'", "exp_avg"]),
    "scheduler-missing-key": (_edit("scheduler", lambda v: {k: x for k, x in v.items() if k != "last_epoch"}), ["last.pt", "'scheduler'", "last_epoch"]),
    "scheduler-lambdas-missing": (_edit("scheduler", lambda v: {k: x for k, x in v.items() if k != "lr_lambdas"}), ["last.pt", "'scheduler'", "lr_lambdas"]),
    "rng-text": (_edit("rng", lambda v: "abc"), ["last.pt", "'rng'"]),
    "rng-wrong-type": (_edit("rng", lambda v: [{**v[0], "torch": torch.zeros(3)}]), ["last.pt", "'rng'"]),
    "rng-numpy-damaged": (_edit("rng", lambda v: [{**v[0], "numpy": ["MT19937", 5, 0, 0, 0.0]}]), ["last.pt", "'rng'"]),
    "config-lr-text": (_edit("config", lambda v: {**v, "lr": "abc"}), ["last.pt", "'config'", "lr"]),
    "config-workers-huge": (_edit("config", lambda v: {**v, "workers": 10**6}), ["last.pt", "'config'", "workers"]),
    "metrics-not-json": (_metrics_line("{oops"), ["metrics.jsonl", "line 2"]),
    "metrics-not-a-record": (_metrics_line("5"), ["metrics.jsonl", "record 2", "int"]),
    "metrics-epoch-text": (_metrics_line('{"epoch": "one"}'), ["metrics.jsonl", "record 2", "'one'"]),
    "best-model-truncated": (_truncate("model.safetensors"), ["model.safetensors", "damaged"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_damaged_state_is_refused_in_one_line_before_training(case: str, interrupted: Path, tmp_path: Path, capsys) -> None:
    edit, expected = CASES[case]
    out = tmp_path / "run"
    shutil.copytree(interrupted, out)
    edit(out)
    before = (out / "last.pt").read_bytes()
    one_line_error(capsys, ["train", "--resume", str(out)], *expected)
    assert (out / "last.pt").read_bytes() == before  # refused before any step was trained or saved


def test_the_undamaged_state_resumes(interrupted: Path, tmp_path: Path) -> None:
    from lucid.cli import main

    out = tmp_path / "run"
    shutil.copytree(interrupted, out)
    assert main(["train", "--resume", str(out)]) == 0
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 3
