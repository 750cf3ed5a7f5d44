"""How well a model copes with what a webcam does to a face: one JSON line per model and a PNG chart.

    python -m training.robustness --dataset ferplus --data ../shared/datasets/ferplus.zip \\
        --folder-copy ../shared/datasets/fer2013.zip --checkpoint checkpoints/emotion_ferplus.onnx OLD.onnx

Test faces (FER+ FER2013Test, or FER2013 PrivateTest) are classified clean and under each
corruption of :mod:`training.corruptions` (sensor noise, blur, low light, gamma, JPEG,
downscaling, a hand, glasses, and crop jitter as an off detector box) at strengths 1/3, 2/3
and 1, the same faces and the same random draws for every model. ``--folder-copy`` adds the
histogram-equalised JPEG copy of FER2013 (``fer2013.zip``) as a domain shift: its test faces
are matched to the originals by their pixels, so each keeps the label of the protocol being
measured. The JSON gives, for balanced accuracy (mean per-class recall: what the app is chosen
for) and for accuracy, the clean figure, the mean over corruptions and strengths, and each
figure; the chart (next to the first checkpoint unless --plot says otherwise) puts the models'
balanced accuracy side by side. Models run as the app runs them (.onnx on OpenCV, .pt on torch
in float32), with the decision rule stored with them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from emotion.classifier import SHIPPED_MODELS, Classifier
from emotion.cli import error, warn
from emotion.errors import MoodtunesError
from training.cli import add_dataset_arguments, script_parser
from training.corruptions import CORRUPTIONS, SEVERITIES, corrupt_all
from training.datasets import load_dataset, load_fer2013_folder
from training.evaluate import classifier_probabilities, open_evaluated
from training.metrics import PlotUnavailable, pyplot, summarize

METRICS = ("balanced_accuracy", "accuracy")


def match_folder_copy(originals: np.ndarray, copies: np.ndarray) -> np.ndarray:
    """For each original face, the index of its histogram-equalised JPEG copy (-1 if none is close).

    The copies were equalised and JPEG-compressed, so the originals are equalised too and the
    nearest copy by pixel distance is taken; a match must be unambiguous.
    """
    equalised = np.stack([cv2.equalizeHist(face) for face in originals]).reshape(len(originals), -1)
    a = equalised.astype(np.float32)
    b = copies.reshape(len(copies), -1).astype(np.float32)
    distances = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    order = np.argsort(distances, axis=1)[:, :2]
    best = distances[np.arange(len(a)), order[:, 0]]
    second = distances[np.arange(len(a)), order[:, 1]]
    pixels = a.shape[1]
    # The copy's equalisation differs from OpenCV's (typical distance 5 gray levels, 1 in 10 over
    # 20), but a face's own copy is far nearer than any other (median ratio 0.007): 4x nearer is
    # asked, within a loose 64 gray levels.
    close = (best < 0.25 * second) & (best / pixels < 64**2)
    return np.where(close, order[:, 0], -1)


def scores(classifier: Classifier, faces: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Balanced accuracy and accuracy of the model's decisions on ``faces``."""
    summary = summarize(labels, classifier_probabilities(classifier, faces, progress=False).argmax(1))
    return {metric: summary[metric] for metric in METRICS}


def evaluate(classifier: Classifier, faces: np.ndarray, labels: np.ndarray,
             shifted: tuple[np.ndarray, np.ndarray] | None, seed: int) -> dict[str, dict]:
    """For each of METRICS: clean, per corruption (three strengths), their mean, and the domain shift."""
    clean = scores(classifier, faces, labels)
    corrupted = {name: [scores(classifier, corrupt_all(faces, name, strength, seed=seed + i), labels)
                        for i, strength in enumerate(SEVERITIES)]
                 for name in tqdm(CORRUPTIONS, desc="corruptions", leave=False)}
    shift = scores(classifier, *shifted) if shifted is not None else None
    result = {}
    for metric in METRICS:
        figures = {name: [s[metric] for s in strengths] for name, strengths in corrupted.items()}
        result[metric] = {"clean": clean[metric], "corruptions": figures,
                          "mean_corrupted": float(np.mean([v for values in figures.values() for v in values]))}
        if shift is not None:
            result[metric]["domain_shift_hist_eq_jpeg"] = shift[metric]
    return result


