"""The models a benchmark compares: lucid's, its torchvision/timm peers carrying the same weights, and their inputs."""
from __future__ import annotations

import importlib.util

import torch
import torchvision
from torch import nn

from ..checkpoints.conversion import convert
from ..core.errors import CheckpointError
from ..core.extras import require
from ..models.presets import PRESETS

__all__ = ["PEERS", "calibration_set", "describe", "make_batch", "peer_models", "randomize_batchnorm"]


# lucid preset -> (torchvision builder name, timm model name) of the same architecture, from the presets table
PEERS: dict[str, tuple[str | None, str | None]] = {
    name: (p.torchvision, p.timm) for name, p in PRESETS.items() if p.torchvision or p.timm
}


def peer_models(name: str, model: nn.Module) -> dict[str, nn.Module]:
    """torchvision's and timm's model of the same architecture, carrying ``model``'s weights.

    A peer is left out when its library is not installed or its architecture differs
    (e.g. a config override such as a deep stem). Nothing is downloaded.
    """
    if name not in PEERS:
        return {}
    tv_name, timm_name = PEERS[name]
    num_classes = model.config.num_classes
    try:
        weights = convert(model.state_dict(), "lucid", to="torchvision")
    except CheckpointError:  # a lucid-only feature (deep stem, ResNet-D, squeeze-excite): no peer has it
        return {}
    peers: dict[str, nn.Module] = {}
    if tv_name:
        peers["torchvision"] = getattr(torchvision.models, tv_name)(weights=None, num_classes=num_classes)
    if timm_name and importlib.util.find_spec("timm") is not None:
        timm = require("timm", "timm", "the timm peer of lucid bench")  # extra: timm
        peers["timm"] = timm.create_model(timm_name, pretrained=False, num_classes=num_classes)
    for key, peer in list(peers.items()):
        try:
            peer.load_state_dict(weights, strict=True)
        except RuntimeError:  # another architecture under the same name (e.g. in_channels, stem)
            del peers[key]
    return peers


def make_batch(model: nn.Module, batch: int, size: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed random images and labels for ``model`` (same for every contender)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, model.config.in_channels, size, size, generator=g)
    y = torch.randint(0, model.config.num_classes, (batch,), generator=g)
    return x.to(device), y.to(device)


def randomize_batchnorm(model: nn.Module, seed: int = 1) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine terms, in place; returns ``model``.

    Freshly built models have identity BatchNorms (mean 0, variance 1, scale 1, shift 0), which
    would make any check of BatchNorm folding pass trivially; benchmarks and tests use this instead.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model


def calibration_set(model: nn.Module, batch: int, size: int, count: int = 4, seed: int = 3) -> list[torch.Tensor]:
    """``count`` fixed random image batches for int8 calibration in benchmarks (speed only: the weights are random too)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, model.config.in_channels, size, size, generator=g) for _ in range(count)]


def describe(dtype: torch.dtype | None, channels_last: bool, compile: bool, autocast: bool = False) -> str:
    """``"bfloat16 channels-last compiled"`` and the like, for table rows."""
    precision = "float32" if dtype is None else ("autocast " if autocast else "") + str(dtype).replace("torch.", "")
    return f"{precision} {'channels-last' if channels_last else 'NCHW'} {'compiled' if compile else 'eager'}"
