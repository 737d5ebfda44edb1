"""Build lucid's documentation site: ``python docs/build_docs.py`` -> ``build/docs/site/index.html``.

The numbers and pictures on the pages come from running lucid while building, never from
typed-in text:

1. stage: copy the hand-written pages (``docs/pages``) into a temporary folder, add the
   browser scripts from the npm packages in ``tools/web`` (Mermaid, KaTeX; installed with
   ``npm ci`` when missing, never committed) and a Pygments stylesheet;
2. generate one page per registered preset: what it builds, its defining config fields,
   parameters and multiply-accumulates at 224x224 (counted on the ``meta`` device, so no
   memory or time is spent on weights) and the Mermaid diagram from ``lucid.visual.mermaid``;
3. run MkDocs (``docs/mkdocs.yml``, strict): mkdocstrings renders signatures and docstrings,
   markdown-exec runs every ``exec`` code block and puts its output on the page;
4. check that every internal link and anchor of the built HTML resolves and that no page
   loads anything from the network.
"""
from __future__ import annotations

import argparse
import dataclasses
import html
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import griffe

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
WEB = ROOT / "tools" / "web"
SITE = ROOT / "build" / "docs" / "site"
INPUT_SHAPE = (1, 3, 224, 224)

# Files taken from npm packages (package -> paths inside it), copied under assets/.
NPM_ASSETS = {
    "mermaid": ["dist/mermaid.min.js"],
    "katex": ["dist/katex.min.js", "dist/katex.min.css", "dist/contrib/auto-render.min.js", "dist/fonts"],
}


class DocsError(RuntimeError):
    """The site could not be built, or the built site is broken."""


_SPHINX_ROLE = re.compile(r":(?:py:)?(?:func|meth|class|attr|mod|obj|data|exc):`(~?)([^`]+)`")


