"""Evaluate a lucid-trained and a timm-trained model with each tool's evaluation preprocessing (not part of the repo)."""
import sys, torch
from torchvision.transforms import v2
from lucid.train.data import scan_class_folders, decode_image_file
from pathlib import Path
B, C = v2.InterpolationMode.BILINEAR, v2.InterpolationMode.BICUBIC
val = Path(sys.argv[1]); lucid_run = sys.argv[2]; timm_ckpt = sys.argv[3] if len(sys.argv) > 3 else None
classes, samples = scan_class_folders(val)
imgs = [decode_image_file(p, 3) for p, _ in samples]; tg = torch.tensor([t for _, t in samples])
M, S = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
variants = {"lucid 37 bilinear crop32": (37, B), "timm 33 bicubic crop32": (33, C), "none (32 as is)": (32, B),
            "33 bilinear": (33, B), "37 bicubic": (37, C)}
models = {}
import lucid.models as lm
models["lucid-trained"] = lm.from_pretrained(lucid_run)
if timm_ckpt:
    import timm
    m = timm.create_model("resnext50_32x4d", num_classes=10, stem_type="deep", stem_width=32)
    sd = torch.load(timm_ckpt, map_location="cpu", weights_only=False)["state_dict"]
    m.load_state_dict(sd); models["timm-trained"] = m
for mn, m in models.items():
    m.eval()
    for vn, (size, interp) in variants.items():
        t = v2.Compose([v2.Resize(size, interpolation=interp, antialias=True), v2.CenterCrop(32), v2.ToDtype(torch.float32, scale=True), v2.Normalize(M, S)])
        x = torch.stack([t(i) for i in imgs])
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            pred = torch.cat([m(x[i:i+128]).float().argmax(1) for i in range(0, len(x), 128)])
        print(f"{mn:14s} {vn:26s} top-1 {100*(pred == tg).float().mean():.1f}%", flush=True)
