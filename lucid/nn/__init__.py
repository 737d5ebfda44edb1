"""Everything in :mod:`torch.nn`, plus lucid's building blocks.

``lucid.nn.Conv2d`` *is* ``torch.nn.Conv2d``: lucid adds blocks, it does not wrap torch.
:mod:`lucid.nn.measure` tells any module's device and multiply-accumulates.
"""
from torch.nn import *  # noqa: F401,F403  (re-export torch.nn's public API)
from torch.nn import functional, init, parameter, utils  # noqa: F401

from .blocks import ConvBNReLU2d, DropPath, SqueezeExcite  # noqa: F401
