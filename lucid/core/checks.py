"""Validation helpers shared by every layer: each checks one value and names the field it came from.

Messages start with the field's name, then say what was received and what would be accepted, so
the command line can swap the field for its flag and print the message as one line.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from .constants import MAX_IMAGE_SIZE, MAX_INT
from .errors import ConfigError, ConfigTypeError, OptionError, OptionTypeError

__all__ = [
    "check_bool",
    "check_choice",
    "check_image_size",
    "check_int",
    "check_min_int",
    "check_number",
    "check_positive_int",
    "check_stage_values",
    "check_unit_interval",
    "describe",
    "is_int",
]


def describe(value: Any, limit: int = 80) -> str:
    """``repr`` of a value with its type, cut to ``limit`` characters, for error messages."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{text} ({type(value).__name__})"


def is_int(value: Any) -> bool:
    """True for Python and numpy integers, False for ``bool``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: Any, minimum: int = 0, maximum: int = MAX_INT) -> int:
    """``value`` as an ``int`` after checking it is an integer in [minimum, maximum]."""
    if not is_int(value):
        raise ConfigTypeError(f"{name} must be an int between {minimum} and {maximum}; got {describe(value)}", name)
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be an int between {minimum} and {maximum}; got {describe(value)}", name)
    return int(value)


def check_min_int(name: str, value: Any, minimum: int) -> int:
    """``value`` as an ``int`` after checking it is an integer of at least ``minimum`` (an option, not a config field)."""
    if not is_int(value) or value < minimum:
        error = OptionTypeError if not is_int(value) else OptionError
        raise error(f"{name} must be an int >= {minimum}, got {value!r}", name)
    return int(value)


def check_positive_int(name: str, value: Any, maximum: int = MAX_INT) -> int:
    """``value`` as an ``int`` after checking it is a positive integer (at most ``maximum``)."""
    if not is_int(value):
        raise ConfigTypeError(f"{name} must be greater than 0 (a positive int); got {describe(value)}", name)
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0; got {value!r}", name)
    if value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}; got {describe(value)}", name)
    return int(value)


def check_number(name: str, value: Any, minimum: float = -math.inf, maximum: float = math.inf) -> float:
    """``value`` as a float after checking it is a finite real number in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigTypeError(f"{name} must be a number between {minimum} and {maximum}; got {describe(value)}", name)
    if not (math.isfinite(value) and minimum <= value <= maximum):
        raise ConfigError(f"{name} must be a finite number between {minimum} and {maximum}; got {describe(value)}", name)
    return float(value)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``, else a ConfigError listing them."""
    options = tuple(choices)
    if value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise ConfigError(f"{name} must be one of {listed}; got {describe(value)}", name)
    return value


def check_stage_values(name: str, value: Any, what: str, count: int) -> tuple[int, ...]:
    """``value`` as a tuple of ``count`` positive ints, one per stage; ``what`` is "depths" or "widths"."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigTypeError(
            f"{name} must contain exactly {count} stage {what}; got {describe(value)}, expected a list of {count} positive ints", name
        )
    items = tuple(value)
    if len(items) != count:
        raise ConfigError(f"{name} must contain exactly {count} stage {what}; got {len(items)}: {describe(list(items))}", name)
    bad = [i for i, item in enumerate(items) if not is_int(item) or not 0 < item <= MAX_INT]
    if bad:
        raise ConfigError(
            f"{name} values must be positive integers; got {name}[{bad[0]}]={describe(items[bad[0]])}", name
        )
    return tuple(int(i) for i in items)


def check_unit_interval(name: str, value: Any) -> float:
    """``value`` as a float after checking it is a finite number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigTypeError(f"{name} must be a number in [0, 1); got {describe(value)}", name)
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise ConfigError(f"{name} must be a finite number in [0, 1); got {value!r}", name)
    return float(value)


def check_bool(name: str, value: Any) -> None:
    """Raise unless ``value`` is a ``bool``."""
    if not isinstance(value, bool):
        raise ConfigTypeError(f"{name} must be True or False; got {describe(value)}", name)


def check_image_size(value: Any, name: str = "image_size") -> int:
    """``value`` if it is an int in [8, MAX_IMAGE_SIZE] (pixels), else a ConfigError naming ``name``."""
    if not is_int(value) or not 8 <= value <= MAX_IMAGE_SIZE:
        raise ConfigError(f"{name} must be an int between 8 and {MAX_IMAGE_SIZE} (pixels), got {describe(value)}", name)
    return int(value)
