"""Side-by-side speed of lucid and its peers (torchvision, timm, OpenVINO, ONNX Runtime) on the same weights and input.

Used by ``lucid bench`` and the scripts under ``benchmarks/``. Every contender gets the same
batch and the same weights (lucid's, renamed for the peers by :func:`lucid.weights.convert`, or
lucid's own ONNX export for the deployment runtimes),
is warmed up first (oneDNN and cuDNN pick and cache kernels on their first calls at a shape),
and is then timed one call at a time in interleaved rounds, so that load from other processes
hits every contender alike. Reported: median images/s, peak memory and the ratio to each peer.
"""
from __future__ import annotations

import contextlib
import copy
import gc
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .models.presets import PRESETS

__all__ = [
    "PEERS", "Contender", "Result", "peer_models", "make_batch", "randomize_batchnorm", "describe", "peer_infer", "lucid_infer", "peer_train",
    "calibration_set", "onnx_models", "ort_session", "openvino_model", "runtime_runners", "runtime_contenders", "scaling_rows", "format_scaling", "runtimes_installed", "runtime_threads",
    "lucid_train", "infer_contenders", "train_contenders", "measure", "format_table", "ratio_lines", "machine_summary",
]

# lucid preset -> (torchvision builder name, timm model name) of the same architecture, from the presets table
PEERS: dict[str, tuple[str | None, str | None]] = {
    name: (p.torchvision, p.timm) for name, p in PRESETS.items() if p.torchvision or p.timm
}


@dataclass
class Contender:
    """One thing to time: ``run()`` processes one batch of ``batch`` images."""

    name: str
    setup: str
    run: Callable[[], Any]
    batch: int
    peer: bool = False


@dataclass
class Result:
    """The timings of one contender: seconds per batch of ``batch`` images, peak memory if measured."""

    name: str
    setup: str
    batch: int
    seconds: list[float] = field(default_factory=list)
    peak_mib: float | None = None
    peer: bool = False
    faults: list[int] = field(default_factory=list)  # minor page faults of the whole process per timed call

    @property
    def median_faults(self) -> float | None:
        """Median minor page faults per call (``None`` where the OS does not count them)."""
        return statistics.median(self.faults) if self.faults else None

    @property
    def median(self) -> float:
        """Median seconds per batch."""
        return statistics.median(self.seconds)

    @property
    def images_per_second(self) -> float:
        """Throughput at the median time."""
        return self.batch / self.median

    def to_dict(self) -> dict[str, Any]:
        """Every timing and summary figure, for JSON reports."""
        return {
            "library": self.name, "setup": self.setup, "peer": self.peer, "batch": self.batch,
            "images_per_second": self.images_per_second, "median_ms": 1000 * self.median,
            "peak_mib": self.peak_mib, "seconds": self.seconds, "page_faults": self.faults,
        }


# ------------------------------------------------------------------------------ models


def peer_models(name: str, model: nn.Module) -> dict[str, nn.Module]:
    """torchvision's and timm's model of the same architecture, carrying ``model``'s weights.

    A peer is left out when its library is not installed or its architecture differs
    (e.g. a config override such as a deep stem). Nothing is downloaded.
    """
    from .weights import convert

    if name not in PEERS:
        return {}
    tv_name, timm_name = PEERS[name]
    num_classes = model.config.num_classes
    try:
        weights = convert(model.state_dict(), "lucid", to="torchvision")
    except ValueError:
        return {}
    peers: dict[str, nn.Module] = {}
    try:
        import torchvision

        if tv_name:
            peers["torchvision"] = getattr(torchvision.models, tv_name)(weights=None, num_classes=num_classes)
    except ImportError:
        pass
    try:
        import timm

        if timm_name:
            peers["timm"] = timm.create_model(timm_name, pretrained=False, num_classes=num_classes)
    except ImportError:
        pass
    for key, peer in list(peers.items()):
        try:
            peer.load_state_dict(weights, strict=True)
        except RuntimeError:  # another architecture under the same name (e.g. in_channels, stem)
            del peers[key]
    return peers


