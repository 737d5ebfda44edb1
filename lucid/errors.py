"""Older import path of lucid's error types; they live in :mod:`lucid.core.errors`."""
from .core.errors import *  # noqa: F403
from .core.errors import __all__  # noqa: F401
