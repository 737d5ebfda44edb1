"""Older import path of lucid's constants; they live in :mod:`lucid.core.constants`."""
from .core.constants import *  # noqa: F403
from .core.constants import __all__  # noqa: F401
