"""Time the main job, ``lucid train`` on the bundled digits, for one or more sets of options.

Each set runs as its own ``lucid train`` process; the script prints its wall time, the CPU time
it used (user + system, which a busy machine inflates less than the wall time), the best
``val_acc1`` and its epoch, and writes the same to ``benchmarks/results/NAME.log`` (``--result``,
default ``digits_main_job``) under a header. Run it on an idle machine:

    python benchmarks/digits_main_job.py ""                                # the defaults
    python benchmarks/digits_main_job.py "--epochs 15 --image-size 32" "--epochs 12 --image-size 24"
"""
from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _results


def run(options: str) -> dict:
    """One ``lucid train`` with ``options`` into a temporary folder: wall s, CPU s, best val_acc1 and epoch."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "lucid", "train", *shlex.split(options), "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    best = max(records, key=lambda r: r["val_acc1"])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"options": options or "(defaults)", "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "best_val_acc1": best["val_acc1"], "best_epoch": best["epoch"], "epochs": len(records)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("options", nargs="+", help="one quoted string of lucid train options per run ('' for the defaults)")
    _results.add_result_option(parser, "digits_main_job")
    args = parser.parse_args()
    with _results.recording(args.result) as figures:
        for options in args.options:
            result = run(options)
            print(json.dumps(result), flush=True)
            figures.append(f"{result['options']}: {result['wall_s']} s wall, best val_acc1 {result['best_val_acc1']:.4f} "
                           f"(epoch {result['best_epoch']} of {result['epochs']})")


if __name__ == "__main__":
    main()
