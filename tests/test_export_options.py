"""lucid export's refusals and the preprocessing rules of eval/predict, without a trained run: a missing runtime
is one line naming its extra, a format/dtype the format cannot write is refused, artefact metadata is read back or
refused, and a model saved without its preprocessing is refused unless the user gives it."""
from __future__ import annotations

import importlib
import json

import pytest
import torch

import lucid.models as models
from lucid import export
from lucid.cli import main
from lucid.core.errors import CheckpointError, MissingDependencyError, OptionError

onnx = pytest.importorskip("onnx")

TINY = {"channels": [8, 8, 8, 8], "num_classes": 3}


def _tiny(**metadata) -> torch.nn.Module:
    model = models.create_model("resnet_18", **TINY)
    model.metadata = metadata
    return model


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def _without(monkeypatch, module: str) -> None:
    """Make ``module`` look uninstalled to lucid.core.extras.require."""
    real = importlib.import_module

    def fail(name, *args, **kwargs):
        if name == module:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", fail)


@pytest.mark.parametrize("module, extra, call", [
    ("openvino", "openvino", lambda m, p: export.to_openvino(m, p / "m.xml")),
    ("executorch.exir", "executorch", lambda m, p: export.to_executorch(m, p / "m.pte")),
    ("onnx", "export", lambda m, p: export.to_onnx(m, p / "m.onnx")),
])
def test_a_missing_runtime_is_one_line_naming_its_extra(monkeypatch, tmp_path, module, extra, call):
    _without(monkeypatch, module)
    with pytest.raises(MissingDependencyError, match=rf'pip install "lucid\[{extra}\]"'):
        call(_tiny(), tmp_path)
    assert not list(tmp_path.iterdir())


def test_the_cli_says_which_extra_is_missing(monkeypatch, tmp_path, capsys):
    folder = _tiny().save_pretrained(tmp_path / "m")
    _without(monkeypatch, "openvino")
    assert main(["export", str(folder), "--format", "openvino"]) == 2
    assert 'pip install "lucid[openvino]"' in _one_line(capsys)
    assert not (tmp_path / "m" / "export").exists()


@pytest.mark.parametrize("fmt, dtype, dynamic, words", [
    ("onnx", "bfloat16", False, "no bfloat16 convolution"),
    ("executorch", "bfloat16", False, "XNNPACK"),
    ("openvino", "bfloat16", False, "bfloat16"),
    ("torch-export", "int8", False, "no int8"),
    ("executorch", "float32", True, "--dynamic-size"),
])
def test_combinations_a_format_cannot_write_are_refused(tmp_path, capsys, fmt, dtype, dynamic, words):
    with pytest.raises(OptionError, match=words):
        export.check_combination(fmt, dtype, dynamic)
    folder = _tiny().save_pretrained(tmp_path / "m")
    argv = ["export", str(folder), "--format", fmt, "--dtype", dtype, *(["--dynamic-size"] if dynamic else [])]
    assert main(argv) == 2
    err = _one_line(capsys)
    assert f"--format {fmt}" in err and words in err
    assert not (tmp_path / "m" / "export").exists()


def test_int8_needs_a_run_that_records_its_training_images(tmp_path, capsys):
    folder = _tiny().save_pretrained(tmp_path / "m")
    assert main(["export", str(folder), "--dtype", "int8"]) == 2
    assert "records none" in _one_line(capsys)


def test_a_preset_needs_out(capsys):
    assert main(["export", "resnet_18", "--set", "num_classes=3"]) == 2
    assert "--out is needed" in _one_line(capsys)


def test_metadata_reader_refuses_what_is_not_an_artefact_or_is_damaged(tmp_path):
    with pytest.raises(CheckpointError, match="not an exported model"):
        export.read_metadata(tmp_path / "model.bin")
    (tmp_path / "m.pte").write_bytes(b"x")
    assert export.read_metadata(tmp_path / "m.pte") == {"format": "executorch", "config": None, "metadata": {}}
    (tmp_path / "m.pte.json").write_text("[" * 100_000)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        export.read_metadata(tmp_path / "m.pte")
    (tmp_path / "m.pte.json").write_text(json.dumps({"lucid.metadata": "[1, 2]"}))
    with pytest.raises(CheckpointError, match="must be a JSON object"):
        export.read_metadata(tmp_path / "m.pte")


