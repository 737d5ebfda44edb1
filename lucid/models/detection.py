"""lucid ResNets as detection backbones: torchvision's ``BackboneWithFPN``, ready for its detectors.

torchvision's own FPN builder expects torchvision's module names (``conv1``, ``bn1``,
``inplanes``); :func:`fpn_backbone` does the same job with lucid's (``stem``,
``layer1``..``layerN``), so FasterRCNN, MaskRCNN and RetinaNet take a lucid model.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from ..core.checks import is_int
from ..core.errors import ConfigError, ConfigTypeError
from .registry import create_model

__all__ = ["fpn_backbone"]



def _swap_norms(model: nn.Module, norm_layer: Callable[..., nn.Module]) -> None:
    """Replace every ``BatchNorm2d`` by ``norm_layer(num_features)``, carrying its affine
    parameters and running statistics over (what a frozen norm keeps)."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, norm_layer if isinstance(norm_layer, type) else ()):
            new = norm_layer(child.num_features)
            state = {k: v for k, v in child.state_dict().items() if k in new.state_dict()}
            new.load_state_dict(state, strict=False)
            if hasattr(new, "eps"):
                new.eps = child.eps
            setattr(model, name, new)
        else:
            _swap_norms(child, norm_layer)


def _backbone_model(name_or_model: str | nn.Module, norm_layer: Callable[..., nn.Module], model_kwargs: dict[str, Any]) -> nn.Module:
    """A preset built with ``norm_layer`` in its config, or the given model with its norms swapped."""
    if isinstance(name_or_model, str):
        return create_model(name_or_model, norm_layer=norm_layer, **model_kwargs)
    if not isinstance(name_or_model, nn.Module):
        raise ConfigTypeError(f"name_or_model must be a preset name or a lucid ResNet, got {type(name_or_model).__name__}", "name_or_model")
    if model_kwargs:
        raise ConfigTypeError(f"fpn_backbone() takes preset arguments ({sorted(model_kwargs)}) only with a preset name", "model_kwargs")
    missing = [m for m in ("stem", "layer1", "feature_info") if not hasattr(name_or_model, m)]
    if missing:
        raise ConfigTypeError(
            f"fpn_backbone() needs a lucid ResNet/ResNeXt (stem, layer1..layerN, feature_info); "
            f"{type(name_or_model).__name__} lacks {missing}",
            "name_or_model",
        )
    _swap_norms(name_or_model, norm_layer)
    return name_or_model


def _check_layers(trainable_layers: int, returned_layers: Sequence[int] | None, stages: int) -> list[int]:
    """The stage numbers to return, after checking both arguments against the model's ``stages``."""
    if not is_int(trainable_layers) or not 0 <= trainable_layers <= stages + 1:
        raise ConfigError(
            f"trainable_layers must be an int in 0..{stages + 1} (stages to train, counted from layer{stages}; "
            f"{stages + 1} adds the stem), got {trainable_layers!r}",
            "trainable_layers",
        )
    if returned_layers is None:
        return list(range(1, stages + 1))
    layers = list(returned_layers) if isinstance(returned_layers, Sequence) and not isinstance(returned_layers, str) else None
    if not layers or any(not is_int(k) or not 1 <= k <= stages for k in layers) or layers != sorted(set(layers)):
        raise ConfigError(
            f"returned_layers must be increasing stage numbers from 1..{stages}, such as (2, 3, 4), got {returned_layers!r}",
            "returned_layers",
        )
    return layers


def fpn_backbone(
    name_or_model: str | nn.Module,
    trainable_layers: int = 3,
    returned_layers: Sequence[int] | None = None,
    norm_layer: Callable[..., nn.Module] | None = None,
    extra_blocks: nn.Module | None = None,
    out_channels: int = 256,
    **model_kwargs: Any,
) -> nn.Module:
    """A feature pyramid over a lucid ResNet/ResNeXt: torchvision's ``BackboneWithFPN``.

    Args:
        name_or_model: a preset name (built with ``norm_layer`` as its config's ``norm_layer`` and
            ``model_kwargs``, e.g. ``weights="IMAGENET1K_V2"``) or a lucid model (changed in place:
            its norms and ``requires_grad`` flags).
        trainable_layers: how many stages train, counted from the last (one more than the
            number of stages trains the stem too); the rest is frozen, as torchvision's detectors do.
        returned_layers: the stages (numbered from 1) whose outputs feed the pyramid; ``None``: all.
        norm_layer: the norm to put in place of every ``BatchNorm2d``, statistics carried
            over; ``None`` means torchvision's ``FrozenBatchNorm2d``. Pass ``nn.BatchNorm2d``
            to keep the model's norms.
        extra_blocks: extra pyramid levels; ``None`` means ``LastLevelMaxPool`` (one more level,
            as FasterRCNN and MaskRCNN expect). RetinaNet uses ``LastLevelP6P7``.
        out_channels: channels of every pyramid level.
    """
    # torchvision: kept out of `import lucid.models`
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops import FrozenBatchNorm2d
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    model = _backbone_model(name_or_model, FrozenBatchNorm2d if norm_layer is None else norm_layer, model_kwargs)
    modules = [info["module"] for info in model.feature_info]  # the stem, then one per stage
    layers = _check_layers(trainable_layers, returned_layers, len(modules) - 1)
    trained = modules[::-1][:trainable_layers]  # counted from the classifier end
    for name, param in model.named_parameters():
        param.requires_grad_(name.split(".")[0] in trained)
    channels = {info["module"]: info["num_chs"] for info in model.feature_info}
    return BackboneWithFPN(
        model,
        return_layers={f"layer{k}": str(i) for i, k in enumerate(layers)},
        in_channels_list=[channels[f"layer{k}"] for k in layers],
        out_channels=out_channels,
        extra_blocks=LastLevelMaxPool() if extra_blocks is None else extra_blocks,
    )
