"""lucid vs torchvision, timm, OpenVINO and ONNX Runtime on this machine's CPU (or torch peers on any device).

ResNeXt-50 32x4d, 224x224, batch 8 by default, same weights and input, one process, interleaved
after warm-up. OpenVINO and ONNX Runtime (when installed: ``pip install "lucid[bench]"``) run
lucid's own ONNX export; their int8 model is onnxruntime's ``quantize_static`` of it (QDQ,
per-channel weights), calibrated on the same batches as lucid's int8. Prints one table per
comparison and a summary of the ratios:

* ``infer-fp32``: ``optimize_for_inference`` float32 vs the peers' eager float32 and the runtimes' fp32;
* ``infer-bf16``: bfloat16 vs the same, the peers' channels-last bf16 and OpenVINO bf16;
* ``infer-int8``: int8 vs the peers' eager float32 and both runtimes running the int8 QDQ model;
* ``train``: ``train_step`` with ``fast_defaults`` vs each peer's eager float32 training step.

``--scaling`` instead prints how throughput grows with work: lucid against the runtimes at each
of ``--batches`` x ``--sizes`` x ``--models`` x ``--dtypes``.

Usage: ``python benchmarks/cpu_bench.py [--batch-size 8] [--rounds 10] [--threads N] [--lucid-backends onednn-graph,onednn-fused] [--only infer-fp32,infer-bf16,infer-int8,train] [--json OUT] [--result NAME]``
       ``python benchmarks/cpu_bench.py --scaling [--batches 1,8,32] [--sizes 160,224,288] [--models resnext_50_32x4d,resnext_101_32x8d] [--dtypes float32,bfloat16,int8]``

The output goes to the terminal and to ``benchmarks/results/NAME.log`` (``--result``) under a header.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import _results
import torch

from lucid.benchmark import (
    format_scaling,
    format_table,
    infer_contenders,
    machine_summary,
    measure,
    ratio_lines,
    scaling_rows,
    train_contenders,
)
from lucid.core.fileio import atomic_write
from lucid.models import create_model
from lucid.optimize import FLOAT_BACKENDS, INT8_BACKENDS, RUNTIME_BACKENDS

RUNS = {
    "infer-fp32": lambda name, m, kw: infer_contenders(name, m, dtype=torch.float32, **kw),
    "infer-bf16": lambda name, m, kw: infer_contenders(name, m, dtype=torch.bfloat16, **kw),
    "infer-int8": lambda name, m, kw: infer_contenders(name, m, dtype=torch.int8, **kw),
    "train": lambda name, m, kw: train_contenders(name, m, **{k: kw[k] for k in ("batch", "size", "device")}),
}


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnext_50_32x4d")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--device", default="cpu")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--train-rounds", type=int, default=None, help="rounds for the training comparison (default: --rounds)")
    p.add_argument("--only", default=",".join(RUNS), help=f"comma-separated subset of {', '.join(RUNS)}")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch and the runtimes (default: torch's choice, one per core)")
    p.add_argument("--no-runtimes", action="store_true", help="leave OpenVINO and ONNX Runtime out")
    p.add_argument("--lucid-backends", default="", metavar="LIST",
                   help="one lucid row per optimize_for_inference backend listed that applies to the run's dtype "
                        "(e.g. onednn-graph,onednn-fused,inductor-aot,onednn-lowered,openvino; default: lucid's default only)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write every timing to this JSON file")
    s = p.add_argument_group("scaling table")
    s.add_argument("--scaling", action="store_true", help="print the scaling table instead of the comparisons")
    s.add_argument("--batches", default="1,8,32")
    s.add_argument("--sizes", default="160,224,288")
    s.add_argument("--models", default="resnext_50_32x4d,resnext_101_32x8d")
    s.add_argument("--dtypes", default="float32,bfloat16,int8")
    _results.add_result_option(p, "cpu_bench")
    return p


def _comparisons(args: argparse.Namespace, record: dict, figures: list[str]) -> None:
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(wanted) - set(RUNS))
    if unknown:
        raise SystemExit(f"cpu_bench.py: --only: unknown {unknown}; choose from {list(RUNS)}")
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = create_model(args.model)
    backends = tuple(b.strip() for b in args.lucid_backends.split(",") if b.strip()) or (None,)
    known = {*INT8_BACKENDS, *RUNTIME_BACKENDS, *(b for device_backends in FLOAT_BACKENDS.values() for b in device_backends)}
    if set(backends) - known - {None}:
        raise SystemExit(f"cpu_bench.py: --lucid-backends: unknown {sorted(set(backends) - known - {None})}; choose from {sorted(known)}")
    kw = dict(batch=args.batch_size, size=args.image_size, device=device, runtimes=not args.no_runtimes, lucid_backends=backends)
    summary = []
    for what in wanted:
        start = time.perf_counter()
        rounds = args.train_rounds if what == "train" and args.train_rounds else args.rounds
        results = measure(RUNS[what](args.model, model, kw), warmup=args.warmup, rounds=rounds, device=device,
                          log=lambda line: print("  " + line, file=sys.stderr, flush=True))
        print(f"\n## {what} ({rounds} rounds, {time.perf_counter() - start:.0f} s)\n")
        print(format_table(results), flush=True)
        summary += ratio_lines(what, results)
        figures += ratio_lines(what, _default_lucid_row(results))
        record["runs"][what] = [r.to_dict() for r in results]
    print("\n## ratios (median time of the peer / median time of lucid)\n")
    print("\n".join(summary))


def _default_lucid_row(results: list) -> list:
    """The peers and the first lucid row (lucid's default, or the first of ``--lucid-backends``)."""
    first = next(r for r in results if not r.peer)
    return [first, *(r for r in results if r.peer)]


def _scaling(args: argparse.Namespace, record: dict, figures: list[str]) -> None:
    rows = []
    files = tempfile.TemporaryDirectory(prefix="lucid-scaling-")  # each size's ONNX files, removed at exit
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        torch.manual_seed(0)
        rows += scaling_rows(
            name, create_model(name), batches=_ints(args.batches), sizes=_ints(args.sizes),
            dtypes=[getattr(torch, d.strip()) for d in args.dtypes.split(",") if d.strip()],
            warmup=args.warmup, rounds=args.rounds, folder=Path(files.name),
            log=lambda line: print("  " + line, file=sys.stderr, flush=True),
        )
        print(format_scaling(rows), flush=True)
    record["scaling"] = rows
    figures.append(f"{len(rows)} cells: lucid's img/s over OpenVINO's and ONNX Runtime's per model, size, batch and dtype")


def main() -> int:
    args = _parser().parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    record: dict[str, object] = {"machine": machine_summary(args.device), "argv": sys.argv, "runs": {}}
    with _results.recording(args.result, args.device) as figures:
        (_scaling if args.scaling else _comparisons)(args, record, figures)
    if args.json:
        atomic_write(args.json, lambda tmp: tmp.write_text(json.dumps(record, indent=1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
