"""SIGKILL at random moments, mid-write included: what is on disk always stays readable.

A forked writer saves two different models alternately (config.json records which) and a training
state, and is killed after a random delay, many times; a real ``lucid train`` is killed and resumed
a few times. After every kill, ``from_pretrained``, ``torch.load(weights_only=True)`` and
``--resume`` must read the folder, and a model folder is never a mix of two saves.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_train import TINY_ARGS, make_folder, one_thread, read_metrics  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("images"))


def _writer(out: Path, models: list[torch.nn.Module], i: int) -> None:
    """Save forever from step ``i`` on: model i % 2 with metadata {"i": i}, then a training state for step i."""
    from lucid.train.state import save_state

    while True:
        models[i % 2].save_pretrained(out, metadata={"i": i})
        save_state(out / "last.pt", {"epoch": i, "model": models[i % 2].state_dict()})
        i += 1


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".tmp-" in p.name]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_killed_saves_never_leave_a_mixed_or_unreadable_folder(tmp_path: Path) -> None:
    from lucid.core.fileio import remove_stale_temporaries
    from lucid.models import create_model, from_pretrained

    models = [create_model("resnet_18", channels=[32, 64, 128, 256], num_classes=10) for _ in range(2)]  # ~11 MB each
    fingerprints = [m.fc.weight.detach().clone() for m in models]
    out = tmp_path / "run"
    rng = random.Random(0)
    seen_steps, mid_write = set(), 0
    for kill in range(25):
        pid = os.fork()
        if pid == 0:  # the child writes until it is killed
            try:
                _writer(out, models, 1000 * kill)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.02, 0.3))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        mid_write += bool(_temporaries(out) or _temporaries(out.parent))
        if not (out / "config.json").is_file():
            continue  # killed before the first save finished: nothing was there to lose
        model = from_pretrained(out)
        i = model.metadata["i"]
        assert torch.equal(model.fc.weight, fingerprints[i % 2]), f"config of save {i} beside the weights of another save"
        seen_steps.add(i)
        if (out / "last.pt").is_file():
            state = torch.load(out / "last.pt", weights_only=True)
            assert state["epoch"] <= i  # a complete earlier (or the same) save, consistent in itself:
            assert torch.equal(state["model"]["fc.weight"], fingerprints[state["epoch"] % 2])
    assert len(seen_steps) >= 5 and mid_write >= 3, (seen_steps, mid_write)  # many kills, several in the middle of a write
    remove_stale_temporaries(out)
    remove_stale_temporaries(out.parent)
    assert not _temporaries(out) and not _temporaries(out.parent)


def test_killed_and_resumed_training_always_resumes(folder: Path, tmp_path: Path) -> None:
    from lucid.models import from_pretrained
    from lucid.train.state import load_state

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    start = [sys.executable, "-m", "lucid", "train", "--data", str(folder), *TINY_ARGS, "--image-size", "32", "--epochs", "500",
             "--batch-size", "8", "--workers", "0", "--out", str(out)]
    rng = random.Random(1)
    argv, done = start, 0
    for _ in range(3):
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not ((out / "last.pt").is_file() and load_state(out)["epoch"] > done):  # the (resumed) run saved a new epoch
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.4))
        proc.kill()
        proc.communicate()
        state = load_state(out)  # torch.load(weights_only=True) inside
        assert torch.load(out / "last.pt", weights_only=True)["epoch"] == state["epoch"] > done
        assert from_pretrained(out).config.num_classes == 3
        records = read_metrics(out)
        assert [r["epoch"] for r in records] == list(range(1, len(records) + 1))
        done = state["epoch"]
        argv = [sys.executable, "-m", "lucid", "train", "--resume", str(out)]
    assert done >= 3
