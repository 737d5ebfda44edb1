"""Recipes of the fast ImageNet runs: progressive resizing, a separate evaluation size, repeated augmentation.

Each is checked for what it changes (the image sizes each epoch trains and evaluates at, which
samples the sampler hands out), and a run using all three resumes mid-epoch bit for bit.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from helpers import assert_same_run, interrupt_at, one_line_error, tiny_config

from lucid.train import engine, epoch, recipe
from lucid.train.engine import build_data, fit
from lucid.train.sampler import EpochSampler

STEPS_PER_EPOCH = 4  # 36 training images, batch 8


def test_progressive_sizes_rise_linearly_in_steps_of_16() -> None:
    # 128 + 64 * e / 7 for e = 0..7 is 128, 137.1, 146.3, 155.4, 164.6, 173.7, 182.9, 192: rounded to 16 px
    assert recipe.progressive_sizes(128, 192, 8) == [128, 144, 144, 160, 160, 176, 176, 192]
    assert recipe.progressive_sizes(16, 48, 3) == [16, 32, 48]
    assert recipe.progressive_sizes(20, 40, 2) == [20, 40]  # the ends are kept even off the 16 px grid
    assert recipe.progressive_sizes(128, 192, 1) == [192]


def test_eval_size_sets_the_validation_transform_and_the_saved_input_size(folder: Path, tmp_path: Path) -> None:
    data = build_data(tiny_config(folder, tmp_path, image_size=32, eval_size=48))
    assert data.train[0][0].shape == (3, 32, 32)
    assert data.val[0][0].shape == (3, 48, 48)
    assert data.prep.image_size == 48 and data.metadata["preprocessing"]["image_size"] == 48
    assert "Resize(size=[55]" in data.transforms["eval"][0]  # 48 / 0.875 = 54.9: the short side, then the centre crop


def test_repeated_augmentation_sends_each_drawn_sample_to_several_processes() -> None:
    n, ranks, repeats = 30, 3, 3
    plans = []
    for epoch_index in (0, 1):
        shares = [EpochSampler(n, ranks, rank, seed=5, repeats=repeats).plan(epoch_index) for rank in range(ranks)]
        assert [len(indices) for indices, _ in shares] == [10, 10, 10]  # the epoch keeps its length
        where: dict[int, list[int]] = {}
        for rank, (indices, _) in enumerate(shares):
            for index in indices:
                where.setdefault(index, []).append(rank)
        assert len(where) == n // repeats  # a third of the samples, each on all three processes
        assert all(sorted(r) == [0, 1, 2] for r in where.values())
        seeds = [seed for _, share_seeds in shares for seed in share_seeds]
        assert len(set(seeds)) == len(seeds)  # ... each copy augmented under its own seed
        plans.append(set(where))
    assert plans[0] != plans[1]  # another subset in the next epoch


def test_without_repeats_an_epoch_covers_every_sample_and_pads_like_distributed_sampler() -> None:
    shares = [EpochSampler(31, 3, rank, seed=0).plan(0)[0] for rank in range(3)]
    assert [len(s) for s in shares] == [11, 11, 11]
    counts = Counter(i for share in shares for i in share)
    assert set(counts) == set(range(31)) and sorted(counts.values()) == [1] * 29 + [2] * 2  # 2 padded repeats
    sampler = EpochSampler(31, 3, 1, seed=0)
    sampler.set_epoch(0, start=4)  # a resumed epoch: the rest of the same share
    assert [index for index, _, _ in sampler] == shares[1][4:] and len(sampler) == 7


def test_recipe_options_are_checked(folder: Path, tmp_path: Path, capsys) -> None:
    one_line_error(capsys, ["train", "--progressive-resize", "48:16"], "--progressive-resize", "48:16")
    one_line_error(capsys, ["train", "--progressive-resize", "big"], "--progressive-resize", "A:B")
    one_line_error(capsys, ["train", "--progressive-resize", "16:32", "--image-size", "32"], "--image-size")
    one_line_error(capsys, ["train", "--repeated-aug", "0"], "--repeated-aug")
    one_line_error(capsys, ["train", "--eval-size", "3"], "--eval-size")
    one_line_error(capsys, ["train", "--eval-size", "48", "--out", str(tmp_path / "d")], "--eval-size", "needs --data")


@pytest.fixture
def sizes_seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """The image size of every training step and of every evaluation of the runs in a test."""
    seen: dict[str, list[int]] = {"train": [], "eval": []}
    real_step, real_evaluate = epoch.train_step, engine.evaluate

    def step(model, images, *args, **kwargs):
        seen["train"].append(images.shape[-1])
        return real_step(model, images, *args, **kwargs)

    def evaluate(model, loader, *args, **kwargs):
        seen["eval"].append(next(iter(loader)).images.shape[-1])
        return real_evaluate(model, loader, *args, **kwargs)

    monkeypatch.setattr(epoch, "train_step", step)
    monkeypatch.setattr(engine, "evaluate", evaluate)
    return seen


def test_the_recipes_change_what_each_epoch_trains_on_and_resume_mid_epoch(folder: Path, tmp_path: Path, sizes_seen: dict[str, list[int]],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUCID_SAMPLE_LOG", str(tmp_path))
    # fp32: at 16 px oneDNN's bf16 backward can give NaN weights (see test_train_recipe.py)
    recipes = dict(image_size=None, progressive_resize="16:48", eval_size=40, repeated_aug=3, save_every=2, amp="off")
    fit(tiny_config(folder, tmp_path / "a", **recipes))
    assert sizes_seen["train"] == [16] * STEPS_PER_EPOCH + [32] * STEPS_PER_EPOCH + [48] * STEPS_PER_EPOCH
    assert sizes_seen["eval"] == [40, 40, 40]
    assert json.loads((tmp_path / "a" / "config.json").read_text())["metadata"]["preprocessing"]["image_size"] == 40
    # One process, 36 images repeated 3 times: the first 32 positions of each epoch are 10 images 3 times and one twice.
    for line in (tmp_path / "samples-rank0.jsonl").read_text().splitlines():
        counts = Counter(json.loads(line)["indices"])
        assert sorted(counts.values()) == [2] + [3] * 10
    # Stopped in epoch 2 (32 px) after its 2nd step; resumed from the state saved after step 6.
    sizes_seen["train"].clear()
    real_step = epoch.train_step
    interrupt_at(monkeypatch, STEPS_PER_EPOCH + 3)
    with pytest.raises(KeyboardInterrupt):
        fit(tiny_config(folder, tmp_path / "b", **recipes))
    monkeypatch.setattr(epoch, "train_step", real_step)
    sizes_seen["train"].clear()
    fit(tiny_config(folder, tmp_path / "b", **recipes), resume="auto")
    assert sizes_seen["train"] == [32] * (STEPS_PER_EPOCH - 2) + [48] * STEPS_PER_EPOCH
    assert_same_run(tmp_path / "a", tmp_path / "b")
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=True)["config"]["repeated_aug"] == 3


def test_progressive_resize_refuses_data_it_cannot_resize() -> None:
    from lucid.core.errors import ConfigError
    from lucid.train.sampler import set_train_size

    with pytest.raises(ConfigError, match="progressive_resize: the training data .list. has no RandomResizedCrop"):
        set_train_size([1, 2, 3], 32)
