"""forward names the input dtype it received and the one it takes (torch's own message reads backwards)."""
from __future__ import annotations

import pytest
import torch

from lucid.core.errors import ConfigTypeError
from lucid.models import ResNet, ResNetConfig

SMALL = dict(block="basic", layers=(1, 1, 1, 1), channels=(4, 8, 8, 8), num_classes=3)


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.bool, torch.float64, torch.float16, torch.bfloat16])
def test_a_wrong_input_dtype_is_named_in_one_line(dtype: torch.dtype) -> None:
    model = ResNet(ResNetConfig(**SMALL)).eval()
    x = torch.zeros(1, 3, 32, 32).to(dtype)
    with pytest.raises(ConfigTypeError) as info:
        model(x)
    message = str(info.value)
    assert "\n" not in message and f"got a {str(dtype)[6:]} tensor" in message and "takes float32 images" in message, message


def test_matching_dtypes_and_autocast_are_accepted() -> None:
    model = ResNet(ResNetConfig(**SMALL)).eval()
    x = torch.rand(2, 3, 32, 32)
    expected = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(x.bfloat16()).shape == (2, 3)
    half = ResNet(ResNetConfig(**SMALL)).eval().to(torch.float64)
    half.load_state_dict(model.state_dict())
    torch.testing.assert_close(half(x.double()).float(), expected, rtol=1e-4, atol=1e-5)


def test_fx_tracing_and_export_still_work() -> None:
    model = ResNet(ResNetConfig(**SMALL)).eval()
    x = torch.rand(2, 3, 32, 32)
    traced = torch.fx.symbolic_trace(model)
    torch.testing.assert_close(traced(x), model(x))
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))
    with pytest.raises(ConfigTypeError, match="int64"):
        traced(x.long())
