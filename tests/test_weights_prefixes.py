"""Checkpoints written by other trainers and wrappers: Lightning, DDP, torch.compile, detectors, any prefix."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TINY
from torch import nn

from lucid.models import ResNeXt, ResNeXtConfig
from lucid.weights import CheckpointError, load_checkpoint, save_file


def _tiny() -> ResNeXt:
    return ResNeXt(ResNeXtConfig(cardinality=4, base_width=32, num_classes=3, **TINY))


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=k)


@pytest.mark.slow  # imports Lightning and runs its Trainer
def test_lightning_checkpoint(tmp_path: Path) -> None:
    lightning = pytest.importorskip("lightning")

    class Classifier(lightning.LightningModule):
        def __init__(self, lr: float = 0.1) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.model = _tiny()

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.cross_entropy(self.model(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    data = torch.utils.data.TensorDataset(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0]))
    module = Classifier()
    trainer = lightning.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=2))
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    assert all(k.startswith("model.") for k in torch.load(tmp_path / "last.ckpt", weights_only=True)["state_dict"])

    loaded = load_checkpoint(_tiny(), tmp_path / "last.ckpt")
    _assert_same_weights(loaded, module.model)
    _assert_same_weights(load_checkpoint(_tiny(), tmp_path / "last.ckpt", prefix="model."), module.model)


@pytest.mark.parametrize("wrap", ["module.", "_orig_mod.", "backbone.", "model.module._orig_mod."])
def test_common_prefixes_are_stripped(tmp_path: Path, wrap: str) -> None:
    source = _tiny()
    state = {f"{wrap}{k}": v for k, v in source.state_dict().items()}
    _assert_same_weights(load_checkpoint(_tiny(), state), source)
    save_file(state, tmp_path / "w.safetensors")
    _assert_same_weights(load_checkpoint(_tiny(), tmp_path / "w.safetensors"), source)


def test_any_prefix_by_name(tmp_path: Path) -> None:
    student, teacher = _tiny(), _tiny()
    state = {**{f"student.{k}": v for k, v in student.state_dict().items()},
             **{f"teacher.{k}": v for k, v in teacher.state_dict().items()}}
    torch.save({"state_dict": state}, tmp_path / "distill.pt")
    _assert_same_weights(load_checkpoint(_tiny(), tmp_path / "distill.pt", prefix="teacher."), teacher)
    with pytest.raises(CheckpointError, match=r"cannot tell its layout .* got student\.stem"):
        load_checkpoint(_tiny(), tmp_path / "distill.pt")
    with pytest.raises(CheckpointError, match=r"no key starts with prefix='ema\.' \(keys start like student\.stem"):
        load_checkpoint(_tiny(), tmp_path / "distill.pt", prefix="ema.")
    with pytest.raises(ValueError, match="prefix must be a non-empty string"):
        load_checkpoint(_tiny(), state, prefix="")
