"""ResNet (He et al., 2016) and ResNeXt (Xie et al., 2017), built from their configs.

Wide, deep-stem, ResNet-D, squeeze-excite and pre-activation variants are fields of
:class:`~lucid.models.ResNetConfig`; a ResNeXt is a ResNet of grouped bottlenecks. Reading
order: the stem and shortcut builders, the input check, then the models. The blocks are in
:mod:`lucid.models.resnet_blocks`; the presets (``resnet_50`` and friends) are rows of the
table in :mod:`lucid.models.presets`.
"""
from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
from torch import nn

from ..core.errors import ConfigTypeError, DataError
from ..nn.blocks import NormLayer
from .config import ModelConfig
from .configuration_resnet import ResNetConfig, ResNeXtConfig, resolve_norm_layer
from .saving import PretrainedMixin, config_from_dict
from .timm_protocol import TimmProtocolMixin

__all__ = ["ResNeXt", "ResNet"]


def _make_stem(in_channels: int, stem_width: int, stem_type: str | None, norm: NormLayer) -> tuple[nn.Sequential, int]:
    """The stem before the max-pool, and the number of channels it outputs."""
    if stem_type != "deep":
        return nn.Sequential(*_conv_norm_relu(in_channels, stem_width, 7, 2, norm)), stem_width
    widths = (stem_width, stem_width, 2 * stem_width)
    layers: list[nn.Module] = []
    for i, width in enumerate(widths):
        layers += _conv_norm_relu(in_channels if i == 0 else widths[i - 1], width, 3, 2 if i == 0 else 1, norm)
    return nn.Sequential(*layers), widths[-1]


def _conv_norm_relu(in_channels: int, out_channels: int, kernel: int, stride: int, norm: NormLayer) -> list[nn.Module]:
    conv = nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False)
    return [conv, norm(out_channels), nn.ReLU(inplace=True)]


