"""The model registry: every preset by name, in the spirit of timm's ``create_model``."""
from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from ..core.errors import ConfigError

__all__ = ["register_model", "list_models", "create_model", "get_preset"]

_MODEL_FUNCTIONS: dict[str, Callable[..., nn.Module]] = {}  # name -> the function that builds it
F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(fn: F) -> F:
    """Decorator: make a model function reachable by its name through :func:`create_model`."""
    if fn.__name__ in _MODEL_FUNCTIONS:
        raise ConfigError(f"a model named {fn.__name__!r} is already registered", "name")
    _MODEL_FUNCTIONS[fn.__name__] = fn
    return fn


def natural_key(name: str) -> list[Any]:
    """Sort key that orders embedded numbers by value: resnet_18 < resnet_50 < resnet_101."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names in natural order, optionally filtered by a shell-style pattern such as ``"resnext*"``."""
    names = sorted(_MODEL_FUNCTIONS, key=natural_key)
    return names if pattern is None else [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def get_preset(name: str) -> Callable[..., nn.Module]:
    """The model function registered under ``name``; unknown names get close suggestions."""
    try:
        return _MODEL_FUNCTIONS[name]
    except KeyError:
        close = _close_names(name)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"unknown model {name!r}{hint} (see lucid.models.list_models())", "model") from None


def _close_names(name: str, n: int = 3) -> list[str]:
    """Names resembling ``name``, ignoring case and underscores; prefix matches first."""
    normal = {key.replace("_", "").lower(): key for key in _MODEL_FUNCTIONS}
    query = name.replace("_", "").lower()
    prefixed = sorted((k for k in normal if k.startswith(query) or query.startswith(k)), key=natural_key)
    similar = difflib.get_close_matches(query, normal, n=n, cutoff=0.5)
    return [normal[k] for k in dict.fromkeys(prefixed + similar)][:n]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model ``name``; keyword arguments go to its function (and from there to its config)."""
    return get_preset(name)(**kwargs)
