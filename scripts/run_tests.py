"""Run the test suite one test file per pytest process, two files at a time, then print one summary line.

Each file gets a fresh interpreter: the suite loads many native runtimes (OpenVINO, ExecuTorch,
ONNX Runtime, Chromium through the docs build, oneDNN's compiled int8 libraries), and one long
process holding all of them crashed with a segmentation fault late in the run while every file
passed on its own. Each process runs one intra-op thread (tests/conftest.py), so the files run
side by side, as many at a time as there are cores (``--jobs``); files with slow tests start first.
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


def run_file(path: Path, args: list[str]) -> tuple[Path, int, dict[str, int], float]:
    """Run pytest on one file: the file, its exit status, the counts of its summary line and its seconds."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(path)],
                          cwd=ROOT, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (\w+)", lines[-1] if lines else "") if k in COUNTS}
    counts["failed"] = counts.get("failed", 0) + counts.pop("errors", 0) + counts.pop("error", 0)
    if done.returncode not in (0, 5) or counts["failed"]:
        print(done.stdout[-6000:], done.stderr[-3000:], sep="\n", flush=True)
    return path, done.returncode, counts, time.monotonic() - start


def test_files() -> list[Path]:
    """Every test file, those marking more tests slow first, so the longest ones do not finish last."""
    files = sorted((ROOT / "tests").glob("test_*.py"))
    return sorted(files, key=lambda p: -p.read_text().count("mark.slow"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="test files run at a time (default: the cores)")
    known, pytest_args = parser.parse_known_args()
    if known.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {known.jobs}")
    total = dict.fromkeys(("passed", "failed", "skipped"), 0)
    worst = 0
    start = time.monotonic()
    with ThreadPoolExecutor(known.jobs) as pool:
        for path, code, counts, seconds in pool.map(lambda p: run_file(p, pytest_args), test_files()):
            for key in total:
                total[key] += counts.get(key, 0)
            if code not in (0, 5):  # 5: every test of the file deselected
                worst = 1
                if not counts["failed"]:
                    total["failed"] += 1  # a crash without a summary line still counts as a failure
            print(f"{path.name} ({seconds:.0f} s): " + ", ".join(f"{n} {k}" for k, n in counts.items() if n), flush=True)
    print(f"in {time.monotonic() - start:.0f} s")
    print(f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return worst


if __name__ == "__main__":
    sys.exit(main())
