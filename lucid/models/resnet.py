"""ResNet (He et al., 2016) and its wide/deep-stem/ResNet-D variants, driven by one config.

Reading order: the config, the two residual blocks, the stem and stage builders,
the model, then the presets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

import torch
from torch import nn

from ..nn import ConvBNReLU2d, DropPath, SqueezeExcite
from .config import (
    ModelConfig,
    check_choice,
    check_four_positive_ints,
    check_positive_int,
)
from .hub import PretrainedMixin
from .registry import build_preset, register_model

__all__ = [
    "ResNetConfig",
    "ResNet",
    "resnet_18",
    "resnet_34",
    "resnet_50",
    "resnet_101",
    "resnet_152",
    "wide_resnet_50",
    "wide_resnet_101",
]

STEM_TYPES = (None, "deep")
BlockSpec = Union[str, type]


def _validate_common(cfg: Any) -> None:
    """Checks shared by ResNetConfig and ResNeXtConfig; normalises sequences to tuples."""
    cfg.layers = check_four_positive_ints("layers", cfg.layers)
    cfg.channels = check_four_positive_ints("channels", cfg.channels)
    for name in ("cardinality", "base_width", "num_classes", "in_channels", "stem_width"):
        check_positive_int(name, getattr(cfg, name))
    check_choice("stem_type", cfg.stem_type, STEM_TYPES)
    for name in ("avg_down", "zero_init_residual"):
        if not isinstance(getattr(cfg, name), bool):
            raise TypeError(f"{name} must be a bool, got {getattr(cfg, name)!r}")
    if not isinstance(cfg.block_args, dict):
        raise TypeError(f"block_args must be a dict of keyword arguments for every block, got {cfg.block_args!r}")


def _group_width(channels: int, base_width: int) -> int:
    """Channels per group of a bottleneck's grouped 3x3 conv (ResNeXt's "d" in 32x4d)."""
    return int(channels * base_width / 64)


def _check_bottleneck_width(cfg: Any) -> None:
    """Every grouped 3x3 conv needs at least one channel per group."""
    for i, channels in enumerate(cfg.channels):
        if _group_width(channels, cfg.base_width) < 1:
            raise ValueError(
                f"channels[{i}]={channels} with base_width={cfg.base_width} gives a bottleneck width of "
                f"floor({channels} * {cfg.base_width} / 64) = 0 channels per group; raise base_width or channels"
            )


@dataclass
class ResNetConfig(ModelConfig):
    """Everything that defines a ResNet.

    Args:
        block: ``"basic"`` (two 3x3 convs, ResNet-18/34), ``"bottleneck"`` (1x1-3x3-1x1,
            ResNet-50 and deeper) or an ``nn.Module`` subclass with an ``expansion`` attribute
            and the constructor of :class:`_Bottleneck`.
        layers: number of blocks in each of the four stages.
        num_classes: size of the classifier output.
        in_channels: channels of the input images.
        stem_width: output width of the plain stem; width of the first two convs of the deep stem.
        stem_type: ``None`` (7x7 conv) or ``"deep"`` (three 3x3 convs, ending at ``2 * stem_width``).
        avg_down: ResNet-D shortcuts (average pool, then a stride-1 1x1 conv).
        channels: base width of each stage (block outputs are ``expansion`` times this).
        cardinality: groups of the 3x3 conv in bottleneck blocks.
        base_width: width per group; 64 is ResNet, 128 is Wide ResNet.
        block_args: extra keyword arguments for every block (``drop_path``, ``se_reduction``).
        zero_init_residual: start every block's last BatchNorm at zero so blocks begin as identities.
    """

    model_type: ClassVar[str] = "resnet"

    block: BlockSpec
    layers: tuple[int, ...]
    num_classes: int = 1000
    in_channels: int = 3
    stem_width: int = 64
    stem_type: str | None = None
    avg_down: bool = False
    channels: tuple[int, ...] = (64, 128, 256, 512)
    cardinality: int = 1
    base_width: int = 64
    block_args: dict[str, Any] = field(default_factory=dict)
    zero_init_residual: bool = False

    def validate(self) -> None:
        block = self.block
        if isinstance(block, str):
            check_choice("block", block, tuple(BLOCKS))
        elif not (isinstance(block, type) and issubclass(block, nn.Module) and isinstance(getattr(block, "expansion", None), int)):
            raise TypeError(
                f"block must be 'basic', 'bottleneck' or an nn.Module subclass with an int `expansion` attribute, got {block!r}"
            )
        _validate_common(self)
        if block == "bottleneck":
            _check_bottleneck_width(self)
        if block == "basic" and (self.cardinality != 1 or self.base_width != 64):
            raise ValueError(
                f"block='basic' supports only cardinality=1 and base_width=64, got cardinality={self.cardinality}, "
                f"base_width={self.base_width}; use block='bottleneck' for grouped or wide blocks"
            )

    def to_dict(self) -> dict[str, Any]:
        if not isinstance(self.block, str):
            raise TypeError(
                f"a config with a custom block class ({self.block.__qualname__}) cannot be written as JSON; "
                "use block='basic' or 'bottleneck', or save the state dict yourself"
            )
        return super().to_dict()

    @property
    def block_class(self) -> type[nn.Module]:
        """The block class to instantiate."""
        return BLOCKS[self.block] if isinstance(self.block, str) else self.block


class _Residual(nn.Module):
    """Shared forward of the residual blocks: ``relu(branch(x) + shortcut(x))``."""

    expansion: ClassVar[int]

    def _finish_init(self, out_channels: int, drop_path: float, se_reduction: int | None) -> None:
        self.se = SqueezeExcite(out_channels, se_reduction) if se_reduction else None
        self.drop_path = DropPath(drop_path) if drop_path > 0 else None

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


class _BasicBlock(_Residual):
    """Two 3x3 convolutions (ResNet-18/34). The stride sits on the first one."""

    expansion: ClassVar[int] = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        cardinality: int = 1,
        base_width: int = 64,
        drop_path: float = 0.0,
        se_reduction: int | None = None,
    ) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = ConvBNReLU2d(in_channels, channels, 3, stride=stride, padding=1)
        self.conv2 = nn.Sequential(nn.Conv2d(channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self._finish_init(out_channels, drop_path, se_reduction)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))

    def last_bn(self) -> nn.BatchNorm2d:
        return self.conv2[1]


class _Bottleneck(_Residual):
    """1x1 reduce -> 3x3 grouped (carries the stride) -> 1x1 expand by 4.

    The inner width is ``floor(channels * base_width / 64) * cardinality``.
    """

    expansion: ClassVar[int] = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        cardinality: int = 1,
        base_width: int = 64,
        drop_path: float = 0.0,
        se_reduction: int | None = None,
    ) -> None:
        super().__init__()
        width = _group_width(channels, base_width) * cardinality
        out_channels = channels * self.expansion
        self.conv1 = ConvBNReLU2d(in_channels, width, 1)
        self.conv2 = ConvBNReLU2d(width, width, 3, stride=stride, padding=1, groups=cardinality)
        self.conv3 = nn.Sequential(nn.Conv2d(width, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self._finish_init(out_channels, drop_path, se_reduction)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.conv2(self.conv1(x)))

    def last_bn(self) -> nn.BatchNorm2d:
        return self.conv3[1]


BLOCKS: dict[str, type[nn.Module]] = {"basic": _BasicBlock, "bottleneck": _Bottleneck}


def _make_stem(in_channels: int, stem_width: int, stem_type: str | None) -> tuple[nn.Sequential, int]:
    """The stem before the max-pool, and the number of channels it outputs."""
    if stem_type == "deep":
        widths = (stem_width, stem_width, 2 * stem_width)
        layers: list[nn.Module] = []
        prev = in_channels
        for i, width in enumerate(widths):
            layers += [
                nn.Conv2d(prev, width, 3, stride=2 if i == 0 else 1, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            prev = width
        return nn.Sequential(*layers), prev
    stem = nn.Sequential(
        nn.Conv2d(in_channels, stem_width, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(stem_width),
        nn.ReLU(inplace=True),
    )
    return stem, stem_width


def _make_shortcut(in_channels: int, out_channels: int, stride: int, avg_down: bool) -> nn.Sequential:
    """Projection shortcut. ResNet-D keeps (pool or Identity, conv, bn) so indices never move."""
    if not avg_down:
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels))
    pool: nn.Module = (
        nn.AvgPool2d(2, stride=stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
    )
    return nn.Sequential(pool, nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))


@torch.fx.wrap
def _check_images(x: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Refuse input that is not an (N, C, H, W) batch with the configured channels.

    Wrapped for torch.fx so symbolic tracing records this as one call instead of
    failing on the shape checks.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of shape (N, {in_channels}, H, W), got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(
            f"expected input of shape (N, C, H, W) with C={in_channels} channels, got shape {tuple(x.shape)}"
        )
    return x


class ResNet(PretrainedMixin, nn.Module):
    """A ResNet assembled from a :class:`ResNetConfig`.

    ``stem -> maxpool -> layer1..layer4 -> avgpool -> fc``. Also a backbone:
    :meth:`forward_features`, :meth:`forward_intermediates` and :attr:`feature_info`.
    """

    config_class: ClassVar[type[ModelConfig]] = ResNetConfig

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} expects a {self.config_class.__name__}, got {type(config).__name__}")
        self.config = config
        block = config.block_class
        self.stem, width = _make_stem(config.in_channels, config.stem_width, config.stem_type)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        self.feature_info: list[dict[str, Any]] = []
        reduction = 4
        for i, (depth, channels) in enumerate(zip(config.layers, config.channels)):
            stride = 1 if i == 0 else 2
            reduction *= stride
            stage, width = self._make_stage(block, width, channels, depth, stride)
            self.add_module(f"layer{i + 1}", stage)
            self.feature_info.append({"module": f"layer{i + 1}", "num_chs": width, "reduction": reduction})

        self.num_features = width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width, config.num_classes)
        self._init_weights()

    def _make_stage(self, block: type[nn.Module], in_channels: int, channels: int, depth: int, stride: int) -> tuple[nn.Sequential, int]:
        cfg = self.config
        out_channels = channels * block.expansion
        blocks = []
        for j in range(depth):
            block_stride = stride if j == 0 else 1
            downsample = None
            if j == 0 and (block_stride != 1 or in_channels != out_channels):
                downsample = _make_shortcut(in_channels, out_channels, block_stride, cfg.avg_down)
            blocks.append(
                block(
                    in_channels,
                    channels,
                    stride=block_stride,
                    downsample=downsample,
                    cardinality=cfg.cardinality,
                    base_width=cfg.base_width,
                    **cfg.block_args,
                )
            )
            in_channels = out_channels
        return nn.Sequential(*blocks), out_channels

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.config.zero_init_residual:
            for m in self.modules():
                if hasattr(m, "last_bn"):
                    nn.init.zeros_(m.last_bn().weight)

    @property
    def stages(self) -> list[nn.Sequential]:
        """The four residual stages, ``[layer1, layer2, layer3, layer4]``."""
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (stride 32, ``num_features`` channels)."""
        x = self.maxpool(self.stem(_check_images(x, self.config.in_channels)))
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_intermediates(self, x: torch.Tensor, indices: list[int] | None = None) -> list[torch.Tensor]:
        """Outputs of the stages (all four by default: strides 4, 8, 16, 32)."""
        wanted = range(4) if indices is None else indices
        for i in wanted:
            if not (isinstance(i, int) and 0 <= i < 4):
                raise ValueError(f"indices must be stage numbers in 0..3, got {list(wanted)!r}")
        last = max(wanted, default=-1)
        x = self.maxpool(self.stem(_check_images(x, self.config.in_channels)))
        outs = []
        for i, stage in enumerate(self.stages[: last + 1]):
            x = stage(x)
            if i in wanted:
                outs.append(x)
        return outs

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Global average pool and classifier over a feature map."""
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(N, num_classes)`` for images of shape ``(N, in_channels, H, W)``."""
        return self.forward_head(self.forward_features(x))


