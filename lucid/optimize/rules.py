"""Rewrite rules: how each kind of lucid module is rebuilt on fused convolution kernels.

A rule is registered per module class with :func:`register_rewrite`; :func:`rewrite` walks a
BatchNorm-folded model and applies the rule of each module's class (the nearest in its method
resolution order), recursing into modules without a rule. A new block class gets fast inference
by registering its own rule; modules without one keep running as they are.

The kernels themselves come from a :class:`FusedConv2d` subclass, one per device family
(:mod:`lucid.optimize.cpu`, :mod:`lucid.optimize.cuda`), passed to :func:`rewrite` as ``conv``.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..models import BasicBlock, Bottleneck
from ..nn import ConvBNReLU2d

__all__ = ["FusedConv2d", "FusedResidual", "TransientCaches", "fusable", "register_rewrite", "rewrite", "tracing"]

ConvFactory = Callable[[nn.Conv2d, bool], "FusedConv2d"]
Rule = Callable[[nn.Module, ConvFactory], "nn.Module | None"]
_RULES: dict[type, Rule] = {}


class TransientCaches:
    """Mixin for modules that keep per-shape caches which cannot be copied or pickled (prepacked
    oneDNN weights, lowered int8 graphs, captured CUDA graphs): a copy or unpickled module starts
    with each cache in ``_transient`` reset to the value its factory makes, and rebuilds it on use."""

    _transient: dict[str, Callable[[], object]] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update({name: empty() for name, empty in self._transient.items()})
        return state


def tracing() -> bool:
    """Whether the call is being captured (``torch.compile``, ``torch.export``, ``jit.trace``) rather than run."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def fusable(conv: nn.Module) -> bool:
    """Whether a module is a plain 2-D convolution the fused oneDNN/cuDNN kernels can run."""
    return type(conv) is nn.Conv2d and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


class FusedConv2d(nn.Module):
    """A convolution (bias = folded BatchNorm) with its ReLU, or shortcut addition and ReLU, in one kernel.

    Subclasses supply the kernels (``_fused`` and ``_fused_add_relu``). While the module is being
    captured by ``torch.compile``, ``torch.export`` or ``jit.trace`` it emits the plain
    convolution, addition and ReLU instead: a compiler fuses those itself, and the device
    kernels keep per-shape state that a captured graph cannot hold.
    """

    def __init__(self, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__()
        self.padding = list(conv.padding)
        self.stride = list(conv.stride)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self.relu = relu
        self.register_buffer("weight", conv.weight.detach().clone())
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())

    def plain(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution with the folded bias, without any epilogue."""
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tracing():
            return self.plain(x).relu() if self.relu else self.plain(x)
        return self._fused(x)

    def add_relu_(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """``relu(conv(x) + other)`` in one kernel (which may write into ``other``)."""
        if tracing():
            return (self.plain(x) + other).relu()
        return self._fused_add_relu(x, other)

    def _fused(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _fused_add_relu(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (
            f"weight={tuple(self.weight.shape)}, stride={self.stride}, padding={self.padding}, "
            f"groups={self.groups}, relu={self.relu}"
        )


class FusedResidual(nn.Module):
    """A residual block whose last convolution also adds the shortcut and applies the ReLU."""

    def __init__(self, body: nn.Sequential, last: FusedConv2d, se: nn.Module | None, downsample: nn.Module | None) -> None:
        super().__init__()
        self.body = body
        self.last = last
        self.se = se
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.body(x)
        if self.se is None:  # the shortcut (block input or projection) is not needed afterwards: reuse it
            return self.last.add_relu_(out, shortcut)
        return torch.relu(self.se(self.last(out)) + shortcut)


def register_rewrite(cls: type) -> Callable[[Rule], Rule]:
    """Register ``rule(module, conv)`` as the rewrite of ``cls`` modules (and subclasses without their own).

    The rule returns the fused replacement, or ``None`` to leave the module as it is (its
    children are then rewritten one by one). ``conv(conv2d, relu)`` builds a fused convolution.
    """
    def decorate(rule: Rule) -> Rule:
        _RULES[cls] = rule
        return rule

    return decorate


def rewrite(module: nn.Module, conv: ConvFactory) -> nn.Module:
    """Rebuild a BatchNorm-folded module tree on fused convolutions made by ``conv``; returns the new root."""
    rule = next((_RULES[c] for c in type(module).__mro__ if c in _RULES), None)
    replaced = None if rule is None else rule(module, conv)
    if replaced is not None:
        return replaced
    for name, child in list(module.named_children()):
        setattr(module, name, rewrite(child, conv))
    return module


# ------------------------------------------------------------------ the rules for lucid's modules


def _conv_bn_relu_rule(module: nn.Module, conv: ConvFactory) -> nn.Module | None:
    if isinstance(module.bn, nn.Identity) and fusable(module.conv):
        return conv(module.conv, True)
    return None


def _sequential_rule(module: nn.Module, conv: ConvFactory) -> nn.Module:
    """Fuse each convertible Conv2d with the ReLU after it (skipping the Identity left by folding)."""
    items = [m for m in module if not isinstance(m, nn.Identity)]
    out: list[nn.Module] = []
    i = 0
    while i < len(items):
        if fusable(items[i]):
            relu = i + 1 < len(items) and isinstance(items[i + 1], nn.ReLU)
            out.append(conv(items[i], relu))
            i += 2 if relu else 1
        else:
            out.append(rewrite(items[i], conv))
            i += 1
    return nn.Sequential(*out)


def residual_rule(names: tuple[str, ...]) -> Rule:
    """The rule of a residual block whose branch is the submodules ``names`` in order, the last a
    folded ``Sequential(conv, Identity)``, followed by the optional ``se``, then ``relu(out + shortcut)``."""
    def rule(module: nn.Module, conv: ConvFactory) -> nn.Module | None:
        last = getattr(module, names[-1])
        if not (isinstance(last, nn.Sequential) and len(last) == 2 and fusable(last[0]) and isinstance(last[1], nn.Identity)):
            return None
        body = nn.Sequential(*[rewrite(getattr(module, n), conv) for n in names[:-1]])
        downsample = None if module.downsample is None else rewrite(module.downsample, conv)
        return FusedResidual(body, conv(last[0], False), module.se, downsample)

    return rule


def _register_lucid_rules() -> None:
    register_rewrite(ConvBNReLU2d)(_conv_bn_relu_rule)
    register_rewrite(nn.Sequential)(_sequential_rule)
    register_rewrite(BasicBlock)(residual_rule(("conv1", "conv2")))
    register_rewrite(Bottleneck)(residual_rule(("conv1", "conv2", "conv3")))
    # PreActBottleneck (norm and ReLU before each convolution) has no fusion-friendly form: no rule


_register_lucid_rules()
