"""Export to ONNX and torch.export: the files run (ONNX Runtime on the CPU, torch.export.load)
and give PyTorch's logits at batch 1 and 3; the model is left untouched; misuse is refused."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import lucid.models as models  # noqa: E402
from lucid import export  # noqa: E402
from lucid.benchmark import randomize_batchnorm  # noqa: E402
from lucid.cli import main  # noqa: E402

SIZE = 64  # small images keep the suite fast; the graph is the same at 224
RTOL = 1e-4  # max|exported - pytorch| / max|pytorch|


def _relative(out: np.ndarray | torch.Tensor, ref: torch.Tensor) -> float:
    out = torch.as_tensor(out)
    return ((out - ref).abs().max() / ref.abs().max()).item()


def _run_ort(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(["logits"], {"images": x.numpy()})
    return out


def _reference(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


@pytest.fixture(scope="module")
def spec_model() -> nn.Module:
    """The specification's model: ResNeXt-50 32x4d, deep stem of width 32, 1 channel, 10 classes."""
    torch.manual_seed(0)
    model = models.create_model("resnext_50_32x4d", num_classes=10, in_channels=1, stem_type="deep", stem_width=32)
    model.metadata = {"class_names": [str(d) for d in range(10)]}
    return randomize_batchnorm(model, seed=1)


@pytest.fixture(scope="module")
def spec_onnx(spec_model, tmp_path_factory):
    spec_model.train()  # exporting must not need (or leave) eval mode
    path = export.to_onnx(spec_model, tmp_path_factory.mktemp("onnx") / "spec.onnx", input_shape=(1, 1, SIZE, SIZE))
    assert spec_model.training and all(m.training for m in spec_model.modules())
    return path


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 3])
def test_spec_model_runs_in_onnxruntime_at_any_batch(spec_model, spec_onnx, batch):
    x = torch.randn(batch, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(batch))
    out = _run_ort(spec_onnx, x)
    assert out.shape == (batch, 10)
    assert _relative(out, _reference(spec_model, x)) <= RTOL


@pytest.mark.slow
def test_onnx_graph_is_checked_named_and_folded(spec_model, spec_onnx):
    proto = onnx.load(str(spec_onnx))
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["images"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].HasField("dim_value")  # dynamic batch
    assert [d.dim_value for d in dims[1:]] == [1, SIZE, SIZE]
    ops = {n.op_type for n in proto.graph.node}
    assert "BatchNormalization" not in ops and "Conv" in ops
    meta = {p.key: p.value for p in proto.metadata_props}
    assert models.ResNeXtConfig.from_dict(json.loads(meta["lucid.config"])) == spec_model.config
    assert json.loads(meta["lucid.metadata"]) == spec_model.metadata


@pytest.mark.slow
def test_resnet_18_onnx_and_model_untouched(tmp_path):
    torch.manual_seed(0)
    model = randomize_batchnorm(models.create_model("resnet_18"), seed=2)
    model.train()
    model.layer2.eval()  # mixed flags must come back exactly as they were
    flags = {name: m.training for name, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}

    path = export.to_onnx(model, tmp_path / "sub" / "r18.onnx", input_shape=(1, 3, SIZE, SIZE))

    assert {name: m.training for name, m in model.named_modules()} == flags
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["r18.onnx", "sub"]  # no temporary leftovers
    for batch in (1, 3):
        x = torch.randn(batch, 3, SIZE, SIZE)
        assert _relative(_run_ort(path, x), _reference(model, x)) <= RTOL


def _tiny(**kw) -> nn.Module:
    torch.manual_seed(0)
    return models.ResNet(models.ResNetConfig(block="basic", layers=[1, 1, 1, 1], channels=[8, 16, 16, 16], num_classes=5, **kw))


@pytest.mark.slow
def test_static_batch_and_float16(tmp_path):
    model = _tiny()
    static = onnx.load(str(export.to_onnx(model, tmp_path / "static.onnx", input_shape=(2, 3, 32, 32), dynamic_batch=False)))
    assert static.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2
    half_path = export.to_onnx(model, tmp_path / "half.onnx", input_shape=(1, 3, 32, 32), dtype=torch.float16)
    assert onnx.load(str(half_path)).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    assert all(p.dtype == torch.float32 for p in model.parameters())  # a converted copy was exported
    half = export.verify(half_path, model)  # float16 in ONNX Runtime against float32 PyTorch
    assert all(1e-6 < d.relative < 1e-2 for d in half.values())


