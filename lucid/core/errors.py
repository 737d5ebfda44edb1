"""lucid's error types: one base, :class:`LucidError`, for every refusal of bad input.

Each subclasses the built-in exception that code written against plain Python expects
(``ValueError`` for a bad value, ``TypeError`` for a value of the wrong kind, ``ImportError``
for a missing package), so ``except ValueError`` keeps working, while the command line reports
any :class:`LucidError` as one line and lets every other exception (a bug) show its traceback.
"""
from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ConfigTypeError",
    "DataError",
    "LucidError",
    "MissingDependencyError",
    "OptionError",
    "OptionTypeError",
    "ResourceError",
]


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


class OptionError(ConfigError):
    """An option of a command or function (not a model field) with a value lucid cannot use."""


class OptionTypeError(OptionError, TypeError):
    """An option of a command or function of the wrong type."""


class CheckpointError(LucidError, ValueError):
    """A weight file, model folder, run state or exported artefact that cannot be used, with the reason spelled out."""


class DataError(LucidError, ValueError):
    """A dataset that cannot be used (missing, empty, no class folders, mismatched classes, bad shards)."""


class ResourceError(LucidError, MemoryError):
    """A request whose memory or size would exceed what lucid allows or the machine has."""


class MissingDependencyError(LucidError, ImportError):
    """An optional package that a feature needs is not installed; the message names the extra to install."""
