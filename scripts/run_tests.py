"""Run the test suite in a few pytest processes, side by side, then print one summary line.

The files that load several native runtimes (OpenVINO and NNCF, ExecuTorch, ONNX Runtime, oneDNN's
compiled int8 libraries) or drive a browser each get a fresh interpreter: one long process holding all
of them crashed with a segmentation fault late in the run while every file passed on its own. The
other files share a few interpreters, so that start-up (Python, pytest, torch, lucid: seconds each)
is not paid once per file. Each process runs one intra-op thread (tests/conftest.py), so processes
run side by side, as many at a time as there are cores (``--jobs``), the isolated files first.
Other arguments go to every pytest call (``-m "not slow"``).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COUNTS = ("passed", "failed", "errors", "error", "skipped", "deselected")
ISOLATED = (
    "test_docs.py", "test_export.py", "test_export_options.py", "test_export_run.py", "test_foreign_parts.py",
    "test_optimize_bench.py", "test_optimize_int8.py", "test_optimize_openvino.py",
)
SHARED_PROCESSES = 4  # interpreters for the other files


def run_files(paths: list[Path], args: list[str]) -> tuple[list[Path], int, dict[str, int], float]:
    """Run pytest on ``paths`` in one process: the files, its exit status, its summary counts and its seconds."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, *map(str, paths)],
                          cwd=ROOT, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (\w+)", lines[-1] if lines else "") if k in COUNTS}
    counts["failed"] = counts.get("failed", 0) + counts.pop("errors", 0) + counts.pop("error", 0)
    if done.returncode not in (0, 5) or counts["failed"]:
        print(done.stdout[-6000:], done.stderr[-3000:], sep="\n", flush=True)
    return paths, done.returncode, counts, time.monotonic() - start


def groups() -> list[list[Path]]:
    """The isolated files one by one, then the other files dealt round-robin into SHARED_PROCESSES groups."""
    files = sorted((ROOT / "tests").glob("test_*.py"))
    alone = [[p] for p in files if p.name in ISOLATED]
    shared = [p for p in files if p.name not in ISOLATED]
    return alone + [shared[i::SHARED_PROCESSES] for i in range(SHARED_PROCESSES) if shared[i::SHARED_PROCESSES]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="pytest processes at a time (default: the cores)")
    known, pytest_args = parser.parse_known_args()
    if known.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {known.jobs}")
    total = dict.fromkeys(("passed", "failed", "skipped"), 0)
    worst = 0
    start = time.monotonic()
    with ThreadPoolExecutor(known.jobs) as pool:
        for paths, code, counts, seconds in pool.map(lambda group: run_files(group, pytest_args), groups()):
            for key in total:
                total[key] += counts.get(key, 0)
            if code not in (0, 5):  # 5: every test deselected
                worst = 1
                if not counts["failed"]:
                    total["failed"] += 1  # a crash without a summary line still counts as a failure
            names = paths[0].name if len(paths) == 1 else f"{len(paths)} files ({paths[0].name}, ...)"
            print(f"{names} ({seconds:.0f} s): " + ", ".join(f"{n} {k}" for k, n in counts.items() if n), flush=True)
    print(f"in {time.monotonic() - start:.0f} s")
    print(f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return worst


if __name__ == "__main__":
    sys.exit(main())
