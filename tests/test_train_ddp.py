"""Two-process DistributedDataParallel training on CPU (gloo over loopback): trains, reduces, writes once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import COLOURS, TINY_ARGS, write_png_folder

pytestmark = pytest.mark.slow  # two processes each: torchrun and the built-in launcher

ROOT = Path(__file__).resolve().parents[1]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("launcher", ["torchrun", "nproc"])
def test_two_process_gloo_run_trains_and_only_rank_0_writes(launcher: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_png_folder(data / "train", {c: 8 for c in COLOURS}, seed=1)
    write_png_folder(data / "val", {c: 3 for c in COLOURS}, seed=2)  # 9 images: uneven over 2 ranks
    out = tmp_path / "out"
    train = ["train", "--data", str(data), *TINY_ARGS, "--image-size", "32", "--epochs", "2", "--batch-size", "4",
             "--amp", "off", "--workers", "0", "--lr", "0.005", "--out", str(out)]
    if launcher == "torchrun":
        argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "lucid", *train]
    else:
        argv = [sys.executable, "-m", "lucid", *train, "--nproc", "2"]
    proc = _run(argv, tmp_path)
    # keep the lines that say why a rank died (gloo/C++ aborts print "terminate"/"what()") plus the tail
    why = [line for line in proc.stderr.splitlines() if any(k in line for k in ("terminate", "what()", "Error", "error"))]
    assert proc.returncode == 0, "\n".join(why[-20:]) + "\n...\n" + proc.stderr[-2000:]
    assert "x2" in proc.stdout  # the banner reports the world size
    assert proc.stdout.count("lucid train: best val_acc1") == 1  # printed by rank 0 only
    assert sorted(p.name for p in out.iterdir()) == [".lock", "README.md", "config.json", "last.pt", "metrics.jsonl", "model.safetensors"]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]  # one writer: no duplicated lines
    # Each rank sees 12 of the 24 training images (3 steps of 4); the reduced figures cover all 9 validation
    # images: re-evaluating the saved best model in one process gives the logged accuracy exactly.
    best = max(records, key=lambda r: r["val_acc1"])
    ev = _run([sys.executable, "-m", "lucid", "eval", str(out), "--data", str(data), "--json"], tmp_path)
    assert ev.returncode == 0, ev.stderr
    result = json.loads(ev.stdout)
    assert result["count"] == 9
    assert result["acc1"] == pytest.approx(best["val_acc1"])
    assert result["loss"] == pytest.approx(best["val_loss"], rel=1e-4)
