# Feature and logit scale of a freshly initialised model on 63 training images of the folder (train-mode BN,
# as in the first training step). Prints the std of each stage's output and of the logits, and the initial loss.
# Run: OMP_NUM_THREADS=1 PYTHONPATH=<checkout> python init_activations.py  (folder written by train_vs_timm.py at /tmp/h16/data)
import torch
import torch.nn.functional as F

from lucid.models import create_model
from lucid.train.data import collate_skipping, default_preprocessing, folder_splits

prep = default_preprocessing(32, 3)
train, _, _ = folder_splits("/tmp/h16/data", None, 0, prep)
torch.manual_seed(0)
batch = collate_skipping([train[i] for i in range(0, 1438, 23)][:64])
print("# ResNeXt-50 32x4d, deep stem 32, 10 classes, 32 px, 63 images; train-mode BN, fp32")
for zi in (False, True):
    torch.manual_seed(0)
    m = create_model("resnext_50_32x4d", num_classes=10, stem_type="deep", stem_width=32, zero_init_residual=zi).train()
    h = m.stem(batch.images)
    if hasattr(m, "maxpool"):
        h = m.maxpool(h)
    stds = []
    for stage in m.stages:
        h = stage(h)
        stds.append(h.std().item())
    with torch.no_grad():
        logits = m(batch.images)
    loss = F.cross_entropy(logits, batch.targets, label_smoothing=0.1).item()
    print(f"zero_init_residual={zi!s:5}: stage output std {', '.join(f'{s:.2f}' for s in stds)}; logit std {logits.std().item():.3f}; "
          f"initial loss {loss:.3f} (uniform: {torch.log(torch.tensor(10.)).item():.3f})")
