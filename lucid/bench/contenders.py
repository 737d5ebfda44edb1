"""What ``lucid bench`` times: lucid's inference and training paths against each peer's, on the same batch."""
from __future__ import annotations

import contextlib
import copy
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..optimize import backends_for, optimize_for_inference
from ..train.step import fast_defaults, train_step
from .measure import Contender, measure
from .models import calibration_set, describe, make_batch, peer_models
from .runtimes import onnx_models, runtime_runners, runtimes_installed

__all__ = ["infer_contenders", "lucid_infer", "lucid_train", "peer_infer", "peer_train", "runtime_contenders", "scaling_rows", "train_contenders"]


def peer_infer(model: nn.Module, x: torch.Tensor, dtype: torch.dtype = torch.float32, channels_last: bool = False, compile: bool = False) -> Callable[[], Any]:
    """How a torchvision/timm user runs inference: eval, inference mode, optionally channels-last,
    weights cast to ``dtype`` and ``torch.compile``. ``model`` is copied, not changed."""
    net = copy.deepcopy(model).eval().to(x.device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    net = net.to(dtype)
    run_net = torch.compile(net) if compile else net
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def run() -> Any:
        with torch.inference_mode():
            return run_net(x.to(dtype).contiguous(memory_format=memory_format))

    return run


def lucid_infer(
    model: nn.Module, x: torch.Tensor, dtype: torch.dtype = torch.float32, compile: bool = False,
    calibration: list[torch.Tensor] | None = None, backend: str | None = None,
) -> tuple[str, Callable[[], Any]]:
    """lucid's way: :func:`lucid.optimize_for_inference`; returns (setup description, runner).

    For int8 it calibrates on ``calibration`` (default: :func:`calibration_set` at ``x``'s shape).
    ``backend`` is passed on (``None``: lucid's default for the device and dtype).
    """
    kw: dict[str, Any] = {}
    if dtype == torch.int8:
        batches = calibration or calibration_set(model, x.shape[0], x.shape[-1])
        kw = dict(calibration=batches, calibration_batches=len(batches))
    fast = optimize_for_inference(model, dtype=dtype, compile=compile, backend=backend, **kw)
    return f"optimize_for_inference({str(dtype).replace('torch.', '')}{', compile' if compile else ''}): {fast.backend}", lambda: fast(x)


def runtime_contenders(
    model: nn.Module, x: torch.Tensor, dtype: torch.dtype, folder: Path, calibration: list[torch.Tensor] | None = None,
) -> list[Contender]:
    """OpenVINO and ONNX Runtime at ``dtype`` on lucid's own ONNX export of ``model``, timing the batch ``x`` (CPU only)."""
    if x.device.type != "cpu" or not runtimes_installed():
        return []
    paths = onnx_models(model, x, folder, int8=dtype == torch.int8, calibration=calibration)
    return [Contender(name, setup, bind(x), x.shape[0], peer=True) for name, setup, bind in runtime_runners(paths, dtype)]


def scaling_rows(
    name: str, model: nn.Module, *, batches: list[int], sizes: list[int], dtypes: list[torch.dtype],
    warmup: int, rounds: int, folder: Path, log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """How throughput grows with work: lucid and the runtimes at each size x dtype x batch, on CPU.

    Per size, the model is exported (and quantized for int8) once; per size and dtype, lucid's
    module and the runtimes' compiled models are built once and then timed, interleaved, at each batch.
    """
    model = model.eval()
    rows: list[dict[str, Any]] = []
    for size in sizes:
        calibration = calibration_set(model, 8, size)
        paths = onnx_models(model, torch.zeros(1, model.config.in_channels, size, size), folder / f"{size}px",
                            int8=torch.int8 in dtypes, calibration=calibration) if runtimes_installed() else {}
        for dtype in dtypes:
            kw = dict(calibration=calibration, calibration_batches=len(calibration)) if dtype == torch.int8 else {}
            fast = optimize_for_inference(model, dtype=dtype, **kw)
            peers = runtime_runners(paths, dtype) if paths else []
            for batch in batches:
                x, _ = make_batch(model, batch, size, "cpu")
                contenders = [Contender(n, setup, bind(x), batch, peer=True) for n, setup, bind in peers]
                contenders.append(Contender("lucid", fast.backend, lambda x=x, fast=fast: fast(x), batch))
                results = measure(contenders, warmup=warmup, rounds=rounds, memory=False, log=log)
                mine = results[-1]
                row: dict[str, Any] = {"model": name, "size": size, "batch": batch, "dtype": str(dtype).replace("torch.", ""),
                                       "lucid": mine.images_per_second}
                for r in results[:-1]:
                    row[r.name] = r.images_per_second
                    row[f"lucid / {r.name}"] = r.median / mine.median
                rows.append(row)
    return rows


def peer_train(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, amp_dtype: torch.dtype | None = None,
    channels_last: bool = False, compile: bool = False, lr: float = 1e-3,
) -> Callable[[], Any]:
    """A plain training step as a peer's user writes it: zero_grad, forward (optionally under
    autocast, channels-last, compiled), cross-entropy, backward, SGD(momentum=0.9) step."""
    net = copy.deepcopy(model).train().to(x.device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    run_net = torch.compile(net) if compile else net
    loss_fn = nn.CrossEntropyLoss()

    def step() -> Any:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            loss = loss_fn(run_net(x).float(), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def lucid_train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, compile: bool | None = None, lr: float = 1e-3) -> tuple[str, Callable[[], Any]]:
    """:func:`lucid.train.step.train_step` with :func:`lucid.train.step.fast_defaults` for the device,
    as ``lucid train`` runs it (``compile=None`` keeps the default); returns (setup, runner)."""
    defaults = fast_defaults(x.device)
    use_compile = defaults["compile"] if compile is None else compile
    net = copy.deepcopy(model).train().to(x.device)
    if defaults["channels_last"]:
        net = net.to(memory_format=torch.channels_last)
    fused = bool(defaults.get("fused_optimizer", False))
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, fused=fused or None)
    run_net = torch.compile(net) if use_compile else net
    loss_fn = nn.CrossEntropyLoss()
    amp = defaults["amp_dtype"]

    def step() -> Any:
        return train_step(run_net, x, y, opt, loss_fn, amp_dtype=amp, channels_last=defaults["channels_last"])

    setup = describe(amp, defaults["channels_last"], use_compile, autocast=True) + (", fused SGD" if fused else "")
    return f"train_step, fast_defaults: {setup}", step


def _backends_for(backends: tuple[str | None, ...], dtype: torch.dtype, compile: bool, device: torch.device) -> tuple[str | None, ...]:
    """The entries of ``backends`` that ``optimize_for_inference`` takes for ``dtype`` on ``device``, else ``(None,)``."""
    valid = backends_for(device.type, dtype)
    return (None,) if compile else tuple(b for b in backends if b is None or b in valid) or (None,)


def infer_contenders(
    name: str,
    model: nn.Module,
    *,
    batch: int,
    size: int,
    dtype: torch.dtype = torch.float32,
    compile: bool = False,
    device: torch.device | str = "cpu",
    peers: bool = True,
    runtimes: bool = True,
    folder: Path | None = None,
    lucid_backends: tuple[str | None, ...] = (None,),
) -> list[Contender]:
    """Each peer in eager fp32 NCHW (its default), the deployment runtimes, and lucid's ``optimize_for_inference``
    (one row per entry of ``lucid_backends`` that applies to ``dtype`` on ``device`` without ``compile``; ``None`` is
    the default backend, and the default alone runs where none applies).

    When ``dtype``/``compile`` differ from the defaults, every torch peer is also run with that
    (float) dtype, channels-last and compile setting, so lucid is compared with the best a peer's
    user would write by hand as well as with the peer's default. With ``runtimes`` (and ``peers``),
    OpenVINO and ONNX Runtime run lucid's ONNX export at ``dtype`` (:func:`runtime_contenders`;
    files under ``folder``, default a temporary folder removed once they are loaded). int8 models on both sides are calibrated
    on the same :func:`calibration_set`.
    """
    model = model.to(device).eval()
    x, _ = make_batch(model, batch, size, device)
    calibration = calibration_set(model, batch, size) if dtype == torch.int8 else None
    out: list[Contender] = []
    for peer, m in (peer_models(name, model) if peers else {}).items():
        out.append(Contender(peer, describe(torch.float32, False, False), peer_infer(m, x), batch, peer=True))
        if dtype.is_floating_point and (dtype != torch.float32 or compile):
            out.append(Contender(peer, describe(dtype, True, compile), peer_infer(m, x, dtype, True, compile), batch, peer=True))
    if peers and runtimes:
        with tempfile.TemporaryDirectory(prefix="lucid-bench-") if folder is None else contextlib.nullcontext(folder) as where:
            out += runtime_contenders(model, x, dtype, Path(where), calibration)  # the runtimes load their files now
    for backend in _backends_for(lucid_backends, dtype, compile, torch.device(device)):
        setup, run = lucid_infer(model, x, dtype, compile, calibration, backend)
        out.append(Contender("lucid", setup, run, batch))
    return out


def train_contenders(
    name: str,
    model: nn.Module,
    *,
    batch: int,
    size: int,
    device: torch.device | str = "cpu",
    peers: bool = True,
) -> list[Contender]:
    """Each peer's plain eager fp32 NCHW training step and lucid's ``train_step`` with its fast defaults,
    all with SGD (momentum 0.9) on the same weights, images and labels."""
    model = model.to(device)
    x, y = make_batch(model, batch, size, device)
    out = [
        Contender(peer, "train step, " + describe(None, False, False), peer_train(m, x, y), batch, peer=True)
        for peer, m in (peer_models(name, model) if peers else {}).items()
    ]
    setup, step = lucid_train(model, x, y)
    out.append(Contender("lucid", setup, step, batch))
    return out
