"""Small misuses that gave confusing errors or silently wrong output, each reproduced."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch
from helpers import one_line_error as _one_line

from lucid import models
from lucid.cli import main
from lucid.core.constants import IMAGENET_MEAN, IMAGENET_STD
from lucid.core.errors import CheckpointError, ConfigError, LucidError
from lucid.data.preprocessing import Preprocessing
from lucid.models import ResNet, ResNetConfig

SMALL = dict(block="basic", layers=(1, 1, 1, 1), channels=(4, 8, 8, 8), num_classes=3)


def _run(folder: Path, model: ResNet | None = None, **meta) -> Path:
    model = model or ResNet(ResNetConfig(**SMALL))
    prep = Preprocessing(32, 3, IMAGENET_MEAN, IMAGENET_STD).to_dict()
    model.save_pretrained(folder, metadata={"class_names": ["a", "b", "c"], "preprocessing": prep, **meta})
    return folder


@pytest.mark.parametrize("call, words", [
    (lambda: models.create_model(None), "model must be a preset name"),
    (lambda: ResNetConfig.from_dict([1, 2]), "from_dict needs a dict"),
    (lambda: models.from_pretrained(None), "path must be a model folder"),
    (lambda: models.from_pretrained(".", max_parameters="x"), "max_parameters must be a positive int"),
])
def test_api_misuse_names_the_argument(call, words: str) -> None:
    with pytest.raises(LucidError, match=words):
        call()


def test_load_checkpoint_misuse_names_the_argument() -> None:
    from lucid.weights import load_checkpoint

    with pytest.raises(LucidError, match="model must be a lucid model"):
        load_checkpoint(None, {})
    with pytest.raises(LucidError, match="checkpoint must be a weight file path or a state dict"):
        load_checkpoint(ResNet(ResNetConfig(**SMALL)), None)


def test_non_string_class_names_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = _run(tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    config["metadata"]["class_names"] = [1, 2, 3]
    (run / "config.json").write_text(json.dumps(config))
    _one_line(capsys, ["eval", str(run), "--data", str(tmp_path)], "class_names must be strings")


def test_nan_weights_do_not_predict_with_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from PIL import Image

    model = ResNet(ResNetConfig(**SMALL))
    with torch.no_grad():
        model.fc.weight.fill_(math.nan)
    run = _run(tmp_path / "run", model)
    Image.new("RGB", (40, 40), (1, 2, 3)).save(tmp_path / "x.png")
    assert main(["predict", str(run), str(tmp_path / "x.png")]) == 1
    assert "not finite" in capsys.readouterr().err


def test_extreme_mean_and_std_are_refused() -> None:
    prep = Preprocessing(32, 3, IMAGENET_MEAN, IMAGENET_STD).to_dict()
    with pytest.raises(CheckpointError, match="std"):
        Preprocessing.from_dict({**prep, "std": [1e-30, 1e-30, 1e-30]})
    with pytest.raises(CheckpointError, match="mean"):
        Preprocessing.from_dict({**prep, "mean": [1e30, 0, 0]})


def test_a_deeply_nested_set_value_is_not_echoed_whole(capsys: pytest.CaptureFixture) -> None:
    err = _one_line(capsys, ["summary", "resnet_18", "--set", "block_args=" + "[" * 3000 + "]" * 3000])
    assert len(err) < 400


def test_save_pretrained_refuses_nan_metadata(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="metadata holds NaN"):
        ResNet(ResNetConfig(**SMALL)).save_pretrained(tmp_path / "m", metadata={"x": math.nan})
    assert not (tmp_path / "m").exists()


def test_flag_names_in_messages(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(tmp_path / "run")
    _one_line(capsys, ["weights", "average", str(run), "--last", "0", "--out", str(tmp_path / "avg")], "--last must be a positive int")
    _one_line(capsys, ["eval", str(run), "--workers", "-1"], "--workers must be 0")
    from lucid.core import extras

    real = extras.importlib.import_module

    def no_matplotlib(name: str):
        if name.startswith("matplotlib"):
            raise ModuleNotFoundError(name=name)
        return real(name)

    monkeypatch.setattr(extras.importlib, "import_module", no_matplotlib)
    err = _one_line(capsys, ["eval", str(run), "--confusion", str(tmp_path / "c.png")], "lucid[plot]")
    assert "--set" not in err


def test_weights_list_of_a_preset_without_weights_says_so(capsys: pytest.CaptureFixture) -> None:
    assert main(["weights", "list", "resnet_200"]) == 0
    assert "resnet_200: no published weights" in capsys.readouterr().out


def test_thousands_of_blocks_are_refused_at_once() -> None:
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="9,999 blocks, over the limit of 400"):
        ResNetConfig(block="basic", layers=(2500, 2500, 2500, 2499), channels=(1, 1, 1, 1))
    assert time.perf_counter() - start < 1


def test_acc5_is_left_out_for_five_classes_or_fewer(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from PIL import Image

    run = _run(tmp_path / "run")
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        Image.new("RGB", (40, 40), (9, 9, 9)).save(tmp_path / "data" / name / "1.png")
    assert main(["eval", str(run), "--data", str(tmp_path / "data")]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert "acc1" in last and "acc5" not in last


def test_a_long_confusion_title_stays_inside_the_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lucid.train import plots

    kept = {}
    monkeypatch.setattr(plots, "_save", lambda fig, out: kept.setdefault("fig", fig))
    plots.plot_confusion([[3, 1, 0], [0, 2, 2], [1, 0, 3]], ["a", "b", "c"], tmp_path / "c.png",
                         title="resnet_18-20261201-120000-some-long-run-name: 12 images, top-1 0.6667")
    fig = kept["fig"]
    renderer = fig.canvas.get_renderer()
    box = fig.axes[0].title.get_window_extent(renderer)
    assert box.x0 >= 0 and box.x1 <= fig.bbox.x1, (box, fig.bbox)


def test_a_second_run_refuses_before_building_data_or_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    from lucid.train import engine
    from lucid.train.rundir import RunFolder

    def never(*args, **kwargs):
        raise AssertionError("the data was built before the lock was checked")

    monkeypatch.setattr(engine, "build_data", never)
    holder = RunFolder.open(tmp_path / "busy", resume=False, overwrite=False)
    try:
        _one_line(capsys, ["train", "--out", str(tmp_path / "busy"), "--epochs", "1"], "in use by another lucid train run")
    finally:
        holder.close()


@pytest.mark.slow
def test_training_output_lines_fit_and_skip_acc5_for_three_classes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:

    from helpers import COLOURS, write_png_folder

    write_png_folder(tmp_path / "d" / "train", {c: 2 for c in COLOURS}, seed=1)
    write_png_folder(tmp_path / "d" / "val", {c: 1 for c in COLOURS}, seed=2)
    assert main(["train", "--data", str(tmp_path / "d"), "--model", "resnet_18", "--set", "channels=[4,8,8,8]", "--image-size", "16",
                 "--epochs", "1", "--batch-size", "4", "--workers", "0", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    lines = [line.replace(str(tmp_path), "") for line in out.splitlines()]
    assert max(len(line) for line in lines) < 200, max(lines, key=len)
    assert "val_acc1" in out and "val_acc5" not in out
