"""Shared machinery of lucid's model configs: validation helpers and JSON round-trips.

Validation messages start with the phrase the original lucid used (so code that matches on
them keeps working), then say what was received and what would be accepted.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from ..core.checks import (  # noqa: F401  (re-exported: older code imports the helpers from here)
    check_bool,
    check_positive_int,
    check_stage_values,
    check_unit_interval,
    describe,
    is_int,
)
from ..core.errors import ConfigError, ConfigTypeError
from ..core.fileio import atomic_write_text

C = TypeVar("C", bound="ModelConfig")

LIBRARY_NAME = "lucid"


class ModelConfig:
    """Mixin for config dataclasses: validation hook plus dict/JSON round-trips.

    Subclasses are dataclasses that set ``model_type`` (``"lucid.<family>"``, the key of the
    model class they configure in a ``config.json``) and implement ``validate()``.
    ``legacy_model_types`` lists older spellings still read from saved folders.
    """

    model_type: ClassVar[str]
    legacy_model_types: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:  # pragma: no cover - every subclass overrides
        """Check (and normalise) every field, raising :class:`~lucid.errors.ConfigError` naming it."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: tuples become lists; ``model_type`` and ``library_name`` are added."""
        data: dict[str, Any] = {"model_type": self.model_type, "library_name": LIBRARY_NAME}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, field.name)
            data[field.name] = list(value) if isinstance(value, tuple) else value
        return data

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Build a config from :meth:`to_dict` output; unknown keys are refused by name."""
        if not isinstance(data, dict):
            raise ConfigTypeError(f"{cls.__name__}.from_dict needs a dict of config fields; got {describe(data)}")
        data = cls.migrate(dict(data))
        model_type = data.pop("model_type", cls.model_type)
        data.pop("library_name", None)
        if model_type not in (cls.model_type, *cls.legacy_model_types):
            raise ConfigError(f"model_type {model_type!r} does not match {cls.__name__} (expects {cls.model_type!r})", "model_type")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigTypeError(f"{cls.__name__} has no field(s) {unknown}; known fields: {sorted(names)}", unknown[0])
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING  # type: ignore[arg-type]
                    and f.default_factory is dataclasses.MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise ConfigTypeError(f"{cls.__name__} needs the field(s) {missing}; got {sorted(data)}", missing[0])
        return cls(**data)

    @classmethod
    def migrate(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Rewrite a dict saved by an older lucid into today's fields (subclasses override)."""
        return data

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