@pytest.mark.slow
def test_exported_program_saved_and_reloaded(spec_model, tmp_path):
    path = tmp_path / "spec.pt2"
    program = export.to_exported_program(spec_model, (1, 1, SIZE, SIZE), path=path)
    assert isinstance(program, torch.export.ExportedProgram)
    targets = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
    assert any("conv" in t for t in targets) and not any("batch_norm" in t for t in targets)
    loaded = torch.export.load(str(path)).module()
    for batch in (1, 3):
        x = torch.randn(batch, 1, SIZE, SIZE)
        with torch.no_grad():
            out = loaded(x)
        assert _relative(out, _reference(spec_model, x)) <= RTOL


@pytest.mark.slow
def test_verify_reports_small_and_large_differences(tmp_path):
    model = randomize_batchnorm(_tiny(), seed=3)
    path = export.to_onnx(model, tmp_path / "tiny.onnx", input_shape=(1, 3, 32, 32))
    same = export.verify(path, model)
    assert sorted(same) == [1, 3] and all(d.relative <= RTOL for d in same.values())
    other = randomize_batchnorm(_tiny(), seed=4)  # same architecture, other BatchNorm statistics
    assert all(d.relative > 1e-2 for d in export.verify(path, other).values())


def test_refuses_non_lucid_models_and_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="lucid model.*Sequential"):
        export.to_onnx(nn.Sequential(nn.Conv2d(3, 8, 3)), tmp_path / "x.onnx")
    with pytest.raises(TypeError, match="lucid model"):
        export.to_exported_program(nn.Linear(3, 3), (1, 3))
    model = _tiny()
    with pytest.raises(ValueError, match="in_channels=3"):
        export.to_onnx(model, tmp_path / "x.onnx", input_shape=(1, 1, 32, 32))
    with pytest.raises(ValueError, match="four positive ints"):
        export.to_onnx(model, tmp_path / "x.onnx", input_shape=(3, 32, 32))
    with pytest.raises(ValueError, match="opset must be .* from 18"):
        export.to_onnx(model, tmp_path / "x.onnx", input_shape=(1, 3, 32, 32), opset=17)
    with pytest.raises(ValueError, match="is a folder"):
        export.to_onnx(model, tmp_path, input_shape=(1, 3, 32, 32))
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        export.verify(tmp_path / "missing.onnx", model)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_exports_and_verifies_onnx_and_torch(tmp_path, capsys):
    folder = _tiny(in_channels=1).save_pretrained(tmp_path / "saved")
    out = tmp_path / "tiny.onnx"
    assert main(["export", str(folder), "--out", str(out), "--input-shape", "1,1,32,32", "--verify"]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}" in text and "verify batch 1:" in text and "verify batch 3:" in text
    assert [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim[1:]] == [1, 32, 32]
    # ONNX Runtime's float arithmetic (folded BatchNorm) never matches PyTorch bit for bit: tolerance 0 fails
    assert main(["export", str(folder), "--out", str(out), "--input-shape", "1,1,32,32", "--verify", "--tolerance", "0"]) == 1
    assert "exceeds --tolerance 0" in capsys.readouterr().err

    pt2 = tmp_path / "tiny.pt2"
    argv = ["export", "resnet_18", "--set", "channels=[8,8,8,8]", "--set", "num_classes=3",
            "--format", "torch", "--out", str(pt2), "--input-shape", "1,3,32,32", "--verify"]
    assert main(argv) == 0
    assert "verify batch 3:" in capsys.readouterr().out
    assert torch.export.load(str(pt2)).module()(torch.randn(2, 3, 32, 32)).shape == (2, 3)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "{tmp}/nowhere", "--out", "{tmp}/x.onnx"], "nowhere: no such folder"),
        (["export", "resnet_81", "--out", "{tmp}/x.onnx"], "unknown model 'resnet_81'"),
        (["export", "{tmp}", "--out", "{tmp}/x.onnx"], "config.json"),  # a folder, but not a lucid model
        (["export", "resnet_18", "--out", "{tmp}/x.onnx", "--input-shape", "1,3,a"], "--input-shape"),
        (["export", "resnet_18", "--format", "torch", "--opset", "17", "--out", "{tmp}/x.pt2"], "--opset"),
        (["export", "resnet_18", "--out", "{tmp}/x.onnx", "--verify", "--rounds", "0"], "--rounds must be an int from 1 to 1000, got 0"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lucid export: error:") and message in err and "\n" not in err
    assert not (tmp_path / "x.onnx").exists()
