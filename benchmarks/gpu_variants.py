"""Which of lucid's GPU inference variants pay off: cuDNN fused kernels, folding alone, CUDA graphs.

ResNeXt-50 32x4d, 224x224, bf16, at batch 256, 32 and 1, against torchvision eager bf16 channels-last
(with and without a CUDA graph), all interleaved in one process and timed with CUDA events:

* ``optimize_for_inference(bf16)`` as shipped (per-layer choice, fused or plain);
* the same module with every layer forced to the plain convolution + epilogue;
* the same module with every layer forced to cuDNN's fused kernel;
* ``cuda_graph=True``: the shipped module, replaying a CUDA graph per input shape.

Also prints the bf16-vs-fp32 agreement and any layer that kept the plain kernel. Usage:
``python benchmarks/gpu_variants.py [--batch-sizes 256,32,1] [--json OUT] [--result NAME]`` (needs CUDA
and torchvision); the output also goes to ``benchmarks/results/NAME.log`` (default ``gpu_variants``).
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time

import _results
import torch
from torch import nn

from lucid.benchmark import machine_summary, make_batch, peer_infer, peer_models, randomize_batchnorm
from lucid.core.fileio import atomic_write
from lucid.models import create_model
from lucid.optimize import optimize_for_inference
from lucid.optimize.cuda import CuDNNConv2d
from lucid.optimize.cuda_graphs import CapturedCall

T0 = time.perf_counter()


def log(*a: object) -> None:
    print(f"[{time.perf_counter() - T0:5.0f}s]", *a, flush=True)


def time_interleaved(fns: dict, rounds: int, inner: int = 5) -> dict:
    """Median ms per call over rounds; each round times `inner` back-to-back calls with CUDA events."""
    for f in fns.values():
        for _ in range(3):
            f()
    torch.cuda.synchronize()
    times = {k: [] for k in fns}
    names = list(fns)
    for r in range(rounds):
        for i in range(len(names)):
            k = names[(i + r) % len(names)]
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            for _ in range(inner):
                fns[k]()
            e.record()
            e.synchronize()
            times[k].append(s.elapsed_time(e) / inner)
    return {k: statistics.median(v) for k, v in times.items()}


def forced(fast: nn.Module, fused: bool) -> nn.Module:
    """A copy of an already-run module whose every layer uses the fused (or the plain) kernel."""
    out = copy.deepcopy(fast)
    for m in out.modules():
        if isinstance(m, CuDNNConv2d):
            for key in m.cuda_fused:
                m.cuda_fused[key] = fused
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-sizes", default="256,32,1", help="comma-separated (default 256,32,1)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the timings to this JSON file")
    _results.add_result_option(p, "gpu_variants")
    args = p.parse_args()
    if not torch.cuda.is_available():
        p.error("needs a CUDA device")
    with _results.recording(args.result, "cuda") as figures:
        run(args, figures)


def run(args: argparse.Namespace, figures: list[str]) -> None:
    """Each batch size: build the variants, check their outputs, time them interleaved."""
    torch.backends.cudnn.benchmark = True  # for the peer; lucid turns it on for its own calls
    log(torch.__version__, torch.version.cuda, torch.backends.cudnn.version(), torch.cuda.get_device_name())
    torch.manual_seed(0)
    model = randomize_batchnorm(create_model("resnext_50_32x4d")).cuda().eval()
    record: dict[str, object] = {"machine": machine_summary("cuda"), "argv": sys.argv, "runs": {}}
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        log(f"--- batch {batch}")
        x, _ = make_batch(model, batch, 224, "cuda")
        with torch.no_grad():
            ref = model(x).float()
        fast = optimize_for_inference(model, dtype=torch.bfloat16)
        start = time.perf_counter()
        out = fast(x)
        torch.cuda.synchronize()
        convs = [m for m in fast.modules() if isinstance(m, CuDNNConv2d)]
        choices = [v for m in convs for v in m.cuda_fused.values()]
        cos = nn.functional.cosine_similarity(out, ref, dim=1).min().item()
        top1 = (out.argmax(1) == ref.argmax(1)).float().mean().item()
        log(f"first call {time.perf_counter() - start:.2f} s; {sum(choices)} of {len(choices)} layers chose the fused kernel; "
            f"bf16 vs fp32 model: min cosine {cos:.5f}, top-1 agreement {top1:.4f}")
        for m in convs:
            for key, fused in m.cuda_fused.items():
                if not fused:
                    log(f"  plain kernel: weight {tuple(m.weight.shape)}, groups {m.groups}, input {tuple(key[0])}, adds shortcut: {key[1]}")
        graphed = optimize_for_inference(model, dtype=torch.bfloat16, cuda_graph=True)
        graphed(x)  # the first call at a shape runs eagerly, then captures
        graph_err = ((graphed(x) - out).abs().max() / out.abs().max()).item()
        log(f"cuda_graph=True vs eager: max relative difference {graph_err:.2g}")
        tv_net = copy.deepcopy(peer_models("resnext_50_32x4d", model)["torchvision"]).eval()
        tv_net = tv_net.cuda().to(memory_format=torch.channels_last).to(torch.bfloat16)
        x_bf16 = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            tv_graph = CapturedCall(tv_net, x_bf16)
        plain, all_fused = forced(fast, False), forced(fast, True)
        contenders = {
            "torchvision eager bf16 channels-last": peer_infer(tv_net, x, torch.bfloat16, True),
            "torchvision eager bf16 channels-last, CUDA graph": lambda: tv_graph(x_bf16),
            "lucid optimize_for_inference(bf16)": lambda: fast(x),
            "lucid, every layer plain conv + epilogue": lambda: plain(x),
            "lucid, every layer fused": lambda: all_fused(x),
            "lucid optimize_for_inference(bf16, cuda_graph=True)": lambda: graphed(x),
        }
        try:
            all_fused(x)
        except RuntimeError as err:  # a layer whose fused kernel cuDNN refused
            log(f"every layer fused: not runnable ({err})")
            del contenders["lucid, every layer fused"]
        with torch.inference_mode():
            ms = time_interleaved(contenders, rounds=15 if batch >= 64 else 30)
        base = ms["torchvision eager bf16 channels-last"]
        for name, t in ms.items():
            log(f"{name:52s} {t:8.2f} ms {batch / t * 1000:9.0f} img/s  {base / t:.2f}x torchvision eager")
            if name.startswith("lucid optimize_for_inference"):
                figures.append(f"batch {batch}: {name} {base / t:.2f}x torchvision eager bf16 channels-last")
        record["runs"][str(batch)] = {  # type: ignore[index]
            "ms": ms, "fused_layers": sum(choices), "layers": len(choices), "min_cosine": cos, "top1_agreement": top1,
            "cuda_graph_max_rel_diff": graph_err,
        }
    if args.json:
        atomic_write(args.json, lambda tmp: tmp.write_text(json.dumps(record, indent=1)))


if __name__ == "__main__":
    main()
