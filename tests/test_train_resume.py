"""Fault tolerance of ``lucid train``: ``--save-every``, mid-epoch resume, ``--resume auto``.

A run stopped in the middle of an epoch and resumed from its last ``--save-every`` state ends with
the same weights, optimizer state and metrics as the run that was never stopped, bit for bit.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import TINY_ARGS, assert_same_run, interrupt_at, one_line_error, read_metrics, tiny_config

from lucid.cli import main
from lucid.train.engine import fit

ROOT = Path(__file__).resolve().parents[1]
# 36 training images, batch 8: 4 steps per epoch, 12 in 3 epochs; a state every 3 steps.
STEPS_PER_EPOCH = 4


@pytest.fixture(scope="module")
def reference(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run (random crops and flips, shuffling, default precision), saving every 3 steps."""
    out = tmp_path_factory.mktemp("reference") / "run"
    fit(tiny_config(folder, out, save_every=3))
    return out


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_a_run_stopped_mid_epoch_resumes_at_the_next_batch_bit_for_bit(workers: int, reference: Path, folder: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    # Stopped in the 3rd epoch's 3rd step (step 11 of 12): the last state was saved after step 9 (epoch 3, batch 1).
    interrupt_at(monkeypatch, 2 * STEPS_PER_EPOCH + 3)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_config(folder, out, save_every=3, workers=workers))
    state = torch.load(out / "last.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (2, 1)
    assert len(state["epoch_sums"]) == 1 and state["epoch_sums"][0][2] == 8  # one batch of 8 images counted
    calls = interrupt_at(monkeypatch, -1)
    fit(tiny_config(folder, out, save_every=3, workers=workers), resume="auto")
    assert calls["n"] == 3 * STEPS_PER_EPOCH - 9  # only the unseen batches were trained
    # Loader workers or not: each sample's augmentation depends on its seed, not on the process that made it.
    assert_same_run(reference, out)


def test_save_every_writes_mid_epoch_states_of_the_steps_done(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lucid.train import engine

    saved = []
    real_write = engine._write_state

    def write(job, cfg, data, progress, run, step, ranks):
        saved.append((progress.epoch, step, job.schedule.per_step.last_epoch))
        real_write(job, cfg, data, progress, run, step, ranks)

    monkeypatch.setattr(engine, "_write_state", write)
    fit(tiny_config(folder, tmp_path / "run", epochs=2, save_every=3, grad_accum=2))
    # 4 batches per epoch, an optimizer step every 2: updates 1, 2 (epoch 1), 3, 4 (epoch 2).
    # The start, update 3 (epoch 1 done, batch 2 of epoch 2) and each epoch end; update 4 is an epoch end anyway.
    assert saved == [(0, 0, 0), (1, 0, 2), (1, 2, 3), (2, 0, 4)]


def test_resume_auto_starts_a_new_run_then_continues_it(folder: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    command = ["train", "--data", str(folder), *TINY_ARGS, "--image-size", "32", "--batch-size", "8", "--workers", "0",
               "--out", str(out), "--resume", "auto"]
    assert main([*command, "--epochs", "1"]) == 0  # no last.pt yet: a new run
    assert [r["epoch"] for r in read_metrics(out)] == [1]
    capsys.readouterr()
    assert main([*command, "--epochs", "1"]) == 0  # the same command again: the run is finished
    assert "already finished its 1 epochs" in capsys.readouterr().out
    # A different setting is not silently taken over from the saved run.
    one_line_error(capsys, [*command, "--epochs", "2"], "last.pt", "epochs=1", "2")
    one_line_error(capsys, [*command[:-4], "--resume", "auto"], "--resume", "--out")
    one_line_error(capsys, [*command, "--overwrite"], "--resume", "--overwrite")
    # A folder that holds something else, and no state, is still refused.
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    one_line_error(capsys, [*command[:-3], str(other), "--resume", "auto"], "--out", "notes.txt")


@pytest.mark.slow
def test_a_killed_process_restarted_with_the_same_command_ends_bit_identical(reference: Path, folder: Path, tmp_path: Path) -> None:
    """SIGKILL (LUCID_KILL_AT) after step 7 of 12; the very same command, run again, resumes from the state of step 6."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "lucid", "train", "--data", str(folder), *TINY_ARGS, "--image-size", "32", "--epochs", "3",
               "--batch-size", "8", "--lr", "0.005", "--workers", "0", "--save-every", "3", "--out", str(out), "--resume", "auto"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    killed = subprocess.run(command, env={**env, "LUCID_KILL_AT": "0:7"}, capture_output=True, text=True, timeout=300, check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    state = torch.load(out / "last.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 2)
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    assert_same_run(reference, out)
