"""Ablation harness: lucid's fit() with one factor changed by monkeypatching (not part of the repo)."""
import argparse, json, math, sys, time
import torch
from torchvision.transforms import v2
import lucid.train.data as D
import lucid.train.engine as E

p = argparse.ArgumentParser()
p.add_argument("--name", required=True)
p.add_argument("--data", default="/tmp/h16/data")
p.add_argument("--model", default="resnext_50_32x4d")
p.add_argument("--set", nargs="*", default=["stem_type=deep", "stem_width=32"])
p.add_argument("--image-size", type=int, default=32)
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--scale-min", type=float, default=0.08)
p.add_argument("--flip", type=float, default=0.5)
p.add_argument("--jitter", type=float, default=0.0)
p.add_argument("--train-interp", default="bilinear")
p.add_argument("--eval-resize", type=int, default=37)
p.add_argument("--eval-interp", default="bilinear")
p.add_argument("--sched", default="lucid", choices=["lucid", "timm"])
p.add_argument("--workers", type=int, default=2)
a = p.parse_args()
I = {"bilinear": v2.InterpolationMode.BILINEAR, "bicubic": v2.InterpolationMode.BICUBIC}

def train_transform(prep):
    t = [v2.RandomResizedCrop(prep.image_size, scale=(a.scale_min, 1.0), interpolation=I[a.train_interp], antialias=True)]
    if a.flip: t.append(v2.RandomHorizontalFlip(a.flip))
    if a.jitter: t.append(v2.ColorJitter(a.jitter, a.jitter, a.jitter))
    return v2.Compose(t + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(prep.mean), list(prep.std))])

def eval_transform(prep):
    size = a.eval_resize
    return v2.Compose([v2.Resize(size, interpolation=I[a.eval_interp], antialias=True), v2.CenterCrop(prep.image_size),
                       v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(prep.mean), list(prep.std))])

D.train_transform = train_transform
D.eval_transform = eval_transform
if a.sched == "timm":
    def timm_like(total_steps, warmup_steps):
        spe = max(1, warmup_steps)  # one warm-up epoch
        epochs = total_steps // spe
        lr = 2e-3
        def f(step):
            e = step // spe
            if e < 1: return 1e-5 / lr
            return 0.5 * (1 + math.cos(math.pi * e / epochs))
        return f
    E.warmup_cosine = timm_like
from lucid.cli import parse_set
cfg = E.TrainConfig(data=a.data, model=a.model, overrides=parse_set(a.set), image_size=a.image_size, epochs=a.epochs,
                    workers=a.workers, seed=a.seed, out=f"/tmp/h16/runs/{a.name}-{time.time():.0f}")
t = time.perf_counter()
s = E.fit(cfg)
curve = [json.loads(l)["val_acc1"] for l in open(cfg.out + "/metrics.jsonl")]
rec = {"name": a.name, "args": vars(a), "best": s["best_val_acc1"], "curve": [round(100*c, 1) for c in curve], "wall": round(time.perf_counter()-t, 1)}
print(json.dumps(rec))
open("/tmp/h16/ablate.jsonl", "a").write(json.dumps(rec) + "\n")
