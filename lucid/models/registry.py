"""The model registry: every preset by name, in the spirit of timm's ``create_model``."""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from torch import nn

from ..core.errors import ConfigError, ConfigTypeError

if TYPE_CHECKING:
    from .presets import Preset

__all__ = ["register_model", "list_models", "create_model", "build_preset", "set_weights_loader"]

_PRESETS: dict[str, Callable[..., nn.Module]] = {}
F = TypeVar("F", bound=Callable[..., nn.Module])
WeightsLoader = Callable[[nn.Module, str, Any], nn.Module]
_WEIGHTS_LOADER: list[WeightsLoader] = []


def register_model(fn: F) -> F:
    """Decorator: make a model function reachable by its name through :func:`create_model`."""
    if fn.__name__ in _PRESETS:
        raise ValueError(f"a model named {fn.__name__!r} is already registered")
    _PRESETS[fn.__name__] = fn
    return fn


def natural_key(name: str) -> list[Any]:
    """Sort key that orders embedded numbers by value: resnet_18 < resnet_50 < resnet_101."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names in natural order, optionally filtered by a shell-style pattern such as ``"resnext*"``."""
    names = sorted(_PRESETS, key=natural_key)
    return names if pattern is None else [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def get_preset(name: str) -> Callable[..., nn.Module]:
    """The model function registered under ``name``; unknown names get close suggestions."""
    try:
        return _PRESETS[name]
    except KeyError:
        close = _close_names(name)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"unknown model {name!r}{hint} (see lucid.models.list_models())", "model") from None


def _close_names(name: str, n: int = 3) -> list[str]:
    """Names resembling ``name``, ignoring case and underscores; prefix matches first."""
    normal = {key.replace("_", "").lower(): key for key in _PRESETS}
    query = name.replace("_", "").lower()
    prefixed = sorted((k for k in normal if k.startswith(query) or query.startswith(k)), key=natural_key)
    similar = difflib.get_close_matches(query, normal, n=n, cutoff=0.5)
    return [normal[k] for k in dict.fromkeys(prefixed + similar)][:n]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model ``name``; keyword arguments go to its function (and from there to its config)."""
    return get_preset(name)(**kwargs)


def set_weights_loader(loader: WeightsLoader) -> None:
    """Install what ``pretrained=True`` / ``weights=TAG`` call: ``loader(model, preset_name, tag)``.

    :mod:`lucid.weights` installs its ``load_pretrained`` when it is imported, so the model
    layer never imports the weights layer.
    """
    _WEIGHTS_LOADER[:] = [loader]


def _load_weights(model: nn.Module, name: str, tag: Any) -> nn.Module:
    if not _WEIGHTS_LOADER:
        importlib.import_module("lucid.weights")  # installs its loader
    return _WEIGHTS_LOADER[0](model, name, tag)


def build_preset(preset: Preset, num_classes: int, kwargs: dict[str, Any]) -> nn.Module:
    """Shared body of the preset functions.

    ``kwargs`` may set any config field except the preset's fixed ones; its ``block_args``
    merge over the preset's own; ``pretrained`` / ``weights`` load published weights.
    """
    kwargs = dict(kwargs)
    pretrained, weights = kwargs.pop("pretrained", False), kwargs.pop("weights", None)
    _refuse_fixed(preset, kwargs)
    config_class = preset.model.config_class
    if "block_args" in kwargs and isinstance(kwargs["block_args"], dict):
        kwargs["block_args"] = {**preset.block_args, **kwargs["block_args"]}
    config = config_class(**{**preset.config, "num_classes": num_classes, **kwargs})
    model = preset.model(config)
    if preset.weights:  # what pretrained_cfg describes until weights are loaded: the default (last) ones, as in timm
        model.default_weights = preset.weights[-1].to_metadata()
    if pretrained or weights is not None:
        _load_weights(model, preset.name, weights)
    return model


def _refuse_fixed(preset: Preset, kwargs: dict[str, Any]) -> None:
    fixed = preset.fixed
    overridden = sorted(set(kwargs) & set(fixed))
    if isinstance(kwargs.get("block_args"), dict):  # a ResNeXt's fixed widths cannot come in through block_args
        overridden += sorted(set(kwargs["block_args"]) & set(fixed) - {"block", "layers"})
    if overridden:
        what = "preset layers, cardinality, or base_width" if "cardinality" in fixed else "preset block or layers"
        config_name = preset.model.config_class.__name__
        raise ConfigTypeError(
            f"factory variants do not allow overriding {what}: {preset.name}() fixes "
            f"{', '.join(f'{k}={_fixed_value(preset, k)!r}' for k in fixed)} and got {', '.join(overridden)}; "
            f"build a {config_name} yourself to change them",
            overridden[0],
        )
    fields = {f.name for f in dataclasses.fields(preset.model.config_class)}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        allowed = sorted(fields - set(fixed) - {"num_classes"})
        hint = "; grouped-convolution settings (cardinality, base_width) go in block_args" if {"cardinality", "base_width"} & set(unknown) else ""
        raise ConfigTypeError(
            f"{preset.name}() got unexpected argument(s) {unknown}; config fields it accepts: {allowed}{hint}", unknown[0]
        )


def _fixed_value(preset: Preset, key: str) -> Any:
    value = preset.config[key]
    return list(value) if isinstance(value, tuple) else value
