"""Loading any ResNet/ResNeXt checkpoint into a lucid model: unwrap, convert the layout, fit the head.

Checkpoints of trainers and wrappers load as they are; a classifier of another size is
replaced by a fresh one and other input channels are adapted, each with a warning.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Mapping

import torch
from torch import nn

from .conversion import convert
from .io import load_file, load_into, strip_prefix

__all__ = ["load_checkpoint"]


def _adapt(model: nn.Module, state_dict: dict[str, torch.Tensor], origin: str) -> dict[str, torch.Tensor]:
    """Fit the classifier and first convolution of ``state_dict`` to ``model``, warning about each change.

    A different number of classes (or none: a headless checkpoint) keeps the backbone and
    re-initialises ``fc``; a different number of input channels sums (1 channel) or cycles
    and rescales the first conv's filters.
    """
    own = model.state_dict()
    out = dict(state_dict)
    head = out.get("fc.weight")
    if "fc.weight" in own and (head is None or head.shape != own["fc.weight"].shape):
        model.get_submodule("fc").reset_parameters()
        fresh = model.state_dict()
        out["fc.weight"], out["fc.bias"] = fresh["fc.weight"], fresh["fc.bias"]
        had = "no classifier" if head is None else f"a classifier for {head.shape[0]} classes"
        warnings.warn(
            f"{origin}: the checkpoint has {had} and the model {own['fc.weight'].shape[0]} classes; "
            "loaded the backbone and re-initialised fc (train it before use)",
            stacklevel=3,
        )
    key = "stem.0.weight"
    if key in out and key in own and out[key].shape[1] != own[key].shape[1] and out[key].shape[0] == own[key].shape[0]:
        w = out[key]
        wanted, have = own[key].shape[1], w.shape[1]
        if wanted == 1:
            w = w.sum(dim=1, keepdim=True)
        else:
            w = w.repeat(1, -(-wanted // have), 1, 1)[:, :wanted] * (have / wanted)
        out[key] = w
        warnings.warn(
            f"{origin}: the checkpoint's first convolution takes {have} input channels and the model "
            f"{wanted}; adapted its filters ({'summed' if wanted == 1 else 'cycled and rescaled'})",
            stacklevel=3,
        )
    return out


def load_checkpoint(
    model: nn.Module,
    checkpoint: str | os.PathLike[str] | Mapping[str, torch.Tensor],
    source: str = "auto",
    prefix: str | None = None,
) -> nn.Module:
    """Load a torchvision, timm or lucid checkpoint (file or state dict) into a lucid ``model``.

    Checkpoints of trainers and wrappers load as they are: a Lightning ``.ckpt`` (its
    ``state_dict``, keys under ``model.``), DistributedDataParallel's ``module.``,
    ``torch.compile``'s ``_orig_mod.``, a detector's ``backbone.``; ``prefix`` picks the keys
    under any other (``"student."``). The layout is converted (see
    :func:`~lucid.checkpoints.convert`); a classifier of another size is replaced by a fresh one
    and other input channels are adapted, each with a warning. Any other mismatch raises
    :class:`CheckpointError` listing it.
    """
    origin = str(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "state_dict"
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint = load_file(checkpoint, strip_prefixes=False)
    state_dict = strip_prefix(checkpoint, prefix)
    load_into(model, _adapt(model, convert(state_dict, source, to="lucid"), origin))
    return model
