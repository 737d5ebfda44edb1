"""Constants shared across lucid's layers: normalisation statistics, choice sets and size limits."""
from __future__ import annotations

__all__ = [
    "AMP_CHOICES",
    "BENCH_DTYPES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INFERENCE_DTYPES",
    "MAX_IMAGE_SIZE",
    "MAX_INT",
    "NONFINITE_CHOICES",
    "OPTIMIZER_CHOICES",
    "SCHEDULE_CHOICES",
]

# Per-channel mean and standard deviation of ImageNet's RGB images (in [0, 1]), which every
# published ImageNet checkpoint of these architectures was trained to expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The precisions `lucid eval` / `predict` / `optimize_for_inference` run a trained model in.
INFERENCE_DTYPES = ("float32", "bfloat16", "int8")

# The precisions `lucid bench` times inference in (float16 on GPUs as well).
BENCH_DTYPES = ("float32", "bfloat16", "float16", "int8")

# Autocast settings of training and inference: bf16 where the hardware runs it natively, fp16
# (with a gradient scaler when training, CUDA only), or none.
AMP_CHOICES = ("auto", "bf16", "fp16", "off")

# Optimizers, learning-rate schedules and non-finite-loss policies of `lucid train`.
OPTIMIZER_CHOICES = ("sgd", "adamw")
SCHEDULE_CHOICES = ("cosine", "step", "plateau")
NONFINITE_CHOICES = ("stop", "skip")

# The largest integer any config field or option accepts (a signed 64-bit value): bigger ones
# overflow torch's sizes. Fields that size memory have much tighter bounds of their own.
MAX_INT = 2**63 - 1

# The longest image side lucid resizes to, trains or exports at.
MAX_IMAGE_SIZE = 4096
