"""lucid's architecture, checked from the code: imports go down the layer table, never in a cycle.

The graph is built by ``scripts/import_graph.py`` (which also prints it for the docs) from every
import statement, inside functions too; annotation-only imports (``if TYPE_CHECKING:``) are left out.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "import_graph.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


graph = _load_script()

# The command line imports the library inside each command's ``run`` so that ``lucid --help``
# starts without importing torch: function-level imports are its design there.
LAZY_COMMAND_LINE = "lucid.cli"

# Dependencies that `import lucid.models` must not load (see tests/test_package.py): the layers it
# loads import them inside the functions that use them.
KEPT_OUT_OF_MODELS = {"torchvision", "safetensors"}
LOADED_BY_MODELS = {"core", "nn", "checkpoints", "models"}

@pytest.fixture(scope="module")
def modules():
    return graph.build_graph()


def test_the_graph_sees_every_kind_of_import(modules) -> None:
    """The reader resolves relative, absolute, submodule and in-function imports (else the rules below check nothing)."""
    edges = graph.internal_edges(modules)
    assert ("lucid.models.presets", "lucid.models.registry") in edges  # from .registry import register_model
    assert ("lucid.weights", "lucid.checkpoints") in edges  # from ..checkpoints import (...)
    assert ("lucid.inference.predict", "lucid.checkpoints.train_state") in edges
    assert ("lucid.cli", "lucid.cli.bench") in edges  # from . import bench, ...
    in_function = {(m.name, i.target) for m in modules.values() for i in m.imports if i.in_function}
    assert ("lucid.cli.common", "lucid.inference.predict") in in_function
    assert ("lucid.train.engine", "tensorboard") in in_function  # torch.utils.tensorboard needs the optional package
    assert ("lucid.optimize.quantize", "torch._inductor") in in_function  # the lazily loaded compiler, by its own name
    annotations_only = {(m.name, i.target) for m in modules.values() for i in m.imports if i.target.endswith("data.folder")}
    assert ("lucid.inference.evaluation", "lucid.data.folder") not in annotations_only  # under TYPE_CHECKING


def test_the_checks_catch_a_cycle_an_upward_and_a_private_import(tmp_path: Path) -> None:
    """On a made-up package whose core imports a private module of models, which imports core back."""
    root = tmp_path / "lucid"
    for folder in ("core", "models"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text('"""A layer."""\n')
    (root / "__init__.py").write_text('"""The package."""\n')
    (root / "core" / "a.py").write_text("from ..models._b import thing\n")
    (root / "models" / "_b.py").write_text("def thing():\n    from ..core import a\n    return a\n")
    modules = graph.build_graph(root)
    assert graph.find_cycles(modules) == [["lucid.core.a", "lucid.models._b"]]
    imports = modules["lucid.core.a"].imports
    assert [(i.target, i.in_function) for i in imports] == [("lucid.models._b", False)]
    assert graph.RANK[modules["lucid.core.a"].layer] < graph.RANK[modules["lucid.models._b"].layer]
    assert [(i.target, i.in_function) for i in modules["lucid.models._b"].imports] == [("lucid.core.a", True)]


def test_no_import_cycles(modules) -> None:
    assert graph.find_cycles(modules) == []


def test_imports_go_down_the_layers(modules) -> None:
    upward = []
    for module in modules.values():
        if module.is_shim or module.layer is None:
            continue
        for imp in module.imports:
            target = modules.get(imp.target)
            if target is None or target.layer is None:
                continue
            if graph.RANK[module.layer] < graph.RANK[target.layer]:
                upward.append(f"{module.name}:{imp.line} ({module.layer}) imports {imp.target} ({target.layer})")
    assert upward == []


def test_no_private_module_is_imported_from_another_package(modules) -> None:
    crossing = []
    for module in modules.values():
        for imp in module.imports:
            last = imp.target.rpartition(".")[2]
            private = last.startswith("_") and not last.startswith("__")
            if imp.internal and private and modules[imp.target].package != module.package:
                crossing.append(f"{module.name}:{imp.line} imports {imp.target}")
    assert crossing == []


def test_imports_inside_functions_are_for_optional_packages_only(modules) -> None:
    found = set()
    for module in modules.values():
        if module.name == LAZY_COMMAND_LINE or module.name.startswith(LAZY_COMMAND_LINE + "."):
            continue
        allowed = graph.OPTIONAL | graph.LAZY_SUBSYSTEMS | (KEPT_OUT_OF_MODELS if module.layer in LOADED_BY_MODELS else set())
        for imp in module.imports:
            if imp.in_function and (imp.internal or imp.target not in allowed):
                found.add((module.name, imp.target))
    assert sorted(found) == []


def test_the_stage_count_comes_from_the_config() -> None:
    """A ResNet of three stages builds, runs, reports its features and converts, with nothing assuming four."""
    from lucid.checkpoints import convert
    from lucid.models import ResNet, ResNetConfig, fpn_backbone

    class ThreeStages(ResNetConfig):
        stages = 3

    model = ResNet(ThreeStages(block="basic", layers=[1, 1, 1], channels=[8, 16, 32], num_classes=5)).eval()
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 5)
    assert [info["module"] for info in model.feature_info] == ["stem", "layer1", "layer2", "layer3"]
    assert len(model.stages) == 3 and not hasattr(model, "layer4")
    final, maps = model.forward_intermediates(x)
    assert [m.shape[1] for m in maps] == [64, 8, 16, 32] and final.shape[1] == 32
    torch.testing.assert_close(model.forward_head(final), model(x))
    external = convert(model.state_dict(), "lucid", to="timm")
    assert "layer3.0.conv2.weight" in external and convert(external, "timm", to="lucid").keys() == model.state_dict().keys()
    backbone = fpn_backbone(model, trainable_layers=4)
    assert list(backbone(x)) == ["0", "1", "2", "pool"]
    with pytest.raises(ValueError, match=r"returned_layers must be increasing stage numbers from 1\.\.3"):
        fpn_backbone(model, returned_layers=(2, 4))
