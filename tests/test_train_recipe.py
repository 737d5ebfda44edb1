"""The recipe options (EMA, MixUp/CutMix, auto-augment, random erasing, accumulation, schedules, BCE, drop-path,
weight averaging) and the pictures: all run together on the bundled digits (two epochs), with a tiny model at 16 px."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import read_metrics

from lucid.cli import main
from lucid.train import recipe
from lucid.train.config import TrainConfig

# fp32: at 16 px layer4's stride-2 3x3 convolution sees 1x1 inputs, where oneDNN's bf16 backward gave NaN weights
# in some runs (torch 2.14.1, CPU); lucid stops such a run instead of saving it.
TINY_DIGITS = ["--model", "resnet_18", "--set", "channels=[8,16,32,64]", "--image-size", "16", "--batch-size", "64", "--amp", "off"]
ALL_OPTIONS = ["--model-ema", "--model-ema-decay", "0.9", "--mixup", "0.2", "--cutmix", "1.0", "--auto-augment", "randaugment",
               "--random-erase", "0.25", "--grad-accum", "2", "--sched", "plateau", "--bce-loss", "--drop-path", "0.1",
               "--keep-checkpoints", "2"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two epochs on digits with every recipe option on, through the command line."""
    out = tmp_path_factory.mktemp("recipe") / "run"
    tensorboard = ["--tensorboard"] if _has_tensorboard() else []
    assert main(["train", *TINY_DIGITS, "--epochs", "2", *ALL_OPTIONS, *tensorboard, "--out", str(out)]) == 0
    return out


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow
def test_every_option_reaches_the_saved_config_and_the_run(run: Path) -> None:
    state = torch.load(run / "last.pt", weights_only=True)
    cfg = state["config"]
    assert (cfg["model_ema"], cfg["mixup"], cfg["cutmix"], cfg["auto_augment"], cfg["random_erase"], cfg["grad_accum"],
            cfg["sched"], cfg["bce_loss"], cfg["drop_path"]) == (True, 0.2, 1.0, "randaugment", 0.25, 2, "plateau", True, 0.1)
    records = read_metrics(run)
    assert [r["epoch"] for r in records] == [1, 2]
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["ema_val_loss"]) for r in records)
    # 1,438 training images, batch 64: 22 steps, an optimizer step every 2 batches = 11 updates per epoch
    assert [s["step"].item() for s in state["optimizer"]["state"].values()] == [22.0] * len(state["optimizer"]["state"])
    assert state["scheduler"]["last_epoch"] == 11  # plateau: the per-step schedule only warms up (epoch 1)


@pytest.mark.slow
def test_drop_path_goes_through_block_args(run: Path) -> None:
    from lucid.models import from_pretrained

    model = from_pretrained(run)
    assert model.config.block_args["drop_path"] == 0.1
    rates = [m.drop_prob if hasattr(m, "drop_prob") else m.p for m in model.modules() if type(m).__name__ == "DropPath"]
    assert rates and all(r > 0 for r in rates)


@pytest.mark.slow
def test_ema_weights_are_validated_and_saved(run: Path, capsys) -> None:
    from lucid.models import from_pretrained

    ema, plain = from_pretrained(run / "ema"), from_pretrained(run)
    assert not torch.equal(ema.fc.weight, plain.fc.weight)
    state = torch.load(run / "last.pt", weights_only=True)
    assert torch.equal(state["ema"]["module.fc.weight"], ema.fc.weight) or read_metrics(run)[1]["ema_val_acc1"] < read_metrics(run)[0]["ema_val_acc1"]
    # The EMA model's accuracy as evaluated by `lucid eval` on the same split is the one recorded for its best epoch.
    assert main(["eval", str(run / "ema"), "--json"]) == 0
    acc = json.loads(capsys.readouterr().out)["acc1"]
    assert acc == pytest.approx(max(r["ema_val_acc1"] for r in read_metrics(run)), abs=1e-9)


@pytest.mark.slow
def test_weights_average_is_the_mean_of_the_last_checkpoints(run: Path, tmp_path: Path, capsys) -> None:
    from lucid import weights
    from lucid.models import from_pretrained

    files = sorted((run / "checkpoints").glob("epoch-*.safetensors"))
    assert [f.name for f in files] == ["epoch-0001.safetensors", "epoch-0002.safetensors"]
    assert main(["weights", "average", str(run), "--last", "2", "--out", str(tmp_path / "avg")]) == 0
    assert "the mean of 2 checkpoint(s)" in capsys.readouterr().out
    a, b = (weights.load_file(f) for f in files)
    averaged = from_pretrained(tmp_path / "avg")
    assert torch.allclose(averaged.fc.weight, (a["fc.weight"] + b["fc.weight"]) / 2, atol=1e-7)
    assert averaged.metadata["class_names"] == [str(i) for i in range(10)]
    assert main(["eval", str(tmp_path / "avg"), "--json"]) == 0  # a usable model folder
    assert json.loads(capsys.readouterr().out)["count"] == 359


