"""``lucid data pack`` and ``lucid data info`` from the command line: output, exit status, one-line errors."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("webdataset")

from data_fixtures import CLASSES, make_folder  # noqa: E402

from lucid.cli import main  # noqa: E402


def test_pack_then_info_then_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_folder(tmp_path / "d" / "train", per_class=3)
    make_folder(tmp_path / "d" / "val", per_class=1)
    assert main(["data", "pack", str(tmp_path / "d"), str(tmp_path / "s"), "--shard-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "train: 9 sample(s) in 3 file(s), 0 skipped" in out and "val: 3 sample(s) in 1 file(s), 0 skipped" in out
    assert main(["data", "info", str(tmp_path / "s"), "--verify"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "format: shards" and out[2] == f"classes: 3 ({', '.join(CLASSES)})"
    assert "train: 9 sample(s)" in out and "val: 3 sample(s)" in out and out[-1] == "verify: all files match the manifest"
    shard = tmp_path / "s" / "val" / "val-000000.tar"
    shard.write_bytes(shard.read_bytes()[:-1] + b"\x01")  # in the tar's end padding: still a readable shard
    assert main(["data", "info", str(tmp_path / "s"), "--verify"]) == 1
    assert "mismatch: val/val-000000.tar: sha256 differs" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--shard-size", "0"], "--shard-size must be between 1 and 1000000 samples, got 0"),
    (["--max-side", "3"], "--max-side must be between 8 and 65536 px, got 3"),
])
def test_bad_options_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    make_folder(tmp_path / "d", per_class=1)
    assert main(["data", "pack", str(tmp_path / "d"), str(tmp_path / "s"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"lucid data: error: {message}"]
    assert not (tmp_path / "s").exists()


def test_info_on_a_missing_source_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.strip() == f"lucid data: error: --data: {str(tmp_path / 'nothing')!r} does not exist"
