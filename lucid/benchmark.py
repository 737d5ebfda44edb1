"""Older import path of :mod:`lucid.bench` (the benchmark harness of ``lucid bench`` and ``benchmarks/``)."""
from .bench import *  # noqa: F403
from .bench import __all__  # noqa: F401
