"""CPU int8: lucid's own int8, lucid with backend="openvino", and the OpenVINO int8 artefact, in one process.

All three are calibrated on the same batches. The artefact is what an OpenVINO export writes:
:func:`lucid.optimize.openvino.to_openvino` (NNCF int8), saved as IR, read back by
``openvino.Core`` and compiled for the batch's static shape with the same CPU settings
(latency hint, one stream, torch's thread count). The three run interleaved after warm-up at each
batch size, on random weights and inputs (speed only). Prints one table per batch size and the
ratios (the artefact's median time over each lucid row's: above 1.0 lucid is faster), also
written to ``benchmarks/results/NAME.log`` (``--result``) under a header.

Usage: ``python benchmarks/int8_compare.py [--model resnext_50_32x4d] [--image-size 224] [--batches 1,8] [--rounds 20] [--result NAME]``
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import _results
import openvino as ov
import torch

import lucid
from lucid.benchmark import Contender, calibration_set, format_table, measure, randomize_batchnorm, ratio_lines
from lucid.models import create_model
from lucid.optimize.openvino import compile_for_cpu, to_openvino


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnext_50_32x4d")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batches", default="1,8", help="comma-separated batch sizes")
    p.add_argument("--calibration-batches", type=int, default=4)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=20)
    _results.add_result_option(p, "int8_compare")
    return p


def _artefact(model: torch.nn.Module, calibration: list[torch.Tensor], folder: Path) -> Path:
    """The NNCF-quantized OpenVINO IR of ``model``, as an export writes it."""
    path = folder / "model.xml"
    ov.save_model(to_openvino(model, calibration[0], calibration=calibration), str(path))
    return path


def _artefact_runner(path: Path, x: torch.Tensor) -> Contender:
    ir = ov.Core().read_model(str(path))
    ir.reshape({0: list(x.shape)})
    request, feed = compile_for_cpu(ir, torch.int8).create_infer_request(), x.numpy()
    return Contender("openvino", "NNCF int8 IR read by openvino.Core", lambda: request.infer({0: feed}), x.shape[0], peer=True)


def _rows(model: torch.nn.Module, calibration: list[torch.Tensor], args: argparse.Namespace, figures: list[str]) -> None:
    """Quantize the three ways on ``calibration``, then time them interleaved at each batch size and print the tables."""
    log = lambda line: print("  " + line, file=sys.stderr, flush=True)  # noqa: E731
    start = time.perf_counter()
    own = lucid.optimize_for_inference(model, dtype=torch.int8, calibration=calibration, calibration_batches=len(calibration))
    openvino = lucid.optimize_for_inference(model, dtype=torch.int8, backend="openvino", calibration=calibration,
                                            calibration_batches=len(calibration))
    log(f"quantized both lucid rows in {time.perf_counter() - start:.0f} s")
    with tempfile.TemporaryDirectory(prefix="lucid-int8-compare-") as folder:
        artefact = _artefact(model, calibration, Path(folder))
        for batch in [int(b) for b in args.batches.split(",") if b.strip()]:
            x = torch.randn(batch, 3, args.image_size, args.image_size)
            contenders = [
                Contender("lucid", f"int8, backend {own.backend!r}", lambda x=x: own(x), batch),
                Contender("lucid", "int8, backend 'openvino'", lambda x=x: openvino(x), batch),
                _artefact_runner(artefact, x),
            ]
            results = measure(contenders, warmup=args.warmup, rounds=args.rounds, log=log)
            print(f"\n## batch {batch} ({args.rounds} rounds, interleaved)\n\n{format_table(results)}", flush=True)
            figures += ratio_lines(f"int8 batch {batch}", results)


def main() -> int:
    args = _parser().parse_args()
    with _results.recording(args.result) as figures:
        print(f"# int8 on CPU: lucid, lucid backend='openvino', OpenVINO artefact ({args.model}, {args.image_size} px; openvino {ov.__version__})")
        torch.manual_seed(0)
        model = randomize_batchnorm(create_model(args.model)).eval()
        _rows(model, calibration_set(model, 8, args.image_size, count=args.calibration_batches), args, figures)
        print("\n## ratios (median time of the OpenVINO artefact / median time of the lucid row)\n")
        print("\n".join(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