def model_names(paths: list[str]) -> list[str]:
    """Each model's name in the chart: its file name, without the extension where that is enough,
    with as many parent folders as it takes to tell it from the others (a release and the one
    before it are both emotion_ferplus.onnx)."""
    files = [Path(p) for p in paths]
    for depth in range(1, max(len(f.parts) for f in files) + 1):
        for name_of in (lambda f: f.with_suffix(""), lambda f: f):
            names = ["/".join(name_of(f).parts[-depth:]) for f in files]
            if len(set(names)) == len(names):
                return names
    return [f"{name} ({i + 1})" for i, name in enumerate(names)]  # the same file named twice


def plot(results: dict[str, dict], path: Path, title: str) -> None:
    """The models' balanced accuracy (see :func:`evaluate`), clean, per corruption and under the shift."""
    plt = pyplot()
    names = list(CORRUPTIONS)
    columns = ["clean", *names, "mean"] + (["hist-eq JPEG"] if "domain_shift_hist_eq_jpeg" in
                                           next(iter(results.values())) else [])
    fig, ax = plt.subplots(figsize=(13, 4.8), dpi=110)
    width = 0.8 / len(results)
    for k, (model, r) in enumerate(results.items()):
        values = [r["clean"], *(np.mean(r["corruptions"][n]) for n in names), r["mean_corrupted"]]
        if "hist-eq JPEG" in columns:
            values.append(r["domain_shift_hist_eq_jpeg"])
        x = np.arange(len(columns)) + (k - (len(results) - 1) / 2) * width
        ax.bar(x, [100 * v for v in values], width, label=model)
        for name_index, name in enumerate(names):  # the three strengths as ticks on each bar
            for strength_accuracy in r["corruptions"][name]:
                ax.plot([x[name_index + 1] - width / 3, x[name_index + 1] + width / 3], [100 * strength_accuracy] * 2,
                        color="black", linewidth=0.6)
    ax.set_xticks(np.arange(len(columns)), columns, rotation=30, ha="right")
    ax.set_ylabel("balanced accuracy (%)  (ticks: strengths 1/3, 2/3, 1)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = script_parser("training.robustness", __doc__)
    add_dataset_arguments(p)
    p.add_argument("--split", choices=("val", "test"), default="test")
    p.add_argument("--checkpoint", nargs="+", required=True,
                   help=f"one or more .onnx / .pt models, or shipped models by name ({', '.join(SHIPPED_MODELS)}), "
                        "to compare")
    p.add_argument("--folder-copy", help="fer2013.zip (histogram-equalised JPEG copy) for the domain shift")
    p.add_argument("--limit", type=int, default=0, help="use the first N faces (0 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", help="PNG to write (default: <first checkpoint>_robustness_<dataset>.png)")
    args = p.parse_args(argv)
    try:
        data = load_dataset(args.dataset, args.data, args.split).labelled()
        faces, labels = data.images, data.labels
        if args.limit:
            faces, labels = faces[: args.limit], labels[: args.limit]
        shifted = None
        if args.folder_copy:
            copy = load_fer2013_folder(args.folder_copy, args.split)
            match = match_folder_copy(faces, copy.images)
            found = match >= 0
            shifted = (copy.images[match[found]], labels[found])
        results = {}
        for path, name in zip(args.checkpoint, model_names(args.checkpoint), strict=True):
            result = evaluate(open_evaluated(path, "cpu", "float32"), faces, labels, shifted, args.seed)
            line = {"checkpoint": path, "dataset": args.dataset, "split": args.split, "n": int(len(labels)), **result}
            if shifted is not None:
                line["domain_shift_faces"] = int(len(shifted[1]))
            print(json.dumps(line), flush=True)
            results[name] = result["balanced_accuracy"]
    except MoodtunesError as exc:
        error(str(exc))
        return 2
    png = Path(args.plot) if args.plot else Path(args.checkpoint[0]).with_name(
        f"{Path(args.checkpoint[0]).stem}_robustness_{args.dataset}.png")
    try:
        plot(results, png, f"{args.dataset} {args.split}: {len(labels)} faces under webcam corruptions")
        print(json.dumps({"plot": str(png)}))
    except PlotUnavailable as exc:
        warn(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
