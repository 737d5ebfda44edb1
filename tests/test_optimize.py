"""optimize_for_inference: same outputs as the eval-mode model, original untouched, bad input refused."""
from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
from torch import nn

import lucid
from lucid.benchmark import randomize_batchnorm
from lucid.models import ResNet, ResNetConfig, ResNeXt, ResNeXtConfig
from lucid.optimize import OptimizedModel, fold_batchnorm

SMALL = dict(layers=[1, 1, 1, 1], channels=[8, 16, 32, 64], num_classes=10)

CONFIGS = {
    "resnext": lambda: ResNeXt(ResNeXtConfig(cardinality=4, base_width=16, **SMALL)),
    "basic": lambda: ResNet(ResNetConfig(block="basic", stem_width=16, **SMALL)),
    "deep_avgdown_se_1ch": lambda: ResNeXt(
        ResNeXtConfig(cardinality=4, base_width=16, in_channels=1, stem_type="deep", stem_width=8, avg_down=True,
                      block_args={"se": True, "se_args": {"reduction": 4}, "drop_path": 0.1}, **SMALL)
    ),
}


def _model(kind: str) -> nn.Module:
    return randomize_batchnorm(CONFIGS[kind]()).eval()


def _images(model: nn.Module, n: int = 4, size: int = 32) -> torch.Tensor:
    return torch.randn(n, model.config.in_channels, size, size, generator=torch.Generator().manual_seed(2))


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


CPU_BACKENDS = ["onednn-graph", "onednn-fused"]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_float32_matches_eval_model(kind: str, backend: str) -> None:
    model = _model(kind)
    x = _images(model)
    with torch.no_grad():
        ref = model(x)
    fast = lucid.optimize_for_inference(model, backend=backend)
    assert isinstance(fast, OptimizedModel) and not fast.training and fast.backend == backend
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    out = fast(x)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert _rel_err(out, ref) < 1e-4


def test_cpu_default_is_the_whole_graph_backend_and_falls_back_without_the_fuser(monkeypatch) -> None:
    from lucid.optimize import graph

    model = _model("basic")
    assert lucid.optimize_for_inference(model).backend == "onednn-graph"
    monkeypatch.setattr(graph, "available", lambda: False)  # a PyTorch without TorchScript's oneDNN fuser
    fallback = lucid.optimize_for_inference(model)
    assert fallback.backend == "onednn-fused"
    x = _images(model)
    with torch.no_grad():
        assert _rel_err(fallback(x), model(x)) < 1e-4
    with pytest.raises(ValueError, match="backend='onednn-graph' needs PyTorch's oneDNN Graph fuser"):
        lucid.optimize_for_inference(model, backend="onednn-graph")


@pytest.mark.slow
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_cpu_backends_handle_new_shapes_and_copies(backend: str) -> None:
    model = _model("resnext")
    fast = lucid.optimize_for_inference(model, backend=backend)
    # packed weights and compiled graphs follow the input shape: a new batch size and resolution still give the eval outputs
    for n, size in ((4, 32), (3, 48), (4, 32)):
        x = _images(model, n, size)
        with torch.no_grad():
            assert _rel_err(fast(x), model(x)) < 1e-4
    twin = copy.deepcopy(fast)  # the packed weights and compiled graphs are rebuilt, not copied
    assert torch.equal(twin(x), fast(x))


