"""Reports a person would rather look at than read: plots written next to the numbers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402


def plot_history(history: Sequence[dict[str, float]], path, *, title: str = "") -> Path:
    """One panel per quantity of ``history.csv`` (training and validation together), vs epoch.

    ``history``: rows as read by :func:`tfphys.training.read_history`. Returns the PNG path.
    """
    path = Path(path)
    names = sorted({k for row in history for k in row if k != "epoch" and not k.startswith("val_")})
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(4.2 * max(len(names), 1), 3.2),
                             squeeze=False)
    epochs = [int(row["epoch"]) + 1 for row in history]
    for ax, name in zip(axes[0], names):
        for key, style in ((name, "o-"), (f"val_{name}", "s--")):
            values = [row.get(key, float("nan")) for row in history]
            ax.plot(epochs, values, style, label="validation" if key.startswith("val_") else "training")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    savefig(fig, path, dpi=110)
    return path


def savefig(fig, path, **kwargs) -> Path:
    """``fig.savefig(path, **kwargs)`` through :class:`tfphys.atomic.atomic_path` (the format from
    ``path``'s extension), then close the figure: every report's figures are written this way."""
    from tfphys.atomic import atomic_path

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, **kwargs)
    finally:
        plt.close(fig)
    return path
