"""Accuracy through the app's own path: detector -> crop (with/without eye alignment) -> model.

Dataset faces are upscaled to webcam size, placed in a frame and rolled by a random angle
(a tilted head), then found by the app's face detector and classified from its crop:

    python -m training.evaluate_pipeline --dataset ferplus --data ../shared/datasets/ferplus.zip \\
        --split val --checkpoint checkpoints/emotion_ferplus.pt --roll 20

Prints one JSON line: for "aligned" and "unaligned" crops, the faces found and the accuracy
on them. This is how moodtunes decided to level the eyes before classifying.
"""

from __future__ import annotations

import json
import sys

import cv2
import numpy as np
from tqdm import tqdm

from emotion.cli import error
from emotion.errors import MoodtunesError
from emotion.recognizer import EmotionRecognizer
from training.cli import add_dataset_arguments, script_parser
from training.datasets import load_dataset

FACE_SIDE = 192  # a face at desk distance in a 640x480 webcam frame
FRAME_SIDE = 400


def synthetic_frame(face: np.ndarray, angle: float) -> np.ndarray:
    """The 48x48 face, upscaled, centred in a frame with replicated borders, rolled by ``angle``."""
    big = cv2.resize(face, (FACE_SIDE, FACE_SIDE), interpolation=cv2.INTER_CUBIC)
    pad = (FRAME_SIDE - FACE_SIDE) // 2
    frame = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    rotation = cv2.getRotationMatrix2D((FRAME_SIDE / 2, FRAME_SIDE / 2), angle, 1.0)
    frame = cv2.warpAffine(frame, rotation, (FRAME_SIDE, FRAME_SIDE), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def main(argv: list[str] | None = None) -> int:
    p = script_parser("training.evaluate_pipeline", __doc__)
    add_dataset_arguments(p)
    p.add_argument("--split", choices=("val", "test"), default="val")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--face-model", help="YuNet .onnx (default: the one shipped with moodtunes)")
    p.add_argument("--roll", type=float, default=20.0, help="max head roll in degrees (uniform +-)")
    p.add_argument("--limit", type=int, default=0, help="use the first N faces (0 = all)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        recognizer = EmotionRecognizer(args.checkpoint, device="cpu", detector="yunet", face_model=args.face_model)
        data = load_dataset(args.dataset, args.data, args.split).labelled()
    except MoodtunesError as exc:
        error(str(exc))
        return 2
    n = args.limit or len(data)
    angles = np.random.default_rng(args.seed).uniform(-args.roll, args.roll, n)
    predictions: dict[str, list[int]] = {"aligned": [], "unaligned": []}
    labels = []
    for image, label, angle in tqdm(zip(data.images[:n], data.labels[:n], angles, strict=True), total=n):
        frame = synthetic_frame(image, angle)
        detections = recognizer.detect(frame)
        if not detections:
            continue
        centre = FRAME_SIDE / 2
        face = min(detections, key=lambda d: abs(d.box[0] + d.box[2] / 2 - centre)
                   + abs(d.box[1] + d.box[3] / 2 - centre))
        labels.append(int(label))
        for mode, align in (("aligned", True), ("unaligned", False)):
            recognizer.align = align
            predictions[mode].append(int(recognizer.classify(recognizer.crops(frame, [face]))[0].argmax()))
    labels_array = np.array(labels)
    result = {"dataset": args.dataset, "split": args.split, "roll_deg": args.roll, "faces": n,
              "found": len(labels)}
    for mode, predicted in predictions.items():
        result[mode] = {"accuracy": round(float((np.array(predicted) == labels_array).mean()), 4)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
