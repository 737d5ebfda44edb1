"""The documentation site: it builds with one command, its links resolve, and in a real browser
(Debian's headless Chromium) the pages show rendered diagrams, formulas and the numbers and
example outputs that the build computed."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
import build_docs  # noqa: E402

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the site exactly as the README says, into a temporary folder."""
    site_dir = tmp_path_factory.mktemp("docs") / "site"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "build_docs.py"), "--site-dir", str(site_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,  # a few minutes on an idle 2-core machine; more when it is shared
    )
    assert proc.returncode == 0, f"docs build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    return site_dir


def chromium() -> str:
    """Path of Debian's Chromium; CI installs it (scripts/setup-test-tools.sh), so there it is never skipped."""
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; scripts/setup-test-tools.sh should have installed it")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium, or run scripts/test.sh)")
    return path


def rendered_dom(page: Path, tmp_path: Path) -> str:
    """The page's DOM after its scripts ran, from headless Chromium opening the file from disk."""
    proc = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}",
         "--virtual-time-budget=30000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout
VOID_ELEMENTS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Dom(HTMLParser):
    """Text of the whole page, text inside rendered diagrams, and diagram/formula markers."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.diagram_text: list[str] = []
        self.diagrams = 0  # <pre class="mermaid"> elements
        self.diagram_svgs = 0  # <svg> elements directly inside them (what Mermaid draws)
        self.formulas = 0
        self.body_attrs: dict[str, str | None] = {}
        self._in_diagram = 0  # element depth inside <pre class="mermaid">
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "body":
            self.body_attrs = a
        if tag == "style":
            self._in_style = True
        if self._in_diagram and tag not in VOID_ELEMENTS:
            self._in_diagram += 1
            if tag == "svg" and self._in_diagram == 2:
                self.diagram_svgs += 1
        elif tag == "pre" and "mermaid" in classes:
            self._in_diagram = 1
            self.diagrams += 1
        if "katex" in classes:
            self.formulas += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False
        if self._in_diagram and tag not in VOID_ELEMENTS:
            self._in_diagram -= 1

    def handle_data(self, data: str) -> None:
        if self._in_style:  # CSS inside the SVG, not a label
            return
        self.text.append(data)
        if self._in_diagram:
            self.diagram_text.append(data)


def parse(dom: str) -> _Dom:
    parsed = _Dom()
    parsed.feed(dom)
    return parsed


def squash(parts: list[str]) -> str:
    return re.sub(r"\s+", " ", " ".join(parts))


# ---------------------------------------------------------------------------- the build


@pytest.mark.slow  # builds the whole site (MkDocs, every example run)
def test_site_has_a_page_per_class_and_preset_and_no_broken_link(site: Path) -> None:
    import lucid.models as models

    for page in ["index", "getting-started", "models/resnet", "models/resnext", "models/resnet-config",
                 "models/resnext-config", "guides/weights", "guides/visual", "guides/training",
                 "guides/performance", "guides/inference", "design/notes"]:
        assert (site / f"{page}.html").is_file(), page
    names = models.list_models()
    assert names and set(names) == set(models.PRESETS)
    index = (site / "presets" / "index.html").read_text(encoding="utf-8")
    for name in names:
        assert (site / "presets" / f"{name}.html").is_file(), name
        assert f'href="{name}.html"' in index
    assert build_docs.check_site(site) == []
    # the mermaid and KaTeX scripts are served by the site itself
    assert (site / "assets" / "mermaid" / "mermaid.min.js").stat().st_size > 1_000_000
    assert (site / "assets" / "katex" / "katex.min.js").is_file()


@pytest.mark.slow  # builds the whole site (MkDocs, every example run)
def test_preset_counts_match_torchvision(site: Path) -> None:
    """The counts on the presets page, computed by the build, agree with torchvision's models."""
    import torch
    import torchvision.models as tvm
    from torch.utils.flop_counter import FlopCounterMode

    text = squash(parse((site / "presets" / "index.html").read_text(encoding="utf-8")).text)
    for lucid_name, tv_name in [("resnet_50", "resnet50"), ("wide_resnet_101", "wide_resnet101_2"),
                                ("resnext_101_64x4d", "resnext101_64x4d")]:
        with torch.device("meta"):
            reference = tvm.get_model(tv_name)
            x = torch.zeros(1, 3, 224, 224)
        with FlopCounterMode(display=False) as counter:
            reference(x)
        params = sum(p.numel() for p in reference.parameters())
        gmacs = counter.get_total_flops() / 2e9
        row = re.search(rf"{lucid_name} (\w+) \[[\d, ]+\] \d+ x \d+ ([\d,]+) ([\d.]+)", text)
        assert row, f"no row for {lucid_name} in: {text[:2000]}"
        assert int(row.group(2).replace(",", "")) == params
        assert float(row.group(3)) == pytest.approx(gmacs, abs=0.006)


