"""lucid's import graph, read from the code: the layer table and every import between lucid's modules.

Run it to print both as Markdown (``python scripts/import_graph.py``); ``tests/test_layout.py``
checks the graph against the rules of the layer table.

Every ``import``/``from ... import`` statement counts, at module level or inside a function,
except those under ``if TYPE_CHECKING:`` (annotations only, never executed).
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "lucid"

# (package, what it holds), lowest first: a module may import its own layer or any layer below.
LAYERS: list[tuple[str, str]] = [
    ("core", "errors, checks, fileio, constants, extras, console"),
    ("nn", "building blocks: ConvBNReLU2d, DropPath, SqueezeExcite; a module's device and MACs"),
    ("checkpoints", "safe tensor-file I/O, torchvision/timm layouts, download and verification, the training-state file"),
    ("models", "configs, blocks, ResNet/ResNeXt, presets, registry, saving and loading model folders"),
    ("weights", "the public weights API"),
    ("data", "datasets and the input pipeline"),
    ("optimize", "optimize_for_inference and its backends"),
    ("visual", "summary, Mermaid diagrams"),
    ("export", "ONNX, OpenVINO, ExecuTorch and torch.export writers"),
    ("integrations", "timm registration"),
    ("inference", "loading trained models, device and precision, evaluation, prediction"),
    ("train", "training runs"),
    ("bench", "the benchmark harness"),
    ("cli", "the `lucid` command, one module per verb"),
]
RANK = {name: rank for rank, (name, _) in enumerate(LAYERS)}
# Modules directly under lucid/ that are not packages: the layer each belongs to.
TOP_LEVEL = {"errors": "core", "constants": "core", "io": "checkpoints", "export": "export", "benchmark": "bench", "__main__": "cli"}

# Optional packages that may be imported inside a function (each names its extra where it is imported).
OPTIONAL = {
    "onnx", "onnxruntime", "onnxscript", "openvino", "nncf", "executorch", "webdataset", "datasets", "torchcodec",
    "timm", "matplotlib", "huggingface_hub", "torchao", "tensorboard",
    "sklearn",  # a base dependency, but slow to import: loaded only when the bundled digits are used
}
# Heavy subsystems of a base dependency that may also be imported inside a function: torch's compiler
# (``torch._inductor``) costs about 1 s on top of ``import torch``, which would nearly double
# ``import lucid.optimize``, and only int8 compilation uses it.
LAZY_SUBSYSTEMS = {"torch._inductor"}
# Parts of a base dependency that need an optional package: an import of one counts as that package's.
NEEDS_OPTIONAL = {"torch.utils.tensorboard": "tensorboard"}
SHIM_DOCSTRING = "Older import path"


@dataclass
class Module:
    """One of lucid's modules: its name, layer, and the imports it makes."""

    name: str  # dotted, e.g. "lucid.models.registry"
    path: Path
    is_package: bool
    is_shim: bool
    imports: list[Import] = field(default_factory=list)

    @property
    def package(self) -> str:
        """The package the module belongs to (a package's ``__init__`` belongs to the package itself)."""
        return self.name if self.is_package else self.name.rpartition(".")[0]

    @property
    def layer(self) -> str | None:
        """The layer-table entry of the module (``None``: ``lucid/__init__.py``, above the table)."""
        parts = self.name.split(".")
        if len(parts) == 1:
            return None
        return TOP_LEVEL.get(parts[1], parts[1])


@dataclass(frozen=True)
class Import:
    """One import statement's target: a lucid module, or an outside package (``target`` is its top name)."""

    target: str
    line: int
    in_function: bool
    internal: bool


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree: ast.AST, in_function: bool = False):
    """Every import statement with whether it sits inside a function, skipping ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from ((s, f) for s, f in _statements(ast.Module(body=node.orelse, type_ignores=[]), in_function))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, in_function
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield from _statements(node, inner)


def _targets(node: ast.Import | ast.ImportFrom, module: Module, known: set[str]) -> list[tuple[str, bool]]:
    """``(target, internal)`` for one statement; ``from pkg import sub`` names the submodule when there is one."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
        return [(_known_prefix(n, known), True) if n.split(".")[0] == "lucid" else (_outside_target(n), False) for n in names]
    if node.level:
        base = module.package.split(".")
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source.split(".")[0] != "lucid":
        return [(_outside_target(source), False)]
    found = [(f"{source}.{alias.name}", True) for alias in node.names if f"{source}.{alias.name}" in known]
    if len(found) < len(node.names):
        found.append((_known_prefix(source, known), True))
    return found


def _outside_target(name: str) -> str:
    """What an import of the outside module ``name`` counts as: the optional package a part of torch
    needs, a lazily loaded heavy subsystem by its own name, else the top-level package."""
    for prefix, target in {**NEEDS_OPTIONAL, **{s: s for s in LAZY_SUBSYSTEMS}}.items():
        if name == prefix or name.startswith(prefix + "."):
            return target
    return name.split(".")[0]


def _known_prefix(name: str, known: set[str]) -> str:
    while name not in known and "." in name:
        name = name.rpartition(".")[0]
    return name


def build_graph(root: Path = ROOT) -> dict[str, Module]:
    """Every module under ``root`` with the imports it makes, by dotted name."""
    modules: dict[str, Module] = {}
    trees = {}
    for path in sorted(root.rglob("*.py")):
        name, is_package = _module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        doc = ast.get_docstring(tree) or ""
        modules[name] = Module(name, path, is_package, doc.startswith(SHIM_DOCSTRING))
        trees[name] = tree
    known = set(modules)
    for name, module in modules.items():
        for node, in_function in _statements(trees[name]):
            for target, internal in _targets(node, module, known):
                if target != name:
                    module.imports.append(Import(target, node.lineno, in_function, internal))
    return modules


def internal_edges(modules: dict[str, Module]) -> set[tuple[str, str]]:
    """``(importer, imported)`` for every import between two lucid modules."""
    return {(m.name, i.target) for m in modules.values() for i in m.imports if i.internal}


def find_cycles(modules: dict[str, Module]) -> list[list[str]]:
    """The import cycles among lucid's modules (strongly connected components of more than one module)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for a, b in internal_edges(modules):
        graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def layer_edges(modules: dict[str, Module]) -> dict[tuple[str, str], int]:
    """How many module imports go from one layer to another (within a layer not counted)."""
    counts: dict[tuple[str, str], int] = {}
    for a, b in internal_edges(modules):
        la, lb = modules[a].layer, modules[b].layer
        if la and lb and la != lb:
            counts[(la, lb)] = counts.get((la, lb), 0) + 1
    return counts


def markdown(modules: dict[str, Module]) -> str:
    """The layer table and the imports between layers, as Markdown."""
    lines = ["| rank | package | holds |", "|---|---|---|"]
    lines += [f"| {rank} | `lucid/{name}/` | {holds} |" for rank, (name, holds) in enumerate(LAYERS)]
    lines += ["", "| from | imports | module imports |", "|---|---|---|"]
    for (a, b), count in sorted(layer_edges(modules).items(), key=lambda e: (-RANK[e[0][0]], -RANK[e[0][1]])):
        lines.append(f"| `{a}` | `{b}` | {count} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(build_graph()))
