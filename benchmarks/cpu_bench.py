"""lucid vs torchvision and timm on this machine's CPU (or any device): the issue's three targets.

ResNeXt-50 32x4d, 224x224, batch 8, same weights and input, one process, interleaved after
warm-up. Prints one table per comparison and a summary of the ratios:

* ``optimize_for_inference`` float32 vs each peer's eager float32 NCHW;
* ``optimize_for_inference`` bfloat16 vs the same (and vs the peers' own channels-last bf16);
* ``train_step`` with ``fast_defaults`` vs each peer's eager float32 training step.

Usage: ``python benchmarks/cpu_bench.py [--batch-size 8] [--rounds 10] [--threads N] [--only infer-fp32,infer-bf16,train] [--json OUT]``
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from lucid._atomic import atomic_write  # noqa: E402
from lucid.benchmark import format_table, infer_contenders, machine_summary, measure, ratio_lines, train_contenders  # noqa: E402
from lucid.models import create_model  # noqa: E402

RUNS = {
    "infer-fp32": lambda name, m, kw: infer_contenders(name, m, dtype=torch.float32, **kw),
    "infer-bf16": lambda name, m, kw: infer_contenders(name, m, dtype=torch.bfloat16, **kw),
    "train": lambda name, m, kw: train_contenders(name, m, **kw),
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnext_50_32x4d")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--device", default="cpu")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--train-rounds", type=int, default=None, help="rounds for the training comparison (default: --rounds)")
    p.add_argument("--only", default=",".join(RUNS), help=f"comma-separated subset of {', '.join(RUNS)}")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice, one per core)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write every timing to this JSON file")
    args = p.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(wanted) - set(RUNS))
    if unknown:
        p.error(f"--only: unknown {unknown}; choose from {list(RUNS)}")

    device = torch.device(args.device)
    print(f"# {args.model}, batch {args.batch_size}, {args.image_size}x{args.image_size}, {machine_summary(device)}")
    print(f"# command: python {' '.join(sys.argv)}")
    torch.manual_seed(0)
    model = create_model(args.model)
    kw = dict(batch=args.batch_size, size=args.image_size, device=device)
    record: dict[str, object] = {"machine": machine_summary(device), "argv": sys.argv, "runs": {}}
    summary = []
    for what in wanted:
        start = time.perf_counter()
        rounds = args.train_rounds if what == "train" and args.train_rounds else args.rounds
        results = measure(RUNS[what](args.model, model, kw), warmup=args.warmup, rounds=rounds, device=device,
                          log=lambda line: print("  " + line, file=sys.stderr, flush=True))
        print(f"\n## {what} ({rounds} rounds, {time.perf_counter() - start:.0f} s)\n")
        print(format_table(results))
        summary += ratio_lines(what, results)
        record["runs"][what] = [r.to_dict() for r in results]  # type: ignore[index]
    print("\n## ratios (median time of the peer / median time of lucid)\n")
    print("\n".join(summary))
    if args.json:
        atomic_write(args.json, lambda tmp: tmp.write_text(json.dumps(record, indent=1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
