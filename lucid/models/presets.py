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
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import torch
from torch import nn

from ..core.constants import IMAGENET_MEAN, IMAGENET_STD
from .registry import build_preset, register_model
from .resnet import ResNet
from .resnext import ResNeXt

__all__ = ["Preset", "PretrainedWeights", "PRESETS", "ENTRY_POINTS", "preset_table_markdown"]

HUB_WEIGHTS_FILE = "model.safetensors"  # the file of a timm model on the Hugging Face Hub



@dataclass(frozen=True)
class PretrainedWeights:
    """One published set of weights for one preset.

    ``sha256`` is the prefix of the file's SHA-256 digest, as published in its file name; for
    weights on the Hugging Face Hub (``hf_hub_id`` set) it may be empty, and the file is then
    checked against the SHA-256 the Hub publishes for it (its LFS object id).
    ``resize``/``crop``/``mean``/``std``/``interpolation`` are the evaluation preprocessing
    the published ``top1``/``top5`` (percent, single crop) were measured with.
    """

    preset: str
    tag: str
    url: str
    sha256: str
    layout: str = "torchvision"
    num_classes: int = 1000
    dataset: str = "ImageNet-1K"
    resize: int = 256
    crop: int = 224
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    top1: float | None = None
    top5: float | None = None
    recipe: str = ""
    hf_hub_id: str | None = None
    license: str | None = None

    def to_metadata(self) -> dict[str, Any]:
        """What a model loaded with these weights keeps in ``model.metadata["weights"]`` (JSON-ready):
        where they come from, their preprocessing and published accuracy."""
        data = dataclasses.asdict(self)
        data.update(mean=list(self.mean), std=list(self.std))
        return data

    @property
    def filename(self) -> str:
        """Name of the file in the cache folder (the last part of the URL), or in the Hub repository."""
        return HUB_WEIGHTS_FILE if self.hf_hub_id else Path(unquote(urlparse(self.url).path)).name

    def transforms(self) -> Any:
        """The evaluation preprocessing as a torchvision transform (PIL image or uint8 tensor in, normalised float tensor out)."""
        from torchvision.transforms import InterpolationMode, v2

        return v2.Compose(
            [
                v2.Resize(self.resize, interpolation=InterpolationMode(self.interpolation), antialias=True),
                v2.CenterCrop(self.crop),
                v2.ToImage(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(list(self.mean), list(self.std)),
            ]
        )


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


def _tv(preset: str, tag: str, file: str, resize: int, top1: float, top5: float, recipe: str) -> PretrainedWeights:
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


_V1 = "https://github.com/pytorch/vision/tree/main/references/classification#resnet"
_V1X = "https://github.com/pytorch/vision/tree/main/references/classification#resnext"
_V1W = "https://github.com/pytorch/vision/pull/912#issue-445437439"
_V2 = "https://github.com/pytorch/vision/issues/3995#new-recipe"
_V2F = "https://github.com/pytorch/vision/issues/3995#new-recipe-with-fixres"
_V2R50 = "https://github.com/pytorch/vision/issues/3995#issuecomment-1013906621"
_X64 = "https://github.com/pytorch/vision/pull/5935"

_WIDE = {"base_width": 128}


def _rows() -> list[Preset]:
    R, X = ResNet, ResNeXt
    b, bn, pre = "basic", "bottleneck", "preact_bottleneck"
    return [
        Preset("resnet_18", R, {"block": b, "layers": (2, 2, 2, 2)}, 11_689_512, "ResNet-18", "resnet18", "resnet18",
               (_tv("resnet_18", "IMAGENET1K_V1", "resnet18-f37072fd.pth", 256, 69.758, 89.078, _V1),)),
        Preset("resnet_34", R, {"block": b, "layers": (3, 4, 6, 3)}, 21_797_672, "ResNet-34", "resnet34", "resnet34",
               (_tv("resnet_34", "IMAGENET1K_V1", "resnet34-b627a593.pth", 256, 73.314, 91.420, _V1),)),
        Preset("resnet_50", R, {"block": bn, "layers": (3, 4, 6, 3)}, 25_557_032, "ResNet-50", "resnet50", "resnet50",
               (_tv("resnet_50", "IMAGENET1K_V1", "resnet50-0676ba61.pth", 256, 76.130, 92.862, _V1),
                _tv("resnet_50", "IMAGENET1K_V2", "resnet50-11ad3fa6.pth", 232, 80.858, 95.434, _V2R50))),
        Preset("resnet_101", R, {"block": bn, "layers": (3, 4, 23, 3)}, 44_549_160, "ResNet-101", "resnet101", "resnet101",
               (_tv("resnet_101", "IMAGENET1K_V1", "resnet101-63fe2227.pth", 256, 77.374, 93.546, _V1),
                _tv("resnet_101", "IMAGENET1K_V2", "resnet101-cd907fc2.pth", 232, 81.886, 95.780, _V2))),
        Preset("resnet_152", R, {"block": bn, "layers": (3, 8, 36, 3)}, 60_192_808, "ResNet-152", "resnet152", "resnet152",
               (_tv("resnet_152", "IMAGENET1K_V1", "resnet152-394f9c45.pth", 256, 78.312, 94.046, _V1),
                _tv("resnet_152", "IMAGENET1K_V2", "resnet152-f82ba261.pth", 232, 82.284, 96.002, _V2))),
        Preset("resnet_200", R, {"block": pre, "layers": (3, 24, 36, 3)}, 64_666_152, "Pre-activation ResNet-200"),
        Preset("resnet_269", R, {"block": pre, "layers": (3, 30, 48, 8)}, 102_065_704, "Pre-activation ResNet-269"),
        Preset("resnet_1001", R, {"block": pre, "layers": (3, 94, 94, 3)}, 149_067_304, "Pre-activation ResNet-1001"),
        Preset("wide_resnet_50", R, {"block": bn, "layers": (3, 4, 6, 3), "block_args": _WIDE}, 68_883_240,
               "Wide ResNet-50-2", "wide_resnet50_2", "wide_resnet50_2",
               (_tv("wide_resnet_50", "IMAGENET1K_V1", "wide_resnet50_2-95faca4d.pth", 256, 78.468, 94.086, _V1W),
                _tv("wide_resnet_50", "IMAGENET1K_V2", "wide_resnet50_2-9ba9bcbe.pth", 232, 81.602, 95.758, _V2F))),
        Preset("wide_resnet_101", R, {"block": bn, "layers": (3, 4, 23, 3), "block_args": _WIDE}, 126_886_696,
               "Wide ResNet-101-2", "wide_resnet101_2", "wide_resnet101_2",
               (_tv("wide_resnet_101", "IMAGENET1K_V1", "wide_resnet101_2-32ee1156.pth", 256, 78.848, 94.284, _V1W),
                _tv("wide_resnet_101", "IMAGENET1K_V2", "wide_resnet101_2-d733dc28.pth", 232, 82.510, 96.020, _V2))),
        Preset("resnext_50_32x4d", X, {"layers": (3, 4, 6, 3), "cardinality": 32, "base_width": 4}, 25_028_904,
               "ResNeXt-50 32x4d", "resnext50_32x4d", "resnext50_32x4d",
               (_timm("resnext_50_32x4d", "resnext50_32x4d.a1h_in1k", "bicubic", 0.95, 81.14, "apache-2.0"),
                _timm("resnext_50_32x4d", "resnext50_32x4d.fb_swsl_ig1b_ft_in1k", "bilinear", 0.875, 82.16, "cc-by-nc-4.0"),
                _tv("resnext_50_32x4d", "IMAGENET1K_V1", "resnext50_32x4d-7cdf4587.pth", 256, 77.618, 93.698, _V1X),
                _tv("resnext_50_32x4d", "IMAGENET1K_V2", "resnext50_32x4d-1a0047aa.pth", 232, 81.198, 95.340, _V2))),
        Preset("resnext_101_32x4d", X, {"layers": (3, 4, 23, 3), "cardinality": 32, "base_width": 4}, 44_177_704,
               "ResNeXt-101 32x4d", None, "resnext101_32x4d"),
        Preset("resnext_101_32x8d", X, {"layers": (3, 4, 23, 3), "cardinality": 32, "base_width": 8}, 88_791_336,
               "ResNeXt-101 32x8d", "resnext101_32x8d", "resnext101_32x8d",
               (_tv("resnext_101_32x8d", "IMAGENET1K_V1", "resnext101_32x8d-8ba56ff5.pth", 256, 79.312, 94.526, _V1X),
                _tv("resnext_101_32x8d", "IMAGENET1K_V2", "resnext101_32x8d-110c445d.pth", 232, 82.834, 96.228, _V2F))),
        Preset("resnext_101_32x16d", X, {"layers": (3, 4, 23, 3), "cardinality": 32, "base_width": 16}, 194_026_792,
               "ResNeXt-101 32x16d", None, "resnext101_32x16d"),
        Preset("resnext_101_32x32d", X, {"layers": (3, 4, 23, 3), "cardinality": 32, "base_width": 32}, 468_530_472,
               "ResNeXt-101 32x32d", None, "resnext101_32x32d",
               (_timm("resnext_101_32x32d", "resnext101_32x32d.fb_wsl_ig1b_ft_in1k", "bilinear", 0.875, 85.09, "cc-by-nc-4.0"),)),
        Preset("resnext_101_64x4d", X, {"layers": (3, 4, 23, 3), "cardinality": 64, "base_width": 4}, 83_455_272,
               "ResNeXt-101 64x4d", "resnext101_64x4d", "resnext101_64x4d",
               (_tv("resnext_101_64x4d", "IMAGENET1K_V1", "resnext101_64x4d-173b62eb.pth", 232, 83.246, 96.454, _X64),)),
    ]


PRESETS: dict[str, Preset] = {p.name: p for p in _rows()}


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
