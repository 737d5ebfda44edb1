"""`lucid eval` scores the run's own validation split, never its training images, and says which images it scored."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import COLOURS, TINY_ARGS, write_png_folder

from lucid.cli import main


@pytest.fixture(scope="module")
def split_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("split")
    data = root / "tree"
    write_png_folder(data, {c: 8 for c in COLOURS}, seed=3)
    out = root / "run"
    argv = ["train", "--data", str(data), "--val-split", "0.25", *TINY_ARGS, "--image-size", "32", "--epochs", "1",
            "--batch-size", "6", "--workers", "0", "--amp", "off", "--out", str(out)]
    assert main(argv) == 0
    return data, out


def _eval(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    assert main(["eval", *argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_the_run_records_its_split(split_run: tuple[Path, Path]) -> None:
    _, out = split_run
    split = json.loads((out / "config.json").read_text())["metadata"]["dataset"]["split"]
    assert split["val_fraction"] == 0.25 and split["seed"] == 0 and split["val_count"] == 6 and len(split["val_sha256"]) == 64


def test_eval_scores_the_validation_split_with_or_without_data(split_run: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    data, out = split_run
    record = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    for argv in ([str(out)], [str(out), "--data", str(data)]):
        result = _eval(capsys, *argv)
        assert result["count"] == 6 and "validation split" in result["images"], result
        # The same images the run validated on at its last (and best) epoch: the same accuracy and loss.
        assert result["acc1"] == pytest.approx(record["val_acc1"]) and result["loss"] == pytest.approx(record["val_loss"], rel=1e-4)


def test_split_train_and_all_are_explicit(split_run: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    _, out = split_run
    train = _eval(capsys, str(out), "--split", "train")
    every = _eval(capsys, str(out), "--split", "all")
    assert (train["count"], every["count"]) == (18, 24)
    assert "training split" in train["images"] and "every image" in every["images"]
    assert main(["eval", str(out)]) == 0
    assert "scored the validation split of" in capsys.readouterr().out


def test_a_changed_folder_is_refused_unless_all(split_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data, out = split_run
    changed = tmp_path / "tree"
    shutil.copytree(data, changed)
    extra = next((changed / "red").iterdir())
    shutil.copy(extra, changed / "red" / "zz-extra.png")
    run = tmp_path / "run"
    shutil.copytree(out, run)
    config = json.loads((run / "config.json").read_text())
    config["metadata"]["dataset"]["path"] = str(changed)
    (run / "config.json").write_text(json.dumps(config))
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "changed since training" in err and "--split all" in err, err
    assert _eval(capsys, str(run), "--split", "all")["count"] == 25


def test_a_run_without_a_split_record_is_not_scored_on_its_training_images(split_run: tuple[Path, Path], tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    _, out = split_run
    run = tmp_path / "old"
    shutil.copytree(out, run)
    config = json.loads((run / "config.json").read_text())
    del config["metadata"]["dataset"]["split"]
    (run / "config.json").write_text(json.dumps(config))
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "did not record its validation split" in err and "--split all" in err, err
    assert "every image" in _eval(capsys, str(run), "--split", "all")["images"]


def test_digits_splits_are_chosen_by_split(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from lucid.data import DIGITS_MEAN, DIGITS_STD, Preprocessing
    from lucid.models import ResNet, ResNetConfig

    model = ResNet(ResNetConfig(block="basic", layers=(1, 1, 1, 1), channels=(4, 8, 8, 8), in_channels=1, num_classes=10))
    prep = Preprocessing(16, 1, DIGITS_MEAN, DIGITS_STD, crop=1.0).to_dict()
    model.save_pretrained(tmp_path / "run", metadata={"class_names": [str(i) for i in range(10)], "preprocessing": prep,
                                                       "dataset": {"name": "digits", "val_fraction": 0.2, "seed": 0}})
    counts = {split: _eval(capsys, str(tmp_path / "run"), "--split", split) for split in ("val", "train", "all")}
    assert {k: v["count"] for k, v in counts.items()} == {"val": 359, "train": 1438, "all": 1797}  # round(1797 * 0.2) = 359
    assert "validation split of the bundled digits" in counts["val"]["images"]
    assert _eval(capsys, str(tmp_path / "run"))["count"] == 359


def test_int8_calibration_takes_the_training_split_whatever_its_size(split_run: tuple[Path, Path]) -> None:
    from lucid.inference.predict import calibration_batches, load_trained

    _, out = split_run
    batches = calibration_batches(load_trained(out))
    # 18 training images in batches of 3: six batches, fewer than the default eight, all used.
    assert [len(b) for b in batches] == [3] * 6


@pytest.mark.slow
def test_int8_eval_on_a_small_run_says_how_many_images_calibrated(split_run: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    import inspect

    import lucid

    if "calibration" not in inspect.signature(lucid.optimize_for_inference).parameters:
        pytest.skip("no int8 support in this PyTorch")
    _, out = split_run
    code = main(["eval", str(out), "--dtype", "int8"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "int8: calibrated on 18 training image(s)" in captured.err
    assert "6 images" in captured.out
