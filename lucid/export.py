"""Deployment: export a lucid model to ONNX or to a ``torch.export`` program, and verify the result.

``to_onnx`` writes a checked ``.onnx`` file (input ``images``, output ``logits``) for
ONNX Runtime, TensorRT and other runtimes; ``to_exported_program`` captures the model with
``torch.export`` for ``torch.export.save``/``load``, AOTInductor and ExecuTorch. ``verify``
runs what was written on random images and reports how far it is from PyTorch.

Both exports trace an eval-mode copy of the model with every BatchNorm folded into the
convolution before it (:func:`lucid.optimize.fold_batchnorm`), so the caller's model is
never changed and the graphs hold only convolutions, ReLUs, additions, pools and the classifier.
``onnx``, ``onnxscript`` and ``onnxruntime`` come with the ``export`` extra
(``pip install "lucid[export]"``) and are imported only when needed.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from .core.errors import OptionError, OptionTypeError
from .core.fileio import atomic_write

__all__ = ["to_onnx", "to_exported_program", "verify", "Difference", "INPUT_NAME", "OUTPUT_NAME"]

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
FORMATS = ("onnx", "torch")
# The torch.export-based ONNX exporter writes opset 18 or later; converting our graphs further down
# fails (ReduceMean takes its axes as an input from opset 18), so lower requests are refused.
MIN_OPSET = 18


class Difference(NamedTuple):
    """How far an exported model's logits are from PyTorch's at one batch size."""

    max_abs: float  # max |exported - pytorch|
    relative: float  # max_abs / max |pytorch|


# ------------------------------------------------------------------------ checks


def _check_model(model: Any) -> nn.Module:
    """Accept lucid ResNet/ResNeXt models only: the export relies on their config and input contract."""
    from .models.modeling_resnet import ResNet
    from .optimize import OptimizedModel

    if isinstance(model, OptimizedModel):
        raise OptionTypeError(
            "model is an optimize_for_inference() module (fused device kernels, or int8); export the plain model "
            "instead: the export folds BatchNorm itself, and the runtime applies its own fusions and quantization"
        )
    if not isinstance(model, ResNet):
        raise OptionTypeError(
            f"model must be a lucid model (lucid.models.ResNet or ResNeXt, e.g. from lucid.models.create_model), "
            f"got {type(model).__module__}.{type(model).__qualname__}"
        )
    return model


def _input_shape(model: nn.Module, input_shape: Sequence[int] | None) -> tuple[int, int, int, int]:
    """The example input shape: ``(1, in_channels, 224, 224)`` by default, else validated against the model."""
    channels = model.config.in_channels
    if input_shape is None:
        return (1, channels, 224, 224)
    shape = tuple(input_shape)
    if len(shape) != 4 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise OptionError(f"input_shape must be four positive ints (N, C, H, W), got {input_shape!r}")
    if shape[1] != channels:
        raise OptionError(f"input_shape {shape} has {shape[1]} channels but the model expects in_channels={channels}")
    return shape  # type: ignore[return-value]


def _check_dtype(dtype: Any) -> torch.dtype:
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise OptionTypeError(f"dtype must be a floating-point torch.dtype such as torch.float32, got {dtype!r}")
    return dtype


def _check_opset(opset: Any) -> int | None:
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if opset is not None and not (isinstance(opset, int) and MIN_OPSET <= opset <= newest):
        raise OptionError(f"opset must be None or an int from {MIN_OPSET} to {newest}, got {opset!r}")
    return opset


def _check_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.is_dir():
        raise OptionError(f"path {str(path)!r} is a folder; expected a file name such as model.onnx or model.pt2")
    return path


# ----------------------------------------------------------------------- helpers


def _model_dtype(model: nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def _model_device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _deployable(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """An eval-mode copy of ``model`` with every BatchNorm folded into its convolution, cast to ``dtype``.

    Folding happens in the model's own precision, before the cast.
    """
    from .optimize import fold_batchnorm

    return fold_batchnorm(copy.deepcopy(model).eval()).to(dtype)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode; every submodule's train/eval flag is restored afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in flags:
            m.training = training


def _example(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype, dynamic_batch: bool) -> tuple[torch.Tensor, Any]:
    """Example input and ``dynamic_shapes`` for torch.export.

    torch.export fixes any dimension whose example size is 1, so a dynamic batch is traced at
    batch 2 when the requested batch is 1; the exported graph accepts every batch size.
    """
    if dynamic_batch:
        shape = (max(shape[0], 2), *shape[1:])
    x = torch.randn(shape, dtype=dtype, device=_model_device(model))
    return x, (({0: torch.export.Dim("batch")},) if dynamic_batch else None)


def _metadata(model: nn.Module) -> dict[str, str]:
    """The config and any ``model.metadata`` (class names, ...), stored as JSON strings in the ONNX file."""
    props: dict[str, str] = {}
    with contextlib.suppress(TypeError):  # configs with a custom block class have no JSON form
        props["lucid.config"] = json.dumps(model.config.to_dict())
    if getattr(model, "metadata", None):
        props["lucid.metadata"] = json.dumps(model.metadata)
    return props


# ------------------------------------------------------------------------ export


def to_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_shape: Sequence[int] | None = None,
    dynamic_batch: bool = True,
    opset: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Export ``model`` to an ONNX file at ``path`` (written atomically) and return the path.

    Args:
        model: a lucid ResNet/ResNeXt; it is not modified (a folded eval-mode copy is exported).
        path: the ``.onnx`` file; parent folders are created. Models over 2 GB also get ``<name>.data``.
        input_shape: ``(N, C, H, W)`` of the example input; default ``(1, in_channels, 224, 224)``.
            H and W are fixed in the graph; N too unless ``dynamic_batch``.
        dynamic_batch: let the batch dimension (named ``batch``) vary.
        opset: ONNX opset version, 18 or later; ``None`` takes the exporter's default.
        dtype: floating-point type of the weights and of the ``images`` input.

    The graph's input is ``images`` and its output ``logits``; BatchNorm is folded into the
    convolutions, the config (and ``model.metadata``) is kept in the file's metadata, and the
    file passes ``onnx.checker`` before it replaces ``path``.
    """
    import onnx

    _check_model(model)
    shape = _input_shape(model, input_shape)
    dtype = _check_dtype(dtype)
    opset = _check_opset(opset)
    path = _check_path(path)
    m = _deployable(model, dtype)
    x, dynamic_shapes = _example(m, shape, dtype, dynamic_batch)
    program = torch.onnx.export(
        m,
        (x,),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=dynamic_shapes,
        opset_version=opset,
        optimize=True,
        verbose=False,
    )
    program.model.metadata_props.update(_metadata(model))

    def write(tmp: Path) -> None:
        program.save(tmp)
        onnx.checker.check_model(str(tmp))  # by path: also works for files with external data

    return atomic_write(path, write)


