"""Shared fixtures: small configs that build and run in milliseconds; shared helpers live in helpers.py."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from helpers import make_folder


def pytest_configure(config: pytest.Config) -> None:
    """One intra-op thread per test process, and for the processes the tests start.

    The suite's models are tiny: a second OpenMP thread gains little on them, and on a busy 2-core
    machine spinning threads made training steps 10-30x slower. The test runner uses the cores by
    running pytest processes side by side instead (scripts/run_tests.py). ``OMP_NUM_THREADS`` set
    by the caller is kept.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session", autouse=True)
def _temporary_files_under_pytests_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Temporary files of the tests, of the code they run and of the processes they start (documentation
    examples, torchrun agents, exporters) go under pytest's own temporary folder, which pytest prunes,
    instead of accumulating in /tmp. PyTorch's compiled-kernel cache stays where it was, shared by
    the test processes."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    folder = str(tmp_path_factory.mktemp("tmp"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCHINDUCTOR_CACHE_DIR", os.environ.get("TORCHINDUCTOR_CACHE_DIR", default_cache_dir()))
        patch.setenv("TMPDIR", folder)
        patch.setattr(tempfile, "tempdir", folder)
        yield


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


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny train/val PNG folder of helpers.make_folder, made once per module."""
    return make_folder(tmp_path_factory.mktemp("images"))


TINY = dict(layers=[1, 1, 1, 1], channels=[8, 16, 32, 64])


@pytest.fixture
def tiny_resnext():
    """A ResNeXt with the spec's stem options, small enough for gradient and behaviour tests."""
    from lucid.models import ResNeXt, ResNeXtConfig

    cfg = ResNeXtConfig(cardinality=4, base_width=32, num_classes=5, in_channels=1, stem_type="deep", stem_width=8, **TINY)
    return ResNeXt(cfg)
