"""The GPU training benchmark script runs end to end at tiny sizes on the CPU (--dry-run)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_train_pipeline_dry_run_runs_every_step(tmp_path: Path) -> None:
    pytest.importorskip("webdataset")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_train_pipeline.py"), "--dry-run"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    text = done.stdout
    for row in ("model (synthetic batches on the device)", "input pipeline, CPU decode", "training from shards, CPU decode",
                "input pipeline, GPU decode", "training from shards, GPU decode"):
        assert f"| {row} |" in text
    assert "DDP: 2 processes on cpu" in text and "every sample once per epoch: True" in text
