"""ResNet (He et al., 2016) and its wide, deep-stem, ResNet-D, squeeze-excite and
pre-activation variants, driven by one config.

Reading order: the config, the three residual blocks, the checks of ``block_args``, the stem
and shortcut builders, then the model. The presets (``resnet_50`` and friends) are rows of
the table in :mod:`lucid.models.presets`.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

import torch
from torch import nn

from ..core.errors import ConfigError, ConfigTypeError
from ..nn import ConvBNReLU2d, DropPath, SqueezeExcite
from ..nn.blocks import NormLayer
from .config import (
    ModelConfig,
    check_bool,
    check_positive_int,
    check_stage_values,
    check_unit_interval,
    describe,
)
from .hub import PretrainedMixin, config_from_dict
from .timm_protocol import TimmProtocolMixin

__all__ = ["ResNetConfig", "ResNet", "BasicBlock", "Bottleneck", "PreActBottleneck", "NORM_LAYERS"]

STEM_TYPES = (None, "deep")
BlockSpec = Union[str, type]


def _frozen_batchnorm(channels: int) -> nn.Module:
    from torchvision.ops import FrozenBatchNorm2d

    return FrozenBatchNorm2d(channels)


# Norm layers a config.json may name (a saved config never names code to import).
NORM_LAYERS: dict[str, Callable[[int], nn.Module]] = {
    "BatchNorm2d": nn.BatchNorm2d,
    "SyncBatchNorm": nn.SyncBatchNorm,
    "FrozenBatchNorm2d": _frozen_batchnorm,
}


def _norm_name(norm_layer: Any) -> str | None:
    """The :data:`NORM_LAYERS` name that a config.json stores for ``norm_layer``."""
    if norm_layer is None or isinstance(norm_layer, str):
        return norm_layer
    name = getattr(norm_layer, "__name__", "")
    known = NORM_LAYERS.get(name) is norm_layer or (
        name == "FrozenBatchNorm2d" and getattr(norm_layer, "__module__", "").startswith("torchvision")
    )
    if not known:
        raise ConfigTypeError(
            f"norm_layer: {norm_layer!r} cannot be written as JSON; name one of {sorted(NORM_LAYERS)}, "
            "or save the state dict yourself",
            "norm_layer",
        )
    return name


def resolve_norm_layer(norm_layer: str | NormLayer | None) -> NormLayer:
    """The callable that builds a norm layer from a channel count (``None``: ``nn.BatchNorm2d``)."""
    if norm_layer is None:
        return nn.BatchNorm2d
    return NORM_LAYERS[norm_layer] if isinstance(norm_layer, str) else norm_layer


@dataclass
class ResNetConfig(ModelConfig):
    """Everything that defines a ResNet.

    Args:
        block: ``"basic"`` (two 3x3 convs, ResNet-18/34), ``"bottleneck"`` (1x1-3x3-1x1,
            ResNet-50 and deeper), ``"preact_bottleneck"`` (pre-activation, ResNet-200 and
            deeper) or an ``nn.Module`` subclass with an int ``expansion`` and the constructor
            ``(in_channels, channels, stride, downsample, **block_args)``.
        layers: number of blocks in each of the four stages.
        num_classes: size of the classifier output.
        in_channels: channels of the input images.
        stem_width: output width of the plain stem; width of the first two convs of the deep stem.
        stem_type: ``None`` (7x7 conv) or ``"deep"`` (three 3x3 convs, ending at ``2 * stem_width``).
        avg_down: ResNet-D shortcuts (average pool, then a stride-1 1x1 conv).
        channels: base width of each stage (block outputs are ``expansion`` times this).
        block_args: keyword arguments for every block, checked against what the block accepts:
            ``cardinality`` and ``base_width`` (grouped/wide bottlenecks), ``dilation``, ``se``
            and ``se_args`` (``{"reduction": 16}``: squeeze-excite), ``drop_path`` (stochastic depth).
        zero_init_residual: start every block's last norm (or conv) at zero so blocks begin as identities.
        norm_layer: builds every norm of the model (stem, blocks, shortcuts) from a channel count;
            ``None`` is ``nn.BatchNorm2d``. A saved config can name ``"BatchNorm2d"``,
            ``"SyncBatchNorm"`` or ``"FrozenBatchNorm2d"``.
    """

    model_type: ClassVar[str] = "lucid.resnet"
    legacy_model_types: ClassVar[tuple[str, ...]] = ("resnet",)

    block: BlockSpec
    layers: tuple[int, ...]
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
        _check_block(self.block)
        validate_shared_fields(self)
        self.block_args = check_block_args(self.block_class, self.block_args, self.channels)
        if self.norm_layer is not None and "norm_layer" not in inspect.signature(self.block_class.__init__).parameters:
            raise ConfigError(
                f"norm_layer: block {self.block_class.__name__} takes no norm_layer argument, so "
                f"norm_layer={self.norm_layer!r} could not reach its norms",
                "norm_layer",
            )

    def resnet_config(self) -> ResNetConfig:
        """The config the model is built from: this one."""
        return self

    @property
    def block_class(self) -> type[nn.Module]:
        """The block class to instantiate."""
        return BLOCKS[self.block] if isinstance(self.block, str) else self.block

    def to_dict(self) -> dict[str, Any]:
        if not isinstance(self.block, str):
            raise ConfigTypeError(
                f"block: a config with a custom block class ({self.block.__qualname__}) cannot be written as JSON; "
                "use 'basic', 'bottleneck' or 'preact_bottleneck', or save the state dict yourself",
                "block",
            )
        return {**super().to_dict(), "norm_layer": _norm_name(self.norm_layer)}

    @classmethod
    def migrate(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Folders saved before grouped-convolution settings moved into ``block_args``."""
        data = migrate_block_args(data)
        extra = {k: data.pop(k) for k in ("cardinality", "base_width") if k in data}
        defaults = {"cardinality": 1, "base_width": 64}
        moved = {k: v for k, v in extra.items() if v != defaults[k]}
        args = data.get("block_args") or {}
        if moved and isinstance(args, dict):  # a block_args of another type is left for validation to refuse
            data["block_args"] = {**moved, **args}
        return data


