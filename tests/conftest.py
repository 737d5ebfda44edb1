"""Shared fixtures: small configs that build and run in milliseconds."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _isolated_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test gets its own weights cache (``LUCID_HOME``) and undoes the weights it registers."""
    from lucid.weights import temporary_registrations

    monkeypatch.setenv("LUCID_HOME", str(tmp_path / "lucid-home"))
    with temporary_registrations():
        yield


TINY = dict(layers=[1, 1, 1, 1], channels=[8, 16, 32, 64])


@pytest.fixture
def tiny_resnext():
    """A ResNeXt with the spec's stem options, small enough for gradient and behaviour tests."""
    from lucid.models import ResNeXt, ResNeXtConfig

    cfg = ResNeXtConfig(cardinality=4, base_width=32, num_classes=5, in_channels=1, stem_type="deep", stem_width=8, **TINY)
    return ResNeXt(cfg)
