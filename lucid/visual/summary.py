"""A per-layer table of a model: output shapes, parameters and multiply-accumulates."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from ..core.checks import check_min_int
from .tracing import Call, format_shapes, trace

__all__ = ["summary", "Summary", "LayerRow"]

MB = 1e6  # bytes in a megabyte, as the table prints it


@dataclass(frozen=True)
class LayerRow:
    """One module of the table.

    ``params`` and ``macs`` include the module's submodules. A row typed ``(self)`` holds
    what a listed container owns or computes outside its listed submodules, so that the
    rows without listed children always add up to the totals.
    """

    path: str
    type: str
    depth: int
    output_shape: Any  # [1, 64, 112, 112]; nested lists/dicts for several outputs; None if never called
    params: int
    trainable_params: int
    macs: int
    calls: int


@dataclass(frozen=True)
class Summary:
    """What :func:`summary` returns: prints as a table, ``to_dict()`` for JSON."""

    model: str
    input_shape: Any
    output_shape: Any
    depth: int
    rows: tuple[LayerRow, ...]
    total_params: int
    trainable_params: int
    total_macs: int
    param_mb: float
    buffer_mb: float
    activation_mb: float
    input_mb: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists and numbers (for ``json.dumps``)."""
        return {
            "model": self.model,
            "input_shape": _jsonable(self.input_shape),
            "output_shape": _jsonable(self.output_shape),
            "depth": self.depth,
            "rows": [{**asdict(r), "output_shape": _jsonable(r.output_shape)} for r in self.rows],
            "totals": {
                "params": self.total_params,
                "trainable_params": self.trainable_params,
                "non_trainable_params": self.total_params - self.trainable_params,
                "macs": self.total_macs,
                "param_mb": self.param_mb,
                "buffer_mb": self.buffer_mb,
                "activation_mb": self.activation_mb,
                "input_mb": self.input_mb,
            },
        }

    def leaf_rows(self) -> list[LayerRow]:
        """Rows with no listed children: they partition the totals."""
        return [r for i, r in enumerate(self.rows) if i + 1 == len(self.rows) or self.rows[i + 1].depth <= r.depth]

    def __str__(self) -> str:
        header = ("Layer", "Type", "Output shape", "Params", "MACs")
        body = [
            (
                "  " * (r.depth - 1) + (r.path or "(model)"),
                r.type,
                format_shapes(r.output_shape) + (f" x{r.calls} calls" if r.calls > 1 else "") if r.calls else "-",
                f"{r.params:,}",
                f"{r.macs:,}",
            )
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        rule = "-" * len(line(tuple("x" * w for w in widths)))
        out = [f"{self.model}, input {format_shapes(self.input_shape)} -> output {format_shapes(self.output_shape)}",
               rule, line(header), rule, *(line(row) for row in body), rule]
        out += [
            f"Total params:         {self.total_params:,}",
            f"Trainable params:     {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
            f"Total MACs:           {self.total_macs:,} ({self.total_macs / 1e9:.2f} G)",
            rule,
            f"Input size (MB):             {self.input_mb:,.2f}",
            f"Parameters size (MB):        {self.param_mb:,.2f}",
            f"Buffers size (MB):           {self.buffer_mb:,.2f}",
            f"Activations size (MB):       {self.activation_mb:,.2f}",
        ]
        return "\n".join(out)


def _jsonable(shapes: Any) -> Any:
    if isinstance(shapes, tuple):
        return list(shapes)
    if isinstance(shapes, dict):
        return {k: _jsonable(v) for k, v in shapes.items()}
    if isinstance(shapes, list):
        return [_jsonable(v) for v in shapes]
    return shapes


def _owned_params(model: nn.Module) -> dict[str, tuple[int, int]]:
    """Path of the module that owns each distinct parameter -> (count, trainable count) summed per module."""
    owned: dict[str, tuple[int, int]] = {}
    for name, p in model.named_parameters():
        path = name.rpartition(".")[0]
        total, trainable = owned.get(path, (0, 0))
        owned[path] = (total + p.numel(), trainable + (p.numel() if p.requires_grad else 0))
    return owned


def summary(model: nn.Module, input_shape: Any = (1, 3, 224, 224), depth: int = 3) -> Summary:
    """Run ``model`` once on ``input_shape`` with hooks and tabulate its modules down to ``depth`` levels.

    MACs come from torch's :class:`~torch.utils.flop_counter.FlopCounterMode` (FLOPs / 2) over
    the same pass; parameters are counted once each, tied parameters included. The pass runs
    on the ``meta`` device where the model allows it, so it costs no arithmetic and leaves the
    model untouched.
    """
    check_min_int("depth", depth, 1)
    tr = trace(model, input_shape)
    calls_of: dict[str, list[Call]] = {}  # by the path a call went through
    for call in tr.calls:
        calls_of.setdefault(call.path, []).append(call)
    owned = _owned_params(model)

    rows: list[LayerRow] = []
    listed: set[int] = set()

    def add(module: nn.Module, path: str, level: int) -> tuple[int, int, int]:
        """List ``module`` (and its children down to ``depth``); returns its (params, trainable, macs)."""
        listed.add(id(module))
        params, trainable = owned.get(path, (0, 0))
        calls = calls_of.get(path, [])
        macs = sum(c.macs for c in calls)
        for sub_name, sub in module.named_modules(prefix=path):
            if sub is not module and id(sub) not in listed and sub_name in owned:
                params += owned[sub_name][0]
                trainable += owned[sub_name][1]
        if level > 0:
            rows.append(LayerRow(path, type(module).__name__, level, calls[0].out_shapes if calls else None,
                                 params, trainable, macs, len(calls)))
        children = [(n, m) for n, m in module.named_children() if id(m) not in listed]
        if level < depth and (children or level == 0):
            sums = [0, 0, 0]
            for child_name, child in children:
                for i, v in enumerate(add(child, f"{path}.{child_name}" if path else child_name, level + 1)):
                    sums[i] += v
            own = (params - sums[0], trainable - sums[1], macs - sums[2])
            if any(own):
                rows.append(LayerRow(path, "(self)", level + 1, None, *own, 0))
        return params, trainable, macs

    total_params, trainable_params, _ = add(model, "", 0)  # the model itself is the totals line, not a row
    return Summary(
        model=type(model).__name__,
        input_shape=tr.input_shapes,
        output_shape=tr.output_shapes,
        depth=depth,
        rows=tuple(rows),
        total_params=total_params,
        trainable_params=trainable_params,
        total_macs=tr.total_macs,
        param_mb=sum(p.numel() * p.element_size() for p in model.parameters()) / MB,
        buffer_mb=sum(b.numel() * b.element_size() for b in model.buffers()) / MB,
        activation_mb=tr.activation_bytes / MB,
        input_mb=tr.input_bytes / MB,
    )