def migrate_block_args(data: dict[str, Any]) -> dict[str, Any]:
    """Older lucid wrote ``se_reduction=r`` (hidden width ``channels // r``) where today's is ``se``/``se_args``."""
    args = data.get("block_args") or {}
    if not isinstance(args, dict):
        return data  # validation refuses it, naming the field
    args = dict(args)
    if "se_reduction" in args:
        reduction = args.pop("se_reduction")
        if reduction:
            args.update(se=True, se_args={"reduction": reduction, "divisor": 1})
        data = {**data, "block_args": args}
    return data


def _check_block(block: Any) -> None:
    if isinstance(block, str):
        if block not in BLOCKS:
            raise ConfigError(
                f"block must be one of 'basic', 'bottleneck', or 'preact_bottleneck'; got {block!r}", "block"
            )
    elif not (isinstance(block, type) and issubclass(block, nn.Module)):
        raise ConfigTypeError(
            f"block must be a ResNet block name or an nn.Module subclass; got {describe(block)}", "block"
        )
    elif isinstance(getattr(block, "expansion", None), bool) or not isinstance(getattr(block, "expansion", None), int):
        raise ConfigTypeError(
            f"block must be a ResNet block name or an nn.Module subclass with an int `expansion` attribute; "
            f"{block.__qualname__}.expansion is {describe(getattr(block, 'expansion', None))}",
            "block",
        )


def validate_shared_fields(cfg: Any) -> None:
    """Checks shared by ResNetConfig and ResNeXtConfig; normalises sequences to tuples and numpy ints to ints."""
    cfg.layers = check_stage_values("layers", cfg.layers, "depths")
    for name in ("num_classes", "in_channels", "stem_width"):
        setattr(cfg, name, check_positive_int(name, getattr(cfg, name)))
    if cfg.stem_type not in STEM_TYPES:
        raise ConfigError(f"stem_type must be None or 'deep'; got {cfg.stem_type!r}", "stem_type")
    cfg.channels = check_stage_values("channels", cfg.channels, "widths")
    if not isinstance(cfg.block_args, dict):
        raise ConfigTypeError(
            f"block_args must be a dictionary of keyword arguments for every block; got {describe(cfg.block_args)}",
            "block_args",
        )
    for name in ("avg_down", "zero_init_residual"):
        check_bool(name, getattr(cfg, name))
    _check_norm_layer(cfg.norm_layer)


def _check_norm_layer(norm_layer: Any) -> None:
    if isinstance(norm_layer, str) and norm_layer not in NORM_LAYERS:
        raise ConfigError(f"norm_layer must be one of {sorted(NORM_LAYERS)} or a callable; got {norm_layer!r}", "norm_layer")
    if norm_layer is not None and not isinstance(norm_layer, str) and not callable(norm_layer):
        raise ConfigTypeError(
            f"norm_layer must be None, a name in {sorted(NORM_LAYERS)}, or a callable taking a channel count; "
            f"got {describe(norm_layer)}",
            "norm_layer",
        )


# ---------------------------------------------------------------------------- blocks


