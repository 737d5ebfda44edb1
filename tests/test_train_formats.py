"""``lucid train`` on every ``--data`` format: WebDataset shards and a ``save_to_disk`` dataset, both
written by ``lucid data pack`` from a generated image folder, then scored by ``lucid eval``.

``lucid eval RUN`` (the data the run recorded) and ``lucid eval RUN --data SRC`` score the same
validation images, and give the validation accuracy the run itself recorded for its best epoch.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import COLOURS, assert_same_run, interrupt_at, make_folder, one_line_error, read_metrics, tiny_config, write_png_folder  # noqa: F401

from lucid.cli import main
from lucid.data import EncodedRandomResizedCrop, GpuBatchDecoder, collate_encoded, min_crop_scale
from lucid.train import engine
from lucid.train.config import TrainConfig
from lucid.train.engine import data_location, data_present, fit

VAL_IMAGES = 4 * len(COLOURS)  # make_folder's val/ part
# make_folder's 36 training images at tiny_config's batch 8: 4 steps per epoch.
STEPS_PER_EPOCH = 4


def pack(capsys: pytest.CaptureFixture[str], src: Path, out: Path, *flags: str) -> Path:
    assert main(["data", "pack", str(src), str(out), *flags]) == 0
    capsys.readouterr()
    return out


@pytest.fixture(scope="module")
def shards(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/ and val/ folders of .tar shards (10 samples each: 4 training shards)."""
    out = tmp_path_factory.mktemp("packed") / "shards"
    assert main(["data", "pack", str(folder), str(out), "--shard-size", "10"]) == 0
    return out


