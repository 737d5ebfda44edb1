"""A last.pt that asks to run code is refused with a message that says nothing was executed, like a weight file."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from lucid.cli import main


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_poisoned_last_pt_says_code_was_blocked(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"format": "lucid-train-state/1", "epoch": 1, "payload": _Payload(), "note": "x" * 300}, run / "last.pt",
               pickle_protocol=2)
    for argv in (["train", "--resume", str(run)], ["eval", str(run / "last.pt"), "--data", str(tmp_path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "last.pt" in err, err
        assert "nothing in it was executed" in err and "system" in err, err
    assert not (tmp_path / "PWNED").exists()
