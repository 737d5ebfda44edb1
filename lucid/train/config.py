"""The settings of a training run: one dataclass, whose fields also define ``lucid train``'s flags.

Each field carries its help text (and, where argparse needs them, its choices and metavar) in its
``metadata``, so the command line is generated from here and a default lives in one place.
:meth:`TrainConfig.validate` refuses values that cannot work, non-finite numbers included, with a
:class:`~lucid.errors.ConfigError` whose ``field`` names the setting.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from ..core.checks import check_image_size, is_int
from ..core.constants import AMP_CHOICES, MAX_IMAGE_SIZE, NONFINITE_CHOICES, OPTIMIZER_CHOICES, SCHEDULE_CHOICES
from ..core.errors import ConfigError, ConfigTypeError

__all__ = ["DIGITS_MODEL_DEFAULTS", "FOLDER_MODEL_DEFAULTS", "MAX_IMAGE_SIZE", "MAX_SEED", "TrainConfig", "check_finite_overrides", "check_image_size"]

# The model for the bundled digits (applied unless --set says otherwise).
# The bundled digits start every residual block as an identity too (see FOLDER_MODEL_DEFAULTS below):
# measured on the default run, 8 epochs then reach the best val_acc1 that 15 reached without it.
DIGITS_MODEL_DEFAULTS = {"in_channels": 1, "stem_type": "deep", "stem_width": 32, "zero_init_residual": True}
# Image folders trained from scratch start every residual block as an identity (its last BatchNorm
# weight at zero, as timm does by default): a deep network then begins near a shallow one and its
# first epochs are not spent undoing exploding activations (docs: Training, "Image folders").
# Applied unless --set says otherwise; published weights replace the initialisation anyway.
FOLDER_MODEL_DEFAULTS = {"zero_init_residual": True}
MAX_SEED = 2**32 - 1  # numpy's and DataLoader workers' seeds must fit 32 bits
MAX_EPOCHS = 1_000_000  # a sample's seed is drawn from seed * 2**24 + epoch
MAX_BATCH = 1_000_000
MAX_ALPHA = 100.0  # MixUp/CutMix Beta(alpha, alpha) concentration: far past any recipe (0.2-1.0), within what torch samples
MAX_WORKERS = 256
MAX_REPEATS = 16
AUTO_AUGMENT = ("randaugment", "trivialaugment", "autoaugment")
DECODE_CHOICES = ("cpu", "gpu")


def _opt(default: Any, help: str, group: str, **cli: Any) -> Any:
    """A field with its command-line help (``group`` orders the --help output)."""
    factory = {"default_factory": default} if callable(default) else {"default": default}
    return field(metadata={"help": help, "group": group, "cli": cli}, **factory)


@dataclass
class TrainConfig:
    """Every setting of a training run (saved in ``last.pt`` so that ``--resume`` repeats it exactly).

    ``data=None`` trains on scikit-learn's digits. ``channels_last``/``compile``/``fused_optimizer``
    ``None`` and ``amp="auto"`` take :func:`lucid.train.step.fast_defaults` for the device.
    ``batch_size`` is per process. The defaults are the measured recipe for the digits run (README).
    """

    data: str | None = _opt(None, "image folder (DIR/train/<class>/... and DIR/val/<class>/..., or one class tree with --val-split), WebDataset shards "
                            "(a folder of .tar files or train/ + val/ folders of them, a brace pattern, a list file) or a Hugging Face dataset "
                            "(a save_to_disk folder, .parquet/.arrow files, hf:user/name from the local cache) (default: the bundled digits)", "data", metavar="SRC")
    data_split: str | None = _opt(None, "Hugging Face datasets: the split to read (default: train + validation)", "data", metavar="NAME")
    image_column: str | None = _opt(None, "Hugging Face datasets: the image column (default: the Image feature)", "data", metavar="NAME")
    label_column: str | None = _opt(None, "Hugging Face datasets: the label column (default: the ClassLabel feature)", "data", metavar="NAME")
    decode: str = _opt("cpu", "where training images are decoded: cpu (loader workers, reduced-size JPEG decode) or gpu (the batch decoded on "
                              "the CUDA device with TorchCodec; needs lucid[data], no --auto-augment or --random-erase)", "data", choices=DECODE_CHOICES)
    val_split: float | None = _opt(None, "fraction held out for validation from a single class tree (digits: 0.2)", "data", metavar="F")
    image_size: int | None = _opt(None, "training resolution (digits: 32, folders: 224)", "data", metavar="PX")
    eval_size: int | None = _opt(None, "evaluation resolution, when it differs from the training one (e.g. train at 176, evaluate at 224); saved as the model's input size", "data", metavar="PX")
    progressive_resize: str | None = _opt(None, "raise the training resolution linearly from A px in the first epoch to B px in the last, in steps of 16 (image folders)", "data", metavar="A:B")
    repeated_aug: int = _opt(1, "repeated augmentation: each drawn image is used N times per epoch, differently augmented, on different processes (epoch length kept)", "data", metavar="N")
    workers: int | None = _opt(None, "data loader processes per training process (digits: 0, other data: the CPUs per process less one, 1 to 16)", "data")
    auto_augment: str | None = _opt(None, "automatic augmentation policy from torchvision (default off)", "data", choices=AUTO_AUGMENT)
    random_erase: float = _opt(0.0, "probability of erasing a random rectangle of each training image (torchvision RandomErasing)", "data", metavar="P")
    mixup: float = _opt(0.0, "MixUp alpha (0 = off; with --cutmix one of the two is picked per batch)", "data", metavar="ALPHA")
    cutmix: float = _opt(0.0, "CutMix alpha (0 = off)", "data", metavar="ALPHA")
    model: str = _opt("resnext_50_32x4d", "preset name, see `lucid models`", "model")
    overrides: dict[str, Any] = _opt(dict,  # noqa: RUF009 - _opt returns a dataclasses.field
                                     "config fields, e.g. --set stem_type=deep (digits default: in_channels=1 stem_type=deep stem_width=32)", "model", flag="--set")
    pretrained: str | bool | None = _opt(None, "start from published weights (optionally a weights tag)", "model", nargs="?", const=True, metavar="TAG")
    drop_path: float = _opt(0.0, "stochastic depth: probability of dropping a residual branch (block_args drop_path)", "model", metavar="P")
    epochs: int = _opt(8, "passes over the training images", "optimisation")
    batch_size: int = _opt(64, "images per step and process", "optimisation")
    grad_accum: int = _opt(1, "batches whose gradients are summed before each optimizer step", "optimisation", metavar="N")
    opt: str = _opt("adamw", "AdamW, or SGD with (Nesterov) momentum", "optimisation", choices=OPTIMIZER_CHOICES)
    lr: float | None = _opt(None, "peak learning rate (adamw: 0.002, sgd: 0.1)", "optimisation")
    momentum: float = _opt(0.9, "SGD momentum", "optimisation")
    nesterov: bool = _opt(True, "Nesterov momentum for SGD", "optimisation")
    weight_decay: float | None = _opt(None, "on weights only, never on norms/biases (adamw: 0.05, sgd: 5e-4)", "optimisation")
    sched: str = _opt("cosine", "learning-rate schedule after the warm-up: cosine decay, x0.1 at 1/2 and 3/4 of the run, or x0.1 when val_acc1 stops improving", "optimisation", choices=SCHEDULE_CHOICES)
    warmup_epochs: float = _opt(1.0, "linear warm-up before the schedule", "optimisation")
    label_smoothing: float = _opt(0.1, "label smoothing of the targets", "optimisation")
    bce_loss: bool = _opt(False, "binary cross-entropy per class (as timm's --bce-loss) instead of softmax cross-entropy", "optimisation")
    clip_grad: float | None = _opt(None, "clip the global gradient norm (default off)", "optimisation", metavar="NORM")
    model_ema: bool = _opt(False, "keep an exponential moving average of the weights, validated and saved in OUT/ema", "optimisation")
    model_ema_decay: float = _opt(0.998, "EMA decay per optimizer step", "optimisation")
    on_nonfinite: str = _opt("stop", "a NaN/inf loss: stop the run, or skip that step and count it", "optimisation", choices=NONFINITE_CHOICES)
    amp: str = _opt("auto", "mixed precision (auto: bf16 where the hardware runs it natively; fp16 adds a gradient scaler, CUDA only)", "speed and devices", choices=AMP_CHOICES)
    channels_last: bool | None = _opt(None, "channels-last memory format (default: per device)", "speed and devices")
    compile: bool | None = _opt(None, "torch.compile the model (default: on CUDA for runs of at least 1,000,000 images, else off)", "speed and devices")
    fused_optimizer: bool | None = _opt(None, "single-kernel optimizer step (default: per device)", "speed and devices")
    device: str = _opt("auto", "auto (CUDA if present), cpu, cuda, cuda:N", "speed and devices")
    seed: int = _opt(0, "seed of the split, the initialisation and the augmentation", "run")
    out: str | None = _opt(None, "output folder (default: a fresh folder under runs/)", "run", metavar="DIR")
    overwrite: bool = _opt(False, "replace whatever --out holds (another run, a model folder, other files)", "run")
    save_every: int = _opt(0, "also save the training state (last.pt) every N optimizer steps, not only at epoch ends (0 = off)", "run", metavar="N")
    keep_checkpoints: int = _opt(0, "also keep the weights of the last K epochs in OUT/checkpoints (for `lucid weights average`)", "run", metavar="K")
    tensorboard: bool = _opt(False, "also write TensorBoard event files to OUT/tensorboard (needs the tensorboard package)", "run")

    def validate(self) -> None:
        """Refuse settings that cannot work, naming the field (wrong types and non-finite numbers included)."""
        for f in fields(self):
            value = getattr(self, f.name)
            if not _has_type(value, str(f.type)):
                raise ConfigTypeError(f"{f.name} must be {_TYPE_WORDS.get(str(f.type), str(f.type))}, got {value!r}"[:300], f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value!r}", f.name)
        checks = [
            ("epochs", _int_at_least(self.epochs, 1) and self.epochs <= MAX_EPOCHS, f"an int between 1 and {MAX_EPOCHS}"),
            ("batch_size", _int_at_least(self.batch_size, 2) and self.batch_size <= MAX_BATCH, f"an int >= 2 and <= {MAX_BATCH} (BatchNorm cannot train on one image)"),
            ("grad_accum", _int_at_least(self.grad_accum, 1), "a positive int"),
            ("lr", self.lr is None or self.lr > 0, "a positive number"),
            ("momentum", 0 <= self.momentum < 1, "a number in [0, 1)"),
            ("weight_decay", self.weight_decay is None or self.weight_decay >= 0, "a number >= 0"),
            ("warmup_epochs", self.warmup_epochs >= 0, "a number >= 0"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "a number in [0, 1)"),
            ("clip_grad", self.clip_grad is None or self.clip_grad > 0, "a positive number"),
            ("workers", self.workers is None or (_int_at_least(self.workers, 0) and self.workers <= MAX_WORKERS), f"an int between 0 and {MAX_WORKERS}"),
            ("save_every", _int_at_least(self.save_every, 0), "an int >= 0 (0 = only at epoch ends)"),
            ("repeated_aug", _int_at_least(self.repeated_aug, 1) and self.repeated_aug <= MAX_REPEATS, f"an int between 1 and {MAX_REPEATS}"),
            ("val_split", self.val_split is None or 0 < self.val_split < 1, "a number between 0 and 1"),
            ("random_erase", 0 <= self.random_erase <= 1, "a probability in [0, 1]"),
            ("mixup", 0 <= self.mixup <= MAX_ALPHA, f"an alpha between 0 (off) and {MAX_ALPHA}"),
            ("cutmix", 0 <= self.cutmix <= MAX_ALPHA, f"an alpha between 0 (off) and {MAX_ALPHA}"),
            ("drop_path", 0 <= self.drop_path < 1, "a probability in [0, 1)"),
            ("model_ema_decay", 0 < self.model_ema_decay < 1, "a number in (0, 1)"),
            ("keep_checkpoints", _int_at_least(self.keep_checkpoints, 0), "an int >= 0"),
            ("seed", _int_at_least(self.seed, 0) and self.seed <= MAX_SEED, f"an int between 0 and {MAX_SEED}"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"{name} must be {expected}, got {getattr(self, name)!r}", name)
        for name, allowed in (("opt", OPTIMIZER_CHOICES), ("amp", AMP_CHOICES), ("sched", SCHEDULE_CHOICES),
                              ("on_nonfinite", NONFINITE_CHOICES), ("auto_augment", (None, *AUTO_AUGMENT)), ("decode", DECODE_CHOICES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(str(a) for a in allowed)}, got {getattr(self, name)!r}", name)
        for name in ("image_size", "eval_size"):
            if getattr(self, name) is not None:
                check_image_size(getattr(self, name), name)
        if self.progressive_resize is not None:
            self.resize_range()
        self._check_decode()
        if not isinstance(self.overrides, dict):
            raise ConfigTypeError(f"overrides must be a dict of model config fields, got {type(self.overrides).__name__}", "overrides")
        check_finite_overrides(self.overrides)

    def _check_decode(self) -> None:
        """``decode="gpu"`` needs ``data`` and augments on the device, where the CPU-only policies cannot run."""
        if self.decode != "gpu":
            return
        if self.data is None:
            raise ConfigError("decode: --decode gpu decodes image files; the bundled digits are no files (give --data, or --decode cpu)", "decode")
        for name, off in (("auto_augment", None), ("random_erase", 0.0)):
            if getattr(self, name) != off:
                raise ConfigError(f"decode: --decode gpu cannot be combined with {name}={getattr(self, name)!r} (CPU augmentation); "
                                  f"drop --{name.replace('_', '-')} or use --decode cpu", "decode")

    def resize_range(self) -> tuple[int, int]:
        """``progressive_resize`` as (first, last) training size in px."""
        low, sep, high = str(self.progressive_resize).partition(":")
        if not (sep and low.isdigit() and high.isdigit() and len(low) < 6 and len(high) < 6 and int(low) <= int(high)):
            raise ConfigError(f"progressive_resize must be A:B with A <= B sizes in px (e.g. 128:192), got {self.progressive_resize!r}", "progressive_resize")
        if self.image_size is not None:
            raise ConfigError(f"image_size ({self.image_size}) cannot be combined with progressive_resize, which sets the training size "
                              f"(from {low} to {high} px)", "image_size")
        for size in (int(low), int(high)):
            check_image_size(size, "progressive_resize")
        return int(low), int(high)

    @property
    def learning_rate(self) -> float:
        """``lr``, or the optimiser's default peak rate (SGD 0.1, AdamW 0.002)."""
        return self.lr if self.lr is not None else (0.1 if self.opt == "sgd" else 2e-3)

    @property
    def decay(self) -> float:
        """``weight_decay``, or the optimiser's default (SGD 5e-4, AdamW 0.05)."""
        return self.weight_decay if self.weight_decay is not None else (5e-4 if self.opt == "sgd" else 0.05)


