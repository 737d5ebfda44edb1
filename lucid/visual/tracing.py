"""One forward pass with hooks: the tree of module calls, their shapes, data flow and MACs.

:func:`trace` is what :func:`lucid.visual.summary` and :func:`lucid.visual.mermaid` are
built on. It runs the model once by :func:`lucid.nn.measure.forward_once`, by default on the
``meta`` device (shapes only, no arithmetic, so even the largest preset traces in a
fraction of a second), and records:

* every call of every submodule, nested as it happened (a module called twice gives
  two calls);
* the shapes going in and out of each call;
* which earlier calls produced each call's inputs (the data flow), followed through
  plain tensor code between modules (``x + shortcut``, ``torch.flatten``) with a
  :class:`~torch.overrides.TorchFunctionMode`;
* the multiply-accumulates inside each call, read from torch's own
  :class:`~torch.utils.flop_counter.FlopCounterMode` (MACs = FLOPs / 2).
"""
from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from ..core.errors import OptionTypeError
from ..nn.measure import count_macs, forward_once, make_inputs

__all__ = ["INPUT", "Call", "Trace", "trace", "count_macs", "make_inputs", "format_shapes", "module_tree"]

INPUT = -1
"""Source id that stands for the model's input in :attr:`Call.sources`."""


@dataclass(eq=False)
class Call:
    """One call of one module during the traced forward pass."""

    index: int
    module: nn.Module
    path: str  # dotted path from the root ("" for the model itself)
    name: str  # attribute name in its parent ("" for the model itself)
    depth: int  # 0 for the model, 1 for its children, ...
    parent: Call | None
    children: list[Call] = field(default_factory=list)
    in_shapes: Any = None  # shapes of the tensor arguments (same nesting as the arguments)
    out_shapes: Any = None  # shapes of the tensors returned
    sources: frozenset[int] = frozenset()  # calls (or INPUT) whose results this call consumed
    out_sources: frozenset[int] = frozenset()  # calls whose results make up this call's output
    macs: int = 0  # multiply-accumulates inside this call, submodules included

    @property
    def type_name(self) -> str:
        """Class name of the called module."""
        return type(self.module).__name__

    @property
    def label(self) -> str:
        """Attribute name, or the class name where the name is just a list index."""
        return self.type_name if not self.name or self.name.isdigit() else self.name

    def contains(self, index: int) -> bool:
        """Whether call ``index`` is this call or ran inside it."""
        return index in self.subtree_indices

    @property
    def subtree_indices(self) -> frozenset[int]:
        """Indices of this call and of every call inside it."""
        cached = self.__dict__.get("_subtree")
        if cached is None:
            cached = frozenset([self.index]).union(*(c.subtree_indices for c in self.children))
            self.__dict__["_subtree"] = cached
        return cached

    def walk(self) -> Iterator[Call]:
        """This call and every call inside it, in the order they started."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class Trace:
    """Everything one traced forward pass recorded."""

    root: Call
    calls: list[Call]  # by index
    input_shapes: Any
    output_shapes: Any
    output_sources: frozenset[int]
    total_macs: int
    activation_bytes: int  # bytes of the distinct tensors returned by leaf modules
    input_bytes: int  # bytes of the input tensors, at the model's floating dtype


def _shapes(obj: Any) -> Any:
    """The shapes of the tensors in ``obj``, keeping its nesting; non-tensors are dropped."""
    if isinstance(obj, torch.Tensor):
        return tuple(obj.shape)
    if isinstance(obj, dict):
        kept = {str(k): _shapes(v) for k, v in obj.items()}
        return {k: v for k, v in kept.items() if v is not None} or None
    if isinstance(obj, (list, tuple)):
        kept = [s for s in (_shapes(v) for v in obj) if s is not None]
        return kept or None
    return None


def format_shapes(shapes: Any) -> str:
    """``(1,3,224,224)``; several tensors as ``(1,10), (1,4)``; dicts as ``logits=(1,10)``."""
    if shapes is None:
        return ""
    if isinstance(shapes, tuple):
        return "(" + ",".join(str(d) for d in shapes) + ")"
    if isinstance(shapes, dict):
        return ", ".join(f"{k}={format_shapes(v)}" for k, v in shapes.items())
    return ", ".join(format_shapes(s) for s in shapes)


def _tensors(obj: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(obj)[0] if isinstance(t, torch.Tensor)]


class _Recorder(TorchFunctionMode):
    """Hooks on every module plus a torch-function mode that follows tensors between them.

    Each tensor seen is tagged with the set of calls that produced it. A module's output
    keeps the tags it got inside the module when at least one of them is a call inside
    it (so a residual ``relu(out + shortcut)`` inside a block points at the inner relu);
    otherwise (leaf modules, pass-through modules) it is tagged with the call itself.
    """

    def __init__(self, model: nn.Module, flops: FlopCounterMode) -> None:
        super().__init__()
        self.flops = flops
        self.paths = {id(m): p for p, m in model.named_modules()}
        self.leaves = {id(m) for m in model.modules() if next(m.children(), None) is None}
        self.calls: list[Call] = []
        self.stack: list[tuple[Call, int]] = []
        self._tags: dict[int, tuple[weakref.ref, frozenset[int]]] = {}
        self._seen_outputs: dict[int, weakref.ref] = {}
        self.activation_bytes = 0
        self.handles = []
        for m in model.modules():
            self.handles.append(m.register_forward_pre_hook(self._pre, with_kwargs=True))
            self.handles.append(m.register_forward_hook(self._post))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()

    # -- tags
    def tags(self, obj: Any) -> frozenset[int]:
        found: set[int] = set()
        for t in _tensors(obj):
            entry = self._tags.get(id(t))
            if entry is not None and entry[0]() is t:
                found |= entry[1]
        return frozenset(found)

    def tag(self, obj: Any, sources: frozenset[int]) -> None:
        for t in _tensors(obj):
            self._tags[id(t)] = (weakref.ref(t), sources)

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        sources = self.tags((args, kwargs))
        if sources:
            self.tag(out, sources)
        return out

    # -- hooks
    def _call_site(self, module: nn.Module, parent: Call | None) -> str:
        """The path a call goes through: the calling module's path and its name for ``module`` there,
        so a module registered at two places is told apart by where it runs (else its first path)."""
        if parent is not None:
            for name, child in parent.module.named_children():
                if child is module:
                    return f"{parent.path}.{name}" if parent.path else name
        return self.paths.get(id(module), "")

    def _pre(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        parent = self.stack[-1][0] if self.stack else None
        path = self._call_site(module, parent)
        call = Call(
            index=len(self.calls),
            module=module,
            path=path,
            name=path.rpartition(".")[2],
            depth=0 if parent is None else parent.depth + 1,
            parent=parent,
            in_shapes=_shapes((*args, *kwargs.values())),
            sources=self.tags((args, kwargs)),
        )
        if len(call.in_shapes or ()) == 1:
            call.in_shapes = call.in_shapes[0]
        self.calls.append(call)
        if parent is not None:
            parent.children.append(call)
        self.stack.append((call, self.flops.get_total_flops()))

    def _post(self, module: nn.Module, args: Any, output: Any) -> None:
        call, flops_before = self.stack.pop()
        call.macs = (self.flops.get_total_flops() - flops_before) // 2
        call.out_shapes = _shapes(output)
        inner = self.tags(output)
        if not any(call.contains(s) and s != call.index for s in inner):
            inner = frozenset([call.index])
            self.tag(output, inner)
        call.out_sources = inner
        if id(module) in self.leaves:
            for t in _tensors(output):
                ref = self._seen_outputs.get(id(t))
                if ref is None or ref() is not t:
                    self._seen_outputs[id(t)] = weakref.ref(t)
                    self.activation_bytes += t.numel() * t.element_size()


def _record(model: nn.Module, inputs: tuple[torch.Tensor, ...], forward: Callable[[], Any], record: bool) -> Trace:
    """The :class:`Trace` of one ``forward()`` of ``model`` on ``inputs``: MACs and output shapes, and with ``record`` every call."""
    flops = FlopCounterMode(display=False)
    recorder = _Recorder(model, flops) if record else None
    try:
        with flops, recorder or contextlib.nullcontext():
            if recorder is not None:
                recorder.tag(inputs, frozenset([INPUT]))
            output = forward()
    finally:
        if recorder is not None:
            recorder.remove()
    root = recorder.calls[0] if recorder is not None else Call(0, model, "", "", 0, None)
    return Trace(
        root=root,
        calls=recorder.calls if recorder is not None else [root],
        input_shapes=_shapes(inputs[0] if len(inputs) == 1 else inputs),
        output_shapes=_shapes(output),
        output_sources=recorder.tags(output) if recorder is not None else frozenset(),
        total_macs=flops.get_total_flops() // 2,
        activation_bytes=recorder.activation_bytes if recorder is not None else 0,
        input_bytes=sum(t.numel() * t.element_size() for t in inputs),
    )


def trace(model: nn.Module, input_shape: Any, record: bool = True) -> Trace:
    """Run ``model`` once on zeros of ``input_shape`` and record every module call.

    The pass runs in eval mode under ``no_grad`` (the model's train/eval flags are restored
    afterwards), with the parameters swapped for ``meta`` tensors so that nothing is
    computed and nothing in the model changes. Models whose forward cannot run on ``meta``
    (data-dependent code, ops without a meta kernel) are run for real instead, and so are
    models with lazy modules, which this first pass materialises
    (:func:`lucid.nn.measure.forward_once`).
    ``record=False`` only counts MACs and output shapes (faster: no hooks).
    """
    return forward_once(model, input_shape, lambda inputs, forward: _record(model, inputs, forward, record))


def module_tree(model: nn.Module) -> Trace:
    """A pseudo-trace from the module hierarchy alone, for drawing a model without running it.

    Every module appears once, in definition order; the data flow is assumed to be the
    chain of leaf modules in that order. No shapes, no MACs.
    """
    calls: list[Call] = []
    seen: set[int] = set()
    last_leaf = [INPUT]

    def visit(module: nn.Module, path: str, name: str, parent: Call | None) -> Call:
        seen.add(id(module))
        call = Call(index=len(calls), module=module, path=path, name=name,
                    depth=0 if parent is None else parent.depth + 1, parent=parent)
        calls.append(call)
        call.sources = frozenset([last_leaf[0]])
        for child_name, child in module.named_children():
            if id(child) not in seen:
                call.children.append(visit(child, f"{path}.{child_name}" if path else child_name, child_name, call))
        if not call.children:
            last_leaf[0] = call.index
        call.out_sources = frozenset([last_leaf[0]])
        return call

    if not isinstance(model, nn.Module):
        raise OptionTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    root = visit(model, "", "", None)
    return Trace(root=root, calls=calls, input_shapes=None, output_shapes=None, output_sources=root.out_sources,
                 total_macs=0, activation_bytes=0, input_bytes=0)
