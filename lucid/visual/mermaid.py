"""Mermaid flowcharts of any ``nn.Module``, in the style of lucid's specification.

Containers become nested subgraphs, leaf modules become nodes labelled with their class
and ``(input shape) → (output shape)``, coloured by kind (convolution, normalisation,
activation, pooling, linear). Consecutive sibling calls, each feeding the next, that are
identical in structure and in shapes are drawn once and marked ``x N`` (so a ResNet's
stages stay apart, each with its own shapes, and a stage's identity blocks fold with their
true count); a collapsed container gets Input and Output nodes that close the loop. Edges follow the data actually flowing between
modules in a traced forward pass; where several inputs meet, the edges are dashed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..core.checks import check_min_int
from ..core.errors import OptionError
from .tracing import INPUT, Call, Trace, format_shapes, module_tree, trace

__all__ = ["COLLAPSE_MODES", "KIND_COLOURS", "mermaid", "mermaid_sections", "module_kind"]

# kind: (fill, stroke); the stroke colour also colours the shape text of the node
KIND_COLOURS: dict[str, tuple[str, str]] = {
    "conv": ("#ffe8e8", "#c53030"),
    "norm": ("#e6fffa", "#2c7a7b"),
    "activation": ("#faf5ff", "#6b46c1"),
    "pool": ("#fefcbf", "#b7791f"),
    "linear": ("#ebf8ff", "#2b6cb0"),
}
_IO_STYLE = "fill:#fff3cd,stroke:#a67c00,stroke-width:1px;"
_LOOP_STYLE = "fill:#e2e8f0,stroke:#64748b,stroke-width:1px;"
_BOX_STYLE = "fill:#000000,fill-opacity:0.05,stroke:#000000,stroke-opacity:0.75,stroke-width:1px"
_INIT = '%%{init: {"flowchart":{"curve":"monotoneX","nodeSpacing":50,"rankSpacing":50}} }%%'
_DIRECTIONS = ("LR", "RL", "TB", "TD", "BT")
COLLAPSE_MODES = ("shapes", "structure", "none")

# torch.nn source modules that define each kind (subclasses elsewhere inherit the kind)
_KIND_BY_TORCH_MODULE = {
    "torch.nn.modules.conv": "conv",
    "torch.nn.modules.batchnorm": "norm",
    "torch.nn.modules.instancenorm": "norm",
    "torch.nn.modules.normalization": "norm",
    "torch.nn.modules.activation": "activation",
    "torch.nn.modules.pooling": "pool",
    "torch.nn.modules.linear": "linear",
}


def module_kind(module: nn.Module) -> str | None:
    """``"conv"``, ``"norm"``, ``"activation"``, ``"pool"``, ``"linear"`` or None, from the torch.nn class it derives from."""
    for cls in type(module).__mro__:
        if cls is nn.Identity:
            return None
        kind = _KIND_BY_TORCH_MODULE.get(cls.__module__)
        if kind:
            return kind
    return None


def _text(value: str) -> str:
    """Escape text for a quoted Mermaid label (Mermaid's own entity codes)."""
    return value.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


@dataclass(eq=False)
class _Item:
    """One thing drawn: a node (``box=False``) or a subgraph, standing for one or more calls."""

    id: str
    calls: list[Call]
    box: bool
    children: list[_Item] = field(default_factory=list)


class _Diagram:
    """Turns a trace into Mermaid text: lay out items, connect them, write the lines."""

    def __init__(self, tr: Trace, depth: int, collapse: str, shapes: bool, direction: str, title: str) -> None:
        self.tr, self.depth, self.collapse, self.shapes, self.direction, self.title = tr, depth, collapse, shapes, direction, title
        self.counter = 0
        self.owner: dict[int, str] = {}  # call index -> id of what stands for it in the picture
        self.edges: set[tuple[str, str]] = set()
        # collapsed groups (their Output loops back to their Input) -> what feeds their first call
        self.loops: dict[str, set[str]] = {}
        self.styles: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self._signatures: dict[int, tuple] = {}

    def opened(self, call: Call) -> bool:
        return call.depth <= self.depth and bool(call.children)

    def signature(self, call: Call) -> tuple:
        """What must match for two calls to be drawn as one (see :func:`mermaid`'s ``collapse``)."""
        sig = self._signatures.get(call.index)
        if sig is None:
            sig = self._exact(call) if self.collapse == "shapes" else self._structure(call)
            self._signatures[call.index] = sig
        return sig

    def _exact(self, call: Call) -> tuple:
        """The class, the shapes in and out, and the same of every call inside, all the way down."""
        inner = tuple(self.signature(child) for child in call.children)
        return (type(call.module), format_shapes(call.in_shapes), format_shapes(call.out_shapes), inner)

    def _structure(self, call: Call) -> tuple:
        """Structure as drawn: the class and the runs of equal children inside it.

        Runs of leaves keep their length, runs of containers do not: ResNet stages with
        different numbers of identical blocks share this signature, while a block with a
        projection shortcut (one more leaf) differs from one without.
        """
        if not self.opened(call):
            return ("leaf", type(call.module))
        runs: list[list] = []
        for child in call.children:
            child_sig = self.signature(child)
            if runs and runs[-1][0] == child_sig:
                runs[-1][1] += 1
            else:
                runs.append([child_sig, 1])
        return ("box", type(call.module), tuple((s, n if s[0] == "leaf" else 0) for s, n in runs))

    # ---- layout: which calls become which items
    def _new_id(self) -> str:
        self.counter += 1
        return f"m{self.counter - 1}"

    def _runs(self, calls: list[Call]) -> list[list[Call]]:
        runs: list[list[Call]] = []
        for call in calls:
            if (self.collapse != "none" and runs and self.signature(runs[-1][-1]) == self.signature(call)
                    and any(runs[-1][-1].contains(s) for s in call.sources)):
                runs[-1].append(call)
            else:
                runs.append([call])
        return runs

    def _item(self, calls: list[Call]) -> _Item:
        item = _Item(self._new_id(), calls, box=self.opened(calls[0]))
        if not item.box:
            for call in calls:
                for inner in call.walk():
                    self.owner[inner.index] = item.id
            return item
        self.owner[calls[0].index] = f"sg_{item.id}"
        for hidden in calls[1:]:
            for inner in hidden.walk():
                self.owner[inner.index] = f"{item.id}_out"
        item.children = [self._item(run) for run in self._runs(calls[0].children)]
        return item

    # ---- edges
    def _source_id(self, source: int) -> str:
        return "input" if source == INPUT else self.owner[source]

    def _connect(self, item: _Item, groups: list[_Item]) -> None:
        if not item.box:
            for call in item.calls:
                for s in call.sources:
                    src = self._source_id(s)
                    if src != item.id:
                        self.edges.add((src, item.id))
                    for group in groups:
                        if not group.calls[0].contains(s):
                            self.edges.add((f"{group.id}_in", item.id))
            return
        first = item.calls[0]
        inner_groups = groups + [item] if len(item.calls) > 1 else groups
        for child in item.children:
            self._connect(child, inner_groups)
        if len(item.calls) > 1:
            for s in first.out_sources:
                if s != first.index and first.contains(s):
                    self.edges.add((self._source_id(s), f"{item.id}_out"))
            self.loops[item.id] = {self._source_id(s) for s in first.sources if not first.contains(s)}

    # ---- text
    def _shape_span(self, calls: list[Call], colour: str | None, keep_same: bool = False, inline: bool = False) -> str:
        """``(in) → (out)`` under a label (beside it with ``inline``: Mermaid gives a subgraph
        title one line); where they are equal nothing, or the shape once with ``keep_same``."""
        if not self.shapes:
            return ""
        before, after = format_shapes(calls[0].in_shapes), format_shapes(calls[-1].out_shapes)
        if not before or not after or (before == after and not keep_same):
            return ""
        style = f"font-size:11px;{f'color:{colour};' if colour else ''}font-weight:400"
        text = _text(before) if before == after else f"{_text(before)} → {_text(after)}"
        return f"{' ' if inline else '<br/>'}<span style='{style}'>{text}</span>"

    def _write(self, item: _Item, indent: int, root: bool = False) -> None:
        pad = "  " * indent
        count = f" x {len(item.calls)}" if len(item.calls) > 1 else ""
        first = item.calls[0]
        if not item.box:
            kind = module_kind(first.module)
            fill, stroke = KIND_COLOURS.get(kind, (None, None))
            label = _text(first.type_name) + count + self._shape_span(item.calls, stroke, keep_same=bool(count))
            open_, close = ('(["', '"])') if count else ('["', '"]')
            self.lines.append(f"{pad}{item.id}{open_}{label}{close};")
            if kind:
                self.styles.append((int(item.id[1:]), f"style {item.id} fill:{fill},stroke:{stroke},stroke-width:1px;"))
            return
        if root:
            label = f"<span style='font-size:20px;font-weight:700'>{_text(self.title)}</span>"
        else:
            label = _text(first.label) + count + self._shape_span(item.calls, None, keep_same=True, inline=True)
        self.lines.append(f'{pad}subgraph sg_{item.id}["{label}"]')
        if not root:
            self.lines.append(f"{pad}  direction TB;")
        self.lines.append(f"{pad}style sg_{item.id} {_BOX_STYLE}")
        if count:
            self.lines.append(f'{pad}  {item.id}_in(["Input"]);')
            self.lines.append(f'{pad}  {item.id}_out(["Output"]);')
            self.lines.append(f"  style {item.id}_in {_LOOP_STYLE}")
            self.lines.append(f"  style {item.id}_out {_LOOP_STYLE}")
        for child in item.children:
            self._write(child, indent + 1)
        self.lines.append(f"{pad}end")

    def _io_node(self, name: str, label: str, shapes: Any) -> str:
        text = format_shapes(shapes) if self.shapes else ""
        span = f"<br/><span style='font-size:11px;color:#a67c00;font-weight:400'>{_text(text)}</span>" if text else ""
        return f'  {name}["{label}{span}"];'

    def render(self) -> str:
        root = self._item([self.tr.root])
        self._connect(root, [])
        for s in self.tr.output_sources:
            self.edges.add((self._source_id(s), "output"))
        self.lines += [_INIT, f"flowchart {self.direction}", "  linkStyle default stroke-width:2.0px"]
        self._write(root, 1, root=True)
        self.lines.append(self._io_node("input", "Input", self.tr.input_shapes))
        self.lines.append(self._io_node("output", "Output", self.tr.output_shapes))
        self.lines.append(f"  style input {_IO_STYLE}")
        self.lines.append(f"  style output {_IO_STYLE}")
        self.lines += [f"  {s}" for _, s in sorted(self.styles)]
        incoming: dict[str, int] = {}
        for _, dst in self.edges:
            incoming[dst] = incoming.get(dst, 0) + 1
        lines = [f"  {src} {'-.->' if incoming[dst] > 1 else '-->'} {dst};" for src, dst in self.edges]
        # declared Input -> Output with the arrow head at Input: drawn as a loop, laid out top to bottom;
        # an invisible link puts the group's Input after what feeds the group
        lines += [f"  {group}_in <-.- {group}_out;" for group in self.loops]
        lines += [f"  {src} ~~~ {group}_in;" for group, sources in self.loops.items() for src in sources]
        self.lines += sorted(lines)
        return "\n".join(self.lines) + "\n"


def mermaid(
    model: nn.Module,
    input_shape: Any = None,
    depth: int = 2,
    collapse: str = "shapes",
    show_shapes: bool = True,
    direction: str = "LR",
    title: str | None = None,
) -> str:
    """Mermaid flowchart text of ``model``.

    Args:
        model: any ``nn.Module``.
        input_shape: shape of the input, e.g. ``(1, 3, 224, 224)`` (or a list of shapes for
            several inputs). When given, the model runs once (on the ``meta`` device where it
            can) and the nodes show their input and output shapes and the edges follow the
            real data flow; without it the picture is drawn from the module hierarchy alone,
            leaves chained in definition order.
        depth: deepest container level drawn as a subgraph (the model is level 0); containers
            below it are single nodes. ``depth=2`` opens a ResNet's stages and blocks.
        collapse: which consecutive sibling calls (each feeding the next) are drawn once,
            marked ``x N``: ``"shapes"`` those identical in structure and in every shape, so
            the count is true; ``"structure"`` those alike in the layers drawn whatever their
            shapes (the folded picture: a ResNet's four stages become one ``layer1 x 4``,
            showing layer1's shapes); ``"none"`` draws every call.
        show_shapes: put ``(in) → (out)`` on the nodes whose shape changes.
        direction: ``"LR"``, ``"RL"``, ``"TB"``, ``"TD"`` or ``"BT"``.
        title: caption of the outer subgraph (default: the model's class name).
    """
    check_min_int("depth", depth, 0)
    if collapse not in COLLAPSE_MODES:
        raise OptionError(f"collapse must be one of {', '.join(map(repr, COLLAPSE_MODES))}, got {collapse!r}")
    if direction not in _DIRECTIONS:
        raise OptionError(f"direction must be one of {', '.join(_DIRECTIONS)}, got {direction!r}")
    tr = module_tree(model) if input_shape is None else trace(model, input_shape)
    return _Diagram(tr, depth, collapse, show_shapes, direction, title or type(model).__name__).render()


def mermaid_sections(
    model: nn.Module,
    input_shape: Any,
    collapse: str = "shapes",
    show_shapes: bool = True,
    direction: str = "TB",
    title: str | None = None,
) -> dict[str, str]:
    """A model as diagrams that read at page width: an overview, then the detail of each part.

    ``"overview"`` draws the model's children, opening each into its own subgraph with the
    calls inside it as nodes (``depth=1``: a ResNet's stages with their blocks and shapes).
    Then every child whose own children are containers (a stage's blocks) gets a diagram of
    its own, keyed by its name, drawn from the input shapes it received in the model.
    """
    options = {"collapse": collapse, "show_shapes": show_shapes, "direction": direction}
    sections = {"overview": mermaid(model, input_shape, depth=1, title=title, **options)}
    root = trace(model, input_shape).root
    for call in root.children:
        if call.path not in sections and any(child.children for child in call.children):
            sections[call.path] = mermaid(call.module, call.in_shapes, depth=1, title=call.path, **options)
    return sections