# ---------------------------------------------------------------------------- link checker


def test_check_site_reports_missing_files_anchors_and_network_loads(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.html").write_text(
        '<h2 id="here">x</h2><a href="sub/b.html#there">ok</a> <a href="#here">ok</a>'
        '<a href="https://example.org/">external links are fine</a> <a href="missing.html">bad</a>'
        '<a href="sub/b.html#nowhere">bad anchor</a> <script src="https://cdn.example/x.js"></script>',
        encoding="utf-8",
    )
    (tmp_path / "sub" / "b.html").write_text('<p id="there"><a href="../a.html#here">back</a></p>', encoding="utf-8")
    problems = build_docs.check_site(tmp_path)
    assert len(problems) == 3, problems
    assert any("missing.html" in p and "missing file" in p for p in problems)
    assert any("#nowhere" in p and "missing anchor" in p for p in problems)
    assert any("cdn.example" in p and "network" in p for p in problems)


# ---------------------------------------------------------------------------- in the browser


@pytest.mark.slow  # the built site, in a browser
def test_resnext_50_32x4d_page_in_chromium(site: Path, tmp_path: Path) -> None:
    page = parse(rendered_dom(site / "presets" / "resnext_50_32x4d.html", tmp_path))
    assert page.body_attrs.get("data-diagrams") == "done"
    assert page.diagrams == page.diagram_svgs == 5  # the stages, then each stage opened
    labels = squash(page.diagram_text)
    # a true picture: every stage with its shapes, identity blocks with their true count
    for label in ["resnext_50_32x4d", "stem", "layer1", "layer3", "(1,512,28,28) → (1,1024,14,14)", "x 5", "x 3",
                  "ConvBNReLU2d", "Conv2d", "MaxPool2d", "AdaptiveAvgPool2d", "Linear", "(1,3,224,224) → (1,64,112,112)",
                  "(1,2048) → (1,1000)"]:
        assert label in labels, f"{label!r} not among the diagram's labels: {labels[:1500]}"
    text = squash(page.text)
    assert "25,028,904" in text
    gmacs = re.search(r"([\d.]+) GMACs", text)
    assert gmacs and float(gmacs.group(1)) == pytest.approx(4.23, abs=0.005)
    # the example's output, printed by running it during the build
    assert "ResNeXt (3, 4, 6, 3)" in text and "25,028,904 parameters" in text


@pytest.mark.slow  # the built site, in a browser
def test_resnext_class_page_in_chromium(site: Path, tmp_path: Path) -> None:
    page = parse(rendered_dom(site / "models" / "resnext.html", tmp_path))
    assert page.body_attrs.get("data-diagrams") == "done"
    assert page.diagrams == page.diagram_svgs == 1
    labels = squash(page.diagram_text)
    assert "layer1 x 4" not in labels and "layer4" in labels
    for label in ["resnext_50_32x4d", "stem", "layer2", "(1,1024,14,14) → (1,2048,7,7)", "Conv2d", "Linear",
                  "(1,3,224,224) → (1,64,112,112)"]:
        assert label in labels, f"{label!r} not among the diagram's labels: {labels[:1500]}"
    assert page.formulas >= 2, "the forward-calculation formulas were not typeset by KaTeX"
    text = squash(page.text)
    for section in ["Class Signature", "Parameters", "Attributes", "Forward Calculation", "Examples", "Note"]:
        assert section in text
    assert "classResNeXt(ResNet):def__init__(self,config:ResNeXtConfig)" in text.replace(" ", "")  # tokens are split by highlighting
    assert "torch.Size([1, 10])" in text  # the specification's example, run during the build
    assert "groups=32" in text


# ---------------------------------------------------------------------------- page helpers


def test_defining_fields_shown_are_exactly_what_the_preset_refuses() -> None:
    import torch

    import lucid.models as models

    with torch.device("meta"):
        facts = build_docs.preset_facts("wide_resnet_50")
        assert facts.defining == {"block": "bottleneck", "layers": (3, 4, 6, 3), "block_args": {"base_width": 128}}
        for name, value in facts.defining.items():
            if name != "block_args":
                with pytest.raises(TypeError, match="factory variants do not allow overriding preset block or layers"):
                    models.wide_resnet_50(**{name: value})
        models.wide_resnet_50(stem_width=32, avg_down=True)  # free fields are accepted

def test_config_parameters_refuse_an_undocumented_field() -> None:
    import dataclasses

    @dataclasses.dataclass
    class Documented:
        """A config.

        Args:
            depth: how deep.
        """

        depth: int
        width: int = 8

    with pytest.raises(build_docs.DocsError, match="'width'"):
        build_docs.config_parameters(Documented)
    Documented.__doc__ += "    width: how wide.\n"
    assert build_docs.config_parameters(Documented).splitlines() == [
        "- **depth** (`int`, required): how deep.",
        "- **width** (`int`, default `8`): how wide.",
    ]