def _norm_conv(in_channels: int, out_channels: int, norm: NormLayer, **conv: Any) -> nn.Sequential:
    """A bias-free convolution followed by a norm, as ``Sequential(conv, norm)``."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, bias=False, **conv), norm(out_channels))


def _group_width(channels: int, base_width: int) -> int:
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
        width = _group_width(channels, base_width) * cardinality
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
        width = _group_width(channels, base_width) * cardinality
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

# Constructor parameters the model itself passes; they are not block_args.
_STRUCTURAL = ("self", "in_channels", "channels", "stride", "downsample", "norm_layer", "preact")


# ---------------------------------------------------------------------------- block_args checks


def _check_se_args(name: str, value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ConfigTypeError(f"{name} must be a dictionary such as {{'reduction': 16}}; got {describe(value)}", name)
    unknown = sorted(set(value) - {"reduction", "divisor"})
    if unknown:
        raise ConfigError(f"{name} has unknown key {unknown[0]!r}; accepted keys: 'reduction', 'divisor'", name)
    return {key: check_positive_int(f"{name}[{key!r}]", item) for key, item in value.items()}


_ARG_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "cardinality": check_positive_int,
    "base_width": check_positive_int,
    "dilation": check_positive_int,
    "se": lambda name, value: (check_bool(name, value), value)[1],
    "se_args": _check_se_args,
    "drop_path": check_unit_interval,
}


def block_arg_names(block: type[nn.Module]) -> list[str] | None:
    """The ``block_args`` keys ``block`` accepts (``None``: any, it takes ``**kwargs``)."""
    params = inspect.signature(block.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [name for name in params if name not in _STRUCTURAL]


def check_block_args(block: type[nn.Module], block_args: dict[str, Any], channels: tuple[int, ...]) -> dict[str, Any]:
    """A checked, normalised copy of ``block_args`` for ``block`` (unknown keys and bad values refused)."""
    accepted = block_arg_names(block)
    unknown = [] if accepted is None else [k for k in block_args if k not in accepted]
    if unknown:
        raise ConfigError(
            f"block_args has unknown key {unknown[0]!r} for {block.__name__}; accepted keys: "
            f"{', '.join(map(repr, accepted or [])) or 'none'}",
            "block_args",
        )
    checked = {
        key: _ARG_CHECKS[key](f"block_args[{key!r}]", value) if key in _ARG_CHECKS else value
        for key, value in block_args.items()
    }
    _check_group_width(checked, channels)
    return checked


def _check_group_width(block_args: dict[str, Any], channels: tuple[int, ...]) -> None:
    """Every grouped 3x3 conv needs at least one channel per group."""
    cardinality, base_width = block_args.get("cardinality", 1), block_args.get("base_width", 64)
    for i, width in enumerate(channels):
        if _group_width(width, base_width) < 1:
            raise ConfigError(
                f"cardinality must be no larger than the channels it splits: channels[{i}]={width} with "
                f"base_width={base_width} gives floor({width} * {base_width} / 64) = 0 channels for each of the "
                f"{cardinality} groups; raise base_width or channels",
                "block_args",
            )


# ---------------------------------------------------------------------------- stem, shortcuts


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
def _check_images(x: torch.Tensor, in_channels: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Refuse input that is not an (N, C, H, W) batch with the configured channels, of the model's ``dtype``
    (any floating dtype under autocast).

    Wrapped for torch.fx so symbolic tracing records this as one call instead of
    failing on the shape checks; under torch.compile and torch.export the checks read
    static facts (dtype, rank) and leave nothing in the graph.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor of shape (N, {in_channels}, H, W), got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(
            f"expected input of shape (N, C, H, W) with C={in_channels} channels, got shape {tuple(x.shape)}"
        )
    if dtype is not None and x.dtype != dtype and not (x.is_floating_point() and torch.is_autocast_enabled(x.device.type)):
        raise ConfigTypeError(
            f"input: got a {str(x.dtype).removeprefix('torch.')} tensor; this model takes {str(dtype).removeprefix('torch.')} images "
            f"(its parameters' dtype; any float under torch.autocast): convert with x.to({dtype})"
            + (", after scaling 0-255 pixels to [0, 1] and normalising" if not x.is_floating_point() else ""),
            "input",
        )
    return x


# ---------------------------------------------------------------------------- the model


class ResNet(TimmProtocolMixin, PretrainedMixin, nn.Module):
    """A ResNet assembled from a :class:`ResNetConfig`.

    ``stem -> maxpool -> layer1..layer4 -> (post_act) -> avgpool -> fc``; ``post_act`` (the
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
        self._build(config.resnet_config())

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
        kwargs = dict(spec.block_args)
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
        """The four residual stages, ``[layer1, layer2, layer3, layer4]``."""
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (stride 32, ``num_features`` channels)."""
        if not torch.jit.is_scripting():
            x = _check_images(x, self.config.in_channels, next(self.parameters()).dtype)
        x = self.maxpool(self.stem(x))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
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

