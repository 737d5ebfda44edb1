"""The GPU training benchmark script runs end to end at tiny sizes on the CPU (--dry-run)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_train_pipeline_dry_run_runs_every_step(tmp_path: Path) -> None:
    pytest.importorskip("webdataset")
    out = tmp_path / "result.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_train_pipeline.py"), "--dry-run", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    text = out.read_text()
    for row in ("model (synthetic batches on the device)", "input pipeline, CPU decode", "training from shards, CPU decode",
                "input pipeline, GPU decode", "training from shards, GPU decode"):
        assert f"| {row} |" in text
    assert "DDP: 2 processes on cpu" in text and "every sample once per epoch: True" in text
