"""Classification metrics and the plots a person reads them from."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from emotion.classes import EMOTIONS
from emotion.errors import MoodtunesError


class PlotUnavailable(MoodtunesError):
    """matplotlib is not installed: metrics still print, the PNG is skipped."""


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = len(EMOTIONS)) -> np.ndarray:
    """Counts with rows = true class, columns = predicted class."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(num_classes, num_classes)


def summarize(labels: np.ndarray, predictions: np.ndarray) -> dict:
    """n, accuracy, macro F1, balanced accuracy, per-class recall and the confusion matrix, JSON-ready."""
    return summarize_confusion(confusion_matrix(labels, predictions))


def summarize_confusion(cm: np.ndarray) -> dict:
    """The metrics of :func:`summarize` from a confusion matrix (rows = true class)."""
    cm = np.asarray(cm, dtype=np.int64)
    true_counts = cm.sum(1)
    predicted_counts = cm.sum(0)
    hits = np.diag(cm)
    recall = np.divide(hits, true_counts, out=np.zeros(len(hits)), where=true_counts > 0)
    precision = np.divide(hits, predicted_counts, out=np.zeros(len(hits)), where=predicted_counts > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(len(hits)), where=denom > 0)
    present = true_counts > 0  # macro F1 over the classes that occur in the split
    n = int(cm.sum())
    return {
        "n": n,
        "accuracy": float(hits.sum() / max(n, 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "per_class_recall": {name: float(r) for name, r in zip(EMOTIONS, recall, strict=True)},
        "confusion_matrix": cm.tolist(),
    }


def pyplot() -> ModuleType:
    """matplotlib's pyplot on the file-only Agg backend (imported late: only plots need it)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise PlotUnavailable("matplotlib is not installed, so no PNG was written; "
                              'install it with pip install "moodtunes[train]"') from exc

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(cm: Sequence[Sequence[int]], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with counts, as a PNG."""
    plt = pyplot()
    cm = np.asarray(cm, dtype=float)
    rates = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6), dpi=120)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
            ax.text(j, i, f"{rates[i, j]:.2f}\n{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if rates[i, j] > 0.5 else "black")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_training_curves(log_csv: Path, path: Path) -> None:
    """Loss and accuracy per epoch (train, validation) and validation balanced accuracy, from train.py's log."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator  # matplotlib is optional: imported once pyplot() found it

    with open(log_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) for r in rows]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=110, layout="constrained")
    style = {"marker": "o", "markersize": 3}  # a run of one or two epochs is points, not lines
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        loss_ax.plot(epochs, [float(r[key]) for r in rows], label=label, **style)
    curves = [("train_acc", "train accuracy"), ("val_acc", "validation accuracy")]
    if "val_balanced_acc" in rows[0]:  # what picks best.pt (logs of older runs lack it)
        curves.append(("val_balanced_acc", "validation balanced accuracy (best tau)"))
    for key, label in curves:
        acc_ax.plot(epochs, [100 * float(r[key]) for r in rows], label=label, **style)
    loss_ax.set(title="loss", xlabel="epoch")
    acc_ax.set(title="accuracy (%)", xlabel="epoch")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)  # room for whole-number ticks, even for one epoch
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=8, frameon=False)  # off the curves
    fig.savefig(path)
    plt.close(fig)
