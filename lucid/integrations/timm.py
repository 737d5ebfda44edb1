"""timm by name: every lucid preset in timm's model registry as ``lucid_<preset>``.

After :func:`register`, ``timm.create_model("lucid_resnext_50_32x4d", pretrained=True,
num_classes=10)`` builds lucid's model, and timm's own scripts (``train.py``, ``validate.py``,
``benchmark.py``) take ``--model lucid_...``. timm has no plugin hook, so ``register()`` must
run in the process before the name is looked up: call it in your own script, or start timm's
scripts through a one-line wrapper that calls it first::

    python -c "import runpy, sys; from lucid.integrations.timm import register; register(); sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')" validate.py DATA --model lucid_resnet_18

Each published weight of a preset is registered as a timm tag (``lucid_resnet_50.imagenet1k_v2``),
so ``timm.list_models("lucid_*", pretrained=True)`` lists them and ``timm.models.get_pretrained_cfg``
describes their preprocessing. timm's keyword arguments map onto lucid's:

- ``pretrained``, ``pretrained_cfg`` (a tag, timm's or lucid's, or a cfg with ``tag``/``file``),
  ``pretrained_cfg_overlay`` (``file`` loads a local checkpoint; ``input_size``, ``crop_pct``,
  ``interpolation``, ``mean``, ``std`` override the preprocessing the model reports),
  ``cache_dir`` (where the download goes, as ``$LUCID_HOME`` does);
- ``num_classes`` (0: no classifier, ``forward`` returns pooled features), ``in_chans`` (config
  fields; published weights are adapted as :func:`lucid.weights.load_checkpoint` does), ``global_pool`` (``avg``, ``fast``, ``max``, or ``""``
  with ``num_classes=0``);
- ``drop_path_rate``: stochastic depth in every block, at that one rate (lucid's
  ``block_args["drop_path"]``; timm's ResNets raise it linearly over the blocks instead);
- ``drop_rate``: only 0, as lucid's classifier has no dropout;
- ``features_only``, ``out_indices``: timm's ``FeatureListNet`` over the model's
  ``feature_info`` (indices 0 stem, 1-4 stages; all five by default, as timm's ResNets);
- ``device``: where the model is put. Any other keyword is a config field, as for
  :func:`lucid.models.create_model`.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from ..core.errors import OptionError
from ..core.extras import require
from ..models.presets import ENTRY_POINTS, PRESETS, Preset, PretrainedWeights
from ..weights import load_checkpoint, load_pretrained

__all__ = ["PREFIX", "register", "timm_tag"]

PREFIX = "lucid_"
POOLS = {"avg": "avg", "fast": "avg", "max": "max", "": ""}  # timm's "fast" is an average pool too
PREPROCESSING_KEYS = ("input_size", "crop_pct", "interpolation", "mean", "std", "crop_mode")
ALL_FEATURES = (0, 1, 2, 3, 4)

# timm's register_model reads the registering module's ``default_cfgs``: each preset's tags, default first
default_cfgs: dict[str, Any] = {}


def timm_tag(tag: str) -> str:
    """The timm tag of a lucid weights tag: lower case, ``:`` and ``.`` as ``_`` (``IMAGENET1K_V2`` -> ``imagenet1k_v2``)."""
    return tag.lower().replace(":", "_").replace(".", "_")


def register() -> list[str]:
    """Register every lucid preset with timm as ``lucid_<preset>``; returns the names. Calling it again is harmless."""
    timm = require("timm", "timm", "lucid.integrations.timm.register()")
    names = []
    for preset in PRESETS.values():
        name = PREFIX + preset.name
        names.append(name)
        if name in globals():
            continue
        default_cfgs[name] = _default_cfg(timm, preset)
        entry = _entry_point(preset, name)
        globals()[name] = entry  # timm lists the name in this module's __all__
        timm.models.register_model(entry)
    return names


def _default_cfg(timm: Any, preset: Preset) -> Any:
    """timm's ``DefaultCfg`` for ``preset``: one ``PretrainedCfg`` per published weights, the default first."""
    weights = list(reversed(preset.weights))  # the table lists them oldest first and the last is the default
    cfgs = {timm_tag(w.tag): _pretrained_cfg(timm, w) for w in weights}
    return timm.models.DefaultCfg(tags=list(cfgs) or [""], cfgs=cfgs or {"": timm.models.PretrainedCfg()})


