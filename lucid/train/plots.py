"""Pictures of a run: learning curves from ``metrics.jsonl`` and confusion matrices (matplotlib, the ``plot`` extra)."""
from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from ..core.extras import require
from ..core.fileio import atomic_write

__all__ = ["plot_confusion", "plot_curves", "pyplot"]


def pyplot() -> Any:
    """matplotlib.pyplot drawing to files (a MissingDependencyError naming the extra when matplotlib is missing)."""
    matplotlib = require("matplotlib", "plot", "drawing plots (--confusion, lucid plot)")
    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out: Path) -> Path:
    plt = pyplot()
    try:
        atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    finally:
        plt.close(fig)
    return out


def _series(records: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["epoch"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def plot_curves(records: Sequence[dict[str, Any]], out: str | os.PathLike[str], title: str = "") -> Path:
    """Loss, top-1 accuracy and learning rate per epoch (training against validation) as a PNG."""
    if not records:
        raise ConfigError("metrics: the run has no finished epoch to plot yet", "run")
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    panels = [
        ("loss", [("train_loss", "train"), ("val_loss", "val"), ("ema_val_loss", "val (EMA)")]),
        ("top-1 accuracy", [("train_acc1", "train"), ("val_acc1", "val"), ("ema_val_acc1", "val (EMA)")]),
        ("learning rate", [("lr", "lr")]),
    ]
    for ax, (name, keys) in zip(axes, panels):
        for key, label in keys:
            x, y = _series(records, key)
            if x:
                ax.plot(x, y, marker="o", markersize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    best = max((r for r in records if isinstance(r.get("val_acc1"), (int, float))), key=lambda r: r["val_acc1"], default=None)
    if best is not None:
        axes[1].plot([best["epoch"]], [best["val_acc1"]], marker="*", markersize=14, color="tab:red", linestyle="none",
                     label=f"best val {best['val_acc1']:.4f} (epoch {best['epoch']})")
    for ax in axes[:2]:
        ax.legend()
    axes[2].ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, Path(out))


def plot_confusion(matrix: Sequence[Sequence[int]], class_names: Sequence[str], out: str | os.PathLike[str], title: str = "") -> Path:
    """The confusion matrix (rows: true class, columns: predicted), counts written in the cells, as a PNG."""
    plt = pyplot()
    n = len(class_names)
    size = min(16.0, 2.5 + 0.5 * n)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = list(range(n))
    ax.set_xticks(ticks, labels=list(class_names), rotation=45 if n > 10 else 0, ha="right" if n > 10 else "center")
    ax.set_yticks(ticks, labels=list(class_names))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= 30:
        peak = max((max(row) for row in matrix), default=0)
        for i, row in enumerate(matrix):
            for j, count in enumerate(row):
                if count:
                    ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color="white" if count > peak / 2 else "black")
    ax.set_title("\n".join(textwrap.wrap(title, width=max(24, int(size * 9)))), fontsize=10)  # long titles wrap, never clip
    fig.tight_layout()
    return _save(fig, Path(out))
