"""Evaluate a checkpoint on a dataset split and print one JSON line of metrics.

    python -m training.evaluate --dataset fer2013 --data ../shared/datasets/fer2013.csv.xz \
        --split test --checkpoint checkpoints/emotion_fer2013.pt --tta
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from emotion.checkpoint import load_checkpoint
from emotion.classifier import Classifier, OpenCVClassifier, TorchClassifier
from emotion.device import resolve_device
from emotion.errors import MoodtunesError
from emotion.preprocess import normalize
from training.datasets import DATASETS, load_dataset, resize_images
from training.metrics import PlotUnavailable, plot_confusion, summarize


@torch.inference_mode()
def predict_probabilities(
    model: torch.nn.Module,
    images: np.ndarray,
    mean: float,
    std: float,
    device: torch.device,
    tta: bool = False,
    batch_size: int = 512,
    progress: bool = False,
) -> np.ndarray:
    """Softmax probabilities (N, 7) for uint8 faces (N, H, W); ``tta`` averages in the mirror image."""
    model.eval()
    dtype = next(model.parameters()).dtype
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc="evaluate", disable=not progress, leave=False):
        batch = normalize(torch.from_numpy(images[start : start + batch_size]), mean, std).to(device, dtype)
        batch = batch.contiguous(memory_format=torch.channels_last)
        probs = model(batch).float().softmax(1)
        if tta:
            probs = (probs + model(batch.flip(3)).float().softmax(1)) / 2
        out.append(probs.cpu())
    return torch.cat(out).numpy()


def classifier_probabilities(classifier: Classifier, images: np.ndarray, tta: bool = False,
                             batch_size: int = 512) -> np.ndarray:
    """Probabilities (N, 7) from an app classifier (OpenCV or torch), in batches; ``tta`` adds the mirror image."""
    out = []
    for start in tqdm(range(0, len(images), batch_size), desc="evaluate", leave=False):
        batch = images[start : start + batch_size]
        probs = classifier(batch)
        if tta:
            probs = (probs + classifier(np.ascontiguousarray(batch[:, :, ::-1]))) / 2
        out.append(probs)
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--data", required=True, help="dataset file or folder (see training/datasets.py)")
    p.add_argument("--split", choices=("val", "test"), default="val",
                   help="fer2013: val=PublicTest, test=PrivateTest; ferplus: FER2013Valid / FER2013Test")
    p.add_argument("--checkpoint", required=True,
                   help=".pt (run by torch) or .onnx (run by OpenCV's DNN module, the app's CPU backend)")
    p.add_argument("--tta", action="store_true", help="average predictions over the face and its mirror image")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", choices=("float32", "app"), default="float32",
                   help="for a .pt: app = run it as the app's torch backend does on this device (BatchNorm "
                        "folded; float16 on CUDA, bfloat16 on CPUs with native bf16). An .onnx always runs as the "
                        "app runs it on the CPU (float32)")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--no-plot", action="store_true", help="do not write the confusion-matrix PNG")
    args = p.parse_args(argv)
    try:
        if args.checkpoint.endswith(".onnx") or args.precision == "app":
            classifier = (OpenCVClassifier(args.checkpoint) if args.checkpoint.endswith(".onnx")
                          else TorchClassifier(args.checkpoint, args.device))
            data = load_dataset(args.dataset, args.data, args.split).labelled()
            data.images = resize_images(data.images, classifier.input_size)
            probs = classifier_probabilities(classifier, data.images, args.tta, args.batch_size)
            backend, precision = classifier.backend, classifier.precision
        else:
            device = resolve_device(args.device)
            ckpt = load_checkpoint(args.checkpoint)
            data = load_dataset(args.dataset, args.data, args.split).labelled()
            data.images = resize_images(data.images, ckpt.input_size)
            model = ckpt.model.to(device).to(memory_format=torch.channels_last)
            probs = predict_probabilities(model, data.images, ckpt.mean, ckpt.std, device, args.tta,
                                          args.batch_size, progress=True)
            backend, precision = "torch", "float32"
    except MoodtunesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = {
        "dataset": args.dataset,
        "split": args.split,
        "checkpoint": str(args.checkpoint),
        "tta": args.tta,
        "backend": backend,
        "precision": precision,
        **summarize(data.labels, probs.argmax(1)),
    }
    if not args.no_plot:
        png = Path(args.checkpoint).with_name(f"{Path(args.checkpoint).stem}_confusion_{args.dataset}_{args.split}.png")
        try:
            plot_confusion(result["confusion_matrix"], png,
                           f"{args.dataset} {args.split}: accuracy {100 * result['accuracy']:.2f}%")
            result["confusion_png"] = str(png)
        except PlotUnavailable as exc:
            print(f"warning: {exc}", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
