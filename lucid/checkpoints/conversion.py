"""Renaming state dicts between the torchvision, timm and lucid layouts of ResNet/ResNeXt.

The three layouts hold the same tensors under different names; no tensor is changed.

    torchvision / timm                  lucid
    conv1, bn1                          stem.0, stem.1                     plain 7x7 stem
    conv1.0 .1 .3 .4 .6, bn1            stem.0 .1 .3 .4 .6, stem.7         timm's deep stem
    layerN.M.conv1, bn1                 layerN.M.conv1.conv, conv1.bn
    layerN.M.conv2, bn2                 layerN.M.conv2.conv, conv2.bn      bottleneck
    layerN.M.conv2, bn2                 layerN.M.conv2.0, conv2.1          basic block
    layerN.M.conv3, bn3                 layerN.M.conv3.0, conv3.1          bottleneck
    layerN.M.downsample.*, se.*, fc     unchanged                          ResNet-D: downsample.1 conv, .2 BN

torchvision's layout is the plain-stem, plain-shortcut subset of timm's, so converting
*to* torchvision refuses a deep stem, ResNet-D shortcuts and squeeze-excite.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ..core.errors import CheckpointError, OptionError

__all__ = ["LAYOUTS", "convert", "detect_layout"]

LAYOUTS = ("lucid", "torchvision", "timm")

# external module name -> lucid module name, inside one residual block
_BLOCK_PARTS = {
    "bottleneck": {"conv1": "conv1.conv", "bn1": "conv1.bn", "conv2": "conv2.conv", "bn2": "conv2.bn", "conv3": "conv3.0", "bn3": "conv3.1"},
    "basic": {"conv1": "conv1.conv", "bn1": "conv1.bn", "conv2": "conv2.0", "bn2": "conv2.1"},
}
_SAME_IN_BLOCK = ("downsample.0", "downsample.1", "downsample.2", "se.fc1", "se.fc2")
_STEMS = {
    "plain": {"conv1": "stem.0", "bn1": "stem.1"},
    "deep": {"conv1.0": "stem.0", "conv1.1": "stem.1", "conv1.3": "stem.3", "conv1.4": "stem.4", "conv1.6": "stem.6", "bn1": "stem.7"},
}
_BLOCK_MODULE = re.compile(r"^(layer\d+\.\d+)\.(.+)$")  # any number of stages


def detect_layout(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Name the layout of a ResNet/ResNeXt state dict: ``"lucid"``, ``"torchvision"`` or ``"timm"``.

    lucid keys start with ``stem.``; timm is told from torchvision by what only timm has
    (deep stem ``conv1.0``, ResNet-D ``downsample.2``, ``se.`` gates).
    """
    keys = list(state_dict)
    if any(k.startswith("stem.") for k in keys):
        return "lucid"
    if "conv1.weight" not in state_dict and "conv1.0.weight" not in state_dict:
        sample = ", ".join(keys[:5]) or "no keys at all"
        raise CheckpointError(
            f"state_dict: cannot tell its layout (expected 'stem.*' for lucid or 'conv1.*' for torchvision/timm "
            f"ResNet keys), got {sample}"
        )
    if "conv1.0.weight" in state_dict or any(".downsample.2." in k or ".se." in k for k in keys):
        return "timm"
    return "torchvision"


def _rename(state_dict: Mapping[str, torch.Tensor], to_lucid: bool) -> dict[str, torch.Tensor]:
    """Rename every key external -> lucid (``to_lucid``) or lucid -> external, by the tables above.

    A block is a bottleneck when it has a third convolution; the stem is deep when it has
    a second convolution. Keys that fit no table are refused by name.
    """
    deep = ("conv1.0.weight" if to_lucid else "stem.3.weight") in state_dict
    stem = _STEMS["deep" if deep else "plain"]
    if not to_lucid:
        stem = {lucid: ext for ext, lucid in stem.items()}
    tables: dict[str, dict[str, str]] = {}

    def block_table(block: str) -> dict[str, str]:
        if block not in tables:
            third = f"{block}.conv3.weight" if to_lucid else f"{block}.conv3.0.weight"
            parts = _BLOCK_PARTS["bottleneck" if third in state_dict else "basic"]
            tables[block] = parts if to_lucid else {lucid: ext for ext, lucid in parts.items()}
        return tables[block]

    def module_name(module: str) -> str | None:
        if module in stem:
            return stem[module]
        if module == "fc":
            return module
        m = _BLOCK_MODULE.match(module)
        if m:
            block, part = m.groups()
            if part in _SAME_IN_BLOCK:
                return module
            if part in block_table(block):
                return f"{block}.{block_table(block)[part]}"
        return None

    out = {}
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        new = module_name(module)
        if new is None:
            layout = "torchvision/timm" if to_lucid else "lucid"
            raise CheckpointError(f"state_dict: key {key!r} is not part of a {layout} ResNet/ResNeXt this converter knows")
        out[f"{new}.{param}"] = value
    return out


def _to_lucid(state_dict: Mapping[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    return dict(state_dict) if source == "lucid" else _rename(state_dict, to_lucid=True)


def _from_lucid(state_dict: Mapping[str, torch.Tensor], to: str) -> dict[str, torch.Tensor]:
    if to == "lucid":
        return dict(state_dict)
    if to == "torchvision":
        features = {
            "a deep stem (stem_type='deep')": "stem.3.weight" in state_dict,
            "ResNet-D shortcuts (avg_down=True)": any(".downsample.2." in k for k in state_dict),
            "squeeze-excite (block_args se=True)": any(".se." in k for k in state_dict),
        }
        found = [name for name, present in features.items() if present]
        if found:
            raise CheckpointError(
                f"state_dict: these weights have {' and '.join(found)}, which torchvision's ResNet cannot hold; "
                "convert with to='timm' instead"
            )
    return _rename(state_dict, to_lucid=False)


def convert(state_dict: Mapping[str, torch.Tensor], source: str = "auto", to: str = "lucid") -> dict[str, torch.Tensor]:
    """Rename a ResNet/ResNeXt state dict from layout ``source`` to layout ``to``.

    Args:
        state_dict: the weights (tensors are shared, not copied).
        source: ``"torchvision"``, ``"timm"``, ``"lucid"`` or ``"auto"`` (detected from the keys,
            see :func:`detect_layout`).
        to: ``"lucid"`` (default; the result loads with ``load_state_dict(strict=True)`` into
            the matching lucid model), ``"torchvision"`` or ``"timm"`` (so lucid-trained weights
            load into ``torchvision.models.resnet50()`` or ``timm.create_model("resnet50d")``).

    Any ``in_channels``/``num_classes``/widths pass through, since only names change.
    """
    for name, value, allowed in (("source", source, LAYOUTS + ("auto",)), ("to", to, LAYOUTS)):
        if value not in allowed:
            raise OptionError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}", name)
    found = detect_layout(state_dict)
    if source == "auto":
        source = found
    elif source != found and not (source == "timm" and found == "torchvision"):
        # torchvision's layout is a subset of timm's, so "timm" accepts it
        raise CheckpointError(f"state_dict: source={source!r} was given, but the keys are in the {found!r} layout")
    return _from_lucid(_to_lucid(state_dict, source), to)
