"""Choose a model's decision rule on validation data and store it in the checkpoint.

    python -m training.decide --checkpoint runs/ferplus/best.pt --dataset ferplus --data data/ferplus \\
        --neutral-data data/ferplus --accuracy-floor 85.5 --out checkpoints/emotion_ferplus.pt
    python -m training.export --checkpoint checkpoints/emotion_ferplus.pt

Sweeps the logit adjustment's tau (emotion.decision) over the validation split, prints each
tau's balanced accuracy, macro F1, accuracy and per-class recall (and plots them), and keeps
the tau with the best balanced accuracy whose accuracy stays at or above --accuracy-floor
(or the --tau you give). The prior is the class distribution of the training targets (vote
shares for FER+). It also measures the model's typical neutral: its mean logits on the FER+
validation faces that most annotators called neutral, which a personal calibration needs.
Nothing here looks at a test split.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from emotion.checkpoint import load_checkpoint, save_checkpoint
from emotion.classes import EMOTIONS
from emotion.classifier import TorchClassifier
from emotion.cli import error, warn
from emotion.decision import DecisionRule, class_prior
from emotion.errors import MoodtunesError
from training.balance import TAU_GRID, choose_tau, confusions_by_tau
from training.cli import add_dataset_arguments, output_file, script_parser
from training.datasets import DATA_HELP, load_dataset, resize_images
from training.metrics import PlotUnavailable, pyplot, summarize_confusion


def model_logits(classifier: TorchClassifier, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Raw logits (N, 7) for uint8 faces, as the app's torch backend computes them in float32."""
    images = resize_images(images, classifier.input_size)
    return np.concatenate([classifier.logits(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


def training_prior(dataset: str, data: str) -> tuple[float, ...]:
    """Class shares of what the model was trained on: vote shares (FER+) or labels (FER2013)."""
    train = load_dataset(dataset, data, "train")
    if train.soft_targets is not None:
        return class_prior(train.soft_targets)
    train = train.labelled()
    return class_prior(F.one_hot(torch.from_numpy(train.labels), len(EMOTIONS)).numpy())


def typical_neutral(classifier: TorchClassifier, neutral_data: str) -> tuple[float, ...]:
    """Mean logits on FER+ validation faces whose majority vote is neutral."""
    val = load_dataset("ferplus", neutral_data, "val").labelled()
    neutral = val.images[val.labels == EMOTIONS.index("neutral")]
    return tuple(float(v) for v in model_logits(classifier, neutral).mean(0))


def plot_sweep(rows: list[dict], chosen: float, floor: float, path: Path, title: str) -> None:
    plt = pyplot()
    taus = [r["tau"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2), dpi=110)
    left.plot(taus, [100 * r["balanced_accuracy"] for r in rows], label="balanced accuracy")
    left.plot(taus, [100 * r["accuracy"] for r in rows], label="accuracy")
    left.plot(taus, [100 * r["macro_f1"] for r in rows], label="macro F1 (x100)")
    if floor > 0:
        left.axhline(100 * floor, color="grey", linestyle=":", label="accuracy floor")
    for name in EMOTIONS:
        right.plot(taus, [100 * r["per_class_recall"][name] for r in rows], label=name)
    for ax in (left, right):
        ax.axvline(chosen, color="black", linestyle="--", linewidth=1)
        ax.set_xlabel("tau (logit adjustment)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    left.set_title(f"{title}: validation metrics (%)")
    right.set_title("per-class recall (%)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = script_parser("training.decide", __doc__)
    p.add_argument("--checkpoint", required=True, help="a .pt written by python -m training.train")
    add_dataset_arguments(p)
    p.add_argument("--neutral-data", required=True, help=f"FER+ ({DATA_HELP}): its validation faces that most "
                                                         "annotators called neutral give the typical neutral")
    p.add_argument("--accuracy-floor", type=float, default=0.0, metavar="PERCENT",
                   help="validation accuracy the chosen tau must keep (e.g. 85.5)")
    p.add_argument("--tau", type=float, help="use this tau instead of choosing one")
    p.add_argument("--out", required=True, help="the checkpoint to write (may be --checkpoint itself)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    try:
        out = output_file(args.out, ".pt")
        ckpt = load_checkpoint(args.checkpoint)
        classifier = TorchClassifier(args.checkpoint, args.device, precision="float32")
        val = load_dataset(args.dataset, args.data, "val").labelled()
        prior = ckpt.decision.prior or training_prior(args.dataset, args.data)
        neutral = typical_neutral(classifier, args.neutral_data)
    except MoodtunesError as exc:
        error(str(exc))
        return 2
    logits = model_logits(classifier, val.images)
    confusions = confusions_by_tau(logits, val.labels, prior)
    rows = [{"tau": tau, **summarize_confusion(cm)} for tau, cm in zip(TAU_GRID, confusions, strict=True)]
    tau = choose_tau(confusions, args.accuracy_floor / 100).tau if args.tau is None else args.tau
    chosen = summarize_confusion(confusions_by_tau(logits, val.labels, prior, (tau,))[0])
    header = " ".join(f"{e[:5]:>6}" for e in EMOTIONS)
    print(f"{'tau':>6} {'balanced':>9} {'macro F1':>9} {'accuracy':>9}  recall {header}")
    for r in rows:
        mark = " <" if r["tau"] == tau else ""
        print(f"{r['tau']:6.2f} {100 * r['balanced_accuracy']:8.2f}% {r['macro_f1']:9.3f} {100 * r['accuracy']:8.2f}%"
              f"         " + " ".join(f"{100 * r['per_class_recall'][e]:5.1f}%" for e in EMOTIONS) + mark)
    decision = DecisionRule(prior=prior, tau=tau, typical_neutral=neutral)
    metadata = {**ckpt.metadata, "decision": {
        "command": "python -m training.decide " + " ".join(sys.argv[1:] if argv is None else argv),
        "split": "val",
        "val_metrics": {k: chosen[k] for k in ("n", "accuracy", "macro_f1", "balanced_accuracy", "per_class_recall")},
    }}
    save_checkpoint(out, ckpt.model, mean=ckpt.mean, std=ckpt.std, metadata=metadata, decision=decision)
    png = out.with_name(f"{out.stem}_decision.png")
    try:
        plot_sweep(rows, tau, args.accuracy_floor / 100, png, f"{args.dataset} {out.stem}")
    except PlotUnavailable as exc:
        warn(str(exc))
    print(json.dumps({"checkpoint": str(out), "tau": tau, "prior": list(prior), "typical_neutral": list(neutral),
                      "plot": str(png), **{k: chosen[k] for k in ("accuracy", "macro_f1", "balanced_accuracy",
                                                                 "per_class_recall")}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
