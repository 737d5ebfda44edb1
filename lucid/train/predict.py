"""Older import path of loading, evaluating and predicting with trained runs; they live in :mod:`lucid.inference`."""
from ..inference.predict import *  # noqa: F403
from ..inference.predict import __all__  # noqa: F401
