"""SIGKILL at every step of a save: what is on disk always stays readable, and a resumed run ends bit-identical.

The kills land at chosen points, not after random delays: a process stops itself just before one of
its durable calls (an fsync or a rename, see ``helpers.pause_at_durable_call``) and is killed there.
A forked writer saves two different models alternately (config.json records which) and a training
state, and is killed before each durable call of two saves in turn; a real ``lucid train`` is killed
at three points of an epoch's saves, resumed each time, and must end exactly where an uninterrupted
run ends. After every kill, ``from_pretrained``, ``torch.load(weights_only=True)`` and ``--resume``
must read the folder, and a model folder is never a mix of two saves.
"""
from __future__ import annotations

import itertools
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from helpers import DURABLE_LOG_ENV, KILL_AT_ENV, KILL_MARKER_ENV, TINY_ARGS, log_durable_calls, pause_at_durable_call, read_metrics

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HELPERS = Path(__file__).resolve().parent / "helpers.py"
DEADLINE_S = 600  # only a hung process meets it: every wait below ends on an event


@pytest.fixture
def scratch(tmp_path: Path):
    """A folder in memory (/dev/shm) where there is one: a SIGKILL, unlike a power cut, leaves the page cache in
    place, so what a killed process leaves behind is the same with or without fsync, which tmpfs makes free."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="lucid-test-") as folder:
        yield Path(folder)


def _save(out: Path, models: list[torch.nn.Module], i: int) -> None:
    """Save model i % 2 with metadata {"i": i}, then a training state for step i."""
    from lucid.train.state import save_state

    models[i % 2].save_pretrained(out, metadata={"i": i})
    save_state(out / "last.pt", {"epoch": i, "model": models[i % 2].state_dict()})


def _in_child(body) -> int:
    """Fork; the child runs ``body()`` and never returns into pytest."""
    pid = os.fork()
    if pid == 0:
        try:
            body()
        finally:
            os._exit(1)
    return pid


def _calls_per_save(out: Path, models: list[torch.nn.Module]) -> int:
    """How many durable calls one save over ``out`` makes, counted in a child (the hooks stay there)."""
    log = out.with_suffix(".log")

    def save_once() -> None:
        log_durable_calls(log)
        _save(out, models, 1)
        os._exit(0)

    os.waitpid(_in_child(save_once), 0)
    calls = len(log.read_text().splitlines())
    log.unlink()
    return calls


def _kill_writer_at(point: int, out: Path, models: list[torch.nn.Module], first: int) -> None:
    """Save from step ``first`` on in a child that stops before its durable call number ``point``; kill it there."""
    paused, reached = os.pipe()

    def write() -> None:
        os.close(paused)
        pause_at_durable_call(point, lambda: os.write(reached, b"!"))
        for i in itertools.count(first):
            _save(out, models, i)

    pid = _in_child(write)
    os.close(reached)
    ready, _, _ = select.select([paused], [], [], DEADLINE_S)
    message = os.read(paused, 1) if ready else b""
    os.close(paused)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert message == b"!", f"the writer did not reach durable call {point}"


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _temporaries(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.iterdir() if ".tmp-" in p.name]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_killed_saves_never_leave_a_mixed_or_unreadable_folder(scratch: Path) -> None:
    from lucid.core.fileio import remove_stale_temporaries
    from lucid.models import create_model, from_pretrained

    models = [create_model("resnet_18", channels=[8, 16, 32, 64], num_classes=10) for _ in range(2)]
    weights = [m.state_dict() for m in models]
    out = scratch / "run"
    _save(out, models, 0)
    seen_steps, left_temporaries = set(), False
    for point in range(_calls_per_save(out, models) + 1):  # before each durable call of a save over a saved run, and after it
        _kill_writer_at(point, out, models, 1000 * (point + 1))
        left_temporaries |= bool(_temporaries(scratch, out))
        model = from_pretrained(out)
        i = model.metadata["i"]
        assert _same_weights(model.state_dict(), weights[i % 2]), f"config of save {i} beside the weights of another save"
        seen_steps.add(i)
        state = torch.load(out / "last.pt", weights_only=True)
        assert state["epoch"] <= i  # a complete earlier (or the same) save, consistent in itself:
        assert _same_weights(state["model"], weights[state["epoch"] % 2])
    assert left_temporaries and len(seen_steps) >= 2, (left_temporaries, seen_steps)  # kills landed mid-save, before and after its commit
    remove_stale_temporaries(out)
    remove_stale_temporaries(scratch)
    assert not _temporaries(scratch, out)


def _lucid(argv: list[str], **env: str) -> subprocess.Popen:
    """``lucid ARGV`` in a new process, through helpers.py so that a kill point can be set in ``env``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **env}
    return subprocess.Popen([sys.executable, str(HELPERS), *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _kill_at(argv: list[str], point: str, marker: Path) -> None:
    """Run ``lucid ARGV`` until it stops at ``point`` (see helpers.KILL_AT_ENV), then SIGKILL it."""
    proc = _lucid(argv, **{KILL_AT_ENV: point, KILL_MARKER_ENV: str(marker)})
    deadline = time.monotonic() + DEADLINE_S
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    proc.communicate()


def _state_commits(log: Path) -> list[int]:
    """The positions, among a run's durable calls, of the renames that put each epoch's last.pt in place."""
    calls = [line.split(" ", 1) for line in log.read_text().splitlines()]
    return [i for i, (name, target) in enumerate(calls) if name in ("replace", "rename") and Path(target).name == "last.pt"]


def _committed_epoch(commits: list[int], anchor: int, offset: int) -> int:
    """The epoch in last.pt after a kill before durable call ``commits[anchor] + offset`` of the reference run."""
    return max(epoch for epoch, position in enumerate(commits) if position < commits[anchor] + offset)


def test_killed_and_resumed_training_ends_as_an_uninterrupted_run(scratch: Path, folder: Path) -> None:
    from lucid.models import from_pretrained
    from lucid.train.state import load_state

    train = ["train", "--data", str(folder), *TINY_ARGS, "--image-size", "32", "--epochs", "5", "--batch-size", "8", "--workers", "0"]
    reference = _lucid([*train, "--out", str(scratch / "reference")], **{DURABLE_LOG_ENV: str(scratch / "calls.log")})
    assert reference.wait(DEADLINE_S) == 0, reference.communicate()
    commits = _state_commits(scratch / "calls.log")  # commits[e]: last.pt of epoch e (epoch 0: the state before training)
    assert len(commits) == 6, commits
    out = scratch / "out"
    argv = [*train, "--out", str(out)]
    # Offsets count from a process's first last.pt: epoch 0 for a new run, the epoch after the saved one for a resumed
    # run, which from there on makes the reference run's calls. Kill just after epoch 1's last.pt, in the middle of
    # epoch 3's saves, and just before epoch 4's last.pt is renamed into place.
    done = 0
    for anchor, offset in [(0, commits[1] - commits[0] + 1), (2, (commits[3] - commits[2]) // 2), (3, commits[4] - commits[3])]:
        _kill_at(argv, f"{offset}@last.pt", scratch / f"paused-{anchor}")
        assert load_state(out)["epoch"] == _committed_epoch(commits, anchor, offset) > done  # torch.load(weights_only=True) inside
        assert from_pretrained(out).config.num_classes == 3
        records = read_metrics(out)
        assert [r["epoch"] for r in records] == list(range(1, len(records) + 1))
        done = load_state(out)["epoch"]
        argv = ["train", "--resume", str(out)]
    finished = _lucid(argv)
    assert finished.wait(DEADLINE_S) == 0, finished.communicate()
    expected, got = load_state(scratch / "reference"), load_state(out)
    assert got["epoch"] == 5 and _same_weights(got["model"], expected["model"])
    keys = ("epoch", "train_loss", "val_loss", "val_acc1", "lr")
    for a, b in zip(read_metrics(scratch / "reference"), read_metrics(out), strict=True):
        assert [a[k] for k in keys] == [b[k] for k in keys]
