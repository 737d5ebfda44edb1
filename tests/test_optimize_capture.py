"""The optimized module under torch.compile, torch.export and jit.trace; lucid.export's refusal; per-class rewrite rules."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import lucid
from lucid.benchmark import randomize_batchnorm
from lucid.models import ResNeXt, ResNeXtConfig
from lucid.optimize import register_rewrite
from lucid.optimize.rules import FusedResidual, rewrite

SMALL = dict(cardinality=4, base_width=16, layers=[2, 1, 1, 1], channels=[8, 16, 32, 64], num_classes=10)


def _model() -> nn.Module:
    return randomize_batchnorm(ResNeXt(ResNeXtConfig(**SMALL))).eval()


def _check(out: torch.Tensor, ref: torch.Tensor) -> None:
    assert out.shape == ref.shape
    assert ((out - ref).abs().max() / ref.abs().max()).item() < 1e-4


BACKENDS = ["onednn-graph", "onednn-fused"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_compile_traces_one_graph_without_recompiles(backend: str) -> None:
    import torch._dynamo

    model, x = _model(), torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    fast = lucid.optimize_for_inference(model, backend=backend)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = torch.compile(fast, backend="eager", fullgraph=True)  # fullgraph: a graph break or fallback would raise
    for _ in range(2):
        _check(compiled(x), ref)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_export_and_trace_give_the_eval_outputs(backend: str) -> None:
    model, x = _model(), torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
    fast = lucid.optimize_for_inference(model, backend=backend)
    _check(torch.export.export(fast, (x,)).module()(x), ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jit.trace's deprecation and shape-check warnings
        _check(torch.jit.trace(fast, (x,))(x), ref)
    _check(fast(x), ref)  # still runs its own kernels afterwards


def test_lucid_export_refuses_an_optimized_module(tmp_path) -> None:
    from lucid import export

    fast = lucid.optimize_for_inference(_model())
    for call in (lambda: export.to_onnx(fast, tmp_path / "m.onnx"), lambda: export.to_exported_program(fast)):
        with pytest.raises(TypeError, match="export the plain model"):
            call()


def test_each_block_class_uses_its_registered_rule() -> None:
    model = _model()
    fast = lucid.optimize_for_inference(model, backend="onednn-fused")
    blocks = sum(len(layer) for layer in (model.layer1, model.layer2, model.layer3, model.layer4))
    assert sum(isinstance(m, FusedResidual) for m in fast.modules()) == blocks


def test_a_new_module_class_can_register_its_rule() -> None:
    class Doubler(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * x

    class Halver(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x / 2

    class Tripler(Doubler):  # no rule of its own: the parent's applies
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 3 * x

    register_rewrite(Doubler)(lambda module, conv: Halver())
    tree = nn.Sequential(nn.ReLU(), nn.Sequential(Doubler(), Tripler()))
    out = rewrite(tree, conv=None)
    assert [type(m).__name__ for m in out.modules() if not isinstance(m, nn.Sequential)] == ["ReLU", "Halver", "Halver"]
