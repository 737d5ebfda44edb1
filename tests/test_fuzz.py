"""Fuzzing a real run: random mutations of its config.json, last.pt and metrics.jsonl.

Each mutated run goes to ``from_pretrained``, ``lucid eval`` and ``lucid train --resume`` (in
process, through :func:`lucid.cli.main`). Every case must end in success or a one-line refusal
(exit status 2, or a LucidError/OSError from the API): never a traceback, and never an attempt to
allocate past a fixed memory limit. The cases run in a child process under ``RLIMIT_AS``, so such an
attempt fails there (and is counted as a failure) instead of taking the machine's memory.

Run by hand: ``python tests/test_fuzz.py RUN DATA CASES SEED`` prints one JSON summary; the same seed gives
the same cases.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 6 * 2**30  # address space of the child: torch's own mappings plus a few small models
CASE_SECONDS = 20  # a mutation that makes --resume train for long is stopped (not a failure)
FUZZ_CASES = 150
CASE_BUDGET = 1  # seconds per case the child is allowed on average (a case takes about 0.1 s)

ODD_VALUES: list[Any] = [
    None, True, False, 0, -1, -(2**63), 2**63, 2**64 + 1, 10**19, 1e-300, -1e308, 0.5, 1e-4, 1e9, "", "x", "abc" * 50,
    [], [1, 2], [[[]]], {}, {"a": 1}, [65536] * 4, [2**40] * 4, [0, 0, 0, 0], [-1, 1, 1, 1], "NaN", "\n",
]
JSON_TOKENS = ["NaN", "Infinity", "-Infinity", "1e400", "9" * 5000, "[" * 5000 + "]" * 5000, '"\\ud800"', "{}", "[]", "null"]


class CaseTimeout(BaseException):
    """Raised by the alarm in a case that runs past CASE_SECONDS."""


# ----------------------------------------------------------------------------- mutations


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into nested dicts and lists (tensors are leaves)."""
    found = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(tree, list) and len(tree) < 64:
        for index, value in enumerate(tree):
            found += _paths(value, (*prefix, index))
    return found


def _odd_value(rng: random.Random) -> Any:
    import torch

    if rng.random() < 0.15:
        dtype = rng.choice([torch.int64, torch.float64, torch.complex64, torch.bool, torch.uint8])
        return torch.zeros(rng.choice([(), (3,), (2, 2), (0,)]), dtype=dtype)
    if rng.random() < 0.1:
        return float(rng.choice(["nan", "inf", "-inf"]))
    return copy.deepcopy(rng.choice(ODD_VALUES))


def _mutate_tree(tree: Any, rng: random.Random) -> Any:
    """Replace, delete or add one value somewhere in ``tree``."""
    paths = _paths(tree)
    if not paths:
        return _odd_value(rng)
    path = rng.choice(paths)
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    action = rng.random()
    if action < 0.15 and isinstance(parent, dict):
        del parent[path[-1]]
    elif action < 0.25 and isinstance(parent, dict):
        parent[rng.choice(["extra", "epoch", "crop", "layers", "channels", "seed"])] = _odd_value(rng)
    else:
        parent[path[-1]] = _odd_value(rng)
    return tree


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return b"\x00"
    action = rng.random()
    at = rng.randrange(len(data))
    if action < 0.4:
        return data[:at]  # truncated
    if action < 0.8:
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        return bytes(flipped)
    return data[:at] + os.urandom(rng.randint(1, 64)) + data[at:]


def mutate_config(text: str, rng: random.Random) -> str:
    if rng.random() < 0.2:
        return _mutate_bytes(text.encode(), rng).decode("utf-8", "replace")
    data = _mutate_tree(json.loads(text), rng)
    out = json.dumps(data, default=str)
    if rng.random() < 0.3:  # splice in a token json.dumps would never write
        spots = [i for i, c in enumerate(out) if c in ",:["]
        if spots:
            at = rng.choice(spots) + 1
            out = out[:at] + rng.choice(JSON_TOKENS) + ("," if out[at - 1] in ",[" else "") + out[at:]
    return out


def mutate_state(path: Path, rng: random.Random) -> None:
    import torch

    if rng.random() < 0.2:
        path.write_bytes(_mutate_bytes(path.read_bytes(), rng))
        return
    state = torch.load(path, weights_only=True)
    for _ in range(rng.randint(1, 3)):
        state = _mutate_tree(state, rng)
    torch.save(state, path)


def mutate_metrics(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    if rng.random() < 0.3:
        return _mutate_bytes(text.encode(), rng).decode("utf-8", "replace")
    index = rng.randrange(len(lines))
    record = json.loads(lines[index])
    lines[index] = json.dumps(_mutate_tree(record, rng), default=str)
    if rng.random() < 0.3:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(JSON_TOKENS))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- running one case


def _alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout


