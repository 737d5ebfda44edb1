"""lucid.visual.mermaid output is accepted by the real Mermaid parser (npm `mermaid`, run by Node)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from helpers import SharedModule
from torch import nn

from lucid import visual
from lucid.models import ResNeXt, ResNeXtConfig

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "web" / "mermaid-parse.mjs"
NODE = shutil.which("node")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    NODE is None, reason="Node.js is not installed (scripts/setup-test-tools.sh installs it and tools/web's npm packages)"
)]


def test_diagrams_pass_the_mermaid_parser(tmp_path: Path) -> None:
    if not (ROOT / "tools" / "web" / "node_modules" / "mermaid").is_dir():
        pytest.fail("tools/web/node_modules has no mermaid package: run scripts/setup-test-tools.sh")
    with torch.device("meta"):
        seed = ResNeXt(ResNeXtConfig(layers=[3, 4, 6, 3], cardinality=32, base_width=4, num_classes=10,
                                     in_channels=1, stem_type="deep", stem_width=32))
    seed_text = visual.mermaid(seed, (1, 1, 224, 224), title="resnext_50_32x4d")
    diagrams = {
        "seed": seed_text,
        "seed_flat": visual.mermaid(seed, (1, 1, 64, 64), depth=3, collapse="none", direction="TB"),
        "seed_folded": visual.mermaid(seed, (1, 1, 224, 224), collapse="structure"),
        **{f"section_{k}": v for k, v in visual.mermaid_sections(seed, (1, 1, 224, 224)).items()},
        "seed_structure": visual.mermaid(seed, title='odd "title" <b>&</b>'),
        "shared_dict": visual.mermaid(SharedModule(), (2, 4)),
        "plain": visual.mermaid(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(3)), (1, 1, 5, 5)),
        "single_leaf": visual.mermaid(nn.Linear(3, 4), (2, 3)),
    }
    # the parser is real: the same diagram with its last `end` removed must be refused
    cut = seed_text.rindex("\n  end\n")
    diagrams["broken"] = seed_text[:cut] + seed_text[cut + len("\n  end"):]
    files = []
    for name, text in diagrams.items():
        path = tmp_path / f"{name}.mmd"
        path.write_text(text, encoding="utf-8")
        files.append(str(path))
    proc = subprocess.run([NODE, str(TOOL), *files], capture_output=True, text=True, timeout=120)
    results = {Path(r["file"]).stem: r for r in map(json.loads, proc.stdout.splitlines())}
    assert set(results) == set(diagrams), proc.stderr
    for name, result in results.items():
        if name == "broken":
            assert not result["ok"] and "Parse error" in result["error"]
        else:
            assert result["ok"] and result["diagramType"] == "flowchart-v2", (name, result)
    assert proc.returncode == 1  # because of "broken"
