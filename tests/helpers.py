"""Helpers the test modules share: tiny image folders and training configs, CLI error checks, kill points.

Run as a script (``python tests/helpers.py ARGS``) it is ``lucid ARGS`` with the kill point that the
environment names (see :func:`kill_point_from_env`), so a test can stop a real ``lucid train`` at a
chosen moment of a save instead of after a random delay.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from lucid.cli import main
from lucid.train import epoch
from lucid.train.engine import TrainConfig

TINY_MODEL = {"model": "resnet_18", "overrides": {"channels": [8, 16, 32, 64]}}
TINY_ARGS = ["--model", "resnet_18", "--set", "channels=[8,16,32,64]"]
COLOURS = {"blue": (0.1, 0.2, 0.9), "green": (0.1, 0.8, 0.2), "red": (0.9, 0.1, 0.1)}

# The calls that make a write durable or visible: a kill between two of them is a kill at a distinct moment of a save.
DURABLE_CALLS = ("fsync", "fdatasync", "replace", "rename")
KILL_AT_ENV = "TEST_KILL_AT"  # "INDEX" or "INDEX@NAME": pause before that durable call (counted from the first call on NAME)
KILL_MARKER_ENV = "TEST_KILL_MARKER"  # the file created once the process is paused at its kill point
DURABLE_LOG_ENV = "TEST_DURABLE_LOG"  # the file that receives one "call target" line per durable call


def write_png_folder(root: Path, per_class: dict[str, int], seed: int = 0) -> list[Path]:
    """Noisy 40x40 PNGs whose dominant colour is their class: easy to learn, real files to decode."""
    from PIL import Image

    gen = torch.Generator().manual_seed(seed)
    paths = []
    for name, count in per_class.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        colour = torch.tensor(COLOURS[name]).view(3, 1, 1)
        for i in range(count):
            image = (colour + 0.25 * torch.randn(3, 40, 40, generator=gen)).clamp(0, 1)
            path = root / name / f"{i}.png"
            Image.fromarray((image * 255).to(torch.uint8).permute(1, 2, 0).numpy()).save(path)
            paths.append(path)
    return paths


def make_folder(root: Path) -> Path:
    """The tiny train/val PNG folder the training tests share: 12 + 4 images of each of three colours."""
    write_png_folder(root / "train", {c: 12 for c in COLOURS}, seed=1)
    write_png_folder(root / "val", {c: 4 for c in COLOURS}, seed=2)
    return root


def tiny_config(folder: Path, out: Path, **changes) -> TrainConfig:
    base = dict(data=str(folder), image_size=32, epochs=3, batch_size=8, lr=0.005, workers=0, out=str(out), **TINY_MODEL)
    base.update(changes)
    return TrainConfig(**base)


# A small ResNeXt for the int8 tests: grouped convolutions, one input channel for the 8x8 digits shown at 16x16.
DIGITS_RESNEXT = dict(cardinality=4, base_width=8, layers=[1, 1, 1, 1], channels=[8, 16, 32, 64], num_classes=10, in_channels=1,
                      stem_width=16)


def train_digits_resnext(epochs: int = 8) -> tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]:
    """DIGITS_RESNEXT trained on the bundled digits at 16x16 (a few seconds on one thread).

    Returns (eval-mode model, training images, validation images, validation labels). Its float top-1 is
    about 0.9, high enough that int8 keeping it, and agreeing with it, means something.
    """
    from lucid.data.folder import digits_splits
    from lucid.models import ResNeXt, ResNeXtConfig

    torch.manual_seed(0)
    train, val, _, _ = digits_splits(image_size=16, val_fraction=0.2, seed=0, augment=False)
    model = ResNeXt(ResNeXtConfig(**DIGITS_RESNEXT))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    order = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for idx in torch.randperm(len(train.targets), generator=order).split(64):
            loss = nn.functional.cross_entropy(model(train.images[idx]), train.targets[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval(), train.images, val.images, val.targets


def read_metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def one_line_error(capsys, argv: list[str], *expected: str) -> str:
    """``lucid ARGV`` exits 2 with one line on stderr that names each of ``expected``; returns that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"lucid {argv[0]}: error:"), err
    for text in expected:
        assert text in err, (text, err)
    return err