def _call_cli(argv: list[str]) -> str:
    """``main(argv)``'s outcome: ``ok``, ``refused`` (exit 2, one line, not an allocation failure) or a failure description."""
    from lucid.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    last = err.getvalue().strip().splitlines()[-1:] or [""]
    if "out of memory" in last[0]:
        return f"allocation past the limit: {last[0][:200]}"
    if code == 2 and last[0].startswith(f"lucid {argv[0]}: "):
        return "refused"
    return "ok" if code in (0, 1) else f"exit {code}: {last[0][:200]}"


def _call_api(run: Path) -> str:
    from lucid.core.errors import LucidError
    from lucid.models import from_pretrained

    try:
        from_pretrained(run)
    except (LucidError, OSError):
        return "refused"
    return "ok"


def run_case(run: Path, data: Path, target: str, entry: str, rng: random.Random) -> str:
    """Mutate ``target`` in a copy of ``run``, then call ``entry`` on it; returns the outcome."""
    with tempfile.TemporaryDirectory() as tmp:
        case = Path(tmp) / "run"
        shutil.copytree(run, case, ignore=shutil.ignore_patterns(".lock"))
        file = case / target
        if target == "last.pt":
            mutate_state(file, rng)
        elif target == "config.json":
            file.write_text(mutate_config(file.read_text(), rng))
        else:
            file.write_text(mutate_metrics(file.read_text(), rng))
        signal.alarm(CASE_SECONDS)
        try:
            if entry == "from_pretrained":
                return _call_api(case)
            if entry == "eval":
                return _call_cli(["eval", str(case if target != "last.pt" else file), "--data", str(data), "--json"])
            return _call_cli(["train", "--resume", str(case)])
        except CaseTimeout:
            return "timeout"
        except MemoryError:
            return "allocation past the limit: MemoryError"
        except Exception:  # noqa: BLE001 - a traceback is exactly what the fuzz looks for
            return "traceback: " + " | ".join(traceback.format_exc().strip().splitlines()[-3:])[:400]
        finally:
            signal.alarm(0)


ENTRIES = {  # which entry points read which file
    "config.json": ["from_pretrained", "from_pretrained", "eval"],
    "last.pt": ["eval", "resume", "resume"],
    "metrics.jsonl": ["resume"],
}


def fuzz(run: Path, data: Path, cases: int, seed: int) -> dict[str, Any]:
    """Mutate and call ``cases`` times; a summary of the outcomes."""
    import torch

    torch.set_num_threads(1)
    signal.signal(signal.SIGALRM, _alarm)
    rng = random.Random(seed)
    outcomes: dict[str, int] = {}
    failures: list[dict[str, str]] = []
    for _ in range(cases):
        target = rng.choices(list(ENTRIES), weights=[4, 4, 2])[0]
        entry = rng.choice(ENTRIES[target])
        outcome = run_case(run, data, target, entry, rng)
        kind = outcome.split(":")[0]
        outcomes[kind] = outcomes.get(kind, 0) + 1
        if kind not in ("ok", "refused", "timeout"):
            failures.append({"target": target, "entry": entry, "outcome": outcome})
    return {"cases": sum(outcomes.values()), "outcomes": outcomes, "failures": failures}


def _limited() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


# ----------------------------------------------------------------------------- the test


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A finished one-epoch run of a very small model on nine tiny images (resuming it returns at once)."""
    from helpers import COLOURS, write_png_folder

    from lucid.cli import main

    root = tmp_path_factory.mktemp("fuzz")
    write_png_folder(root / "data" / "train", {c: 2 for c in COLOURS}, seed=1)
    write_png_folder(root / "data" / "val", {c: 1 for c in COLOURS}, seed=2)
    argv = ["train", "--data", str(root / "data"), "--model", "resnet_18", "--set", "channels=[4,8,8,8]", "--image-size", "16",
            "--epochs", "1", "--batch-size", "4", "--workers", "0", "--amp", "off", "--out", str(root / "run")]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(argv) == 0
    return root / "run", root / "data"


@pytest.mark.slow
def test_mutated_runs_never_give_a_traceback_or_a_huge_allocation(real_run: tuple[Path, Path]) -> None:
    run, data = real_run
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]), "OMP_NUM_THREADS": "1"}
    seed = int(os.environ.get("LUCID_FUZZ_SEED", "0"))
    done = subprocess.run([sys.executable, __file__, str(run), str(data), str(FUZZ_CASES), str(seed)], capture_output=True,
                          text=True, env=env, timeout=FUZZ_CASES * CASE_BUDGET + 4 * CASE_SECONDS + 60, preexec_fn=_limited)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"fuzz: {summary['cases']} cases, outcomes {summary['outcomes']}")
    assert summary["cases"] == FUZZ_CASES, summary
    assert not summary["failures"], json.dumps(summary["failures"][:10], indent=1)


if __name__ == "__main__":
    result = fuzz(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    print(json.dumps(result))