def _make_shortcut(in_channels: int, out_channels: int, stride: int, avg_down: bool, norm: NormLayer | None) -> nn.Sequential:
    """Projection shortcut: ``(conv, norm)``; ResNet-D ``(pool or Identity, conv, norm)`` so indices never move.

    ``norm=None`` (pre-activation networks) leaves the norm out: the input is already normalised.
    """
    parts: list[nn.Module] = []
    if avg_down:
        parts.append(nn.AvgPool2d(2, stride=stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity())
    parts.append(nn.Conv2d(in_channels, out_channels, 1, stride=1 if avg_down else stride, bias=False))
    if norm is not None:
        parts.append(norm(out_channels))
    return nn.Sequential(*parts)


@torch.fx.wrap
def _check_images(x: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Refuse input that is not an (N, C, H, W) batch with the configured channels.

    Wrapped for torch.fx so symbolic tracing records this as one call instead of
    failing on the shape checks.
    """
    if not isinstance(x, torch.Tensor):
        raise ConfigTypeError(f"expected a torch.Tensor of shape (N, {in_channels}, H, W), got {type(x).__name__}", "input")
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise DataError(
            f"expected input of shape (N, C, H, W) with C={in_channels} channels, got shape {tuple(x.shape)}"
        )
    return x


# ---------------------------------------------------------------------------- the models


class ResNet(TimmProtocolMixin, PretrainedMixin, nn.Module):
    """A ResNet assembled from a :class:`ResNetConfig`.

    ``stem -> maxpool -> layer1..layerN -> (post_act) -> avgpool -> fc``, one stage per entry of
    ``config.layers``; ``post_act`` (the
    final norm and ReLU) exists only in pre-activation networks. Also a backbone:
    :meth:`forward_features`, :meth:`forward_intermediates` and :attr:`feature_info`, with
    timm's model protocol (:class:`~lucid.models.timm_protocol.TimmProtocolMixin`).
    """

    config_class: ClassVar[type[ModelConfig]] = ResNetConfig
    __jit_unused_properties__ = ["stages", *TimmProtocolMixin.jit_unused_properties]

    def __init__(self, config: ResNetConfig) -> None:
        super().__init__()
        if isinstance(config, dict):  # huggingface_hub's mixin passes config.json as a dict
            config = config_from_dict(self.config_class, config)
        if not isinstance(config, self.config_class):
            raise ConfigTypeError(
                f"config: {type(self).__name__} expects a {self.config_class.__name__}, got {type(config).__name__}", "config"
            )
        self.config = config
        self._build(config)

    def _build(self, spec: ResNetConfig) -> None:
        """Create every submodule from ``spec``, the one construction path of ResNet and ResNeXt."""
        block, norm = spec.block_class, resolve_norm_layer(spec.norm_layer)
        self.stem, width = _make_stem(spec.in_channels, spec.stem_width, spec.stem_type, norm)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.feature_info: list[dict[str, Any]] = [{"module": "stem", "num_chs": width, "reduction": 2}]
        for i, (depth, channels) in enumerate(zip(spec.layers, spec.channels)):
            stage, width = self._make_stage(spec, block, norm, i, width, channels, depth)
            self.add_module(f"layer{i + 1}", stage)
            self.feature_info.append({"module": f"layer{i + 1}", "num_chs": width, "reduction": 4 * 2**i})
        self.post_act = nn.Sequential(norm(width), nn.ReLU(inplace=True)) if _pre_activation(block) else None
        self.num_features = width
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width, spec.num_classes)
        self._init_weights(spec.zero_init_residual)

    @staticmethod
    def _make_stage(
        spec: ResNetConfig, block: type[nn.Module], norm: NormLayer, index: int, in_channels: int, channels: int, depth: int
    ) -> tuple[nn.Sequential, int]:
        """Stage ``index``: its first block carries the stride and the projection shortcut."""
        out_channels = channels * block.expansion
        stride = 1 if index == 0 else 2
        preact = _pre_activation(block)
        kwargs = spec.all_block_args
        if spec.norm_layer is not None or "norm_layer" in inspect.signature(block.__init__).parameters:
            kwargs["norm_layer"] = norm
        blocks = []
        for j in range(depth):
            block_stride = stride if j == 0 else 1
            downsample = None
            if j == 0 and (block_stride != 1 or in_channels != out_channels):
                downsample = _make_shortcut(in_channels, out_channels, block_stride, spec.avg_down, None if preact else norm)
            extra = {"preact": False} if preact and index == 0 and j == 0 else {}
            blocks.append(block(in_channels, channels, block_stride, downsample, **kwargs, **extra))
            in_channels = out_channels
        return nn.Sequential(*blocks), out_channels

    def _init_weights(self, zero_init_residual: bool) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for m in self.modules():
                if hasattr(m, "zero_init_last"):
                    m.zero_init_last()

    @property
    def stages(self) -> list[nn.Module]:
        """The residual stages in order, ``[layer1, ..., layerN]``, one per entry of ``config.layers``."""
        return [module for name, module in self.named_children() if name.startswith("layer")]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (stride 32, ``num_features`` channels)."""
        if not torch.jit.is_scripting():
            x = _check_images(x, self.config.in_channels)
        x = self.maxpool(self.stem(x))
        for name, stage in self.named_children():  # the stages, in order (a loop TorchScript unrolls)
            if name.startswith("layer"):
                x = stage(x)
        if self.post_act is not None:
            x = self.post_act(x)
        return x

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` if it is an (N, in_channels, H, W) batch; a clear error otherwise."""
        return _check_images(x, self.config.in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(N, num_classes)`` for images of shape ``(N, in_channels, H, W)``."""
        return self.forward_head(self.forward_features(x))


def _pre_activation(block: type[nn.Module]) -> bool:
    return bool(getattr(block, "pre_activation", False))


class ResNeXt(ResNet):
    """A ResNeXt assembled from a :class:`ResNeXtConfig`.

    Same layout as :class:`ResNet` (``stem``, ``maxpool``, one ``layerN`` per stage,
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
