"""Every preset as data: its defining config, reference parameter count, peers and published weights.

One table, :data:`PRESETS`, is the source of the entry-point functions (``lucid.models.resnet_50``
and friends), :func:`~lucid.models.list_models`, the pretrained-weights registry, the
documentation's preset pages, the benchmarks' peer models and the README's preset table.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..checkpoints.download import PretrainedWeights
from ..core.errors import ConfigTypeError
from .modeling_resnet import ResNet, ResNeXt
from .published import info, list_pretrained, load_pretrained, register_pretrained
from .registry import register_model

__all__ = ["Preset", "PretrainedWeights", "PRESETS", "ENTRY_POINTS", "build_preset", "preset_table_markdown"]


@dataclass(frozen=True)
class Preset:
    """One named architecture.

    ``config`` holds the fields that define it (a preset refuses to override them);
    ``params`` is the reference parameter count at 1000 classes; ``torchvision``/``timm`` name the
    same architecture in those libraries, when they have it; ``weights`` lists published
    weights, oldest first (the last is the default); timm's weights on the Hugging Face Hub come
    first, so that a preset's default stays torchvision's where it has one.
    """

    name: str
    model: type[nn.Module]
    config: Mapping[str, Any]
    params: int
    title: str
    torchvision: str | None = None
    timm: str | None = None
    weights: tuple[PretrainedWeights, ...] = field(default=())

    @property
    def fixed(self) -> tuple[str, ...]:
        """The fields a caller may not override (the preset's block_args merge instead)."""
        return ("layers", "cardinality", "base_width") if self.model is ResNeXt else ("block", "layers")

    @property
    def block_args(self) -> dict[str, Any]:
        """The preset's own ``block_args`` (a caller's merge over them)."""
        return dict(self.config.get("block_args", {}))

    @property
    def block(self) -> str:
        """The block type its stages use."""
        return self.config.get("block", "bottleneck")

    @property
    def groups(self) -> tuple[int, int]:
        """``(cardinality, base_width)`` of its bottlenecks."""
        get = lambda key, default: self.config.get(key, self.block_args.get(key, default))  # noqa: E731
        return get("cardinality", 1), get("base_width", 64)

    def describe(self) -> str:
        """One line: block type, stage depths and grouped-conv widths."""
        return f"{self.block} blocks, stages {list(self.config['layers'])}, {self.groups[0]} x {self.groups[1]}"


def _torchvision(preset: str, tag: str, file: str, resize: int, top1: float, top5: float, recipe: str) -> PretrainedWeights:
    """One of torchvision's files; its name ends in ``-<sha256 prefix>.pth``."""
    sha = file.rsplit("-", 1)[1].split(".")[0]
    url = f"https://download.pytorch.org/models/{file}"
    return PretrainedWeights(preset=preset, tag=tag, url=url, sha256=sha, resize=resize, top1=top1, top5=top5, recipe=recipe)


def _timm(preset: str, name: str, interpolation: str, crop_pct: float, top1: float, license: str) -> PretrainedWeights:
    """One of timm's files on the Hugging Face Hub (``timm/<name>``), under the tag ``timm:<name>``.

    ``interpolation`` and ``crop_pct`` are timm's ``pretrained_cfg`` at 224 (timm resizes to
    ``floor(224 / crop_pct)``); ``top1`` is from timm's ImageNet results table.
    """
    hub = f"https://huggingface.co/timm/{name}"
    return PretrainedWeights(
        preset=preset, tag=f"timm:{name}", url=hub, sha256="", layout="timm", resize=math.floor(224 / crop_pct),
        interpolation=interpolation, top1=top1, recipe=hub, hf_hub_id=f"timm/{name}", license=license,
    )


# The training recipes torchvision published its weights with.
_TORCHVISION_RECIPES = "https://github.com/pytorch/vision/tree/main/references/classification"
RESNET_RECIPE = f"{_TORCHVISION_RECIPES}#resnet"
RESNEXT_RECIPE = f"{_TORCHVISION_RECIPES}#resnext"
WIDE_RESNET_RECIPE = "https://github.com/pytorch/vision/pull/912#issue-445437439"
NEW_RECIPE = "https://github.com/pytorch/vision/issues/3995#new-recipe"
NEW_RECIPE_FIXRES = "https://github.com/pytorch/vision/issues/3995#new-recipe-with-fixres"
NEW_RECIPE_RESNET_50 = "https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621"
RESNEXT_64X4D_RECIPE = "https://github.com/pytorch/vision/pull/5935"


def _resnet(name: str, block: str, layers: tuple[int, ...], params: int, title: str, **kwargs: Any) -> Preset:
    return Preset(name=name, model=ResNet, config={"block": block, "layers": layers}, params=params, title=title, **kwargs)


def _wide_resnet(name: str, layers: tuple[int, ...], params: int, title: str, **kwargs: Any) -> Preset:
    config = {"block": "bottleneck", "layers": layers, "block_args": {"base_width": 128}}
    return Preset(name=name, model=ResNet, config=config, params=params, title=title, **kwargs)


def _resnext(name: str, layers: tuple[int, ...], cardinality: int, base_width: int, params: int, title: str, **kwargs: Any) -> Preset:
    config = {"layers": layers, "cardinality": cardinality, "base_width": base_width}
    return Preset(name=name, model=ResNeXt, config=config, params=params, title=title, **kwargs)


def _rows() -> list[Preset]:
    return [
        _resnet("resnet_18", "basic", (2, 2, 2, 2), params=11_689_512, title="ResNet-18", torchvision="resnet18", timm="resnet18",
                weights=(_torchvision("resnet_18", "IMAGENET1K_V1", "resnet18-f37072fd.pth", 256, 69.758, 89.078, RESNET_RECIPE),)),
        _resnet("resnet_34", "basic", (3, 4, 6, 3), params=21_797_672, title="ResNet-34", torchvision="resnet34", timm="resnet34",
                weights=(_torchvision("resnet_34", "IMAGENET1K_V1", "resnet34-b627a593.pth", 256, 73.314, 91.420, RESNET_RECIPE),)),
        _resnet("resnet_50", "bottleneck", (3, 4, 6, 3), params=25_557_032, title="ResNet-50", torchvision="resnet50", timm="resnet50",
                weights=(_torchvision("resnet_50", "IMAGENET1K_V1", "resnet50-0676ba61.pth", 256, 76.130, 92.862, RESNET_RECIPE),
                         _torchvision("resnet_50", "IMAGENET1K_V2", "resnet50-11ad3fa6.pth", 232, 80.858, 95.434, NEW_RECIPE_RESNET_50))),
        _resnet("resnet_101", "bottleneck", (3, 4, 23, 3), params=44_549_160, title="ResNet-101", torchvision="resnet101", timm="resnet101",
                weights=(_torchvision("resnet_101", "IMAGENET1K_V1", "resnet101-63fe2227.pth", 256, 77.374, 93.546, RESNET_RECIPE),
                         _torchvision("resnet_101", "IMAGENET1K_V2", "resnet101-cd907fc2.pth", 232, 81.886, 95.780, NEW_RECIPE))),
        _resnet("resnet_152", "bottleneck", (3, 8, 36, 3), params=60_192_808, title="ResNet-152", torchvision="resnet152", timm="resnet152",
                weights=(_torchvision("resnet_152", "IMAGENET1K_V1", "resnet152-394f9c45.pth", 256, 78.312, 94.046, RESNET_RECIPE),
                         _torchvision("resnet_152", "IMAGENET1K_V2", "resnet152-f82ba261.pth", 232, 82.284, 96.002, NEW_RECIPE))),
        _resnet("resnet_200", "preact_bottleneck", (3, 24, 36, 3), params=64_666_152, title="Pre-activation ResNet-200"),
        _resnet("resnet_269", "preact_bottleneck", (3, 30, 48, 8), params=102_065_704, title="Pre-activation ResNet-269"),
        _resnet("resnet_1001", "preact_bottleneck", (3, 94, 94, 3), params=149_067_304, title="Pre-activation ResNet-1001"),
        _wide_resnet("wide_resnet_50", (3, 4, 6, 3), params=68_883_240, title="Wide ResNet-50-2",
                     torchvision="wide_resnet50_2", timm="wide_resnet50_2",
                     weights=(_torchvision("wide_resnet_50", "IMAGENET1K_V1", "wide_resnet50_2-95faca4d.pth", 256, 78.468, 94.086, WIDE_RESNET_RECIPE),
                              _torchvision("wide_resnet_50", "IMAGENET1K_V2", "wide_resnet50_2-9ba9bcbe.pth", 232, 81.602, 95.758, NEW_RECIPE_FIXRES))),
        _wide_resnet("wide_resnet_101", (3, 4, 23, 3), params=126_886_696, title="Wide ResNet-101-2",
                     torchvision="wide_resnet101_2", timm="wide_resnet101_2",
                     weights=(_torchvision("wide_resnet_101", "IMAGENET1K_V1", "wide_resnet101_2-32ee1156.pth", 256, 78.848, 94.284, WIDE_RESNET_RECIPE),
                              _torchvision("wide_resnet_101", "IMAGENET1K_V2", "wide_resnet101_2-d733dc28.pth", 232, 82.510, 96.020, NEW_RECIPE))),
        _resnext("resnext_50_32x4d", (3, 4, 6, 3), cardinality=32, base_width=4, params=25_028_904, title="ResNeXt-50 32x4d",
                 torchvision="resnext50_32x4d", timm="resnext50_32x4d",
                 weights=(_timm("resnext_50_32x4d", "resnext50_32x4d.a1h_in1k", "bicubic", 0.95, 81.14, "apache-2.0"),
                          _timm("resnext_50_32x4d", "resnext50_32x4d.fb_swsl_ig1b_ft_in1k", "bilinear", 0.875, 82.16, "cc-by-nc-4.0"),
                          _torchvision("resnext_50_32x4d", "IMAGENET1K_V1", "resnext50_32x4d-7cdf4587.pth", 256, 77.618, 93.698, RESNEXT_RECIPE),
                          _torchvision("resnext_50_32x4d", "IMAGENET1K_V2", "resnext50_32x4d-1a0047aa.pth", 232, 81.198, 95.340, NEW_RECIPE))),
        _resnext("resnext_101_32x4d", (3, 4, 23, 3), cardinality=32, base_width=4, params=44_177_704, title="ResNeXt-101 32x4d",
                 timm="resnext101_32x4d"),
        _resnext("resnext_101_32x8d", (3, 4, 23, 3), cardinality=32, base_width=8, params=88_791_336, title="ResNeXt-101 32x8d",
                 torchvision="resnext101_32x8d", timm="resnext101_32x8d",
                 weights=(_torchvision("resnext_101_32x8d", "IMAGENET1K_V1", "resnext101_32x8d-8ba56ff5.pth", 256, 79.312, 94.526, RESNEXT_RECIPE),
                          _torchvision("resnext_101_32x8d", "IMAGENET1K_V2", "resnext101_32x8d-110c445d.pth", 232, 82.834, 96.228, NEW_RECIPE_FIXRES))),
        _resnext("resnext_101_32x16d", (3, 4, 23, 3), cardinality=32, base_width=16, params=194_026_792, title="ResNeXt-101 32x16d",
                 timm="resnext101_32x16d"),
        _resnext("resnext_101_32x32d", (3, 4, 23, 3), cardinality=32, base_width=32, params=468_530_472, title="ResNeXt-101 32x32d",
                 timm="resnext101_32x32d",
                 weights=(_timm("resnext_101_32x32d", "resnext101_32x32d.fb_wsl_ig1b_ft_in1k", "bilinear", 0.875, 85.09, "cc-by-nc-4.0"),)),
        _resnext("resnext_101_64x4d", (3, 4, 23, 3), cardinality=64, base_width=4, params=83_455_272, title="ResNeXt-101 64x4d",
                 torchvision="resnext101_64x4d", timm="resnext101_64x4d",
                 weights=(_torchvision("resnext_101_64x4d", "IMAGENET1K_V1", "resnext101_64x4d-173b62eb.pth", 232, 83.246, 96.454, RESNEXT_64X4D_RECIPE),)),
    ]


PRESETS: dict[str, Preset] = {p.name: p for p in _rows()}


def build_preset(preset: Preset, num_classes: int, kwargs: dict[str, Any]) -> nn.Module:
    """Shared body of the preset functions.

    ``kwargs`` may set any config field except the preset's fixed ones; its ``block_args``
    merge over the preset's own; ``pretrained`` / ``weights`` load published weights.
    """
    kwargs = dict(kwargs)
    pretrained, weights = kwargs.pop("pretrained", False), kwargs.pop("weights", None)
    _refuse_fixed(preset, kwargs)
    config_class = preset.model.config_class
    if "block_args" in kwargs and isinstance(kwargs["block_args"], dict):
        kwargs["block_args"] = {**preset.block_args, **kwargs["block_args"]}
    config = config_class(**{**preset.config, "num_classes": num_classes, **kwargs})
    model = preset.model(config)
    if list_pretrained(preset.name):  # what pretrained_cfg describes until weights are loaded: the default ones, as timm does
        model.default_weights = info(preset.name).to_metadata()
    if pretrained or weights is not None:
        load_pretrained(model, preset.name, weights)
    return model


def _refuse_fixed(preset: Preset, kwargs: dict[str, Any]) -> None:
    fixed = preset.fixed
    overridden = sorted(set(kwargs) & set(fixed))
    if isinstance(kwargs.get("block_args"), dict):  # a ResNeXt's fixed widths cannot come in through block_args
        overridden += sorted(set(kwargs["block_args"]) & set(fixed) - {"block", "layers"})
    if overridden:
        what = "preset layers, cardinality, or base_width" if "cardinality" in fixed else "preset block or layers"
        config_name = preset.model.config_class.__name__
        raise ConfigTypeError(
            f"factory variants do not allow overriding {what}: {preset.name}() fixes "
            f"{', '.join(f'{k}={_fixed_value(preset, k)!r}' for k in fixed)} and got {', '.join(overridden)}; "
            f"build a {config_name} yourself to change them",
            overridden[0],
        )
    fields = {f.name for f in dataclasses.fields(preset.model.config_class)}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        allowed = sorted(fields - set(fixed) - {"num_classes"})
        hint = "; grouped-convolution settings (cardinality, base_width) go in block_args" if {"cardinality", "base_width"} & set(unknown) else ""
        raise ConfigTypeError(
            f"{preset.name}() got unexpected argument(s) {unknown}; config fields it accepts: {allowed}{hint}", unknown[0]
        )


def _fixed_value(preset: Preset, key: str) -> Any:
    value = preset.config[key]
    return list(value) if isinstance(value, tuple) else value


def _entry_point(preset: Preset) -> Callable[..., nn.Module]:
    """The public function ``lucid.models.<name>``, generated from the preset's row."""

    def build(num_classes: int = 1000, **kwargs: Any) -> nn.Module:
        return build_preset(preset, num_classes, kwargs)

    build.__name__ = build.__qualname__ = preset.name
    build.__module__ = "lucid.models"
    weights = f" Published weights: {', '.join(w.tag for w in preset.weights)}." if preset.weights else ""
    build.__doc__ = (
        f"{preset.title}: {preset.describe()}; {preset.params:,} parameters at 1000 classes.\n\n"
        f"Keyword arguments set any other {preset.model.config_class.__name__} field (``block_args`` merge over\n"
        f"the preset's own); ``pretrained=True`` or ``weights=TAG`` loads published weights.{weights}"
    )
    return register_model(build)


ENTRY_POINTS: dict[str, Callable[..., nn.Module]] = {name: _entry_point(p) for name, p in PRESETS.items()}

# The table lists each preset's weights oldest first; the newest recipe is the default.
for _preset in PRESETS.values():
    for _weights in _preset.weights:
        register_pretrained(_weights, default=True)


def preset_table_markdown() -> str:
    """The README's preset table, one row per preset."""
    lines = [
        "| preset | block | stages | cardinality x width | parameters | torchvision | timm |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in PRESETS.values():
        stages = ", ".join(map(str, p.config["layers"]))
        lines.append(
            f"| `{p.name}` | {p.block} | {stages} | {p.groups[0]} x {p.groups[1]} | {p.params:,} | "
            f"{p.torchvision or '–'} | {p.timm or '–'} |"
        )
    return "\n".join(lines)
