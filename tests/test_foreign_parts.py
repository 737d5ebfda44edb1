"""optimize_for_inference and save_pretrained refuse models holding parts lucid does not know (quantizer
wrappers, hooks, tensor subclasses), naming the first, instead of silently dropping them."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TINY
from torch.ao.quantization import FakeQuantize

import lucid
from lucid.core.errors import CheckpointError, OptionError
from lucid.models import ResNet, ResNetConfig, from_pretrained
from lucid.models.foreign import first_foreign_part


def _tiny() -> ResNet:
    return ResNet(ResNetConfig(block="basic", num_classes=3, **TINY)).eval()


def test_a_plain_model_has_no_foreign_part() -> None:
    model = _tiny()
    assert first_foreign_part(model) is None
    torch.testing.assert_close(lucid.optimize_for_inference(model, retain_memory=False)(torch.ones(1, 3, 32, 32)),
                               model(torch.ones(1, 3, 32, 32)), rtol=1e-4, atol=1e-4)


def test_optimize_refuses_a_quantizer_module() -> None:
    model = _tiny()
    model.layer2[0].act_quant = FakeQuantize()  # what torch.ao's and NNCF's quantizers leave in a model
    with pytest.raises(OptionError, match=r"the model holds module 'layer2\.0\.act_quant' \(torch\.ao\.quantization\.fake_quantize\.FakeQuantize\)"):
        lucid.optimize_for_inference(model)


def test_optimize_refuses_forward_hooks_and_replaced_forwards() -> None:
    model = _tiny()

    def double(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        return output * 2

    handle = model.layer3.register_forward_hook(double)
    with pytest.raises(OptionError, match=r"a forward hook on module 'layer3' \(.*double\)"):
        lucid.optimize_for_inference(model)
    handle.remove()
    model.layer1.register_forward_pre_hook(lambda module, inputs: None)
    with pytest.raises(OptionError, match=r"a forward hook on module 'layer1'"):
        lucid.optimize_for_inference(model)
    other = _tiny()
    other.fc.forward = lambda x: x
    assert first_foreign_part(other) == "module 'fc' with its forward replaced on the instance"


def test_save_pretrained_refuses_foreign_modules_and_keeps_hooked_models(tmp_path: Path) -> None:
    model = _tiny()
    model.stem.observer = FakeQuantize()
    with pytest.raises(CheckpointError, match=r"save_pretrained: the model holds module 'stem\.observer'"):
        model.save_pretrained(tmp_path / "q")
    assert not (tmp_path / "q").exists()
    hooked = _tiny()
    hooked.fc.register_forward_hook(lambda module, inputs, output: output)  # hooks are not saved, nor need to be
    hooked.save_pretrained(tmp_path / "h")
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(from_pretrained(tmp_path / "h").eval()(x), hooked(x))
    with torch.device("meta"):
        empty = _tiny()
    with pytest.raises(CheckpointError, match=r"tensor 'stem\.0\.weight' on the meta device"):
        empty.save_pretrained(tmp_path / "m")


@pytest.mark.slow
def test_nncf_quantized_model_is_refused_by_name(tmp_path: Path) -> None:
    nncf = pytest.importorskip("nncf")
    model = _tiny()
    quantized = nncf.quantize(model, nncf.Dataset([torch.randn(2, 3, 32, 32)]), subset_size=2)
    assert isinstance(quantized, ResNet)  # still a lucid model to isinstance
    with pytest.raises(OptionError, match=r"module '__nncf_hooks' \(nncf\."):
        lucid.optimize_for_inference(quantized)
    with pytest.raises(CheckpointError, match=r"module '__nncf_hooks' \(nncf\."):
        quantized.save_pretrained(tmp_path / "q")
