"""Shared command-line plumbing: --set parsing, shapes, model loading and one-line errors."""
from __future__ import annotations

import subprocess
import sys

import pytest

from lucid.cli import CLIError, load_model, main, parse_set, parse_shape


def test_parse_set_reads_typed_values() -> None:
    parsed = parse_set(["num_classes=10", "in_channels=1", "stem_type=deep", "stem_width=32", "avg_down=true",
                        "layers=[1,2,3,4]", "channels=8,16,32,64", "block_args={\"drop_path\": 0.1}", "stem_type2=None"])
    assert parsed == {
        "num_classes": 10, "in_channels": 1, "stem_type": "deep", "stem_width": 32, "avg_down": True,
        "layers": [1, 2, 3, 4], "channels": (8, 16, 32, 64), "block_args": {"drop_path": 0.1}, "stem_type2": None,
    }


@pytest.mark.parametrize("item", ["num_classes", "=3", ""])
def test_parse_set_refuses_items_without_key_value(item: str) -> None:
    with pytest.raises(CLIError, match="--set expects key=value"):
        parse_set([item])


def test_parse_shape() -> None:
    assert parse_shape("1,3,224,224") == (1, 3, 224, 224)
    assert parse_shape("2x1x32x32") == (2, 1, 32, 32)
    for bad in ("1,3,a,224", "1,0,3,3", ""):
        with pytest.raises(CLIError, match="--input-shape expects"):
            parse_shape(bad)


def test_load_model_from_name_with_overrides() -> None:
    model = load_model("resnet_18", parse_set(["num_classes=3", "channels=8,16,32,64"]))
    assert model.config.num_classes == 3 and model.config.channels == (8, 16, 32, 64)


def test_an_empty_model_pattern_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["models", "zzz*"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("lucid models: error:")


def test_repeated_set_options_add_up() -> None:
    from lucid.cli import build_parser

    args = build_parser().parse_args(["predict", "ck", "img.png", "--set", "num_classes=3", "--set", "channels=8,16,32,64"])
    assert args.set == ["num_classes=3", "channels=8,16,32,64"]


def test_python_dash_m_lucid_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "lucid", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("lucid ")
