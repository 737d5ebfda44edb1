"""The model registry: every preset by name, in the spirit of timm's ``create_model``."""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
from typing import Any, Callable, TypeVar

from torch import nn

__all__ = ["register_model", "list_models", "create_model", "build_preset"]

_PRESETS: dict[str, Callable[..., nn.Module]] = {}
F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(fn: F) -> F:
    """Decorator: make a preset function reachable by its name through :func:`create_model`."""
    if fn.__name__ in _PRESETS:
        raise ValueError(f"a model named {fn.__name__!r} is already registered")
    _PRESETS[fn.__name__] = fn
    return fn


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted preset names, optionally filtered by a shell-style pattern such as ``"resnext*"``."""
    names = sorted(_PRESETS)
    return names if pattern is None else [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def get_preset(name: str) -> Callable[..., nn.Module]:
    """The preset function registered under ``name``; unknown names get close suggestions."""
    try:
        return _PRESETS[name]
    except KeyError:
        close = _close_names(name)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}{hint} (see lucid.models.list_models())") from None


def _close_names(name: str, n: int = 3) -> list[str]:
    """Presets resembling ``name``, ignoring case and underscores; prefix matches first."""
    normal = {key.replace("_", "").lower(): key for key in _PRESETS}
    query = name.replace("_", "").lower()
    prefixed = sorted(k for k in normal if k.startswith(query) or query.startswith(k))
    similar = difflib.get_close_matches(query, normal, n=n, cutoff=0.5)
    return [normal[k] for k in dict.fromkeys(prefixed + similar)][:n]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the preset ``name``; keyword arguments go to the preset (and from there to its config)."""
    return get_preset(name)(**kwargs)


def build_preset(name: str, model_cls: type, defining: dict[str, Any], num_classes: int, kwargs: dict[str, Any]) -> Any:
    """Shared body of the preset functions.

    ``defining`` holds the fields that make the preset what it is; ``kwargs`` may set any
    other config field, plus ``pretrained`` / ``weights`` to load published weights.
    """
    pretrained = kwargs.pop("pretrained", False)
    weights = kwargs.pop("weights", None)
    clash = sorted(set(kwargs) & set(defining))
    if clash:
        raise TypeError(
            f"{name}() fixes {', '.join(f'{k}={defining[k]!r}' for k in clash)}; "
            f"build a {model_cls.config_class.__name__} yourself to change {'it' if len(clash) == 1 else 'them'}"
        )
    fields = {f.name for f in dataclasses.fields(model_cls.config_class)}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        allowed = sorted(fields - set(defining) - {"num_classes"})
        raise TypeError(f"{name}() got unexpected argument(s) {unknown}; config fields it accepts: {allowed}")
    config = model_cls.config_class(**defining, num_classes=num_classes, **kwargs)
    model = model_cls(config)
    if pretrained or weights is not None:
        from ..weights import load_pretrained

        load_pretrained(model, name, weights)
    return model
