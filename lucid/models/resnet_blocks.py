"""The residual blocks of ResNet and ResNeXt: basic, bottleneck (grouped, wide) and pre-activation bottleneck.

Each takes ``(in_channels, channels, stride, downsample, **block_args)``; a config's
``block_args`` are checked against these signatures (see :mod:`lucid.models.configuration_resnet`).
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..nn import ConvBNReLU2d, DropPath, SqueezeExcite
from ..nn.blocks import NormLayer

__all__ = ["BLOCKS", "BasicBlock", "Bottleneck", "PreActBottleneck", "group_width"]


def _norm_conv(in_channels: int, out_channels: int, norm: NormLayer, **conv: Any) -> nn.Sequential:
    """A bias-free convolution followed by a norm, as ``Sequential(conv, norm)``."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, bias=False, **conv), norm(out_channels))


def group_width(channels: int, base_width: int) -> int:
    """Channels per group of a bottleneck's grouped 3x3 conv (ResNeXt's "d" in 32x4d)."""
    return int(channels * base_width / 64)


class _Residual(nn.Module):
    """Shared forward of the post-activation blocks: ``relu(branch(x) + shortcut(x))``."""

    expansion: ClassVar[int]

    def _finish_init(self, out_channels: int, drop_path: float, se: bool, se_args: dict[str, Any] | None) -> None:
        self.se = SqueezeExcite(out_channels, **(se_args or {})) if se else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None
        self.relu = nn.ReLU(inplace=True)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._branch(x)
        if self.se is not None:
            out = self.se(out)
        if self.drop_path is not None:
            out = self.drop_path(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class BasicBlock(_Residual):
    """Two 3x3 convolutions (ResNet-18/34); the stride sits on the first.

    ``conv1`` is a :class:`~lucid.nn.ConvBNReLU2d`, ``conv2`` is ``Sequential(conv, bn)``,
    then optional ``se``, ``drop_path``, the ``downsample`` shortcut and ``relu``.
    """

    expansion: ClassVar[int] = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        dilation: int = 1,
        se: bool = False,
        se_args: dict[str, Any] | None = None,
        drop_path: float = 0.0,
        norm_layer: NormLayer | None = None,
    ) -> None:
        super().__init__()
        norm = norm_layer or nn.BatchNorm2d
        out_channels = channels * self.expansion
        self.conv1 = ConvBNReLU2d(in_channels, channels, 3, stride=stride, padding=dilation, dilation=dilation, norm_layer=norm)
        self.conv2 = _norm_conv(channels, out_channels, norm, kernel_size=3, padding=dilation, dilation=dilation)
        self.downsample = downsample
        self._finish_init(out_channels, drop_path, se, se_args)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))

    def zero_init_last(self) -> None:
        """Zero the last norm's scale, so the block starts as its shortcut."""
        nn.init.zeros_(self.conv2[1].weight)


class Bottleneck(_Residual):
    """1x1 reduce -> 3x3 grouped (carries the stride) -> 1x1 expand by 4.

    The inner width is ``floor(channels * base_width / 64) * cardinality``: ResNet is
    ``cardinality=1, base_width=64``, Wide ResNet ``base_width=128``, ResNeXt-50 32x4d
    ``cardinality=32, base_width=4``. ``conv1``/``conv2`` are :class:`~lucid.nn.ConvBNReLU2d`,
    ``conv3`` is ``Sequential(conv, bn)``.
    """

    expansion: ClassVar[int] = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        cardinality: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        se: bool = False,
        se_args: dict[str, Any] | None = None,
        drop_path: float = 0.0,
        norm_layer: NormLayer | None = None,
    ) -> None:
        super().__init__()
        norm = norm_layer or nn.BatchNorm2d
        width = group_width(channels, base_width) * cardinality
        out_channels = channels * self.expansion
        self.conv1 = ConvBNReLU2d(in_channels, width, 1, norm_layer=norm)
        self.conv2 = ConvBNReLU2d(
            width, width, 3, stride=stride, padding=dilation, dilation=dilation, groups=cardinality, norm_layer=norm
        )
        self.conv3 = _norm_conv(width, out_channels, norm, kernel_size=1)
        self.downsample = downsample
        self._finish_init(out_channels, drop_path, se, se_args)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.conv2(self.conv1(x)))

    def zero_init_last(self) -> None:
        """Zero the last norm's scale, so the block starts as its shortcut."""
        nn.init.zeros_(self.conv3[1].weight)


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck (He et al., 2016, "Identity Mappings in Deep Residual Networks").

    ``out = conv3(relu(bn3(conv2(relu(bn2(conv1(a))))))) + shortcut``, where ``a = relu(bn1(x))``.
    A projection shortcut is taken from the pre-activated ``a``; an identity shortcut is ``x``
    itself. With ``preact=False`` the block uses ``x`` as ``a`` (the first block of a network,
    whose input the stem has just normalised and activated), as in the authors' code.
    """

    expansion: ClassVar[int] = 4
    pre_activation: ClassVar[bool] = True

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        cardinality: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        drop_path: float = 0.0,
        norm_layer: NormLayer | None = None,
        preact: bool = True,
    ) -> None:
        super().__init__()
        norm = norm_layer or nn.BatchNorm2d
        width = group_width(channels, base_width) * cardinality
        self.bn1 = norm(in_channels) if preact else None
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn2 = norm(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=dilation, dilation=dilation, groups=cardinality, bias=False)
        self.bn3 = norm(width)
        self.conv3 = nn.Conv2d(width, channels * self.expansion, 1, bias=False)
        self.relu = nn.ReLU(inplace=False)
        self.downsample = downsample
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x if self.bn1 is None else self.relu(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(a)
        out = self.conv1(a)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        if self.drop_path is not None:
            out = self.drop_path(out)
        return out + shortcut

    def zero_init_last(self) -> None:
        """Zero the last convolution, so the block starts as its shortcut."""
        nn.init.zeros_(self.conv3.weight)


BLOCKS: dict[str, type[nn.Module]] = {"basic": BasicBlock, "bottleneck": Bottleneck, "preact_bottleneck": PreActBottleneck}
