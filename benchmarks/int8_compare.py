"""CPU int8: lucid's own int8, lucid with backend="openvino", and the OpenVINO int8 artefact, in one process.

All three are calibrated on the same batches. The artefact is what an OpenVINO export writes:
:func:`lucid.optimize.openvino.to_openvino` (NNCF int8), saved as IR, read back by
``openvino.Core`` and compiled for the batch's static shape with the same CPU settings
(latency hint, one stream, torch's thread count). The three run interleaved after warm-up at each
batch size, on random weights and inputs (speed only). Prints one table per batch size and the
ratios (the artefact's median time over each lucid row's: above 1.0 lucid is faster), and
writes them to ``--out``.

Usage: ``python benchmarks/int8_compare.py [--model resnext_50_32x4d] [--image-size 224] [--batches 1,8] [--rounds 20] [--out benchmarks/results/int8_compare.md]``
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import openvino as ov
import torch

import lucid
from lucid.benchmark import Contender, calibration_set, format_table, machine_summary, measure, randomize_batchnorm, ratio_lines
from lucid.core.fileio import atomic_write
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
    p.add_argument("--out", default="benchmarks/results/int8_compare.md")
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


def main() -> int:
    args = _parser().parse_args()
    lines = [f"# int8 on CPU: lucid, lucid backend='openvino', OpenVINO artefact ({args.model}, {args.image_size} px)", "",
             f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", f"- machine: {machine_summary('cpu')}",
             f"- torch {torch.__version__}, openvino {ov.__version__}",
             f"- command: `python {' '.join(sys.argv)}`", ""]
    torch.manual_seed(0)
    model = randomize_batchnorm(create_model(args.model)).eval()
    calibration = calibration_set(model, 8, args.image_size, count=args.calibration_batches)
    log = lambda line: print("  " + line, file=sys.stderr, flush=True)  # noqa: E731
    start = time.perf_counter()
    own = lucid.optimize_for_inference(model, dtype=torch.int8, calibration=calibration, calibration_batches=len(calibration))
    openvino = lucid.optimize_for_inference(model, dtype=torch.int8, backend="openvino", calibration=calibration,
                                            calibration_batches=len(calibration))
    log(f"quantized both lucid rows in {time.perf_counter() - start:.0f} s")
    summary = []
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
            lines += [f"## batch {batch} ({args.rounds} rounds, interleaved)", "", format_table(results), ""]
            summary += ratio_lines(f"batch {batch}", results)
    lines += ["## ratios (median time of the OpenVINO artefact / median time of the lucid row)", "", *[f"- {s}" for s in summary], ""]
    text = "\n".join(lines)
    print(text)
    atomic_write(args.out, lambda tmp: tmp.write_text(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
