"""Every docstring example in lucid and every Python block of the README runs and prints what it
shows, and every public function, class and method has a docstring (the API pages of the
documentation are built from them)."""
from __future__ import annotations

import doctest
import importlib
import inspect
import io
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import lucid


def lucid_modules() -> list[ModuleType]:
    """``lucid`` and all its submodules (``lucid.__main__`` would run the command line)."""
    names = ["lucid"] + [m.name for m in pkgutil.walk_packages(lucid.__path__, "lucid.") if m.name != "lucid.__main__"]
    return [importlib.import_module(name) for name in sorted(names)]


MODULES = lucid_modules()
DOCTESTS = [
    test
    for module in MODULES
    for test in doctest.DocTestFinder(exclude_empty=True).find(module)
    if test.examples
]


def test_docstring_examples_exist() -> None:
    assert any(t.name == "lucid.models.modeling_resnet.ResNeXt" for t in DOCTESTS), [t.name for t in DOCTESTS]


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_example(test: doctest.DocTest) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    runner.run(test, out=report.write)
    assert runner.failures == 0, report.getvalue()


def _public_objects(module: ModuleType) -> Iterator[tuple[str, Any]]:
    """Public classes and functions defined in ``module`` (its ``__all__`` if it has one)."""
    names = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
    for name in names:
        obj = getattr(module, name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__ == module.__name__:
            yield f"{module.__name__}.{name}", obj


def _own_doc(cls: type) -> str | None:
    """The class's own docstring; ``None`` for the signature text that dataclass/NamedTuple invent."""
    doc = cls.__dict__.get("__doc__")
    if not doc or doc.startswith(f"{cls.__name__}("):
        return None
    return doc


def test_public_api_has_docstrings() -> None:
    missing = []
    for module in MODULES:
        if not module.__doc__:
            missing.append(module.__name__)
        for qualname, obj in _public_objects(module):
            if inspect.isfunction(obj):
                if not inspect.getdoc(obj):
                    missing.append(qualname)
                continue
            if not _own_doc(obj):
                missing.append(qualname)
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                func = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                if isinstance(func, property) or inspect.isfunction(func):
                    # getdoc also finds the docstring of the method this one overrides
                    doc = func.__doc__ if isinstance(func, property) else inspect.getdoc(getattr(obj, attr))
                    if not doc:
                        missing.append(f"{qualname}.{attr}")
    assert not missing, "public objects without a docstring:\n  " + "\n  ".join(missing)


README = Path(__file__).resolve().parents[1] / "README.md"
README_BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_readme_has_python_examples() -> None:
    assert len(README_BLOCKS) >= 4
    assert any("models.ResNeXt(config)" in block for block in README_BLOCKS)


@pytest.mark.slow  # a few of them build full-size models
@pytest.mark.parametrize("number", range(len(README_BLOCKS)), ids=[f"README block {i + 1}" for i in range(len(README_BLOCKS))])
def test_readme_python_block_runs_as_pasted(number: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Each block runs on its own, in a fresh namespace and an empty folder, as a reader would paste it."""
    monkeypatch.chdir(tmp_path)
    exec(compile(README_BLOCKS[number], f"README.md python block {number + 1}", "exec"), {"__name__": "__main__"})
    if "models.ResNeXt(config)" in README_BLOCKS[number]:
        assert capsys.readouterr().out.strip() == "torch.Size([1, 10])"