def sphinx_roles_to_code(text: str) -> str:
    """Turn Sphinx cross-reference roles (``:class:`~a.B` ``) into Markdown code spans (`` `B` ``)."""
    return _SPHINX_ROLE.sub(lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`", text)


class SphinxRoles(griffe.Extension):
    """Griffe extension (see ``docs/mkdocs.yml``): docstrings written with Sphinx roles render as code."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = sphinx_roles_to_code(obj.docstring.value)


# ---------------------------------------------------------------------------- staging


def ensure_web_modules(web: Path = WEB) -> Path:
    """``tools/web/node_modules``, running ``npm ci`` there first if a needed package is missing."""
    modules = web / "node_modules"
    if all((modules / pkg / "package.json").is_file() for pkg in NPM_ASSETS):
        return modules
    npm = shutil.which("npm")
    if npm is None:
        raise DocsError(f"{modules}: packages {sorted(NPM_ASSETS)} are missing and npm is not installed to fetch them")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=web, check=True)
    missing = [pkg for pkg in NPM_ASSETS if not (modules / pkg / "package.json").is_file()]
    if missing:
        raise DocsError(f"{web / 'package.json'} does not install {missing}; add them to its dependencies")
    return modules


def stage(stage_dir: Path) -> None:
    """Fill ``stage_dir`` (which must not exist yet) with the hand-written pages and the browser assets."""
    modules = ensure_web_modules()
    shutil.copytree(DOCS / "pages", stage_dir)
    assets = stage_dir / "assets"
    for pkg, paths in NPM_ASSETS.items():
        for rel in paths:
            src = modules / pkg / rel
            dst = assets / pkg / Path(rel).relative_to("dist")
            if src.is_dir():
                shutil.copytree(src, dst)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
    from pygments.formatters import HtmlFormatter

    (assets / "pygments.css").write_text(HtmlFormatter(style="default").get_style_defs(".highlight"), encoding="utf-8")


# ---------------------------------------------------------------------------- preset pages


@dataclasses.dataclass
class PresetFacts:
    """What a preset page shows, all measured from the model the preset builds."""

    name: str
    summary: str
    model_class: str
    config_class: str
    defining: dict[str, Any]
    config: dict[str, Any]
    params: int
    macs: int
    diagrams: dict[str, str]  # "overview", then one per stage (lucid.visual.mermaid_sections)
    weights: list[Any]  # lucid.weights.PretrainedWeights, default first


def preset_facts(name: str, input_shape: tuple[int, ...] = INPUT_SHAPE) -> PresetFacts:
    """Build preset ``name`` on the meta device and measure it."""
    import torch

    import lucid.models as models
    import lucid.weights
    from lucid.visual import mermaid_sections, summary

    with torch.device("meta"):
        model = models.create_model(name)
    published = lucid.weights.list_pretrained(name)
    totals = summary(model, input_shape=input_shape, depth=1)
    row = models.PRESETS[name]
    return PresetFacts(
        name=name,
        summary=(models.registry.get_preset(name).__doc__ or "").strip().splitlines()[0],
        model_class=type(model).__name__,
        config_class=type(model.config).__name__,
        defining=dict(row.config),
        config=model.config.to_dict(),
        params=totals.total_params,
        macs=totals.total_macs,
        diagrams=mermaid_sections(model, input_shape, title=name),
        weights=[lucid.weights.info(name, tag) for tag in published],
    )


def diagram_sections(diagrams: dict[str, str]) -> str:
    """The overview diagram, then each part's under its own heading."""
    parts = [mermaid_html(diagrams["overview"])]
    parts += [f"### {name}\n\n{mermaid_html(text)}" for name, text in diagrams.items() if name != "overview"]
    return "\n\n".join(parts)


def mermaid_html(diagram: str) -> str:
    """A Mermaid diagram as the HTML block that ``assets/lucid.js`` renders to SVG."""
    return f'<pre class="mermaid">{html.escape(diagram)}</pre>'


def _parameters(cls: type, annotate: bool) -> list[str]:
    """``cls.__init__``'s parameters as source text; dataclass factories show the value they make."""
    import inspect

    factories = {f.name: f.default_factory for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
    params = []
    for p in inspect.signature(cls.__init__).parameters.values():
        text = p.name if p.annotation is p.empty or not annotate else f"{p.name}: {p.annotation}"
        if p.default is not p.empty:
            factory = factories.get(p.name, dataclasses.MISSING)
            default = p.default if factory is dataclasses.MISSING else factory()
            text += f" = {default!r}" if annotate else f"={default!r}"
        params.append(text)
    return params


def class_line(cls: type) -> str:
    """The spec's one-line heading, ``class lucid.models.X(...)``, from the code.

    Config dataclasses list their fields with defaults (the types are in "Class Signature");
    other classes show their annotated ``__init__`` parameters.
    """
    params = _parameters(cls, annotate=not dataclasses.is_dataclass(cls))[1:]  # without self
    return f"class {cls.__module__.rsplit('.', 1)[0]}.{cls.__name__}({', '.join(params)})"


def class_signature(cls: type) -> str:
    """The spec's "Class Signature" block for ``cls``: its bases and ``__init__`` signature, from the code."""
    bases = ", ".join(("nn." if b.__module__.startswith("torch.nn") else "") + b.__name__ for b in cls.__bases__)
    params = _parameters(cls, annotate=True)
    if len(", ".join(params)) > 60:
        args = "\n" + "".join(f"        {p},\n" for p in params) + "    "
    else:
        args = ", ".join(params)
    return f"class {cls.__name__}({bases}):\n    def __init__({args})"


def config_parameters(cls: type) -> str:
    """Markdown list of a config dataclass's fields: type and default from the code, text from its docstring
    (a subclass's fields inherited from its bases are described by the bases' docstrings).

    Raises ``DocsError`` when a field is missing from the docstring's ``Args:`` section, so
    that a new config field cannot reach the site undocumented.
    """
    described: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # a subclass's Args add to (or override) its bases'
        sections = griffe.Docstring(klass.__dict__.get("__doc__") or "").parse("google", warn_missing_types=False)
        described.update({
            p.name: sphinx_roles_to_code(" ".join(p.description.split()))
            for s in sections
            if s.kind.value == "parameters"
            for p in s.value
        })
    lines = []
    for f in dataclasses.fields(cls):
        if f.name not in described:
            raise DocsError(f"{cls.__name__}: field {f.name!r} is not described in the docstring's Args section")
        if f.default is not dataclasses.MISSING:
            default = f"default `{f.default!r}`"
        elif f.default_factory is not dataclasses.MISSING:
            default = f"default `{f.default_factory()!r}`"
        else:
            default = "required"
        lines.append(f"- **{f.name}** (`{f.type}`, {default}): {described[f.name]}")
    return "\n".join(lines)


def model_diagram(preset: str, input_shape: tuple[int, ...] = INPUT_SHAPE) -> str:
    """HTML for the stage-level Mermaid diagram of ``preset`` (built on the meta device), top to
    bottom so that it reads at page width; the preset pages add each stage's detail."""
    import torch

    import lucid.models as models
    from lucid.visual import mermaid

    with torch.device("meta"):
        model = models.create_model(preset)
    return mermaid_html(mermaid(model, input_shape=input_shape, depth=1, direction="TB", title=preset))


def preset_list(pattern: str) -> str:
    """Markdown bullet list linking the preset pages whose names match ``pattern``, for class pages.

    Links printed by ``exec`` blocks bypass MkDocs' ``.md`` -> ``.html`` rewriting, so they
    name the built ``.html`` file (``check_site`` verifies that it exists).
    """
    import lucid.models as models

    return "\n".join(f"- [`{n}`](../presets/{n}.html)" for n in models.list_models(pattern))


def _class_page(class_name: str) -> str:
    return {"ResNet": "../models/resnet.md", "ResNeXt": "../models/resnext.md",
            "ResNetConfig": "../models/resnet-config.md", "ResNeXtConfig": "../models/resnext-config.md"}[class_name]


def preset_page(f: PresetFacts) -> str:
    """The Markdown page of one preset."""
    shape = "x".join(map(str, INPUT_SHAPE))
    defining = "\n".join(f"| `{k}` | `{v!r}` |" for k, v in f.defining.items())
    config_json = "{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in f.config.items()) + "\n}"
    return f"""# {f.name}

{f.summary}

`lucid.models.{f.name}(num_classes=1000, **kwargs)` builds a [`{f.model_class}`]({_class_page(f.model_class)})
from a [`{f.config_class}`]({_class_page(f.config_class)}).

| measure | value |
|---|---|
| total parameters (1000 classes) | <span class="lucid-params">{f.params:,}</span> |
| multiply-accumulates at {shape} | <span class="lucid-gmacs">{f.macs / 1e9:.2f} GMACs</span> ({f.macs:,} MACs) |

The counts were measured while this page was built, with `lucid.visual.summary` on the
model that the preset returns.

## Defining fields

The preset fixes these fields (its row in `lucid.models.PRESETS`); passing one of them raises a
`TypeError`, except `block_args`, which merges over the preset's own.

| field | value |
|---|---|
{defining}

Every other field of the config can be passed as a keyword argument, for example
`models.{f.name}(num_classes=10, in_channels=1, stem_type="deep", stem_width=32)`.

## Published weights

{weights_section(f)}

## Diagram

Drawn by `lucid.visual.mermaid_sections(model, {INPUT_SHAPE})` during the build: the stages
with their blocks and shapes, then each stage with its blocks opened. Blocks identical in
structure and shapes are drawn once, with their count.

{diagram_sections(f.diagrams)}

## Example

```python exec="1" source="above" result="text"
import torch
import lucid.models as models

with torch.device("meta"):  # shapes and counts only: no memory spent on weights
    model = models.create_model("{f.name}")
print(type(model).__name__, model.config.layers)
print(f"{{sum(p.numel() for p in model.parameters()):,}} parameters")
```

## Full configuration

```json
{config_json}
```
"""


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def weights_section(f: PresetFacts) -> str:
    """The preset page's table of published weights, from ``lucid.weights``' registry."""
    if not f.weights:
        return f"No published weights are registered for `{f.name}`: it starts from random initialisation."
    rows = "\n".join(
        f"| `{w.tag}` | {'yes' if i == 0 else ''} | {w.dataset} | {w.resize} / {w.crop} {w.interpolation} | {_pct(w.top1)} | {_pct(w.top5)} |"
        for i, w in enumerate(f.weights)
    )
    return f"""`models.{f.name}(pretrained=True)` loads the default, `weights="TAG"` picks one
(see [Weights](../guides/weights.md)). Accuracies are the published single-crop ones, in percent;
`timm:` tags are timm's weights on the Hugging Face Hub.

| tag | default | dataset | resize / crop, interpolation | top-1 | top-5 |
|---|---|---|---|---:|---:|
{rows}"""


def presets_index(facts: list[PresetFacts]) -> str:
    """The presets overview page: one row per preset, with its measured counts."""
    import lucid.models as models

    rows = "\n".join(
        f"| [`{f.name}`]({f.name}.md) | {f.model_class} | {list(f.config['layers'])} | "
        f"{' x '.join(map(str, models.PRESETS[f.name].groups))} | {f.params:,} | {f.macs / 1e9:.2f} |"
        for f in facts
    )
    return f"""# Presets

Every preset registered in `lucid.models` (`lucid.models.list_models()`), with its parameter
count (1000 classes) and multiply-accumulates for one {'x'.join(map(str, INPUT_SHAPE))} image,
measured while this page was built.

| preset | class | blocks per stage | cardinality x width | parameters | GMACs |
|---|---|---|---|---:|---:|
{rows}
"""


def write_preset_pages(stage_dir: Path) -> list[PresetFacts]:
    """Measure every registered preset and write ``presets/index.md`` and one page per preset."""
    import lucid.models as models

    facts = [preset_facts(name) for name in models.list_models()]
    out = stage_dir / "presets"
    out.mkdir(parents=True, exist_ok=True)
    (out / "index.md").write_text(presets_index(facts), encoding="utf-8")
    for f in facts:
        (out / f"{f.name}.md").write_text(preset_page(f), encoding="utf-8")
    return facts


# ---------------------------------------------------------------------------- mkdocs


def run_mkdocs(facts: list[PresetFacts], site_dir: Path, stage_dir: Path) -> None:
    """Run MkDocs on ``docs/mkdocs.yml``, with one nav entry per preset page."""
    import yaml
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    with open(DOCS / "mkdocs.yml", encoding="utf-8") as fh:
        nav = yaml.safe_load(fh)["nav"]
    presets = [{"Overview": "presets/index.md"}] + [{f.name: f"presets/{f.name}.md"} for f in facts]
    for section in [nav] + [entry[key] for entry in nav for key in entry if isinstance(entry[key], list)]:
        for i, entry in enumerate(section):
            if "Presets" in entry:
                section[i] = {"Presets": presets}
    config = load_config(str(DOCS / "mkdocs.yml"), nav=nav, docs_dir=str(stage_dir), site_dir=str(site_dir))
    build(config)


# ---------------------------------------------------------------------------- link check


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if value is None:
                continue
            if key in ("id", "name") and (key == "id" or tag == "a"):
                self.ids.add(value)
            if key in ("href", "src"):
                self.links.append((tag, key, value))


def check_site(site_dir: Path = SITE) -> list[str]:
    """Problems in the built site: internal links or anchors that lead nowhere, and network loads.

    Links to other sites are allowed in ``<a href>`` only; scripts, stylesheets and images
    must come from the site itself so that it works offline.
    """
    pages: dict[Path, _PageParser] = {}
    for path in sorted(site_dir.rglob("*.html")):
        parser = _PageParser()
        parser.feed(path.read_text(encoding="utf-8"))
        pages[path.resolve()] = parser
    problems = []
    site_root = site_dir.resolve()
    for page, parser in pages.items():
        rel_page = page.relative_to(site_root)
        for tag, attr, url in parser.links:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") or url.startswith("//"):
                if tag != "a":
                    problems.append(f"{rel_page}: <{tag} {attr}={url!r}> loads from the network")
                continue
            if parts.scheme:  # mailto:, data:, javascript:
                continue
            if not parts.path:
                target = page
            elif parts.path.startswith("/"):  # site-root links (404.html, as served by a web server)
                target = (site_root / unquote(parts.path).lstrip("/")).resolve()
            else:
                target = (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"{rel_page}: link {url!r} points to a missing file")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else set()
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{rel_page}: link {url!r} points to a missing anchor")
    return problems


# ---------------------------------------------------------------------------- main


def build_site(site_dir: Path = SITE) -> Path:
    """Stage, generate, build and check the site; returns the path of its ``index.html``.

    Everything is built in a temporary folder beside ``site_dir`` that replaces it only once
    the site is complete and checked, so a failed build never leaves half a site behind.
    """
    site_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".docs-build-", dir=site_dir.parent))
    try:
        stage_dir, out = work / "src", work / "site"
        stage(stage_dir)
        facts = write_preset_pages(stage_dir)
        run_mkdocs(facts, out, stage_dir)
        problems = check_site(out)
        if problems:
            raise DocsError("broken site:\n  " + "\n  ".join(problems))
        if site_dir.exists():
            shutil.rmtree(site_dir)
        os.replace(out, site_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return site_dir / "index.html"


def main(argv: list[str] | None = None) -> int:
    """Command line: build the site, print where it is; exit 1 with the reason when the build fails."""
    from mkdocs.exceptions import MkDocsException

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site-dir", type=Path, default=SITE, help=f"where the HTML goes (default {SITE.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    try:
        index = build_site(args.site_dir.resolve())
    except (DocsError, MkDocsException) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"built {index} in {time.perf_counter() - start:.1f} s; open it in a browser (works offline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
