"""Evaluate a checkpoint on a dataset split and print one JSON line of metrics.

    python -m training.evaluate --dataset fer2013 --data ../shared/datasets/fer2013.csv.xz \\
        --split test --checkpoint checkpoints/emotion_fer2013.pt --tta

Several checkpoints are measured as one ensemble (their probabilities averaged), the way
``training.train --teacher`` uses them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emotion.classifier import ONNX_BACKENDS, SHIPPED_MODELS, Classifier, TorchClassifier, open_classifier, shipped_name
from emotion.cli import error, warn
from emotion.errors import MoodtunesError
from training.cli import add_dataset_arguments, script_parser
from training.datasets import load_dataset, resize_images
from training.metrics import PlotUnavailable, plot_confusion, summarize


def classifier_probabilities(classifier: Classifier, images: np.ndarray, tta: bool = False,
                             batch_size: int = 512, progress: bool = True) -> np.ndarray:
    """Probabilities (N, 7) from an app classifier (ONNX or torch), in batches; ``tta`` adds the mirror image.
    ``progress`` False: no bar of its own, for a caller that shows one over many calls."""
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc="evaluate", leave=False, disable=not progress):
        batch = images[start : start + batch_size]
        probs = classifier(batch)
        if tta:
            probs = (probs + classifier(np.ascontiguousarray(batch[:, :, ::-1]))) / 2
        out.append(probs)
    return np.concatenate(out)


def open_evaluated(checkpoint: str, device: str, precision: str, onnx_backend: str = "auto") -> Classifier:
    """An .onnx runs on the CPU as the app runs it (``onnx_backend`` auto: ONNX Runtime where installed, else
    OpenCV); so does a shipped model's name (its int8 twin on ONNX Runtime, its .onnx on OpenCV), which
    works after ``pip install .`` from any folder; a .pt runs on torch in float32, or as the app runs it
    (``app``)."""
    if checkpoint.endswith(".onnx") or shipped_name(checkpoint):
        return open_classifier(checkpoint, "cpu", onnx_backend)
    return TorchClassifier(checkpoint, device, precision=None if precision == "app" else precision)


def main(argv: list[str] | None = None) -> int:
    p = script_parser("training.evaluate", __doc__)
    add_dataset_arguments(p)
    p.add_argument("--split", choices=("val", "test"), default="val",
                   help="fer2013: val=PublicTest, test=PrivateTest; ferplus: FER2013Valid / FER2013Test")
    p.add_argument("--checkpoint", required=True, nargs="+",
                   help=".pt (run by torch), .onnx or a shipped model's name "
                        f"({', '.join(SHIPPED_MODELS)}) (run on the CPU as the app runs it, see --backend); "
                        "several are evaluated as an ensemble (their probabilities averaged), as --teacher uses them")
    p.add_argument("--tta", action="store_true", help="average predictions over the face and its mirror image")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=("float32", "app"), default="float32",
                   help="for a .pt, run by torch with BatchNorm folded as the app runs it: app = also in the "
                        "app's precision on this device (float16 on CUDA, bfloat16 on CPUs with native bf16). An "
                        ".onnx always runs as the app runs it on the CPU (float32)")
    p.add_argument("--backend", choices=("auto", *ONNX_BACKENDS), default="auto",
                   help="what runs an .onnx: auto = as the app does (ONNX Runtime where installed, else OpenCV); "
                        "the two agree to about 1e-5 in the logits")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--no-plot", action="store_true", help="do not write the confusion-matrix PNG")
    args = p.parse_args(argv)
    try:  # models first: a bad checkpoint is reported before the data is read
        classifiers = [open_evaluated(checkpoint, args.device, args.precision, args.backend)
                       for checkpoint in args.checkpoint]
        data = load_dataset(args.dataset, args.data, args.split).labelled()
    except MoodtunesError as exc:
        error(str(exc))
        return 2
    probs = np.mean([classifier_probabilities(c, resize_images(data.images, c.input_size), args.tta, args.batch_size)
                     for c in classifiers], axis=0)
    backend = "+".join(dict.fromkeys(c.backend for c in classifiers))
    precision = "+".join(dict.fromkeys(c.precision for c in classifiers))
    checkpoint = args.checkpoint[0] if len(args.checkpoint) == 1 else args.checkpoint
    result = {
        "dataset": args.dataset,
        "split": args.split,
        "checkpoint": checkpoint,
        "tta": args.tta,
        "backend": backend,
        "precision": precision,
        **summarize(data.labels, probs.argmax(1)),
    }
    if not args.no_plot:
        first = Path(args.checkpoint[0])
        ensemble = f"_ensemble_of_{len(args.checkpoint)}" if len(args.checkpoint) > 1 else ""
        png = first.with_name(f"{first.stem}{ensemble}_confusion_{args.dataset}_{args.split}.png")
        try:
            plot_confusion(result["confusion_matrix"], png,
                           f"{args.dataset} {args.split}: accuracy {100 * result['accuracy']:.2f}%")
            result["confusion_png"] = str(png)
        except PlotUnavailable as exc:
            warn(str(exc))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
