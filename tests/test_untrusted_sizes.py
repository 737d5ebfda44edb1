"""No number from an untrusted file, flag or environment variable sizes memory before it is bounded.

Each case used to end in a traceback or a huge allocation; each now ends in one line naming the
file or option (exit status 2), or, for the estimates, in a figure checked against a hand count.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import one_line_error as _one_line
from torch import nn

from lucid.cli import main
from lucid.core.checks import parse_json
from lucid.core.constants import IMAGENET_MEAN, IMAGENET_STD
from lucid.core.errors import CheckpointError
from lucid.data.preprocessing import Preprocessing
from lucid.models import ResNet, ResNetConfig
from lucid.models.limits import activation_bytes, check_input_memory, parameter_limit

SMALL = dict(block="basic", layers=(1, 1, 1, 1), channels=(4, 8, 8, 8), num_classes=3)


def _run(folder: Path, **meta_changes) -> Path:
    model = ResNet(ResNetConfig(**SMALL))
    prep = Preprocessing(32, 3, IMAGENET_MEAN, IMAGENET_STD).to_dict()
    metadata = {"class_names": ["a", "b", "c"], "preprocessing": prep, "dataset": {"name": "folder", "path": str(folder)}}
    metadata.update(meta_changes)
    model.save_pretrained(folder, metadata=metadata)
    return folder


def _edit_config(run: Path, edit) -> Path:
    text = (run / "config.json").read_text()
    (run / "config.json").write_text(edit(text) if callable(edit) else edit)
    return run


@pytest.fixture
def image(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path / "x.png"
    Image.new("RGB", (40, 40), (200, 10, 10)).save(path)
    return path


def test_a_tiny_crop_is_refused_before_the_resize(tmp_path: Path, image: Path, capsys: pytest.CaptureFixture) -> None:
    prep = Preprocessing(32, 3, IMAGENET_MEAN, IMAGENET_STD, crop=1e-4).to_dict()
    run = _run(tmp_path / "run", preprocessing=prep)
    _one_line(capsys, ["predict", str(run), str(image)], "crop", "0.0001", "at most 8192")
    with pytest.raises(CheckpointError, match="crop"):
        Preprocessing.from_dict({**prep, "image_size": 4096, "crop": 0.4})  # 4096 / 0.4 = 10240 > 8192
    assert Preprocessing.from_dict({**prep, "image_size": 4096, "crop": 0.875}).crop == 0.875


@pytest.mark.parametrize("case, edit, expected", [
    ("nesting", lambda t: t[:-2] + ', "x": ' + "[" * 200_000 + "]" * 200_000 + "}", "nested 200001 levels deep"),
    ("5000 digits", lambda t: t.replace('"num_classes": 3', '"num_classes": ' + "9" * 5000), "an integer of 5000 digits"),
    ("2**40 channels", lambda t: t.replace('"channels": [\n    4,\n    8,\n    8,\n    8\n  ]', f'"channels": [{2**40}, {2**40}, {2**40}, {2**40}]'),
     "too large to build"),
    ("metadata string", lambda t: json.dumps({**json.loads(t), "metadata": "hello"}), "metadata must be a JSON object"),
    ("metadata number", lambda t: json.dumps({**json.loads(t), "metadata": 5}), "metadata must be a JSON object"),
    ("Infinity", lambda t: t.replace('"image_size": 32', '"image_size": Infinity'), "Infinity is not a number"),
    ("1e400", lambda t: t.replace('"image_size": 32', '"image_size": 1e400'), "overflows to infinity"),
    ("not an object", "[1, 2]", "expected a JSON object"),
])
def test_damaged_config_json_is_one_line(case: str, edit, expected: str, tmp_path: Path, image: Path, capsys: pytest.CaptureFixture) -> None:
    run = _edit_config(_run(tmp_path / "run"), edit)
    for argv in (["predict", str(run), str(image)], ["eval", str(run), "--data", str(tmp_path)]):
        _one_line(capsys, argv, expected, "config.json")


def test_a_huge_digits_seed_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = _run(tmp_path / "run", dataset={"name": "digits", "val_fraction": 0.2, "seed": 2**70})
    _one_line(capsys, ["eval", str(run)], "an integer of 22 digits")
    run = _run(tmp_path / "run2", dataset={"name": "digits", "val_fraction": 0.2, "seed": 2**64})  # 20 digits: read, then refused
    _one_line(capsys, ["eval", str(run)], "seed", str(2**64))


def test_infinite_image_size_in_a_state_is_refused() -> None:
    prep = Preprocessing(32, 3, IMAGENET_MEAN, IMAGENET_STD).to_dict()
    with pytest.raises(CheckpointError, match="image_size"):
        Preprocessing.from_dict({**prep, "image_size": float("inf")})


def test_parse_json_keeps_ordinary_json() -> None:
    text = json.dumps({"a": [1, -2, 3.5, "[[[{"], "b": {"c": None, "d": 2**63 - 1}})
    assert parse_json(text, "x") == json.loads(text)


@pytest.mark.parametrize("argv, expected", [
    (["export", "resnet_18", "--input-shape", "1,3,60000,60000", "--out", "never.onnx"], "at most 4096"),
    (["export", "resnet_18", "--input-shape", "4096,3,4096,4096", "--out", "never.onnx"], "GiB"),
    (["bench", "resnet_18", "--image-size", "100000", "--no-peers"], "--image-size"),
    (["bench", "resnet_18", "--image-size", "4096", "--batch-size", "100000", "--no-peers"], "--batch-size and --image-size"),
    (["summary", "resnet_18", "--set", "channels=[65536,65536,65536,65536]"], "over the limit of 2,000,000,000"),
    (["summary", "resnet_18", "--set", f"num_classes={10**23}"], "at most"),
])
def test_huge_sizes_on_the_command_line_are_one_line(argv: list[str], expected: str, capsys: pytest.CaptureFixture) -> None:
    _one_line(capsys, argv, expected)


@pytest.mark.parametrize("value", ["inf", "1e400", "-1", "0", "x", "nan", "1.5"])
def test_bad_parameter_limits_in_the_environment_are_one_line(value: str, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("LUCID_MAX_PARAMETERS", value)
    _one_line(capsys, ["summary", "resnet_18", "--set", "num_classes=5"], "LUCID_MAX_PARAMETERS", repr(value))


def test_parameter_limits_that_are_numbers_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUCID_MAX_PARAMETERS", "5e9")
    assert parameter_limit() == 5_000_000_000
    monkeypatch.setenv("LUCID_MAX_PARAMETERS", "123")
    assert parameter_limit() == 123
    with pytest.raises(ValueError, match="max_parameters"):
        parameter_limit("x")


def test_train_set_channels_is_refused_before_anything_is_allocated(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _one_line(capsys, ["train", "--model", "resnet_18", "--set", "channels=[65536,65536,65536,65536]", "--image-size", "8",
                       "--epochs", "1", "--out", str(tmp_path / "o")], "parameters, over the limit")


def test_the_activation_estimate_matches_a_hand_count() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 1))
    image = 2 * 3 * 16 * 16 * 4
    outputs = [2 * 8 * 16 * 16 * 4, 2 * 8 * 16 * 16 * 4, 2 * 2 * 16 * 16 * 4]
    assert activation_bytes(model, (2, 3, 16, 16), training=True) == image + sum(outputs)
    assert activation_bytes(model, (2, 3, 16, 16)) == image + 2 * max(outputs)
    assert all(p.device.type == "cpu" for p in model.parameters())  # the model itself is untouched
    assert check_input_memory(model, (2, 3, 16, 16), "x") > image


def test_an_allocation_failure_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from lucid.cli import summary

    def fail(args):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 960000000000 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(summary, "run", fail)
    from lucid.cli import build_parser  # noqa: F401  (the parser binds run when it is built)

    _one_line(capsys, ["summary", "resnet_18"], "out of memory", "960000000000 bytes")


@pytest.mark.slow
def test_resume_overrides_have_the_same_limit_and_message_as_from_pretrained(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:

    import torch
    from helpers import TINY_ARGS, make_folder

    data = make_folder(tmp_path / "images")
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), *TINY_ARGS, "--image-size", "32", "--epochs", "1", "--batch-size", "8",
                 "--workers", "0", "--out", str(out)]) == 0
    state = torch.load(out / "last.pt", weights_only=True)
    state["config"]["overrides"]["channels"] = [65536] * 4
    torch.save(state, out / "last.pt")
    capsys.readouterr()
    err = _one_line(capsys, ["train", "--resume", str(out)], "the config describes a model of", "over the limit of 2,000,000,000",
                    "LUCID_MAX_PARAMETERS")
    assert "Traceback" not in err


@pytest.mark.parametrize("block_args", [5, [1, 2], "x"])
def test_a_block_args_of_the_wrong_type_is_refused_by_name(block_args, tmp_path: Path, image: Path, capsys: pytest.CaptureFixture) -> None:
    run = _edit_config(_run(tmp_path / "run"), lambda t: json.dumps({**json.loads(t), "block_args": block_args, "cardinality": 2}))
    _one_line(capsys, ["predict", str(run), str(image)], "block_args")


def test_eval_at_a_size_larger_than_memory_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = _run(tmp_path / "run")
    _one_line(capsys, ["eval", str(run), "--data", str(tmp_path), "--image-size", "4096", "--batch-size", "100000"],
              "--batch-size and --image-size", "GiB")


@pytest.mark.parametrize("line, expected", [
    ('{"epoch": ' + "[" * 5000 + "]" * 5000 + "}", "nested"),
    ('{"epoch": ' + "9" * 5000 + "}", "5000 digits"),
    ('{"epoch": 1, "skipped_images": "x"}', "skipped_images must be an int"),
    ('{"epoch": 1, "nonfinite_steps": [1]}', "nonfinite_steps must be an int"),
])
def test_damaged_metrics_lines_are_refused_by_line(line: str, expected: str, tmp_path: Path) -> None:
    from lucid.train.rundir import METRICS_NAME, RunFolder

    folder = RunFolder.open(tmp_path / "run", resume=True, overwrite=False)
    try:
        (tmp_path / "run" / METRICS_NAME).write_text(line + "\n")
        with pytest.raises(CheckpointError, match=expected):
            folder.metrics_upto(1)
    finally:
        folder.close()