_TYPE_WORDS = {
    "int": "an int", "float": "a number", "bool": "true or false", "str": "a string", "int | None": "an int or null",
    "float | None": "a number or null", "bool | None": "true, false or null", "str | None": "a string or null",
    "str | bool | None": "a string, true or null", "dict[str, Any]": "a dict",
}
_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "None": (type(None),), "dict[str, Any]": (dict,)}


def _has_type(value: Any, annotation: str) -> bool:
    """Whether ``value`` fits a field annotation such as ``"float | None"`` (a bool is no number)."""
    kinds = [_TYPES[part.strip()] for part in annotation.split("|")]
    if isinstance(value, bool):
        return any(bool in kind for kind in kinds)
    return any(isinstance(value, kind) for kind in kinds)


def _int_at_least(value: Any, low: int) -> bool:
    return is_int(value) and value >= low


def check_finite_overrides(overrides: dict[str, Any], prefix: str = "") -> None:
    """Refuse NaN/inf anywhere in model config overrides (nested dicts and lists included)."""
    for key, value in overrides.items():
        name = f"{prefix}{key}"
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else [(None, value)]
        for sub, item in items:
            if isinstance(item, float) and not math.isfinite(item):
                where = name if sub is None else f"{name}[{sub!r}]"
                raise ConfigError(f"{where} must be a finite number, got {item!r}", key)
