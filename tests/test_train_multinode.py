"""Two nodes on one machine: two ``torchrun`` agents (c10d rendezvous on 127.0.0.1), one CPU process each.

The first run checks that an epoch gives every training sample to exactly one process. The second
is the same command, but the process of rank 1 SIGKILLs itself in the middle of the first epoch
(``LUCID_KILL_AT``, on the first attempt only): the agents restart both processes
(``--max-restarts 1``), ``--resume auto`` continues from the last ``--save-every`` state, and the
run ends with the first run's weights, bit for bit.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_train import COLOURS, TINY_ARGS, write_png_folder
from test_train_resume import assert_same_run

ROOT = Path(__file__).resolve().parents[1]
TRAIN_IMAGES = 16 * len(COLOURS)  # 48: 24 per process, 6 batches of 4 per epoch
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The training data of every run here (the one place that says its format): an image folder of tiny PNGs."""
    root = tmp_path_factory.mktemp("data")
    write_png_folder(root / "train", {c: TRAIN_IMAGES // len(COLOURS) for c in COLOURS}, seed=1)
    write_png_folder(root / "val", {c: 2 for c in COLOURS}, seed=2)
    return root


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_two_nodes(data: Path, out: Path, log: Path, **env: str) -> list[subprocess.CompletedProcess]:
    """Start the two agents (node ranks 0 and 1) on the same command and wait for both."""
    port = _free_port()
    log.mkdir()
    train = ["-m", "lucid", "train", "--data", str(data), *TINY_ARGS, "--image-size", "32", "--epochs", "2", "--batch-size", "4",
             "--amp", "off", "--workers", "0", "--lr", "0.005", "--save-every", "2", "--out", str(out), "--resume", "auto"]
    # A fresh process-group store in each rendezvous round: with the agents' shared store (torch's default), the
    # processes of a restarted round can read the addresses of the killed round's processes and fail to connect.
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "LUCID_SAMPLE_LOG": str(log),
               "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1", **env}
    agents = []
    for node in (0, 1):
        argv = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node-rank={node}", "--nproc-per-node=1",
                "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=lucid-test", f"--rdzv-conf=is_host={int(node == 0)}",
                "--local-addr=127.0.0.1", "--max-restarts=1", *train]
        agents.append(subprocess.Popen(argv, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True))
    results = []
    try:
        for agent in agents:
            stdout, stderr = agent.communicate(timeout=150)
            results.append(subprocess.CompletedProcess(agent.args, agent.returncode, stdout, stderr))
    finally:
        for agent in agents:  # on a timeout, stop both agents and their processes
            if agent.poll() is None:
                os.killpg(agent.pid, signal.SIGKILL)
    return results


def read_log(log: Path) -> list[dict]:
    return [json.loads(line) for file in sorted(log.glob("samples-rank*.jsonl")) for line in file.read_text().splitlines()]


def _check(results: list[subprocess.CompletedProcess]) -> None:
    for node, result in enumerate(results):
        why = [line for line in result.stderr.splitlines() if any(k in line for k in ("Error", "error", "terminate"))]
        assert result.returncode == 0, f"node {node}:\n" + "\n".join(why[-15:]) + "\n...\n" + result.stderr[-3000:]


@pytest.fixture(scope="module")
def uninterrupted(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    folder = tmp_path_factory.mktemp("uninterrupted")
    results = run_two_nodes(data, folder / "run", folder / "log")
    _check(results)
    return folder / "run", read_log(folder / "log")


def test_each_epoch_gives_every_sample_to_exactly_one_process(uninterrupted: tuple[Path, list[dict]]) -> None:
    out, records = uninterrupted
    assert sorted((r["epoch"], r["rank"]) for r in records) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    orders = []
    for epoch in (0, 1):
        seen = [i for r in records if r["epoch"] == epoch for i in r["indices"]]
        assert sorted(seen) == list(range(TRAIN_IMAGES)), epoch  # each sample once, over both processes
        orders.append(seen)
    assert orders[0] != orders[1]  # reshuffled per epoch
    assert (out / "model.safetensors").is_file()


def test_a_worker_killed_mid_epoch_is_restarted_and_the_run_ends_bit_identical(data: Path, uninterrupted: tuple[Path, list[dict]],
                                                                               tmp_path: Path) -> None:
    # Rank 1 dies after optimizer step 5 of 12 (epoch 1, batch 5 of 6); the last state is that of step 4.
    results = run_two_nodes(data, tmp_path / "run", tmp_path / "log", LUCID_KILL_AT="1:5")
    _check(results)
    records = read_log(tmp_path / "log")
    # (An agent that restarts its healthy process because the other node left keeps its restart count, so tell
    # the attempts apart by where they started.)
    first = {r["rank"]: r for r in records if r["epoch"] == 0 and r["start"] == 0}
    resumed = {r["rank"]: r for r in records if r["epoch"] == 0 and r["start"] > 0}
    assert sorted(first) == sorted(resumed) == [0, 1]  # both processes were restarted
    assert sum(r["epoch"] == 0 for r in records) == 4
    for rank in (0, 1):  # ... and went on at the first batch after the saved state, with the same samples
        assert resumed[rank]["start"] == 4 * 4
        assert resumed[rank]["indices"] == first[rank]["indices"][16:]
    assert_same_run(uninterrupted[0], tmp_path / "run")