# ---------------------------------------------------------------------------- presets


def _resnet(name: str, block: str, layers: list[int], num_classes: int, kwargs: dict[str, Any], base_width: int = 64) -> ResNet:
    defining = dict(block=block, layers=layers, cardinality=1, base_width=base_width)
    return build_preset(name, ResNet, defining, num_classes, kwargs)


@register_model
def resnet_18(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-18: basic blocks, stages [2, 2, 2, 2]; 11,689,512 parameters."""
    return _resnet("resnet_18", "basic", [2, 2, 2, 2], num_classes, kwargs)


@register_model
def resnet_34(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-34: basic blocks, stages [3, 4, 6, 3]; 21,797,672 parameters."""
    return _resnet("resnet_34", "basic", [3, 4, 6, 3], num_classes, kwargs)


@register_model
def resnet_50(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-50: bottleneck blocks, stages [3, 4, 6, 3]; 25,557,032 parameters."""
    return _resnet("resnet_50", "bottleneck", [3, 4, 6, 3], num_classes, kwargs)


@register_model
def resnet_101(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-101: bottleneck blocks, stages [3, 4, 23, 3]; 44,549,160 parameters."""
    return _resnet("resnet_101", "bottleneck", [3, 4, 23, 3], num_classes, kwargs)


@register_model
def resnet_152(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """ResNet-152: bottleneck blocks, stages [3, 8, 36, 3]; 60,192,808 parameters."""
    return _resnet("resnet_152", "bottleneck", [3, 8, 36, 3], num_classes, kwargs)


@register_model
def wide_resnet_50(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """Wide ResNet-50-2: ResNet-50 with twice the bottleneck width; 68,883,240 parameters."""
    return _resnet("wide_resnet_50", "bottleneck", [3, 4, 6, 3], num_classes, kwargs, base_width=128)


@register_model
def wide_resnet_101(num_classes: int = 1000, **kwargs: Any) -> ResNet:
    """Wide ResNet-101-2: ResNet-101 with twice the bottleneck width; 126,886,696 parameters."""
    return _resnet("wide_resnet_101", "bottleneck", [3, 4, 23, 3], num_classes, kwargs, base_width=128)
