"""Older import path of :mod:`lucid.bench` (the benchmark harness of ``lucid bench`` and ``benchmarks/``)."""
from __future__ import annotations

from .bench.contenders import (
    infer_contenders,
    lucid_infer,
    lucid_train,
    peer_infer,
    peer_train,
    runtime_contenders,
    scaling_rows,
    train_contenders,
)
from .bench.measure import Contender, Result, measure
from .bench.models import PEERS, calibration_set, describe, make_batch, peer_models, randomize_batchnorm
from .bench.report import format_scaling, format_table, machine_summary, ratio_lines
from .bench.runtimes import Bind, onnx_models, openvino_model, ort_session, runtime_runners, runtime_threads, runtimes_installed

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
