"""benchmarks/ as a reader expects it: one current result file per benchmark, each with a header
(date, machine, torch version, command), and benchmarks/results/README.md generated from them."""
from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, ModuleType]:
    """``_results`` and ``make_index``, imported as the scripts import them (their folder on ``sys.path``)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    for name in ("_results", "make_index"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib.import_module("_results"), importlib.import_module("make_index")


def test_results_index_is_generated_from_the_current_files(bench: tuple[ModuleType, ModuleType]) -> None:
    results, make_index = bench
    index = (BENCHMARKS / "results" / "README.md").read_text(encoding="utf-8")
    assert index == make_index.render(), "benchmarks/results/README.md is out of date: run python benchmarks/make_index.py"
    files = make_index.result_files()
    assert files, "no result files"
    for path in files:
        head = results.read_header(path)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2} UTC)?", head["date"]), (path.name, head["date"])
        assert head["command"] and head["figures"], path.name
        assert f"({path.name})" in index


def test_one_current_file_per_result_and_no_path_hacks() -> None:
    names = [p.name for p in (BENCHMARKS / "results").iterdir()]
    stale = [n for n in names if re.search(r"_(v\d+|run\d+|before|after|final|earlier|old)(_|\.|$)", n)]
    assert not stale, f"superseded result files (history lives in git): {stale}"
    assert all(Path(n).suffix in (".log", ".md") for n in names), names
    hacks = [p.relative_to(ROOT) for p in BENCHMARKS.rglob("*.py") if "sys.path.insert" in p.read_text(encoding="utf-8")]
    assert not hacks, f"benchmark scripts import the installed lucid, not a path hack: {hacks}"


def test_recording_writes_a_header_then_the_output(bench: tuple[ModuleType, ModuleType], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    results, make_index = bench
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(sys, "argv", [str(BENCHMARKS / "cpu_bench.py"), "--rounds", "2", "--only", "a b"])
    with results.recording("tiny") as figures:
        print("| table |")
        figures.append("lucid 2.00x torchvision")
    assert "| table |" in capsys.readouterr().out  # still shown on the terminal
    text = (tmp_path / "tiny.log").read_text(encoding="utf-8")
    head = results.read_header(tmp_path / "tiny.log")
    assert head["command"] == "OMP_NUM_THREADS=1 python benchmarks/cpu_bench.py --rounds 2 --only 'a b'"
    assert head["torch"] == __import__("torch").__version__
    assert head["figures"] == ["lucid 2.00x torchvision"]
    assert text.endswith("\n| table |\n")
    assert "## [tiny.log](tiny.log)" in make_index.render(tmp_path)
    with pytest.raises(RuntimeError), results.recording("failed"):
        raise RuntimeError("a run that fails writes no result")
    assert not (tmp_path / "failed.log").exists()
    with results.recording("-"):
        print("no file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.log"]


def test_a_result_without_a_header_is_refused(bench: tuple[ModuleType, ModuleType], tmp_path: Path) -> None:
    results, _ = bench
    (tmp_path / "bare.log").write_text("# date: 2026-01-01\nno more header\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bare.log: the result header lacks \['machine', 'torch', 'command'\]"):
        results.read_header(tmp_path / "bare.log")