@pytest.mark.slow
def test_onnx_takes_the_trained_size_and_a_dynamic_batch_and_carries_the_metadata(tmp_path):
    prep = {"image_size": 48, "channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3, "crop": 1.0}
    model = _tiny(class_names=["a", "b", "c"], preprocessing=prep)
    path = export.to_onnx(model, tmp_path / "m.onnx")
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 48, 48]
    info = export.read_metadata(path)
    assert info["metadata"] == model.metadata and info["config"]["num_classes"] == 3
    runner = export.load_runner(path)
    x = torch.randn(5, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(runner(x), model.eval()(x), atol=1e-4)


@pytest.mark.slow
def test_dynamic_size_onnx_runs_at_other_sizes(tmp_path):
    model = _tiny().eval()
    runner = export.load_runner(export.to_onnx(model, tmp_path / "m.onnx", input_shape=(1, 3, 32, 32), dynamic_size=True))
    for size in (32, 64, 96):
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            assert torch.allclose(runner(x), model(x), atol=1e-4), size


# ------------------------------------------------------------- eval/predict without preprocessing metadata


@pytest.fixture
def image(tmp_path):
    from PIL import Image

    path = tmp_path / "img.png"
    Image.fromarray((torch.rand(40, 40, 3) * 255).to(torch.uint8).numpy()).save(path)
    return str(path)


def test_predict_refuses_a_folder_saved_without_preprocessing(tmp_path, capsys, image):
    folder = _tiny().save_pretrained(tmp_path / "m", metadata={"class_names": ["a", "b", "c"]})
    assert main(["predict", str(folder), image]) == 2
    err = _one_line(capsys)
    assert "without its preprocessing" in err and "--image-size" in err and "--preprocess imagenet" in err
    assert main(["predict", str(folder), image, "--image-size", "32"]) == 2  # a size alone is not enough
    assert "--mean/--std" in _one_line(capsys)


def test_given_preprocessing_is_used(tmp_path, capsys, image):
    from lucid.data.folder import decode_image_file, eval_transform
    from lucid.inference import load_trained

    folder = _tiny().save_pretrained(tmp_path / "m", metadata={"class_names": ["a", "b", "c"]})
    trained = load_trained(folder, image_size=36, preprocess="imagenet")
    assert (trained.preprocessing.image_size, trained.preprocessing.mean) == (36, (0.485, 0.456, 0.406))
    own = load_trained(folder, image_size=36, mean=[0.5, 0.5, 0.5], std=[0.2, 0.2, 0.2])
    assert own.preprocessing.std == (0.2, 0.2, 0.2)
    assert main(["predict", str(folder), image, "--image-size", "36", "--preprocess", "imagenet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    x = eval_transform(trained.preprocessing)(decode_image_file(image, 3)).unsqueeze(0)
    with torch.no_grad():
        expected = trained.model(x).softmax(1)[0]
    assert out["top"][0]["probability"] == pytest.approx(expected.max().item(), abs=1e-5)


def test_published_weights_preprocessing_is_used_and_said(tmp_path, capsys, image):
    from lucid.inference import load_trained
    from lucid.models.presets import PRESETS

    weights = PRESETS["resnet_50"].weights[1].to_metadata()  # torchvision V2: resize 232, crop 224
    folder = _tiny().save_pretrained(tmp_path / "m", metadata={"class_names": ["a", "b", "c"], "weights": weights})
    trained = load_trained(folder)
    assert trained.preprocessing.image_size == weights["crop"]
    assert trained.preprocessing.crop == pytest.approx(weights["crop"] / weights["resize"])
    assert "published weights" in trained.note
    assert main(["predict", str(folder), image]) == 0
    assert "note:" in capsys.readouterr().err
