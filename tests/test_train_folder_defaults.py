"""Image-folder runs: the augmentation and evaluation preprocessing they use, shown and saved.

One tiny run (a ResNet with channels 8..64, one epoch, a dozen 40x40 PNGs) is shared by the
tests that need a trained folder; everything else builds transforms only.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lucid.data.folder import (
    Preprocessing,
    default_preprocessing,
    describe_transform,
    eval_transform,
    train_transform,
)
from lucid.train.engine import TrainConfig, fit

TINY = {"model": "resnet_18", "overrides": {"channels": [8, 16, 32, 64]}}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``train/`` and ``val/`` with two classes of random-colour 40x40 PNGs."""
    from PIL import Image

    root = tmp_path_factory.mktemp("folder")
    gen = torch.Generator().manual_seed(0)
    for split, count in (("train", 8), ("val", 2)):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = (torch.rand(40, 40, 3, generator=gen) * 255).to(torch.uint8).numpy()
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def run(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One finished one-epoch run on ``folder`` at 32 px, with what it printed."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("run") / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        fit(TrainConfig(data=str(folder), image_size=32, epochs=1, batch_size=8, workers=0, out=str(out), **TINY))
    return out, printed.getvalue()


def test_describe_transform_lists_each_step() -> None:
    from torchvision.transforms import v2

    pipeline = v2.Compose([v2.CenterCrop(30), v2.Normalize([0.5], [0.25])])
    assert describe_transform(pipeline) == ["CenterCrop(size=(30, 30))", "Normalize(mean=[0.5], std=[0.25], inplace=False)"]
    assert describe_transform(v2.CenterCrop(4)) == ["CenterCrop(size=(4, 4))"]
    assert describe_transform(None) == []


def test_a_run_prints_and_saves_its_augmentation_and_eval_preprocessing(run: tuple[Path, str]) -> None:
    from lucid.models import from_pretrained

    out, printed = run
    prep = default_preprocessing(32, 3)
    expected = {"train": describe_transform(train_transform(prep)), "eval": describe_transform(eval_transform(prep))}
    assert expected["train"][0].startswith("DecodeRandomResizedCrop(size=(32, 32)")
    text = "\n".join(line.strip() for line in printed.splitlines())  # one step per line, indented
    assert "\n".join(["train augmentation:", *expected["train"]]) in text
    assert "\n".join(["eval preprocessing:", *expected["eval"]]) in text
    # Saved with the best model (config.json) and in the training state (last.pt).
    assert from_pretrained(out).metadata["transforms"] == expected
    assert json.loads((out / "config.json").read_text())["metadata"]["transforms"] == expected
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert state["metadata"]["transforms"] == expected
    assert Preprocessing.from_dict(state["metadata"]["preprocessing"]) == prep


def test_folder_runs_from_scratch_start_residual_blocks_as_identities(folder: Path, run: tuple[Path, str]) -> None:
    from lucid.models import create_model
    from lucid.train import engine

    overrides = engine.build_data(TrainConfig(data=str(folder), image_size=32, **TINY)).overrides
    model = create_model("resnet_18", **overrides).eval()
    block = model.layer1[1]  # no downsampling shortcut: the block is relu(x + branch(x))
    x = torch.randn(2, 8, 8, 8)
    with torch.no_grad():
        assert torch.equal(block(x), torch.relu(x))
    assert json.loads((run[0] / "config.json").read_text())["zero_init_residual"] is True
    # --set wins, and published weights are not given an initialisation they would replace.
    chosen = TrainConfig(data=str(folder), model="resnet_18", overrides={"zero_init_residual": False})
    assert engine.build_data(chosen).overrides["zero_init_residual"] is False
    assert "zero_init_residual" not in engine.build_data(TrainConfig(data=str(folder), model="resnet_18", pretrained=True)).overrides


def test_training_crops_are_milder_on_small_images() -> None:
    import math

    from lucid.data.folder import min_crop_scale

    assert min_crop_scale(224) == min_crop_scale(512) == 0.08  # the ImageNet default is kept from 224 px up
    assert min_crop_scale(16) == 1.0
    sizes = [16, 24, 32, 48, 64, 112, 160, 224]
    scales = [min_crop_scale(s) for s in sizes]
    assert scales == sorted(scales, reverse=True)
    # The smallest crop of an image stored at the training size keeps more pixels along a side
    # on a larger image, and at 32 px keeps three quarters of the side (not 9 of 32 px as at 0.08).
    kept = [math.sqrt(min_crop_scale(s)) * s for s in sizes]
    assert kept == sorted(kept) and round(kept[sizes.index(32)]) == 24
    for size in (32, 224):
        crop = train_transform(default_preprocessing(size, 3)).transforms[0]
        assert crop.scale == (min_crop_scale(size), 1.0) and crop.size == (size, size)