@pytest.mark.slow
def test_onednn_graph_fuses_compiles_once_per_shape_and_keeps_the_latest() -> None:
    from lucid.optimize.graph import OneDNNGraphNet

    model = _model("resnext")
    fast = lucid.optimize_for_inference(model, backend="onednn-graph")
    graph_net = fast.net
    assert isinstance(graph_net, OneDNNGraphNet)
    graph_net.max_shapes = 2
    x = _images(model).contiguous(memory_format=torch.channels_last)
    # convolutions, shortcut additions and ReLUs run inside oneDNN Graph partitions, not as separate operators
    assert graph_net.fused_groups(x) >= 5
    first = graph_net._graphs[x.shape]
    fast(x)
    assert graph_net._graphs[x.shape] is first  # no recompilation at a known shape
    for size in (40, 48):
        fast(_images(model, size=size))
    assert list(graph_net._graphs) == [torch.Size([4, 3, 40, 40]), torch.Size([4, 3, 48, 48])]
    assert torch.jit.onednn_fusion_enabled() is False  # the process-wide switch is put back


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("kind", ["resnext", "deep_avgdown_se_1ch"])
def test_bfloat16_logits_close_and_same_top1(kind: str, backend: str) -> None:
    model = _model(kind)
    x = _images(model, n=16)
    with torch.no_grad():
        ref = model(x)
    out = lucid.optimize_for_inference(model, dtype=torch.bfloat16, backend=backend)(x)
    assert out.dtype == torch.float32
    cos = nn.functional.cosine_similarity(out, ref, dim=1)
    assert cos.min().item() >= 0.99
    # top-1 must agree wherever the reference is not a near tie (bf16 keeps ~3 significant digits)
    top2 = ref.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1]) > 0.02 * ref.abs().amax(dim=1)
    assert clear.sum() >= 12
    assert torch.equal(out.argmax(1)[clear], ref.argmax(1)[clear])


@pytest.mark.parametrize("train_mode", [False, True])
def test_original_model_unchanged(train_mode: bool) -> None:
    model = _model("deep_avgdown_se_1ch").train(train_mode)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    modes = [m.training for m in model.modules()]
    types = [type(m) for m in model.modules()]
    fast = lucid.optimize_for_inference(model, dtype=torch.bfloat16)
    fast(_images(model))
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [m.training for m in model.modules()] == modes
    assert [type(m) for m in model.modules()] == types
    assert all(p.requires_grad for p in model.parameters())


def test_train_mode_model_is_optimized_as_its_eval_mode() -> None:
    model = _model("resnext").train()
    x = _images(model)
    fast = lucid.optimize_for_inference(model)
    model.eval()
    with torch.no_grad():
        ref = model(x)
    assert _rel_err(fast(x), ref) < 1e-4
    with pytest.raises(RuntimeError, match="inference-only"):
        fast.train()
    assert fast.eval() is fast


def test_fold_batchnorm_keeps_outputs_and_removes_every_norm() -> None:
    model = _model("deep_avgdown_se_1ch")
    x = _images(model)
    with torch.no_grad():
        ref = model(x)
        folded = fold_batchnorm(copy.deepcopy(model))
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        assert _rel_err(folded(x), ref) < 1e-5
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(_model("resnext").train())


def test_output_dtype_follows_input() -> None:
    model = _model("basic")
    x = _images(model)
    fast = lucid.optimize_for_inference(model)
    out64 = fast(x.double())
    assert out64.dtype == torch.float64
    with torch.no_grad():
        assert _rel_err(out64.float(), model(x)) < 1e-4


def test_refuses_non_lucid_models() -> None:
    import torchvision

    for bad in (torchvision.models.resnet18(), nn.Conv2d(3, 8, 3), "resnet_18"):
        with pytest.raises(TypeError, match="lucid ResNet/ResNeXt"):
            lucid.optimize_for_inference(bad)


def test_refuses_bad_arguments() -> None:
    model = _model("basic")
    with pytest.raises(ValueError, match="dtype must be one of .* on cpu, got torch.float16"):
        lucid.optimize_for_inference(model, dtype=torch.float16)
    with pytest.raises(ValueError, match="dtype"):
        lucid.optimize_for_inference(model, dtype=torch.int8)
    with pytest.raises(TypeError, match="compile must be a bool"):
        lucid.optimize_for_inference(model, compile="yes")
    with pytest.raises(TypeError, match="cuda_graph must be a bool"):
        lucid.optimize_for_inference(model, cuda_graph=1)
    with pytest.raises(ValueError, match="cuda_graph=True needs a model on a CUDA device, got one on 'cpu'"):
        lucid.optimize_for_inference(model, cuda_graph=True)
    with pytest.raises(ValueError, match=r"backend must be one of \['onednn-graph', 'onednn-fused', 'eager', 'openvino'\] for torch.float32 on cpu, got 'cudnn-fused'"):
        lucid.optimize_for_inference(model, backend="cudnn-fused")
    with pytest.raises(ValueError, match="backend= does not apply with compile=True, got backend='eager'"):
        lucid.optimize_for_inference(model, compile=True, backend="eager")
    with torch.device("meta"):
        meta = CONFIGS["basic"]()
    with pytest.raises(ValueError, match="'meta'"):
        lucid.optimize_for_inference(meta)


