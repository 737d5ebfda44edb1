"""lucid export on a real (tiny) training run: every format written next to the run with the run's input size,
class names and preprocessing; lucid eval/predict on each artefact match lucid eval/predict on the run; the
--format all --verify table; int8 calibrated on the run's images. Slow: exports go through each runtime."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import COLOURS, tiny_config

from lucid import export
from lucid.cli import main
from lucid.train.engine import fit

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")
pytest.importorskip("executorch")
pytestmark = pytest.mark.slow

SUFFIX = {"onnx": ".onnx", "openvino": ".xml", "executorch": ".pte", "torch-export": ".pt2"}


@pytest.fixture(scope="module")
def run(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained for one epoch on 32 px generated images (train/ + val/)."""
    out = tmp_path_factory.mktemp("run") / "out"
    fit(tiny_config(folder, out, epochs=1))
    return out


def _json(capsys, argv: list[str]) -> dict:
    """The one JSON object the command prints (nothing else on stdout: runtimes' progress goes to stderr)."""
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def _predict(capsys, model: str, images: list[str]) -> list[dict]:
    assert main(["predict", model, *images, "--json", "--top-k", "3"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "executorch", "torch-export"])
def test_each_format_evaluates_and_predicts_like_the_run(run, folder, capsys, fmt):
    assert main(["export", str(run), "--format", fmt]) == 0
    artefact = run / "export" / f"model{SUFFIX[fmt]}"
    assert f"wrote {artefact}" in capsys.readouterr().out
    meta = export.read_metadata(artefact)["metadata"]
    assert meta["class_names"] == sorted(COLOURS) and meta["preprocessing"]["image_size"] == 32
    runner = export.load_runner(artefact)
    assert runner.input_shape[2:] == [32, 32] and not isinstance(runner.input_shape[0], int)  # trained size, dynamic batch

    reference = _json(capsys, ["eval", str(run), "--data", str(folder), "--json"])
    result = _json(capsys, ["eval", str(artefact), "--data", str(folder), "--json"])
    assert result["count"] == reference["count"] == 12
    assert result["acc1"] == reference["acc1"] and result["loss"] == pytest.approx(reference["loss"], abs=1e-4)

    images = [str(p) for p in sorted((folder / "val" / "red").iterdir())[:2]]
    for ours, theirs in zip(_predict(capsys, str(artefact), images), _predict(capsys, str(run), images)):
        assert [t["class"] for t in ours["top"]] == [t["class"] for t in theirs["top"]]
        assert [t["probability"] for t in ours["top"]] == pytest.approx([t["probability"] for t in theirs["top"]], abs=1e-4)


def test_format_all_verify_gives_one_row_per_artefact(run, folder, tmp_path, capsys):
    data = _json(capsys, ["export", str(run), "--format", "all", "--verify", "--json", "--threads", "1",
                          "--rounds", "1", "--accuracy-drop", "100", "--out", str(tmp_path)])
    rows = {(r["format"], r["dtype"]): r for r in data["rows"]}
    expected = {("pytorch", "float32"), *((f, "float32") for f in SUFFIX), *((f, "int8") for f in ("onnx", "openvino", "executorch"))}
    assert set(rows) == expected and data["images"] == 12
    for (fmt, dtype), row in rows.items():
        assert row["passed"] and set(row["images_per_s"]) == {"1", "8"} and all(v > 0 for v in row["images_per_s"].values())
        assert row["pytorch_top1"] == rows[("pytorch", "float32")]["top1"]
        if dtype == "float32":
            assert row["agreement"] == 1.0 and row["max_logit_diff"] < 1e-3, (fmt, row)
        else:
            assert row["size_mb"] < rows[(fmt, "float32")]["size_mb"] / 2  # int8 weights
    int8 = _json(capsys, ["eval", str(tmp_path / "model.int8.xml"), "--data", str(folder), "--json"])  # the same val/ images
    assert int8["acc1"] == pytest.approx(rows[("openvino", "int8")]["top1"])


def test_a_row_below_the_accuracy_bound_fails(run, tmp_path, capsys, monkeypatch):
    from lucid.export import verification as verify_module
    from lucid.models import create_model

    wrong = create_model("resnet_18", channels=[8, 16, 32, 64], num_classes=3)
    torch.nn.init.constant_(wrong.fc.bias, 0.0)
    wrong.fc.bias.data[0] = 100.0  # always predicts class 0: a third of the validation images
    bad = export.to_onnx(wrong, tmp_path / "bad.onnx", input_shape=(1, 3, 32, 32))
    real = verify_module.load_runner
    monkeypatch.setattr(verify_module, "load_runner", lambda path, threads=None: real(bad, threads))
    assert main(["export", str(run), "--out", str(tmp_path / "m.onnx"), "--verify", "--threads", "1", "--rounds", "1",
                 "--accuracy-drop", "0"]) == 1
    captured = capsys.readouterr()
    assert "| onnx | float32 |" in captured.out and "NO |" in captured.out
    assert "verify failed: onnx float32 below the accuracy bound" in captured.err


def test_openvino_int8_with_accuracy_control_keeps_the_metadata(run, tmp_path, capsys):
    out = tmp_path / "q.xml"
    assert main(["export", str(run), "--format", "openvino", "--dtype", "int8", "--accuracy-drop", "0.5", "--out", str(out)]) == 0
    info = export.read_metadata(out)
    assert info["metadata"]["class_names"] == sorted(COLOURS) and info["config"]["num_classes"] == 3
    assert out.with_suffix(".bin").is_file()
