"""BatchNorm folding: each eval-mode BatchNorm becomes the scale and bias of the convolution before it."""
from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..core.errors import OptionError
from ..nn import ConvBNReLU2d

__all__ = ["fold_batchnorm"]


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold eval-mode BatchNorm layers into the convolution that feeds them, in place.

    Handles lucid's two conv+norm containers: :class:`lucid.nn.ConvBNReLU2d` (its ``bn`` becomes
    ``nn.Identity``) and ``nn.Sequential`` holding a ``Conv2d`` directly followed by a
    ``BatchNorm2d`` (stems, shortcuts, last convs of blocks). This removes one full read and
    write of every feature map at inference. Returns ``module``.
    """
    if module.training:
        raise OptionError("fold_batchnorm: the module must be in eval mode (call .eval() first); got a module in train mode")
    _fold(module)
    return module


def _fold(module: nn.Module) -> None:
    for child in module.children():
        if isinstance(child, ConvBNReLU2d) and isinstance(child.bn, nn.BatchNorm2d):
            child.conv = fuse_conv_bn_eval(child.conv, child.bn)
            child.bn = nn.Identity()
        elif isinstance(child, nn.Sequential):
            for i in range(len(child) - 1):
                if type(child[i]) is nn.Conv2d and isinstance(child[i + 1], nn.BatchNorm2d):
                    child[i] = fuse_conv_bn_eval(child[i], child[i + 1])
                    child[i + 1] = nn.Identity()
        _fold(child)