def test_refuses_bad_input() -> None:
    fast = lucid.optimize_for_inference(_model("deep_avgdown_se_1ch"))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\), got shape \(2, 3, 32, 32\)"):
        fast(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"got shape \(1, 32, 32\)"):
        fast(torch.randn(1, 32, 32))
    with pytest.raises(TypeError, match="got list"):
        fast([[0.0]])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_float32_and_bfloat16_match() -> None:
    model = _model("resnext").cuda()
    x = _images(model, n=16).cuda()
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # TF32 would round both sides to 1e-3
        with torch.no_grad():
            ref = model(x)
        fp32 = lucid.optimize_for_inference(model)
        assert fp32.backend == "cudnn-fused" and _rel_err(fp32(x), ref) < 1e-4
    bf16 = lucid.optimize_for_inference(model, dtype=torch.bfloat16)(x)
    assert nn.functional.cosine_similarity(bf16, ref, dim=1).min().item() >= 0.99


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_replays_each_shape_and_returns_fresh_outputs() -> None:
    model = _model("resnext").cuda()
    with torch.no_grad():
        reference = {n: model(_images(model, n=n).cuda()) for n in (4, 2)}
    graphed = lucid.optimize_for_inference(model, dtype=torch.bfloat16, cuda_graph=True)
    first = graphed(_images(model, n=4))  # CPU input: the captured copy moves it to the GPU
    assert set(graphed._captured) == {torch.Size([4, 3, 32, 32])}
    kept = first.clone()
    other = graphed(torch.zeros(4, 3, 32, 32, device="cuda"))  # a replay with different data
    again = graphed(_images(model, n=4).cuda())
    small = graphed(_images(model, n=2).cuda())
    assert len(graphed._captured) == 2
    assert torch.equal(first, kept), "a replay overwrote an earlier result"
    assert not torch.allclose(other, first)
    for out, n in ((first, 4), (again, 4), (small, 2)):
        assert out.dtype == torch.float32
        assert nn.functional.cosine_similarity(out, reference[n], dim=1).min().item() >= 0.99
    assert _rel_err(again, first) < 1e-2  # a replay computes what the first (uncaptured) call did
    assert copy.deepcopy(graphed)._captured == {}


_FAULTS_PER_CALL = """
import resource, sys, torch, lucid
from lucid.models import create_model
torch.manual_seed(0)
# the layer-by-layer backend, whose activations glibc's defaults hand back to the kernel after each call
fast = lucid.optimize_for_inference(create_model("resnet_50").eval(), retain_memory=sys.argv[1] == "1", backend="onednn-fused")
x = torch.randn(4, 3, 224, 224)
for _ in range(3):
    fast(x)
faults = []
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fast(x)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(sorted(faults)[2])  # the median call: a rare call that grows the heap does not decide
"""


def _faults_per_call(retain: bool) -> float:
    # a fresh process each: the C library's settings and heap are process-wide
    done = subprocess.run([sys.executable, "-c", _FAULTS_PER_CALL, str(int(retain))], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return float(done.stdout.split()[-1])


@pytest.mark.slow
def test_cpu_inference_reuses_its_memory_instead_of_page_faulting() -> None:
    from lucid.optimize.memory import retain_freed_memory

    if not retain_freed_memory():
        pytest.skip("the C library is not glibc")
    kept, returned = _faults_per_call(True), _faults_per_call(False)
    assert returned > 1000  # glibc's defaults hand the activations back and fault them in again on every call
    assert kept < returned / 20


def test_retain_memory_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="retain_memory must be a bool"):
        lucid.optimize_for_inference(_model("basic"), retain_memory="no")
