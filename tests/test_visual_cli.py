"""`lucid models` and `lucid summary` on the command line."""
from __future__ import annotations

import json
import re

import pytest
import torch

from lucid import visual
from lucid.cli import main
from lucid.models import create_model

SEED_SET = ["--set", "num_classes=10", "in_channels=1", "stem_type=deep", "stem_width=32"]


def test_models_lists_params_and_gmacs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "resnext_50*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "params", "GMACs@224"]
    assert lines[1].split() == ["resnext_50_32x4d", "25,028,904", "4.23"]
    assert len(lines) == 2


def test_summary_json_matches_the_library(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnet_18", "--input-shape", "2,3,64,64", "--depth", "1", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    with torch.device("meta"):
        expected = visual.summary(create_model("resnet_18"), (2, 3, 64, 64), depth=1).to_dict()
    assert data == expected
    assert data["totals"]["params"] == 11_689_512 and data["input_shape"] == [2, 3, 64, 64]
    assert [r["path"] for r in data["rows"]] == ["stem", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]


def test_summary_table_default_shape_follows_in_channels(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnet_18", "--set", "in_channels=1", "num_classes=7", "--depth", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ResNet, input (1,1,224,224) -> output (1,7)")
    assert re.search(r"^  layer1\.0 +BasicBlock +\(1,64,56,56\)", out, re.M)
    # ResNet-18 (1.81 GMACs) less two thirds of the 7x7 stem conv, and 993 fewer classifier outputs
    macs = 1_814_073_344 - 112 * 112 * 64 * 2 * 7 * 7 - 512 * 993
    assert re.search(rf"^Total MACs: +{macs:,} \(1\.73 G\)$", out, re.M)


def test_summary_markdown_is_the_seed_diagram_in_a_fence(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", "resnext_50_32x4d", *SEED_SET, "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("```mermaid\n%%{init:") and out.endswith("\n```\n")
    assert "resnext_50_32x4d</span>" in out
    assert "(1,1,224,224) → (1,32,112,112)" in out and "(1,2048) → (1,10)" in out
    assert main(["summary", "resnext_50_32x4d", *SEED_SET, "--format", "mermaid", "--depth", "0"]) == 0
    plain = capsys.readouterr().out
    assert plain.startswith("%%{init:") and "Sequential x" not in plain and "```" not in plain
    assert main(["summary", "resnext_50_32x4d", *SEED_SET, "--format", "mermaid", "--depth", "0", "--collapse", "structure",
                 "--direction", "TB"]) == 0
    folded = capsys.readouterr().out
    assert "Sequential x 4" in folded and "\nflowchart TB\n" in folded


@pytest.mark.parametrize(
    "argv, message",
    [
        (["summary", "resnxt_50_32x4d"], "unknown model 'resnxt_50_32x4d'; did you mean 'resnext_50_32x4d'"),
        (["summary", "resnet_18", "--input-shape", "1,3,x"], "--input-shape expects comma-separated positive ints"),
        (["summary", "resnet_18", "--input-shape", "1,1,32,32"], "C=3 channels, got shape (1, 1, 32, 32)"),
        (["summary", "resnet_18", "--set", "num_classes=ten"], "num_classes must be greater than 0 (a positive int); got 'ten' (str)"),
        (["summary", "resnet_18", "--set", "widht=3"], "got unexpected argument(s) ['widht']"),
        (["summary", "resnet_18", "--set", "stem_type"], "--set expects key=value, got 'stem_type'"),
        (["summary", "resnet_18", "--depth", "0"], "depth must be an int >= 1, got 0"),
        (["summary", "resnet_18", "--format", "mermaid", "--depth", "-1"], "depth must be an int >= 0, got -1"),
    ],
)
def test_summary_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("lucid summary: error: ")
    assert message in captured.err
