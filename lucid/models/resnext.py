"""ResNeXt (Xie et al., 2017): ResNet with grouped bottlenecks, scaled by cardinality and base width."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import nn

from .resnet import ResNet, _Bottleneck, _check_bottleneck_width, _validate_common
from .config import ModelConfig
from .registry import build_preset, register_model

__all__ = [
    "ResNeXtConfig",
    "ResNeXt",
    "resnext_50_32x4d",
    "resnext_101_32x4d",
    "resnext_101_32x8d",
    "resnext_101_32x16d",
    "resnext_101_32x32d",
    "resnext_101_64x4d",
]


@dataclass
class ResNeXtConfig(ModelConfig):
    """Everything that defines a ResNeXt.

    Args:
        layers: number of bottleneck blocks in each of the four stages.
        cardinality: number of groups in every 3x3 bottleneck convolution.
        base_width: width of each group (``resnext_50_32x4d`` has 32 groups of 4 at stage width 64).
        num_classes: size of the classifier output.
        in_channels: channels of the input images.
        stem_width: output width of the plain stem; width of the first two convs of the deep stem.
        stem_type: ``None`` (7x7 conv) or ``"deep"`` (three 3x3 convs, ending at ``2 * stem_width``).
        avg_down: ResNet-D shortcuts (average pool, then a stride-1 1x1 conv).
        channels: base width of each stage (block outputs are 4 times this).
        block_args: extra keyword arguments for every bottleneck (``drop_path``, ``se_reduction``).
        zero_init_residual: start every block's last BatchNorm at zero so blocks begin as identities.
    """

    model_type: ClassVar[str] = "resnext"

    layers: tuple[int, ...]
    cardinality: int
    base_width: int
    num_classes: int = 1000
    in_channels: int = 3
    stem_width: int = 64
    stem_type: str | None = None
    avg_down: bool = False
    channels: tuple[int, ...] = (64, 128, 256, 512)
    block_args: dict[str, Any] = field(default_factory=dict)
    zero_init_residual: bool = False

    def validate(self) -> None:
        _validate_common(self)
        _check_bottleneck_width(self)

    @property
    def block_class(self) -> type[nn.Module]:
        """ResNeXt always uses the (grouped) bottleneck block."""
        return _Bottleneck


class ResNeXt(ResNet):
    """A ResNeXt assembled from a :class:`ResNeXtConfig`.

    Same layout as :class:`ResNet` (``stem``, ``maxpool``, ``layer1``..``layer4``,
    ``avgpool``, ``fc``); every 3x3 bottleneck convolution has ``cardinality`` groups.

    Example:
        >>> import lucid
        >>> import lucid.models as models
        >>> config = models.ResNeXtConfig(layers=[3, 4, 6, 3], cardinality=32, base_width=4,
        ...                               num_classes=10, in_channels=1, stem_type="deep", stem_width=32)
        >>> model = models.ResNeXt(config)
        >>> model(lucid.zeros(1, 1, 224, 224)).shape
        torch.Size([1, 10])
    """

    config_class: ClassVar[type[ModelConfig]] = ResNeXtConfig

    def __init__(self, config: ResNeXtConfig) -> None:
        super().__init__(config)  # type: ignore[arg-type]
        self.cardinality = config.cardinality
        self.base_width = config.base_width


def _resnext(name: str, layers: list[int], cardinality: int, base_width: int, num_classes: int, kwargs: dict[str, Any]) -> ResNeXt:
    return build_preset(name, ResNeXt, dict(layers=layers, cardinality=cardinality, base_width=base_width), num_classes, kwargs)


@register_model
def resnext_50_32x4d(num_classes: int = 1000, **kwargs: Any) -> ResNeXt:
    """ResNeXt-50 32x4d: stages [3, 4, 6, 3], 32 groups of width 4; 25,028,904 parameters."""
    return _resnext("resnext_50_32x4d", [3, 4, 6, 3], 32, 4, num_classes, kwargs)


@register_model
def resnext_101_32x4d(num_classes: int = 1000, **kwargs: Any) -> ResNeXt:
    """ResNeXt-101 32x4d: stages [3, 4, 23, 3], 32 groups of width 4; 44,177,704 parameters."""
    return _resnext("resnext_101_32x4d", [3, 4, 23, 3], 32, 4, num_classes, kwargs)


@register_model
def resnext_101_32x8d(num_classes: int = 1000, **kwargs: Any) -> ResNeXt:
    """ResNeXt-101 32x8d: stages [3, 4, 23, 3], 32 groups of width 8; 88,791,336 parameters."""
    return _resnext("resnext_101_32x8d", [3, 4, 23, 3], 32, 8, num_classes, kwargs)


@register_model
def resnext_101_32x16d(num_classes: int = 1000, **kwargs: Any) -> ResNeXt:
    """ResNeXt-101 32x16d: stages [3, 4, 23, 3], 32 groups of width 16; 194,026,792 parameters."""
    return _resnext("resnext_101_32x16d", [3, 4, 23, 3], 32, 16, num_classes, kwargs)


@register_model
def resnext_101_32x32d(num_classes: int = 1000, **kwargs: Any) -> ResNeXt:
    """ResNeXt-101 32x32d: stages [3, 4, 23, 3], 32 groups of width 32; 468,530,472 parameters."""
    return _resnext("resnext_101_32x32d", [3, 4, 23, 3], 32, 32, num_classes, kwargs)


@register_model
def resnext_101_64x4d(num_classes: int = 1000, **kwargs: Any) -> ResNeXt:
    """ResNeXt-101 64x4d: stages [3, 4, 23, 3], 64 groups of width 4; 83,455,272 parameters."""
    return _resnext("resnext_101_64x4d", [3, 4, 23, 3], 64, 4, num_classes, kwargs)
