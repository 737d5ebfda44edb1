"""Messages to the person running lucid: one line each, on stderr, next to the progress output."""
from __future__ import annotations

import sys

__all__ = ["warn"]


def warn(message: str) -> None:
    """A warning line on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