def to_exported_program(
    model: nn.Module,
    input_shape: Sequence[int] | None = None,
    dynamic_batch: bool = True,
    path: str | os.PathLike[str] | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.export.ExportedProgram:
    """Capture a folded eval-mode copy of ``model`` with ``torch.export``; if ``path`` is given, also save it there.

    ``input_shape``, ``dynamic_batch`` and ``dtype`` mean what they mean for :func:`to_onnx`.
    The file (conventionally ``.pt2``) is written atomically with ``torch.export.save``;
    read it back with ``torch.export.load(path).module()``.
    """
    _check_model(model)
    shape = _input_shape(model, input_shape)
    dtype = _check_dtype(dtype)
    target = None if path is None else _check_path(path)
    m = _deployable(model, dtype)
    x, dynamic_shapes = _example(m, shape, dtype, dynamic_batch)
    program = torch.export.export(m, (x,), dynamic_shapes=dynamic_shapes)
    if target is not None:
        atomic_write(target, lambda tmp: torch.export.save(program, tmp))
    return program


# ------------------------------------------------------------------------ verify

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


def _onnx_runner(path: Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], list[Any]]:
    """A function that runs the file in ONNX Runtime (CPU), and the file's input shape."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    if inp.type not in _ORT_TYPES:
        raise OptionError(f"{path}: verify runs float32/float16/float64 inputs in ONNX Runtime, this file takes {inp.type}")
    np_dtype = np.dtype(_ORT_TYPES[inp.type])

    def run(x: torch.Tensor) -> torch.Tensor:
        (out,) = session.run([OUTPUT_NAME], {inp.name: x.cpu().numpy().astype(np_dtype)})
        return torch.from_numpy(out)

    return run, list(inp.shape)


def _program_runner(path: Path) -> tuple[Callable[[torch.Tensor], torch.Tensor], list[Any]]:
    """A function that runs a saved ``torch.export`` program, and its input shape (``"batch"`` where dynamic)."""
    program = torch.export.load(str(path))
    (name,) = program.graph_signature.user_inputs
    val = next(n.meta["val"] for n in program.graph.nodes if n.op == "placeholder" and n.name == name)
    module = program.module()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(x.to(device=val.device, dtype=val.dtype))

    return run, [d if isinstance(d, int) else "batch" for d in val.shape]


def verify(
    path: str | os.PathLike[str],
    model: nn.Module,
    format: str = "onnx",
    batch_sizes: Sequence[int] = (1, 3),
    seed: int = 0,
) -> dict[int, Difference]:
    """Run the exported file and ``model`` on the same random images; the difference per batch size.

    ``format`` is ``"onnx"`` (run in ONNX Runtime on the CPU) or ``"torch"`` (a program saved
    by :func:`to_exported_program`). Height and width come from the file; PyTorch's logits
    are the reference (``model`` in eval mode, unchanged).
    """
    _check_model(model)
    if format not in FORMATS:
        raise OptionError(f"format must be one of {FORMATS}, got {format!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file to verify")
    run, shape = (_onnx_runner if format == "onnx" else _program_runner)(path)
    generator = torch.Generator().manual_seed(seed)
    results: dict[int, Difference] = {}
    with _eval_mode(model) as m, torch.no_grad():
        for n in batch_sizes:
            if isinstance(shape[0], int) and shape[0] != n:
                raise OptionError(f"{path} was exported for batch {shape[0]} only; cannot verify batch {n}")
            x = torch.randn((n, *shape[1:]), generator=generator)
            ref = m(x.to(device=_model_device(m), dtype=_model_dtype(m))).float().cpu()
            diff = (run(x).float().cpu() - ref).abs().max().item()
            results[n] = Difference(diff, diff / max(ref.abs().max().item(), 1e-12))
    return results
