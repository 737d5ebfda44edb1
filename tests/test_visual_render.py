"""lucid.visual diagrams rendered by real Mermaid in headless Chromium: every stage with its
shapes, true block counts, and an overview that fits a page."""
from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from lucid import models, visual

ROOT = Path(__file__).resolve().parents[1]
MERMAID = ROOT / "tools" / "web" / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
CHROMIUM = shutil.which("chromium")
PAGE_WIDTH = 800  # px: about the text column of the docs site

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None or not MERMAID.is_file(),
                                                   reason="needs Debian's chromium and tools/web's mermaid (scripts/setup-test-tools.sh)")]


def render(diagrams: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Each diagram's SVG, as Mermaid draws it in Chromium."""
    blocks = "".join(f'<pre class="mermaid" id="{k}">{html.escape(v)}</pre>' for k, v in diagrams.items())
    page = tmp_path / "page.html"
    page.write_text(
        f'<!doctype html><html><head><meta charset="utf-8"><script src="{MERMAID.as_uri()}"></script></head>'
        f"<body>{blocks}<script>mermaid.initialize({{startOnLoad: false}}); mermaid.run();</script></body></html>",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=30000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = dict(re.findall(r'<pre class="mermaid" id="(\w+)"[^>]*>(.*?)</pre>', proc.stdout, re.S))
    assert set(found) == set(diagrams) and all("<svg" in svg for svg in found.values()), proc.stdout[:2000]
    return found


def svg_width(svg: str) -> float:
    return float(re.search(r'viewBox="[-\d.]+ [-\d.]+ ([\d.]+) [\d.]+"', svg)[1])


def text_of(svg: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", svg)))


def test_resnext_50_diagrams_in_chromium(tmp_path: Path) -> None:
    with torch.device("meta"):
        model = models.resnext_50_32x4d()
    sections = visual.mermaid_sections(model, (1, 3, 224, 224), title="resnext_50_32x4d")
    svgs = render({
        **sections,
        "wide": visual.mermaid(model, (1, 3, 224, 224)),
        "folded": visual.mermaid(model, (1, 3, 224, 224), collapse="structure"),
    }, tmp_path)
    overview = text_of(svgs["overview"])
    stages = [("layer1", "(1,64,56,56) → (1,256,56,56)", 2), ("layer2", "(1,256,56,56) → (1,512,28,28)", 3),
              ("layer3", "(1,512,28,28) → (1,1024,14,14)", 5), ("layer4", "(1,1024,14,14) → (1,2048,7,7)", 2)]
    for stage, shapes, identities in stages:
        assert f"{stage} {shapes}" in overview
        assert f"x {identities}" in text_of(svgs[stage])
    assert [int(n) for n in re.findall(r" x (\d+)", overview)] == [s[2] for s in stages]
    assert "stem (1,3,224,224) → (1,64,112,112)" in overview and "(1,2048) → (1,1000)" in overview
    assert " x 4" in text_of(svgs["folded"]) and "layer2" not in text_of(svgs["folded"])
    # the overview and each stage fit the page; the full left-to-right picture does not
    assert all(svg_width(svgs[k]) <= PAGE_WIDTH for k in sections), {k: svg_width(svgs[k]) for k in sections}
    assert svg_width(svgs["wide"]) > 3 * PAGE_WIDTH
