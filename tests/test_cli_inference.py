"""``lucid eval`` / ``lucid predict`` with ``--dtype``: the model runs through ``lucid.optimize_for_inference``."""
from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from helpers import make_folder, one_line_error, tiny_config

from lucid.cli import main
from lucid.train.engine import fit


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = make_folder(tmp_path_factory.mktemp("images"))
    out = tmp_path_factory.mktemp("run") / "out"
    fit(tiny_config(folder, out, epochs=2))
    return out, folder


def _eval(capsys, *argv: str) -> dict:
    assert main(["eval", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_float32_and_bfloat16_match_the_plain_model(trained: tuple[Path, Path], capsys) -> None:
    out, folder = trained
    plain = _eval(capsys, str(out), "--data", str(folder))
    fp32 = _eval(capsys, str(out), "--data", str(folder), "--dtype", "float32")
    assert fp32["acc1"] == plain["acc1"] and fp32["loss"] == pytest.approx(plain["loss"], rel=1e-4)
    bf16 = _eval(capsys, str(out), "--data", str(folder), "--dtype", "bfloat16")
    assert bf16["count"] == plain["count"] and bf16["loss"] == pytest.approx(plain["loss"], rel=0.05)
    assert main(["predict", str(out), str(folder / "val" / "red" / "0.png"), "--dtype", "float32", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["top"][0]["class"] in ("blue", "green", "red")


@pytest.mark.slow
def test_int8_calibrates_on_the_training_images_or_says_it_is_unavailable(trained: tuple[Path, Path], capsys, monkeypatch) -> None:
    import lucid
    from lucid.inference import predict

    out, folder = trained
    if "calibration" not in inspect.signature(lucid.optimize_for_inference).parameters:
        one_line_error(capsys, ["eval", str(out), "--data", str(folder), "--dtype", "int8"], "--dtype int8", "no int8 support")
        return
    seen = []
    real = predict.calibration_batches
    monkeypatch.setattr(predict, "calibration_batches", lambda t, **kw: seen.append(real(t, **kw)) or seen[-1])
    result = _eval(capsys, str(out), "--data", str(folder), "--dtype", "int8")
    assert seen and sum(len(b) for b in seen[0]) == 36  # the 36 training images of the run
    assert result["count"] == 12


def test_dtype_and_amp_together_are_refused(trained: tuple[Path, Path], capsys) -> None:
    out, folder = trained
    one_line_error(capsys, ["eval", str(out), "--data", str(folder), "--dtype", "bfloat16", "--amp", "bf16"], "--dtype", "--amp")