def assert_same_run(a: Path, b: Path) -> None:
    """Bit-identical weights, optimizer and schedule states, and the same metrics."""
    state_a = torch.load(a / "last.pt", weights_only=True)
    state_b = torch.load(b / "last.pt", weights_only=True)
    assert state_a["model"].keys() == state_b["model"].keys()
    for key, value in state_a["model"].items():
        assert torch.equal(value, state_b["model"][key]), key
    for index, per_param in state_a["optimizer"]["state"].items():
        for name, value in per_param.items():
            assert torch.equal(value, state_b["optimizer"]["state"][index][name]), (index, name)
    assert state_a["scheduler"] == state_b["scheduler"]
    for ra, rb in zip(read_metrics(a), read_metrics(b), strict=True):
        for key in ("epoch", "train_loss", "train_acc1", "val_loss", "val_acc1", "lr"):
            assert ra[key] == rb[key], (ra["epoch"], key)


def interrupt_at(monkeypatch: pytest.MonkeyPatch, call: int) -> dict[str, int]:
    """Make the ``call``-th training step raise KeyboardInterrupt; returns the step counter."""
    calls = {"n": 0}
    real_step = epoch.train_step

    def step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(epoch, "train_step", step)
    return calls


class SharedModule(nn.Module):
    """A module called three times, a block applied in a loop, and a dict output."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 8)
        self.act = nn.GELU()
        self.block = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8))
        self.head_a = nn.Linear(8, 5)
        self.head_b = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.act(self.inp(x))
        for _ in range(3):
            x = self.act(self.block(x))
        return {"logits": self.head_a(x), "aux": self.head_b(x)}


def _target(name: str, args: tuple) -> str:
    """What a durable call acts on: the destination path of a rename, the descriptor of an fsync."""
    return str(args[-1]) if name in ("replace", "rename") else f"fd {args[0]}"


def watch_durable_calls(on_call: Callable[[str, str], None]) -> None:
    """From now on in this process, ``on_call(name, target)`` runs before every durable call (os.fsync, os.replace...)."""
    for name in DURABLE_CALLS:
        real = getattr(os, name, None)
        if real is None:
            continue

        def watched(*args, _real=real, _name=name, **kwargs):
            on_call(_name, _target(_name, args))
            return _real(*args, **kwargs)

        setattr(os, name, watched)


def pause_at_durable_call(index: int, reached: Callable[[], None], after: str | None = None) -> None:
    """Stop this process before its ``index``-th durable call (0-based), to be killed there.

    With ``after``, counting starts at the first call whose target is a path named ``after`` (that
    call is number 0). At the point, ``reached()`` runs and the process then waits for its SIGKILL.
    """
    seen = {"count": -1 if after is None else None}

    def on_call(name: str, target: str) -> None:
        if seen["count"] is None and Path(target).name == after:
            seen["count"] = -1
        if seen["count"] is None:
            return
        seen["count"] += 1
        if seen["count"] == index:
            reached()
            while True:
                signal.pause()

    watch_durable_calls(on_call)


def log_durable_calls(log: Path) -> None:
    """Append one ``name target`` line to ``log`` for every durable call of this process."""

    def on_call(name: str, target: str) -> None:
        with open(log, "a") as f:
            f.write(f"{name} {target}\n")

    watch_durable_calls(on_call)


def kill_point_from_env() -> None:
    """Apply the kill point or the call log that the environment asks for (nothing when it asks for neither)."""
    if DURABLE_LOG_ENV in os.environ:
        log_durable_calls(Path(os.environ[DURABLE_LOG_ENV]))
    if KILL_AT_ENV in os.environ:
        index, _, after = os.environ[KILL_AT_ENV].partition("@")
        marker = Path(os.environ[KILL_MARKER_ENV])
        pause_at_durable_call(int(index), marker.touch, after or None)


if __name__ == "__main__":
    kill_point_from_env()
    sys.exit(main(sys.argv[1:]))
