"""Which of lucid's GPU inference variants pay off: cuDNN fused kernels, folding alone, CUDA graphs.

ResNeXt-50 32x4d, 224x224, bf16, at batch 256 and 32, against torchvision eager bf16 channels-last
(with and without a CUDA graph), all interleaved in one process and timed with CUDA events:

* ``lucid auto``: ``optimize_for_inference(bf16)`` as shipped (per-layer choice, fused or plain);
* ``lucid folded plain``: the same module with every layer forced to plain convolution + epilogue;
* ``lucid all fused``: every layer forced to cuDNN's fused kernel;
* ``... + cudagraph``: the module captured in a CUDA graph and replayed.

Also prints the bf16-vs-fp32 agreement and each layer's choice. Usage:
``python benchmarks/gpu_variants.py`` (needs CUDA and torchvision; writes ``$OUT/gpu_variants.json`` if OUT is set).
"""
from __future__ import annotations

import copy
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
import torch  # noqa: E402
from torch import nn  # noqa: E402

from lucid._atomic import atomic_write  # noqa: E402
from lucid.benchmark import make_batch, peer_infer, peer_models, randomize_batchnorm  # noqa: E402
from lucid.models import create_model  # noqa: E402
from lucid.optimize import _FusedConv2d, optimize_for_inference  # noqa: E402

T0 = time.perf_counter()
OUT = os.environ.get("OUT")
record: dict = {}


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


def graphed(fn_net: nn.Module, x: torch.Tensor):
    """Capture net(x) in a CUDA graph; returns a replay function."""
    static_x = x.clone()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s), torch.inference_mode():
        for _ in range(3):
            fn_net(static_x)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.inference_mode(), torch.cuda.graph(g):
        static_out = fn_net(static_x)

    def run():
        static_x.copy_(x)
        g.replay()
        return static_out

    return run


def main() -> None:
    torch.backends.cudnn.benchmark = True
    log(torch.__version__, torch.version.cuda, torch.backends.cudnn.version(), torch.cuda.get_device_name())
    torch.manual_seed(0)
    model = randomize_batchnorm(create_model("resnext_50_32x4d")).cuda().eval()
    for batch in (256, 32):
        log(f"--- batch {batch}")
        x, _ = make_batch(model, batch, 224, "cuda")
        with torch.no_grad():
            ref = model(x).float()
        peers = peer_models("resnext_50_32x4d", model)
        tv = peer_infer(peers["torchvision"], x, torch.bfloat16, True)
        fns = {"tv eager bf16 CL": tv}
        fast = optimize_for_inference(model, dtype=torch.bfloat16)
        t = time.perf_counter()
        out = fast(x)
        torch.cuda.synchronize()
        log(f"first call (autotune) {time.perf_counter() - t:.2f}s; backend {fast.backend}")
        convs = [m for m in fast.modules() if isinstance(m, _FusedConv2d)]
        decisions = [v for m in convs for v in m.cuda_fused.values()]
        log(f"fused convs: {len(convs)}, decisions fused={sum(decisions)} plain={len(decisions) - sum(decisions)}")
        cos = nn.functional.cosine_similarity(out.float(), ref, dim=1).min().item()
        top1 = (out.argmax(1) == ref.argmax(1)).float().mean().item()
        log(f"lucid cudnn-fused vs fp32 ref: min cosine {cos:.5f}, top1 agreement {top1:.4f}")
        fns["lucid auto"] = lambda: fast(x)
        # all plain (folded only) and all fused
        plain = copy.deepcopy(fast)
        for m in plain.modules():
            if isinstance(m, _FusedConv2d):
                for k in m.cuda_fused:
                    m.cuda_fused[k] = False
        allf = copy.deepcopy(fast)
        ok_all = True
        for m in allf.modules():
            if isinstance(m, _FusedConv2d):
                for k in m.cuda_fused:
                    m.cuda_fused[k] = True
        try:
            allf(x)
        except Exception as e:  # noqa: BLE001
            ok_all = False
            log("all-fused failed:", repr(e)[:300])
        fns["lucid folded plain"] = lambda: plain(x)
        if ok_all:
            fns["lucid all fused"] = lambda: allf(x)
        xin = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        try:
            fns["lucid auto + cudagraph"] = graphed(fast.net, xin)
            with torch.inference_mode():
                g_out = fns["lucid auto + cudagraph"]().float()
            log(f"graph vs eager max abs diff {(g_out - out.float()).abs().max().item():.3g}")
        except Exception:  # noqa: BLE001
            log("graph failed:", traceback.format_exc()[-600:])
        # tv with a graph, to compare like for like
        tvnet = copy.deepcopy(peers["torchvision"]).eval().cuda().to(memory_format=torch.channels_last).to(torch.bfloat16)
        try:
            fns["tv eager bf16 CL + cudagraph"] = graphed(tvnet, xin)
        except Exception:  # noqa: BLE001
            log("tv graph failed:", traceback.format_exc()[-300:])
        res = time_interleaved(fns, rounds=15 if batch == 256 else 30)
        base = res["tv eager bf16 CL"]
        for k, v in res.items():
            log(f"{k:32s} {v:8.2f} ms  {batch / v * 1000:9.0f} img/s  x tv-eager-bf16 {base / v:.2f}")
        record[str(batch)] = {"ms": res, "fused_decisions": [sum(decisions), len(decisions)], "cos": cos, "top1": top1}
        # per-layer: which shapes chose fused, and time share
        for m in convs:
            for key, v in m.cuda_fused.items():
                if not v or batch == 256:
                    print(f"   {tuple(m.weight.shape)} g{m.groups} s{m.stride[0]} in{tuple(key[0])} add={key[1]} -> {'fused' if v else 'plain'}")
        del fast, plain, allf, fns, tvnet
        torch.cuda.empty_cache()
    if OUT:
        atomic_write(Path(OUT) / "gpu_variants.json", lambda tmp: tmp.write_text(json.dumps(record, indent=1)))


if __name__ == "__main__":
    main()