def eval_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    capsys.readouterr()
    assert main(["eval", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def best_val_acc1(run: Path) -> float:
    return max(r["val_acc1"] for r in read_metrics(run))


def check_eval(capsys: pytest.CaptureFixture[str], run: Path, data: Path, count: int) -> None:
    """``lucid eval RUN`` and ``lucid eval RUN --data SRC`` score the run's validation images as the run did."""
    recorded = eval_json(capsys, str(run))
    given = eval_json(capsys, str(run), "--data", str(data))
    assert recorded["count"] == given["count"] == count
    assert recorded["acc1"] == given["acc1"]
    assert recorded["acc1"] == pytest.approx(best_val_acc1(run), abs=1e-6)


def test_a_run_on_webdataset_shards_is_scored_by_lucid_eval(shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    summary = fit(tiny_config(shards, out, epochs=2))
    dataset = json.loads((out / "config.json").read_text())["metadata"]["dataset"]
    assert dataset["name"] == "shards" and dataset["path"] == str(shards.resolve())
    assert dataset["samples"] == {"train": 3 * 12, "val": VAL_IMAGES}
    assert summary["best_val_acc1"] > 1 / len(COLOURS)  # three colours: above chance after two epochs
    check_eval(capsys, out, shards, VAL_IMAGES)


@pytest.mark.slow  # importing datasets and packing take most of it
def test_a_run_on_a_save_to_disk_dataset_is_scored_by_lucid_eval(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hf = pack(capsys, folder, tmp_path / "hf", "--format", "hf")
    out = tmp_path / "run"
    fit(tiny_config(hf, out, epochs=2))
    dataset = json.loads((out / "config.json").read_text())["metadata"]["dataset"]
    assert dataset["name"] == "hf" and dataset["samples"] == {"train": 3 * 12, "val": VAL_IMAGES}
    check_eval(capsys, out, hf, VAL_IMAGES)


def test_val_split_on_shards_holds_out_the_same_images_for_training_and_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One class tree packed as one set of shards: --val-split 0.25 holds out 9 of 36; eval finds the same 9."""
    tree = tmp_path / "tree"
    write_png_folder(tree, {c: 12 for c in COLOURS}, seed=3)
    packed = pack(capsys, tree, tmp_path / "shards", "--shard-size", "8")
    out = tmp_path / "run"
    fit(tiny_config(packed, out, epochs=1, val_split=0.25))
    dataset = json.loads((out / "config.json").read_text())["metadata"]["dataset"]
    assert (dataset["val_split"], dataset["val_samples"], dataset["samples"]) == (0.25, 9, {"all": 36})
    recorded = eval_json(capsys, str(out))
    assert recorded["count"] == 9
    assert recorded["acc1"] == pytest.approx(best_val_acc1(out), abs=1e-6)
    assert eval_json(capsys, str(out), "--data", str(packed))["count"] == 36  # no val part: all of it


def test_a_run_on_shards_stopped_mid_epoch_resumes_bit_for_bit(shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = tmp_path / "reference"
    fit(tiny_config(shards, reference, save_every=3))
    out = tmp_path / "run"
    interrupt_at(monkeypatch, 2 * STEPS_PER_EPOCH + 3)  # the last state is that after step 9 (epoch 3, batch 1)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_config(shards, out, save_every=3))
    state = torch.load(out / "last.pt", weights_only=True)
    assert (state["epoch"], state["step"]) == (2, 1)
    calls = interrupt_at(monkeypatch, -1)
    fit(tiny_config(shards, out, save_every=3), resume="auto")
    assert calls["n"] == 3 * STEPS_PER_EPOCH - 9  # only the unseen batches were trained
    assert_same_run(reference, out)


def test_the_gpu_decode_pipeline_run_on_the_cpu_trains_from_shards(shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--decode gpu's loader (encoded crops from the workers, the batch decoded by GpuBatchDecoder), with its decoder
    on the CPU: the same crops as CPU decoding, so the run learns; it is resumed mid-epoch bit for bit."""
    def on_cpu(prep, device):
        crop = EncodedRandomResizedCrop(prep.image_size, prep.channels, scale=(min_crop_scale(prep.image_size), 1.0))
        return crop, collate_encoded, GpuBatchDecoder(prep, device)

    monkeypatch.setattr(engine, "gpu_decode_pipeline", on_cpu)
    reference = tmp_path / "reference"
    fit(tiny_config(shards, reference, decode="gpu", save_every=3))
    records = read_metrics(reference)
    assert records[-1]["train_loss"] < records[0]["train_loss"] and records[-1]["val_acc1"] > 1 / len(COLOURS)
    out = tmp_path / "run"
    interrupt_at(monkeypatch, 2 * STEPS_PER_EPOCH + 3)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_config(shards, out, decode="gpu", save_every=3))
    interrupt_at(monkeypatch, -1)
    fit(tiny_config(shards, out, decode="gpu", save_every=3), resume="auto")
    assert_same_run(reference, out)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="--decode gpu needs a CUDA device")
def test_gpu_decode_trains_from_shards(shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Batches decoded on the GPU train the model as CPU decoding does: the loss falls, eval scores the val part."""
    out = tmp_path / "run"
    fit(tiny_config(shards, out, epochs=3, decode="gpu", device="cuda"))
    records = read_metrics(out)
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    assert "EncodedRandomResizedCrop" in json.loads((out / "config.json").read_text())["metadata"]["transforms"]["train"][0]
    check_eval(capsys, out, shards, VAL_IMAGES)


def test_gpu_decode_is_refused_in_one_line_where_it_cannot_run(shards: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = ["--model", "resnet_18", "--set", "channels=[8,8,8,8]", "--image-size", "32", "--epochs", "1", "--workers", "0"]
    one_line_error(capsys, ["train", "--data", str(shards), *tiny, "--decode", "gpu", "--device", "cpu"],
                    "--decode gpu needs a CUDA device", "'cpu'")
    one_line_error(capsys, ["train", "--data", str(shards), *tiny, "--decode", "gpu", "--auto-augment", "randaugment"],
                    "decode", "auto_augment='randaugment'")
    one_line_error(capsys, ["train", "--data", str(shards), *tiny, "--decode", "gpu", "--random-erase", "0.25"], "random_erase=0.25")
    one_line_error(capsys, ["train", *tiny, "--decode", "gpu"], "decode", "give --data")


def test_a_resumed_run_finds_its_data_in_every_form(shards: Path, tmp_path: Path) -> None:
    """Paths are recorded absolute, ``hf:`` ids as given; a brace pattern is there while its folder is."""
    pattern = str(shards / "train" / "train-{000000..000003}.tar")
    assert data_present(pattern) and data_present(str(shards)) and data_present("hf:user/name")
    assert not data_present(str(tmp_path / "gone" / "train-{0..3}.tar")) and not data_present(str(tmp_path / "gone"))
    assert data_location("hf:user/name") == "hf:user/name"
    assert data_location(pattern) == pattern and Path(data_location("rel/x.tar")).is_absolute()


def test_the_hugging_face_options_are_flags_and_settings(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = TrainConfig(data="hf:user/name", data_split="train", image_column="img", label_column="fine_label")
    cfg.validate()
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    for flag in ("--data-split", "--image-column", "--label-column", "--decode"):
        assert flag in help_text, flag
