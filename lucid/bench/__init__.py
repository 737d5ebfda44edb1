"""lucid's benchmark harness: the speed of lucid and its peers (torchvision, timm, ONNX Runtime, OpenVINO)
on the same weights and the same input.

Used by ``lucid bench`` and the scripts under ``benchmarks/``. Every contender gets the same
batch and the same weights (lucid's, renamed for the peers by :func:`lucid.checkpoints.convert`,
or lucid's own ONNX export for the deployment runtimes), is warmed up first (oneDNN and cuDNN
pick and cache kernels on their first calls at a shape), and is then timed one call at a time
in interleaved rounds, so that load from other processes hits every contender alike. Reported:
median images/s, peak memory and the ratio to each peer.
"""
from __future__ import annotations

from .contenders import (
    infer_contenders,
    lucid_infer,
    lucid_train,
    peer_infer,
    peer_train,
    runtime_contenders,
    scaling_rows,
    train_contenders,
)
from .measure import Contender, Result, measure
from .models import PEERS, calibration_set, describe, make_batch, peer_models, randomize_batchnorm
from .report import format_scaling, format_table, machine_summary, ratio_lines
from .runtimes import Bind, onnx_models, openvino_model, ort_session, runtime_runners, runtime_threads, runtimes_installed

__all__ = [
    "Bind",
    "Contender",
    "PEERS",
    "Result",
    "calibration_set",
    "describe",
    "format_scaling",
    "format_table",
    "infer_contenders",
    "lucid_infer",
    "lucid_train",
    "machine_summary",
    "make_batch",
    "measure",
    "onnx_models",
    "openvino_model",
    "ort_session",
    "peer_infer",
    "peer_models",
    "peer_train",
    "randomize_batchnorm",
    "ratio_lines",
    "runtime_contenders",
    "runtime_runners",
    "runtime_threads",
    "runtimes_installed",
    "scaling_rows",
    "train_contenders",
]
