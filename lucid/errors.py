"""lucid's error types, shared by every layer.

Each subclasses the built-in exception that code written against plain Python expects
(``ValueError`` for a bad value, ``TypeError`` for a value of the wrong kind), so
``except ValueError`` keeps working, while the command line can tell lucid's own
"bad input" errors from bugs and report them in one line.
"""
from __future__ import annotations

__all__ = ["LucidError", "ConfigError", "ConfigTypeError", "CheckpointError"]


class LucidError(Exception):
    """Base of the errors lucid raises for input it cannot use (never for its own bugs)."""


class ConfigError(LucidError, ValueError):
    """A config field (or model argument) with a value lucid cannot build.

    ``field`` names the offending field, so callers such as the command line can map it
    to their own option names.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ConfigTypeError(ConfigError, TypeError):
    """A config field (or model argument) of the wrong type."""


class CheckpointError(LucidError, ValueError):
    """A weight file, model folder or state dict that cannot be used, with the reason spelled out."""
