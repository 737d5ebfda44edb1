"""Shared machinery of lucid's model configs: validation helpers and JSON round-trips."""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .._atomic import atomic_write_text

C = TypeVar("C", bound="ModelConfig")


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_positive_int(name: str, value: Any) -> None:
    """Raise if ``value`` is not a positive ``int`` (``bool`` is refused too)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive int, got {_describe(value)}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_four_positive_ints(name: str, value: Any) -> tuple[int, ...]:
    """Return ``value`` as a tuple after checking it holds exactly four positive ints."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a sequence of 4 positive ints (one per stage), got {_describe(value)}")
    items = tuple(value)
    if len(items) != 4:
        raise ValueError(f"{name} must have exactly 4 entries (one per stage), got {len(items)}: {list(items)!r}")
    for i, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
            raise ValueError(f"{name}[{i}] must be a positive int, got {_describe(item)} in {list(items)!r}")
    return items


def check_choice(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}; got {value!r}")


class ModelConfig:
    """Mixin for config dataclasses: validation hook plus dict/JSON round-trips.

    Subclasses are dataclasses that set ``model_type`` (the registry key of the
    model class they configure) and implement ``validate()``.
    """

    model_type: ClassVar[str]

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:  # pragma: no cover - every subclass overrides
        """Check every field, raising ``TypeError``/``ValueError`` that name the field; called on creation."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: tuples become lists, and ``model_type`` is added."""
        data: dict[str, Any] = {"model_type": self.model_type}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            data[field.name] = list(value) if isinstance(value, tuple) else value
        return data

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Build a config from :meth:`to_dict` output; unknown keys are refused by name."""
        data = dict(data)
        model_type = data.pop("model_type", cls.model_type)
        if model_type != cls.model_type:
            raise ValueError(f"model_type {model_type!r} does not match {cls.__name__} (expects {cls.model_type!r})")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise TypeError(f"{cls.__name__} has no field(s) {unknown}; known fields: {sorted(names)}")
        return cls(**data)

    def to_json(self) -> str:
        """The :meth:`to_dict` form as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    def save_json(self, path: str | os.PathLike[str]) -> None:
        """Write the config as JSON atomically (temporary file, then rename)."""
        atomic_write_text(Path(path), self.to_json() + "\n")

    @classmethod
    def from_json(cls: type[C], text: str) -> C:
        """Build a config from :meth:`to_json` text."""
        return cls.from_dict(json.loads(text))

    def replace(self: C, **changes: Any) -> C:
        """A copy with some fields changed (validated like any new config)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