def _pretrained_cfg(timm: Any, weights: PretrainedWeights) -> Any:
    return timm.models.PretrainedCfg(
        url=weights.url if not weights.hf_hub_id else "",
        hf_hub_id=weights.hf_hub_id,
        num_classes=weights.num_classes,
        input_size=(3, weights.crop, weights.crop),
        pool_size=(weights.crop // 32, weights.crop // 32),
        crop_pct=weights.crop / weights.resize,
        interpolation=weights.interpolation,
        mean=tuple(weights.mean),
        std=tuple(weights.std),
        first_conv="stem.0",
        classifier="fc",
        license=weights.license,
        origin_url=weights.recipe or None,
    )


def _entry_point(preset: Preset, name: str) -> Callable[..., nn.Module]:
    def build(
        pretrained: bool = False,
        pretrained_cfg: Any = None,
        pretrained_cfg_overlay: Mapping[str, Any] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> nn.Module:
        cfg = _merged_cfg(pretrained_cfg, pretrained_cfg_overlay)
        return create(preset, pretrained=pretrained, cfg=cfg, cache_dir=cache_dir, **kwargs)

    build.__name__ = build.__qualname__ = name
    build.__module__ = __name__
    build.__doc__ = f"lucid's {preset.title} through timm (see :mod:`lucid.integrations.timm`)."
    return build


def _merged_cfg(pretrained_cfg: Any, overlay: Mapping[str, Any] | None) -> dict[str, Any]:
    """timm's ``pretrained_cfg`` (a tag, a dict or a ``PretrainedCfg``) with ``overlay`` over it, as one dict."""
    if pretrained_cfg is None or isinstance(pretrained_cfg, str):
        cfg = {"tag": pretrained_cfg} if pretrained_cfg else {}
    elif isinstance(pretrained_cfg, Mapping):
        cfg = dict(pretrained_cfg)
    elif hasattr(pretrained_cfg, "to_dict"):
        cfg = pretrained_cfg.to_dict()
    else:
        raise OptionError(f"pretrained_cfg must be a tag, a dict or a timm PretrainedCfg, got {type(pretrained_cfg).__name__}", "pretrained_cfg")
    return {**cfg, **dict(overlay or {})}


def create(
    preset: Preset, *, pretrained: bool = False, cfg: Mapping[str, Any] | None = None,
    cache_dir: str | os.PathLike[str] | None = None, **kwargs: Any,
) -> nn.Module:
    """``preset``'s model built from timm's keyword arguments (see the module's docstring)."""
    cfg = dict(cfg or {})
    features_only = kwargs.pop("features_only", False)
    out_indices = kwargs.pop("out_indices", ALL_FEATURES)
    global_pool = kwargs.pop("global_pool", None)
    device = kwargs.pop("device", None)
    headless = kwargs.get("num_classes") == 0  # timm's "no classifier": built with one, then removed
    if headless:
        del kwargs["num_classes"]
    model = ENTRY_POINTS[preset.name](**_config_arguments(kwargs))
    if pretrained:
        _load(model, preset, cfg, cache_dir)
    overlay = {k: cfg[k] for k in PREPROCESSING_KEYS if cfg.get(k) is not None}
    if overlay:
        model.pretrained_cfg_overlay = overlay
    if headless:
        model.reset_classifier(0)
    if global_pool is not None:
        _set_pool(model, global_pool)
    if device is not None:
        model.to(device=device)
    if features_only:
        timm = require("timm", "timm", "features_only=True")
        return timm.models.FeatureListNet(model, out_indices=out_indices)
    return model


def _config_arguments(kwargs: dict[str, Any]) -> dict[str, Any]:
    """timm's model arguments renamed to lucid's config fields; the rest pass through."""
    kwargs = dict(kwargs)
    drop_rate = kwargs.pop("drop_rate", 0.0)
    if drop_rate:
        raise OptionError(f"drop_rate={drop_rate!r}: lucid's classifier has no dropout; expected 0 (drop_path_rate sets stochastic depth)", "drop_rate")
    if "in_chans" in kwargs:
        kwargs["in_channels"] = kwargs.pop("in_chans")
    drop_path_rate = kwargs.pop("drop_path_rate", 0.0)
    if drop_path_rate:
        kwargs["block_args"] = {**kwargs.get("block_args", {}), "drop_path": drop_path_rate}
    return kwargs


def _load(model: nn.Module, preset: Preset, cfg: Mapping[str, Any], cache_dir: str | os.PathLike[str] | None) -> None:
    """Load ``cfg["file"]`` (a local checkpoint), else the published weights ``cfg["tag"]`` (default: the preset's default)."""
    if cfg.get("file"):
        load_checkpoint(model, cfg["file"])
        return
    with _cache_home(cache_dir):
        load_pretrained(model, preset.name, _lucid_tag(preset, cfg.get("tag")))


def _lucid_tag(preset: Preset, tag: str | None) -> str | None:
    """The lucid tag for a timm tag (``imagenet1k_v2``) or a lucid one (``IMAGENET1K_V2``); ``None``: the default."""
    if not tag:
        return None
    by_timm = {timm_tag(w.tag): w.tag for w in preset.weights}
    return by_timm.get(tag, tag)  # a lucid tag, or an unknown one that load_pretrained refuses with the list


@contextlib.contextmanager
def _cache_home(cache_dir: str | os.PathLike[str] | None) -> Iterator[None]:
    """Downloads under ``cache_dir`` for the duration (lucid's cache follows ``$LUCID_HOME``)."""
    if cache_dir is None:
        yield
        return
    before = os.environ.get("LUCID_HOME")
    os.environ["LUCID_HOME"] = str(Path(cache_dir))
    try:
        yield
    finally:
        if before is None:
            del os.environ["LUCID_HOME"]
        else:
            os.environ["LUCID_HOME"] = before


def _set_pool(model: nn.Module, global_pool: str) -> None:
    """timm's ``global_pool`` on a built model, keeping its classifier (and any weights loaded into it)."""
    if global_pool not in POOLS:
        raise OptionError(f"global_pool={global_pool!r}: lucid models pool with one of {sorted(POOLS)}", "global_pool")
    if POOLS[global_pool] == "":
        model.reset_classifier(model.num_classes, "")  # refuses a classifier without pooling
        return
    pool = nn.AdaptiveMaxPool2d if POOLS[global_pool] == "max" else nn.AdaptiveAvgPool2d
    model.avgpool = pool((1, 1))