# ------------------------------------------------------------------------- contenders


def make_batch(model: nn.Module, batch: int, size: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed random images and labels for ``model`` (same for every contender)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, model.config.in_channels, size, size, generator=g)
    y = torch.randint(0, model.config.num_classes, (batch,), generator=g)
    return x.to(device), y.to(device)


def randomize_batchnorm(model: nn.Module, seed: int = 1) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine terms, in place; returns ``model``.

    Freshly built models have identity BatchNorms (mean 0, variance 1, scale 1, shift 0), which
    would make any check of BatchNorm folding pass trivially; benchmarks and tests use this instead.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model


def describe(dtype: torch.dtype | None, channels_last: bool, compile: bool, autocast: bool = False) -> str:
    """``"bfloat16 channels-last compiled"`` and the like, for table rows."""
    precision = "float32" if dtype is None else ("autocast " if autocast else "") + str(dtype).replace("torch.", "")
    return f"{precision} {'channels-last' if channels_last else 'NCHW'} {'compiled' if compile else 'eager'}"


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


def calibration_set(model: nn.Module, batch: int, size: int, count: int = 4, seed: int = 3) -> list[torch.Tensor]:
    """``count`` fixed random image batches for int8 calibration in benchmarks (speed only: the weights are random too)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, model.config.in_channels, size, size, generator=g) for _ in range(count)]


def lucid_infer(
    model: nn.Module, x: torch.Tensor, dtype: torch.dtype = torch.float32, compile: bool = False,
    calibration: list[torch.Tensor] | None = None, backend: str | None = None,
) -> tuple[str, Callable[[], Any]]:
    """lucid's way: :func:`lucid.optimize_for_inference`; returns (setup description, runner).

    For int8 it calibrates on ``calibration`` (default: :func:`calibration_set` at ``x``'s shape).
    ``backend`` is passed on (``None``: lucid's default for the device and dtype).
    """
    from .optimize import optimize_for_inference

    kw: dict[str, Any] = {}
    if dtype == torch.int8:
        batches = calibration or calibration_set(model, x.shape[0], x.shape[-1])
        kw = dict(calibration=batches, calibration_batches=len(batches))
    fast = optimize_for_inference(model, dtype=dtype, compile=compile, backend=backend, **kw)
    return f"optimize_for_inference({str(dtype).replace('torch.', '')}{', compile' if compile else ''}): {fast.backend}", lambda: fast(x)


# ------------------------------------------------------- deployment runtimes on lucid's ONNX export


def runtime_threads() -> int:
    """The thread count every runtime is given: torch's, so each contender uses the same cores."""
    return torch.get_num_threads()


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over a list of batches."""

    def __init__(self, name: str, batches: list[torch.Tensor]) -> None:
        self._items = iter([{name: b.numpy()} for b in batches])

    def get_next(self) -> dict | None:
        return next(self._items, None)


def onnx_models(model: nn.Module, x: torch.Tensor, folder: Path, int8: bool, calibration: list[torch.Tensor] | None = None) -> dict[str, Path]:
    """lucid's own ONNX export of ``model`` (``fp32``) and, with ``int8``, onnxruntime's static QDQ
    quantization of it (``int8``: int8 weights per channel, uint8 activations, calibrated on
    ``calibration``, default :func:`calibration_set`), written under ``folder``."""
    from .export import INPUT_NAME, to_onnx

    paths = {"fp32": to_onnx(model, folder / "model.onnx", input_shape=tuple(x.shape))}
    if int8:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        batches = calibration or calibration_set(model, x.shape[0], x.shape[-1])
        paths["int8"] = folder / "model.int8.onnx"
        quantize_static(
            str(paths["fp32"]), str(paths["int8"]), _Calibration(INPUT_NAME, batches), quant_format=QuantFormat.QDQ,
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    return paths


Bind = Callable[[torch.Tensor], Callable[[], Any]]  # input batch -> a runner timing one call on it


def ort_session(path: Path) -> Bind:
    """ONNX Runtime's CPU session on the file (all graph optimizations, :func:`runtime_threads` threads), ready to bind an input."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = runtime_threads()
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no busy-waiting threads after a run: they would steal the cores from the contender timed next
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def bind(x: torch.Tensor) -> Callable[[], Any]:
        feed = {name: x.numpy()}
        return lambda: session.run(None, feed)

    return bind


def openvino_model(path: Path, precision: str | None) -> Bind:
    """OpenVINO's CPU plugin on the file (latency mode, one stream, :func:`runtime_threads` threads), ready to bind an input.

    ``precision`` is its ``INFERENCE_PRECISION_HINT`` (``"f32"``, ``"bf16"``), or ``None`` for its
    default (bf16 where the CPU has it; an int8 QDQ model runs its quantized layers in int8 either way).
    """
    import openvino as ov

    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": runtime_threads(), "NUM_STREAMS": 1}
    if precision is not None:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = ov.Core().compile_model(str(path), "CPU", config)

    def bind(x: torch.Tensor) -> Callable[[], Any]:
        request, feed = compiled.create_infer_request(), x.numpy()
        return lambda: request.infer({0: feed})

    return bind


def runtimes_installed() -> list[str]:
    """Which of the deployment runtimes (``onnxruntime``, ``openvino``) can be imported here."""
    import importlib.util

    return [name for name in ("onnxruntime", "openvino") if importlib.util.find_spec(name) is not None]


def runtime_runners(paths: dict[str, Path], dtype: torch.dtype) -> list[tuple[str, str, Bind]]:
    """OpenVINO and ONNX Runtime (those installed) at ``dtype`` on the files of :func:`onnx_models`:
    ``(runtime, setup, bind)`` triples.

    float32: both runtimes, OpenVINO told to keep f32. bfloat16: OpenVINO only (onnxruntime's CPU
    provider has no bf16 convolutions). int8: both running onnxruntime's QDQ quantization of the export.
    """
    source = "lucid's ONNX export"
    wanted = {
        torch.float32: [("onnxruntime", f"float32, {source}", lambda: ort_session(paths["fp32"])),
                        ("openvino", f"f32 hint, {source}", lambda: openvino_model(paths["fp32"], "f32"))],
        torch.bfloat16: [("openvino", f"bf16 hint, {source}", lambda: openvino_model(paths["fp32"], "bf16"))],
        torch.int8: [("onnxruntime", "int8 QDQ of the export (quantize_static)", lambda: ort_session(paths["int8"])),
                     ("openvino", "int8 QDQ of the export (quantize_static)", lambda: openvino_model(paths["int8"], None))],
    }.get(dtype, [])
    installed = runtimes_installed()
    return [(name, setup, make()) for name, setup, make in wanted if name in installed]


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
    from .optimize import optimize_for_inference

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


def format_scaling(rows: list[dict[str, Any]]) -> str:
    """The scaling table in Markdown: img/s of lucid and of each runtime, and lucid's speed over each runtime's."""
    keys = ["model", "size", "batch", "dtype", "lucid"]
    for row in rows:
        keys += [k for k in row if k not in keys]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = [row.get(k, "") for k in keys]
        lines.append("| " + " | ".join(f"{c:.2f}" if isinstance(c, float) else str(c) for c in cells) + " |")
    return "\n".join(lines)


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
    from .train.step import fast_defaults, train_step

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
    from .optimize import backends_for

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


# ---------------------------------------------------------------------------- measuring


def _minor_faults() -> int | None:
    """Minor page faults of this process so far (fresh memory pages handed out by the kernel).

    On a CPU a call that gets new pages from the OS pays for each of them, so the count shows why
    the same contender's time can swing between runs (the allocator's state differs).
    """
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _release_free_heap() -> None:
    """Hand freed heap pages back to the OS (glibc), so resident-set growth shows what a call allocates."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _peak_mib(run: Callable[[], Any], device: torch.device) -> float | None:
    """Peak memory of one call: CUDA's allocator peak, or on CPU the resident-set growth seen by a 2 ms sampler."""
    gc.collect()
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run()
        _sync(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    if not os.path.exists("/proc/self/statm"):
        return None
    _release_free_heap()
    base = peak = _rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run()
    finally:
        done.set()
        sampler.join()
    return (max(peak, _rss_bytes()) - base) / 2**20


def measure(
    contenders: list[Contender],
    *,
    warmup: int = 3,
    rounds: int = 10,
    device: torch.device | str = "cpu",
    memory: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[Result]:
    """Warm every contender up, then time one call of each per round, rotating the order each round."""
    device = torch.device(device)
    if warmup < 1 or rounds < 1:
        raise ValueError(f"warmup and rounds must be at least 1, got warmup={warmup}, rounds={rounds}")
    results = [Result(c.name, c.setup, c.batch, peer=c.peer) for c in contenders]
    for c in contenders:
        start = time.perf_counter()
        for _ in range(warmup):
            c.run()
        _sync(device)
        if log:
            log(f"warmed up {c.name} ({c.setup}) in {time.perf_counter() - start:.1f} s")
    n = len(contenders)
    for r in range(rounds):
        for i in range(n):
            k = (i + r) % n
            _sync(device)
            faults = _minor_faults()
            start = time.perf_counter()
            contenders[k].run()
            _sync(device)
            results[k].seconds.append(time.perf_counter() - start)
            if faults is not None:
                results[k].faults.append(_minor_faults() - faults)
        if log:
            log(f"round {r + 1}/{rounds}: " + ", ".join(f"{res.name} {res.batch / res.seconds[-1]:.1f}" for res in results) + " img/s")
    if memory:
        for c, res in zip(contenders, results):
            res.peak_mib = _peak_mib(c.run, device)
    return results


def format_table(results: list[Result]) -> str:
    """A Markdown table: median images/s, ms per batch, peak memory, page faults per call and ratio to each peer's rows."""
    peers = [r for r in results if r.peer]
    head = ["library", "setup", "img/s (median)", "ms/batch", "peak MiB", "page faults/call"] + [f"x {p.name} {p.setup}" for p in peers]
    rows = [head, ["---"] * len(head)]
    for r in results:
        mem = "n/a" if r.peak_mib is None else f"{r.peak_mib:.0f}"
        faults = "n/a" if r.median_faults is None else f"{r.median_faults:.0f}"
        row = [r.name, r.setup, f"{r.images_per_second:.1f}", f"{1000 * r.median:.1f}", mem, faults]
        row += [f"{p.median / r.median:.2f}" for p in peers]
        rows.append(row)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def ratio_lines(what: str, results: list[Result]) -> list[str]:
    """One line per (lucid row, peer row) pair: both speeds and the peer's median time over lucid's."""
    return [
        f"{what}: lucid {mine.setup} {mine.images_per_second:.1f} img/s vs {peer.name} {peer.setup} "
        f"{peer.images_per_second:.1f} img/s = {peer.median / mine.median:.2f}x"
        for mine in results if not mine.peer
        for peer in results if peer.peer
    ]

def machine_summary(device: torch.device | str) -> str:
    """One line naming the hardware and software a table was measured on."""
    device = torch.device(device)
    if device.type == "cuda":
        hw = f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    else:
        model = "CPU"
        try:
            with open("/proc/cpuinfo") as f:
                model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
        except OSError:
            pass
        wait = os.environ.get("OMP_WAIT_POLICY", "unset")
        hw = f"{model}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}, OMP_WAIT_POLICY {wait}"
    return f"{hw}; torch {torch.__version__}"
