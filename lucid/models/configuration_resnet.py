"""The configs of ResNet and ResNeXt: every field, its checks, and its JSON form.

A :class:`ResNeXtConfig` is a :class:`ResNetConfig` whose blocks are grouped bottlenecks: it
adds ``cardinality`` and ``base_width`` and fixes ``block``. Models are built from either in
:mod:`lucid.models.modeling_resnet`.
"""
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from torch import nn

from ..core.checks import check_bool, check_positive_int, check_stage_values, check_unit_interval, describe
from ..core.errors import ConfigError, ConfigTypeError
from ..nn.blocks import NormLayer
from .config import ModelConfig
from .resnet_blocks import BLOCKS, Bottleneck, group_width

__all__ = ["NORM_LAYERS", "ResNeXtConfig", "ResNetConfig", "resolve_norm_layer"]

STEM_TYPES = (None, "deep")
BlockSpec = Union[str, type]
GROUP_FIELDS = ("cardinality", "base_width")  # ResNeXtConfig's own fields; block_args of a ResNetConfig



def _frozen_batchnorm(channels: int) -> nn.Module:
    from torchvision.ops import FrozenBatchNorm2d  # torchvision: kept out of `import lucid.models`

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
        layers: number of blocks in each stage (one entry per stage; ResNets have :attr:`stages` of them).
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
    stages: ClassVar[int] = 4  # residual stages, each halving the resolution after the first

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
        self._validate_fields()
        self.block_args = check_block_args(self.block_class, self.block_args, self.channels)
        if self.norm_layer is not None and "norm_layer" not in inspect.signature(self.block_class.__init__).parameters:
            raise ConfigError(
                f"norm_layer: block {self.block_class.__name__} takes no norm_layer argument, so "
                f"norm_layer={self.norm_layer!r} could not reach its norms",
                "norm_layer",
            )

    def _validate_fields(self) -> None:
        """Check the fields every ResNet has; sequences become tuples and numpy ints ints."""
        self.layers = check_stage_values("layers", self.layers, "depths", self.stages)
        for name in ("num_classes", "in_channels", "stem_width"):
            setattr(self, name, check_positive_int(name, getattr(self, name)))
        if self.stem_type not in STEM_TYPES:
            raise ConfigError(f"stem_type must be None or 'deep'; got {self.stem_type!r}", "stem_type")
        self.channels = check_stage_values("channels", self.channels, "widths", len(self.layers))
        if not isinstance(self.block_args, dict):
            raise ConfigTypeError(
                f"block_args must be a dictionary of keyword arguments for every block; got {describe(self.block_args)}",
                "block_args",
            )
        for name in ("avg_down", "zero_init_residual"):
            check_bool(name, getattr(self, name))
        _check_norm_layer(self.norm_layer)

    @property
    def block_class(self) -> type[nn.Module]:
        """The block class to instantiate."""
        return BLOCKS[self.block] if isinstance(self.block, str) else self.block

    @property
    def all_block_args(self) -> dict[str, Any]:
        """The keyword arguments every block is built with."""
        return dict(self.block_args)

    def resnet_config(self) -> ResNetConfig:
        """The plain :class:`ResNetConfig` that describes the same network (this one)."""
        return self

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
        extra = {k: data.pop(k) for k in GROUP_FIELDS if k in data}
        defaults = {"cardinality": 1, "base_width": 64}
        moved = {k: v for k, v in extra.items() if v != defaults[k]}
        if moved:
            data["block_args"] = {**moved, **data.get("block_args", {})}
        return data


@dataclass
class ResNeXtConfig(ResNetConfig):
    """Everything that defines a ResNeXt: a :class:`ResNetConfig` of grouped bottlenecks.

    Args:
        cardinality: number of groups in every 3x3 bottleneck convolution.
        base_width: width of each group (``resnext_50_32x4d`` has 32 groups of 4 at stage width 64).

    Every other field is :class:`ResNetConfig`'s; ``block`` is always ``"bottleneck"``, and
    ``block_args`` holds the further bottleneck arguments (``dilation``, ``se``, ``se_args``,
    ``drop_path``).
    """

    model_type: ClassVar[str] = "lucid.resnext"
    legacy_model_types: ClassVar[tuple[str, ...]] = ("resnext",)

    block: BlockSpec = field(default="bottleneck", init=False)
    cardinality: int = field(kw_only=True)
    base_width: int = field(kw_only=True)

    def validate(self) -> None:
        self.cardinality = check_positive_int("cardinality", self.cardinality)
        self.base_width = check_positive_int("base_width", self.base_width)
        self._validate_fields()
        repeated = sorted(set(GROUP_FIELDS) & set(self.block_args))
        if repeated:
            raise ConfigError(
                f"block_args must not repeat {' or '.join(repeated)}: set {'it' if len(repeated) == 1 else 'them'} "
                f"as ResNeXtConfig field(s); got block_args={self.block_args!r}",
                "block_args",
            )
        checked = check_block_args(Bottleneck, self.all_block_args, self.channels)
        self.block_args = {k: v for k, v in checked.items() if k not in GROUP_FIELDS}

    @property
    def block_class(self) -> type[nn.Module]:
        """ResNeXt always uses the (grouped) bottleneck block."""
        return Bottleneck

    @property
    def all_block_args(self) -> dict[str, Any]:
        """The keyword arguments every block is built with: the group fields, then ``block_args``."""
        return {"cardinality": self.cardinality, "base_width": self.base_width, **self.block_args}

    def resnet_config(self) -> ResNetConfig:
        """The equivalent :class:`ResNetConfig` (``block="bottleneck"``, the group fields in ``block_args``)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(ResNetConfig) if f.name != "block"}
        return ResNetConfig(block="bottleneck", **{**fields, "block_args": self.all_block_args})

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        del data["block"]  # always "bottleneck"; folders keep the fields ResNeXt configs always wrote
        return data

    @classmethod
    def migrate(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Folders saved with the older ``se_reduction`` block argument, or with ``block`` written out."""
        data = migrate_block_args(data)
        if data.get("block") == "bottleneck":
            data = {k: v for k, v in data.items() if k != "block"}
        return data


def migrate_block_args(data: dict[str, Any]) -> dict[str, Any]:
    """Older lucid wrote ``se_reduction=r`` (hidden width ``channels // r``) where today's is ``se``/``se_args``."""
    args = dict(data.get("block_args") or {})
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


def _check_norm_layer(norm_layer: Any) -> None:
    if isinstance(norm_layer, str) and norm_layer not in NORM_LAYERS:
        raise ConfigError(f"norm_layer must be one of {sorted(NORM_LAYERS)} or a callable; got {norm_layer!r}", "norm_layer")
    if norm_layer is not None and not isinstance(norm_layer, str) and not callable(norm_layer):
        raise ConfigTypeError(
            f"norm_layer must be None, a name in {sorted(NORM_LAYERS)}, or a callable taking a channel count; "
            f"got {describe(norm_layer)}",
            "norm_layer",
        )


# Constructor parameters the model itself passes; they are not block_args.
_STRUCTURAL = ("self", "in_channels", "channels", "stride", "downsample", "norm_layer", "preact")


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
        if group_width(width, base_width) < 1:
            raise ConfigError(
                f"cardinality must be no larger than the channels it splits: channels[{i}]={width} with "
                f"base_width={base_width} gives floor({width} * {base_width} / 64) = 0 channels for each of the "
                f"{cardinality} groups; raise base_width or channels",
                "block_args",
            )
