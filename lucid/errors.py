"""lucid's own error types: the command line reports these as one line (a bug shows its traceback)."""
from __future__ import annotations

__all__ = ["ConfigError", "ConfigTypeError", "LucidError"]


class LucidError(Exception):
    """Base of every error lucid raises for input the user can fix."""


class ConfigError(LucidError, ValueError):
    """A setting with a value that cannot work; ``field`` names the setting."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class ConfigTypeError(ConfigError, TypeError):
    """A setting of the wrong type."""
