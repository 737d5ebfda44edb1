"""ResNeXt (Xie et al., 2017): ResNet with grouped bottlenecks, scaled by cardinality and base width.

A :class:`ResNeXtConfig` is a convenient spelling of one :class:`~lucid.models.ResNetConfig`
(``block="bottleneck"`` with ``cardinality`` and ``base_width`` in ``block_args``), and a
:class:`ResNeXt` is built from that equivalent config, so both share one construction path.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import nn

from ..core.errors import ConfigError
from ..nn.blocks import NormLayer
from .config import ModelConfig, check_positive_int
from .resnet import Bottleneck, ResNet, ResNetConfig, migrate_block_args, validate_shared_fields

__all__ = ["ResNeXtConfig", "ResNeXt"]


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
        block_args: further keyword arguments for every bottleneck (``dilation``, ``se``,
            ``se_args``, ``drop_path``); ``cardinality`` and ``base_width`` are fields here.
        zero_init_residual: start every block's last norm at zero so blocks begin as identities.
        norm_layer: builds every norm of the model; ``None`` is ``nn.BatchNorm2d``.
    """

    model_type: ClassVar[str] = "lucid.resnext"
    legacy_model_types: ClassVar[tuple[str, ...]] = ("resnext",)

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
    norm_layer: str | NormLayer | None = None

    def validate(self) -> None:
        self.cardinality = check_positive_int("cardinality", self.cardinality)
        self.base_width = check_positive_int("base_width", self.base_width)
        validate_shared_fields(self)
        repeated = sorted({"cardinality", "base_width"} & set(self.block_args))
        if repeated:
            raise ConfigError(
                f"block_args must not repeat {' or '.join(repeated)}: set {'it' if len(repeated) == 1 else 'them'} "
                f"as ResNeXtConfig field(s); got block_args={self.block_args!r}",
                "block_args",
            )
        checked = self.resnet_config().block_args  # checked and normalised there
        self.block_args = {k: v for k, v in checked.items() if k not in ("cardinality", "base_width")}

    def resnet_config(self) -> ResNetConfig:
        """The equivalent :class:`~lucid.models.ResNetConfig`, from which the model is built."""
        return ResNetConfig(
            block="bottleneck",
            layers=self.layers,
            num_classes=self.num_classes,
            in_channels=self.in_channels,
            stem_width=self.stem_width,
            stem_type=self.stem_type,
            avg_down=self.avg_down,
            channels=self.channels,
            block_args={"cardinality": self.cardinality, "base_width": self.base_width, **self.block_args},
            zero_init_residual=self.zero_init_residual,
            norm_layer=self.norm_layer,
        )

    @property
    def block_class(self) -> type[nn.Module]:
        """ResNeXt always uses the (grouped) bottleneck block."""
        return Bottleneck

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "norm_layer": self.resnet_config().to_dict()["norm_layer"]}

    @classmethod
    def migrate(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Folders saved with the older ``se_reduction`` block argument."""
        return migrate_block_args(data)


class ResNeXt(ResNet):
    """A ResNeXt assembled from a :class:`ResNeXtConfig`.

    Same layout as :class:`ResNet` (``stem``, ``maxpool``, ``layer1``..``layer4``,
    ``avgpool``, ``fc``); every 3x3 bottleneck convolution has ``cardinality`` groups.
    ``config`` is the object passed; ``cardinality`` and ``base_width`` are copied from it.

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
        self.cardinality = self.config.cardinality  # self.config: the dict form is converted by ResNet
        self.base_width = self.config.base_width
