"""Optional dependencies: import one by name, or refuse in one line naming the extra that installs it."""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["require"]


def require(module: str, extra: str, feature: str | None = None) -> ModuleType:
    """Import ``module``; if it is missing, raise :class:`MissingDependencyError` naming ``lucid[extra]``.

    ``feature`` says what needed it (``"lucid export --format onnx"``), so the message tells the
    user both why and how to fix it.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        root = module.split(".")[0]
        if e.name is not None and e.name.split(".")[0] != root:
            raise  # the package is there but one of its own imports failed: show that traceback
        what = feature or module
        raise MissingDependencyError(f'{what} needs the optional package {root!r}: pip install "lucid[{extra}]"') from None
