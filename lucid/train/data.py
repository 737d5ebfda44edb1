"""Older import path of the datasets and transforms; they live in :mod:`lucid.data`."""
from ..data.folder import *  # noqa: F403
from ..data.folder import __all__  # noqa: F401
