"""timm's model protocol for lucid's ResNets, so timm's own tools work on them unchanged.

timm's data, optimiser and feature-extraction helpers look for a handful of methods and
attributes on a model: ``pretrained_cfg`` (evaluation preprocessing), ``group_matcher``
(layer-wise learning-rate decay), ``get_classifier``/``reset_classifier``,
``forward_head(x, pre_logits=...)``, ``forward_intermediates`` and
``prune_intermediate_layers`` (``FeatureGetterNet``) and ``feature_info``
(``FeatureListNet``). :class:`TimmProtocolMixin` provides them on top of the ResNet layout
``stem -> maxpool -> layer1..layerN -> avgpool -> fc``. timm itself is not needed.

Feature indices follow timm: 0 is the stem (stride 2), 1 to N are the stages (strides 4,
8, 16, 32 for the usual four).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..core.checks import check_min_int, is_int
from ..core.constants import IMAGENET_MEAN, IMAGENET_STD
from ..core.errors import OptionError, OptionTypeError
from ..nn.measure import model_device

__all__ = ["DEFAULT_PREPROCESSING", "TimmProtocolMixin", "take_indices"]

Indices = int | Sequence[int] | None
OUTPUT_FORMATS = ("NCHW", "NHWC")
GLOBAL_POOLS = {"avg": nn.AdaptiveAvgPool2d, "max": nn.AdaptiveMaxPool2d}

# What a model without published weights or training metadata is evaluated with: lucid's
# own evaluation transform (bilinear resize of the short side to 224 / 0.875, centre crop).
DEFAULT_PREPROCESSING: dict[str, Any] = {
    "crop": 224,
    "resize": 256,
    "interpolation": "bilinear",
    "mean": IMAGENET_MEAN,
    "std": IMAGENET_STD,
}


def take_indices(count: int, indices: Indices) -> list[int]:
    """Absolute feature indices, as timm reads them: ``None`` all, an int the last ``n``,
    a sequence those indices (negative ones count from the end)."""
    if indices is None:
        return list(range(count))
    if not (is_int(indices) or isinstance(indices, Sequence)) or isinstance(indices, str):
        raise OptionTypeError(f"indices must be None, an int or a sequence of ints, got {indices!r}")
    if is_int(indices):
        if not 0 < indices <= count:
            raise OptionError(f"indices={indices} asks for the last {indices} features; this model has 1 to {count}")
        return list(range(count - indices, count))
    taken = []
    for i in indices:
        if not is_int(i) or not -count <= i < count:
            raise OptionError(f"indices must hold feature numbers in {-count}..{count - 1}, got {list(indices)!r}")
        taken.append(int(i) % count)
    if not taken:
        raise OptionError("indices must name at least one feature, got an empty sequence")
    return taken


def _channel_stats(values: Sequence[float], channels: int) -> tuple[float, ...]:
    """Per-channel mean/std for ``channels`` input channels (their average for one channel)."""
    values = tuple(float(v) for v in values)
    if len(values) == channels:
        return values
    if channels == 1:
        return (sum(values) / len(values),)
    return tuple(values[i % len(values)] for i in range(channels))


class TimmProtocolMixin:
    """timm's model protocol over ``stem``, ``maxpool``, ``layer1``..``layerN``, ``avgpool``, ``fc``.

    The model sets ``config`` (``in_channels``), ``num_features`` and ``feature_info``
    (stem entry first) in its constructor; everything else is derived from them.
    """

    # properties TorchScript must leave alone (a scripted model keeps forward and forward_head)
    jit_unused_properties = ("pretrained_cfg", "default_cfg", "num_classes")

    config: Any
    feature_info: list[dict[str, Any]]
    num_features: int
    stem: nn.Module
    maxpool: nn.Module
    avgpool: nn.Module
    fc: nn.Module

    # ---- preprocessing: timm.data.resolve_data_config(model=...)
    def preprocessing(self) -> dict[str, Any]:
        """The evaluation preprocessing of this model's weights.

        From the published weights it was loaded with (``metadata["weights"]``), else from
        the training run that wrote it (``metadata["preprocessing"]``), else, as timm does for a
        model built without weights, from its preset's default weights (``default_weights``,
        set by the preset's builder), else lucid's defaults.
        Keys: ``crop``, ``resize``, ``interpolation``, ``mean``, ``std``.
        """
        metadata = getattr(self, "metadata", None) or {}
        prep = dict(DEFAULT_PREPROCESSING)
        weights = self.described_weights()
        if weights:
            prep.update({k: weights[k] for k in prep if k in weights})
        elif "preprocessing" in metadata:
            trained = metadata["preprocessing"]
            size = int(trained["image_size"])
            prep.update(crop=size, resize=round(size / float(trained.get("crop", 0.875))),
                        mean=trained["mean"], std=trained["std"])
        return prep

    def described_weights(self) -> dict[str, Any]:
        """The published weights :attr:`pretrained_cfg` describes: those loaded (``metadata["weights"]``),
        else, with no training metadata either, the preset's default ones (``default_weights``); else ``{}``."""
        metadata = getattr(self, "metadata", None) or {}
        if "weights" in metadata:
            return metadata["weights"]
        if "preprocessing" in metadata:
            return {}
        return getattr(self, "default_weights", None) or {}

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """timm's ``pretrained_cfg``: input size, interpolation, crop, mean/std, head names.

        ``pretrained_cfg_overlay`` (a dict set on the model, as timm's ``create_model`` argument
        of that name) overrides the preprocessing keys.
        """
        prep = self.preprocessing()
        channels = self.config.in_channels
        weights = self.described_weights()
        cfg = {
            "architecture": weights.get("preset"),
            "tag": weights.get("tag"),
            "hf_hub_id": weights.get("hf_hub_id"),
            "input_size": (channels, prep["crop"], prep["crop"]),
            "interpolation": prep["interpolation"],
            "crop_pct": prep["crop"] / prep["resize"],
            "crop_mode": "center",
            "mean": _channel_stats(prep["mean"], channels),
            "std": _channel_stats(prep["std"], channels),
            "num_classes": self.num_classes,
            "pool_size": (max(1, prep["crop"] // 32),) * 2,
            "first_conv": "stem.0",
            "classifier": "fc",
        }
        return {**cfg, **(getattr(self, "pretrained_cfg_overlay", None) or {})}

    @property
    def default_cfg(self) -> dict[str, Any]:
        """timm's older name for :attr:`pretrained_cfg`."""
        return self.pretrained_cfg

    # ---- optimiser groups: create_optimizer_v2(model, layer_decay=...)
    def group_matcher(self, coarse: bool = False) -> dict[str, str]:
        """Parameter groups for layer-wise decay: the stem, then each stage (``coarse``) or each block."""
        return {"stem": r"^stem\.", "blocks": r"^layer(\d+)" if coarse else r"^layer(\d+)\.(\d+)"}

    # ---- classifier
    @property
    def num_classes(self) -> int:
        """Size of the classifier output (0 once the classifier was removed)."""
        return self.fc.out_features if isinstance(self.fc, nn.Linear) else 0

    def get_classifier(self, name_only: bool = False) -> nn.Module | str:
        """The classifier module, or its attribute name ``"fc"``."""
        return "fc" if name_only else self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A fresh classifier for ``num_classes`` (0: none, ``forward`` returns pooled features).

        ``global_pool``: ``"avg"``, ``"max"``, ``""`` (no pooling, ``num_classes`` must be 0)
        or ``None`` to keep the current pooling.
        """
        check_min_int("num_classes", num_classes, 0)
        if global_pool is not None:
            if global_pool not in (*GLOBAL_POOLS, ""):
                raise OptionError(f"global_pool must be 'avg', 'max', '' or None, got {global_pool!r}")
            if global_pool == "" and num_classes:
                raise OptionError(f"global_pool='' keeps the feature map, which a classifier cannot take; got num_classes={num_classes}")
            self.avgpool = GLOBAL_POOLS[global_pool]((1, 1)) if global_pool else nn.Identity()
        device = model_device(self)  # type: ignore[arg-type]
        self.fc = nn.Linear(self.num_features, num_classes, device=device) if num_classes else nn.Identity()
        if num_classes and num_classes != self.config.num_classes:
            self.config = self.config.replace(num_classes=num_classes)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global pooling and classifier over a feature map; ``pre_logits`` stops before the classifier.

        The pooled ``(N, C, 1, 1)`` map is flattened to ``(N, C)``; without pooling
        (``reset_classifier(0, "")``) the map is returned as it is (TorchScript always flattens).
        """
        x = self.avgpool(x)
        if torch.jit.is_scripting():
            x = torch.flatten(x, 1)
        elif not isinstance(self.avgpool, nn.Identity):
            x = torch.flatten(x, 1)
        return x if pre_logits else self.fc(x)

    # ---- features: FeatureGetterNet, FeatureListNet
    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Indices = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The feature maps ``indices`` (0 stem, 1..N the stages; see :func:`take_indices`).

        Returns ``(final feature map, intermediates)``, or the intermediates alone with
        ``intermediates_only``. The final map is :meth:`forward_features`'s; ``stop_early``
        skips the stages after the last one wanted (the final map is then that stage's).
        ``norm`` also passes the last stage's map through the final norm of pre-activation
        networks (``post_act``), as the final map always is; other ResNets have none.
        ``output_fmt``: ``"NCHW"`` or ``"NHWC"``.
        """
        if output_fmt not in OUTPUT_FORMATS:
            raise OptionError(f"output_fmt must be one of {', '.join(OUTPUT_FORMATS)}, got {output_fmt!r}")
        wanted = take_indices(len(self.feature_info), indices)
        stages = self._stage_names()
        last = len(stages) if not (stop_early or intermediates_only) else max(wanted)
        maps = []
        x = self.stem(self.check_input(x))
        if 0 in wanted:
            maps.append(x)
        x = self.maxpool(x)
        post_act = getattr(self, "post_act", None)
        for i, name in enumerate(stages[:last], start=1):
            x = getattr(self, name)(x)
            if i == len(stages) and post_act is not None:
                normed = post_act(x)
                if i in wanted:
                    maps.append(normed if norm else x)
                x = normed
            elif i in wanted:
                maps.append(x)
        if output_fmt == "NHWC":
            maps = [m.permute(0, 2, 3, 1) for m in maps]
        return maps if intermediates_only else (x, maps)

    def prune_intermediate_layers(self, indices: Indices = 1, prune_norm: bool = False, prune_head: bool = True) -> list[int]:
        """Drop what comes after the last feature in ``indices`` (and the classifier with ``prune_head``,
        the final norm of pre-activation networks with ``prune_norm``).

        Returns the absolute indices kept. The stages removed become empty ``Sequential`` modules.
        """
        wanted = take_indices(len(self.feature_info), indices)
        last = max(wanted)
        stages = self._stage_names()
        for name in stages[last:]:
            setattr(self, name, nn.Sequential())
        if last == 0:
            self.maxpool = nn.Identity()
        if (prune_norm or last < len(stages)) and getattr(self, "post_act", None) is not None:
            self.post_act = None
        if last < len(stages):
            self.num_features = self.feature_info[last]["num_chs"]
        if prune_head or last < len(stages):
            self.reset_classifier(0, "")
        return wanted

    def _stage_names(self) -> list[str]:
        """The stages' module names in order (``layer1``..``layerN``), from :attr:`feature_info` (index 0 is the stem)."""
        return [info["module"] for info in self.feature_info[1:]]

    def check_input(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - ResNet provides it
        """Refuse input the model cannot take (implemented by the model)."""
        raise NotImplementedError
