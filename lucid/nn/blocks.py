"""Building blocks shared by lucid's architectures."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..core.errors import OptionError

__all__ = ["ConvBNReLU2d", "DropPath", "SqueezeExcite", "make_divisible"]

NormLayer = Callable[[int], nn.Module]


def make_divisible(value: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), never
    more than 10% below ``value``: the rounding timm uses for squeeze-excite widths."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < round_limit * value else rounded


class ConvBNReLU2d(nn.Module):
    """Conv2d -> BatchNorm2d -> ReLU, kept as three named submodules.

    The submodules are ``conv``, ``bn`` and ``relu`` so that checkpoints and
    BatchNorm folding can address each part by name. ``norm_layer`` (default
    ``nn.BatchNorm2d``) builds ``bn`` from the channel count, e.g. torchvision's
    ``FrozenBatchNorm2d`` for detection fine-tuning.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        conv_bias: bool = False,
        norm_layer: NormLayer | None = None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=conv_bias,
        )
        self.bn = (norm_layer or nn.BatchNorm2d)(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch of a sample with probability ``p``.

    Survivors are rescaled by ``1 / (1 - p)`` so the expected output is unchanged;
    in eval mode this is the identity.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise OptionError(f"DropPath: p must be in [0, 1), got {p!r}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class SqueezeExcite(nn.Module):
    """Squeeze-and-Excitation channel gate (Hu et al., 2018).

    Global average pool -> 1x1 conv down to ``make_divisible(channels / reduction, divisor)``
    channels -> ReLU -> 1x1 conv up -> sigmoid, and the input is scaled channel-wise by the
    result. The default rounding (``divisor=8``) is timm's, so its SE checkpoints fit.
    """

    def __init__(self, channels: int, reduction: int = 16, divisor: int = 8) -> None:
        super().__init__()
        hidden = make_divisible(channels / reduction, divisor)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.fc2(self.relu(self.fc1(s))))
