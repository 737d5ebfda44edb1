"""Run the test suite one test file per pytest process, then print one summary line.

Each file gets a fresh interpreter: the suite loads many native runtimes (OpenVINO, ExecuTorch,
ONNX Runtime, Chromium through the docs build, oneDNN's compiled int8 libraries), and one long
process holding all of them crashed with a segmentation fault late in the run while every file
passed on its own. Arguments after the script name go to every pytest call (``-m "not slow"``).
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COUNTS = ("passed", "failed", "errors", "error", "skipped", "deselected")


def run_file(path: Path, args: list[str]) -> tuple[int, dict[str, int]]:
    """Run pytest on one file; its exit status and the counts of its summary line."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(path)],
                          cwd=ROOT, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (\w+)", lines[-1] if lines else "") if k in COUNTS}
    counts["failed"] = counts.get("failed", 0) + counts.pop("errors", 0) + counts.pop("error", 0)
    if done.returncode not in (0, 5) or counts["failed"]:
        print(done.stdout[-6000:], done.stderr[-3000:], sep="\n")
    return done.returncode, counts


def main() -> int:
    args = sys.argv[1:]
    total = dict.fromkeys(("passed", "failed", "skipped"), 0)
    worst = 0
    start = time.monotonic()
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        code, counts = run_file(path, args)
        for key in total:
            total[key] += counts.get(key, 0)
        if code not in (0, 5):  # 5: every test of the file deselected
            worst = 1
            if not counts["failed"]:
                total["failed"] += 1  # a crash without a summary line still counts as a failure
        print(f"{path.name}: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n), flush=True)
    print(f"in {time.monotonic() - start:.0f} s")
    print(f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return worst


if __name__ == "__main__":
    sys.exit(main())