@pytest.mark.slow
def test_tensorboard_event_files_are_written(run: Path) -> None:
    pytest.importorskip("tensorboard")
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_learning_curves_and_confusion_matrix_are_pngs(run: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    from PIL import Image

    assert main(["plot", str(run), "--out", str(tmp_path / "curves.png")]) == 0
    capsys.readouterr()
    with Image.open(tmp_path / "curves.png") as image:
        assert image.format == "PNG" and image.width > 1000
    assert main(["eval", str(run), "--confusion", str(tmp_path / "confusion.png"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    matrix = torch.tensor(result["confusion"])
    assert matrix.shape == (10, 10) and matrix.sum() == result["count"] == 359
    assert matrix.diag().sum().item() == round(result["acc1"] * 359)
    with Image.open(tmp_path / "confusion.png") as image:
        assert image.format == "PNG"


def test_mixup_and_cutmix_are_torchvisions_and_make_soft_targets() -> None:
    from torchvision.transforms import v2

    assert isinstance(recipe.build_batch_mix(TrainConfig(mixup=0.2), 10), v2.MixUp)
    assert isinstance(recipe.build_batch_mix(TrainConfig(cutmix=1.0), 10), v2.CutMix)
    assert isinstance(recipe.build_batch_mix(TrainConfig(mixup=0.2, cutmix=1.0), 10), v2.RandomChoice)
    assert recipe.build_batch_mix(TrainConfig(), 10) is None
    _, targets = recipe.build_batch_mix(TrainConfig(mixup=1.0), 4)(torch.randn(8, 1, 16, 16), torch.arange(8) % 4)
    assert targets.shape == (8, 4) and torch.allclose(targets.sum(1), torch.ones(8))


@pytest.mark.parametrize("policy, cls", [("randaugment", "RandAugment"), ("trivialaugment", "TrivialAugmentWide"), ("autoaugment", "AutoAugment")])
def test_auto_augment_policies_apply_to_digits(policy: str, cls: str) -> None:
    from lucid.data.folder import digits_splits

    train, _, _, _ = digits_splits(16, 0.2, 0, augment=True, auto_augment=policy, random_erase=1.0)
    names = [type(t).__name__ for t in train.transform.transforms]
    assert cls in names and names[-1] == "RandomErasing"
    image, _ = train[0]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32 and torch.isfinite(image).all()


def test_bce_loss_is_binary_cross_entropy_on_smoothed_one_hot_targets() -> None:
    loss = recipe.build_loss(TrainConfig(bce_loss=True, label_smoothing=0.1), 4)
    logits, targets = torch.randn(5, 4), torch.tensor([0, 1, 2, 3, 0])
    onehot = torch.nn.functional.one_hot(targets, 4).float() * 0.9 + 0.1 / 4
    expected = -(onehot * torch.log(torch.sigmoid(logits)) + (1 - onehot) * torch.log(1 - torch.sigmoid(logits))).mean()
    assert loss(logits, targets).item() == pytest.approx(expected.item(), rel=1e-5)
    soft = torch.softmax(torch.randn(5, 4), 1)  # after MixUp: probabilities
    assert torch.isfinite(loss(logits, soft))


def test_step_and_plateau_schedules() -> None:
    f = recipe.warmup_step(total_steps=100, warmup_steps=10)
    assert [f(0), f(9), f(10), f(49), f(50), f(74), f(75), f(99)] == pytest.approx([0.1, 1.0, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01])
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = recipe.Schedule("plateau", opt, total_steps=20, warmup_steps=2)
    for _ in range(4):
        opt.step()
        schedule.step()
    assert opt.param_groups[0]["lr"] == 1.0  # warmed up, then left alone per step
    for acc in (0.5, 0.6, 0.6, 0.6):  # no improvement for two epochs: x0.1
        schedule.epoch_end(acc)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    again = recipe.Schedule("plateau", torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), 20, 2)
    again.load_state_dict(schedule.state_dict())
    assert again.plateau.best == schedule.plateau.best


def test_ema_averages_the_weights_and_follows_the_models_batchnorm_statistics() -> None:
    from lucid.models import create_model

    model = create_model("resnet_18", channels=[8, 8, 8, 8], num_classes=3)
    ema = recipe.build_ema(TrainConfig(model_ema=True, model_ema_decay=0.75), model)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    expected = None
    for _ in range(3):
        torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 16, 16)), torch.tensor([0, 1, 2, 0])).backward()
        opt.step()
        opt.zero_grad()
        ema.update_parameters(model)
        current = model.fc.weight.detach().clone()
        expected = current if expected is None else 0.75 * expected + 0.25 * current  # the first update copies
    assert torch.allclose(ema.module.fc.weight, expected, atol=1e-6)
    assert not torch.allclose(ema.module.fc.weight, model.fc.weight)
    assert torch.equal(ema.module.stem[1].running_var, model.stem[1].running_var)
