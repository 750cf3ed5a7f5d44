"""How the app reads photos of real people, before and after a personal calibration.

    python -m training.evaluate_photos --photos /tmp/openfaces --checkpoint checkpoints/emotion_ferplus.onnx

--photos holds one folder per person, each photo named by the emotion it shows:
DIR/<person>/<label>[_n].jpg, with labels among angry, disgust, fear, happy, sad, surprise and
neutral (other files, such as the set's licence, are skipped). Every photo goes through the
app's own recognizer, YuNet and then the model on OpenCV as the app runs it, and its main face
counts. First, per true label: the faces found, what they were read as, each label's recall
and the balanced accuracy. Then the personal calibration: each person is calibrated on their
first neutral photo (by name), as `moodtunes calibrate --source photo.jpg` does, and their other
photos are read before and after it, so both columns count exactly the same faces. A refused
calibration is recorded with its one-line reason. --no-decision reads the plain argmax instead
of the model's balanced decision (the calibration's shift still applies). The last line is all
of it as JSON.

This only measures. Tau and the typical neutral come from FER validation data
(python -m training.decide); nothing here is chosen on these photos.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emotion.calibration import CalibrationError
from emotion.classes import EMOTIONS
from emotion.cli import error, warn
from emotion.decision import DecisionRule
from emotion.errors import MoodtunesError
from emotion.recognizer import EmotionRecognizer
from emotion.smoothing import main_face
from emotion.sources import IMAGE_EXTENSIONS, read_image
from training.cli import script_parser
from training.metrics import summarize_confusion

LAYOUT = f"DIR/<person>/<label>[_n].jpg, with labels among {', '.join(EMOTIONS)}"
PHOTO_NAME = re.compile(rf"({'|'.join(EMOTIONS)})(_[\w-]+)?")


class LayoutError(MoodtunesError):
    """--photos is not laid out as one folder per person of photos named by their label."""


@dataclass(frozen=True)
class Photo:
    person: str
    label: str  # the emotion the photo shows, from its name
    path: Path


def find_photos(root: Path) -> list[Photo]:
    """Every photo under ``root``, by person then name; a LayoutError names the first thing out of place."""
    if not root.is_dir():
        raise LayoutError(f"{root} is not a folder; --photos takes {LAYOUT}.")
    photos = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith("."):  # .DS_Store, macOS's ._ twins and the like
            continue
        if not folder.is_dir():
            if folder.suffix.lower() in IMAGE_EXTENSIONS:
                raise LayoutError(f"{folder} is not in a person's folder; lay the photos out as {LAYOUT}.")
            continue  # a licence or a README beside the people's folders
        for path in sorted(folder.iterdir()):
            if path.name.startswith("."):
                continue
            if path.is_dir():
                raise LayoutError(f"{path} is a folder inside a person's folder; lay the photos out as {LAYOUT}.")
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            name = PHOTO_NAME.fullmatch(path.stem.lower())
            if name is None:
                raise LayoutError(f"{path} is not named by its label; name it <label>[_n]{path.suffix}, "
                                  f"with a label among {', '.join(EMOTIONS)}.")
            photos.append(Photo(folder.name, name[1], path))
    if not photos:
        raise LayoutError(f"No photos in {root}; lay them out as {LAYOUT}.")
    return photos


def read_as(recognizer: EmotionRecognizer, image: np.ndarray) -> str | None:
    """The label the app gives the main face of ``image``, or None when it finds no face."""
    faces = recognizer.analyze(image)
    return main_face(faces, (image.shape[1], image.shape[0])).label if faces else None


@dataclass
class Readings:
    """What the app read in every photo, and in each person's other photos before and after their calibration."""

    uncalibrated: list[tuple[str, str | None]] = field(default_factory=list)  # (true label, read or None)
    pairs: list[tuple[str, str, str]] = field(default_factory=list)  # (true label, read before, read after)
    people: dict[str, dict[str, str | bool]] = field(default_factory=dict)  # how each person was calibrated


def read_people(recognizer: EmotionRecognizer, photos: Sequence[Photo], calibrate: bool) -> Readings:
    """Every photo read without calibration; with ``calibrate``, each person calibrated on their first neutral
    photo and their other photos read again (never the calibration photo itself). The recognizer is left
    without a calibration."""
    by_person: dict[str, list[Photo]] = {}
    for photo in photos:
        by_person.setdefault(photo.person, []).append(photo)
    readings = Readings()
    with tqdm(total=len(photos), desc="photos", leave=False) as progress:
        for person, own in by_person.items():
            images = [read_image(photo.path) for photo in own]
            before = [read_as(recognizer, image) for image in images]
            readings.uncalibrated += [(photo.label, read) for photo, read in zip(own, before, strict=True)]
            progress.update(len(own))
            if not calibrate:
                continue
            neutral = next((i for i, photo in enumerate(own) if photo.label == "neutral"), None)
            if neutral is None:
                readings.people[person] = {"no_neutral_photo": True}
                continue
            try:
                recognizer.calibration = recognizer.calibrate([images[neutral]], photos=True)
            except CalibrationError as exc:
                readings.people[person] = {"refused": str(exc)}
                continue
            readings.people[person] = {"calibrated_on": own[neutral].path.name}
            for i, (photo, image) in enumerate(zip(own, images, strict=True)):
                if i != neutral and before[i] is not None:
                    after = read_as(recognizer, image)
                    if after is not None:
                        readings.pairs.append((photo.label, before[i], after))
            recognizer.calibration = None
    return readings


def label_table(rows: Sequence[tuple[str, str | None]]) -> dict:
    """Per true label: photos, faces found, what they were read as and recall; with accuracy and the balanced
    accuracy over the labels that have a face found. ``rows``: (true label, label read or None)."""
    photos = Counter(truth for truth, _ in rows)
    cm = np.zeros((len(EMOTIONS), len(EMOTIONS)), dtype=np.int64)
    for truth, read in rows:
        if read is not None:
            cm[EMOTIONS.index(truth), EMOTIONS.index(read)] += 1
    metrics = summarize_confusion(cm)
    labels = {}
    for i, name in enumerate(EMOTIONS):
        if photos[name]:
            found = int(cm[i].sum())
            labels[name] = {"photos": photos[name], "found": found,
                            "read_as": {e: int(n) for e, n in zip(EMOTIONS, cm[i], strict=True)},
                            "recall": round(metrics["per_class_recall"][name], 4) if found else None}
    return {"photos": len(rows), "found": int(cm.sum()), "accuracy": round(metrics["accuracy"], 4),
            "balanced_accuracy": round(metrics["balanced_accuracy"], 4), "labels": labels}


def print_table(title: str, table: dict) -> None:
    print(title)
    print(f"  {'true':<9}{'photos':>7}{'found':>6}  " + "".join(f"{e[:7]:>8}" for e in EMOTIONS) + "   recall")
    for name, row in table["labels"].items():
        recall = "-" if row["recall"] is None else f"{100 * row['recall']:.1f}%"
        print(f"  {name:<9}{row['photos']:>7}{row['found']:>6}  "
              + "".join(f"{n:>8}" for n in row["read_as"].values()) + f"{recall:>9}")
    print(f"  balanced accuracy {100 * table['balanced_accuracy']:.1f}% over {len(table['labels'])} label(s), "
          f"accuracy {100 * table['accuracy']:.1f}%, {table['found']} of {table['photos']} faces found")


def changes(pairs: Sequence[tuple[str, str, str]]) -> dict[str, int]:
    """How many faces the calibration read differently: now right, now wrong, or wrong either way.
    Equal recalls before and after can hide as many faces fixed as broken."""
    changed = [(truth, before, after) for truth, before, after in pairs if before != after]
    return {"changed": len(changed),
            "now_right": sum(after == truth for truth, _, after in changed),
            "now_wrong": sum(before == truth for truth, before, _ in changed)}


def print_comparison(before: dict, after: dict, changed: dict[str, int]) -> None:
    print("  recall on the same faces:  " + "  ".join(
        f"{name} {_percent(row['recall'])} -> {_percent(after['labels'][name]['recall'])} (n={row['found']})"
        for name, row in before["labels"].items()))
    print(f"  balanced accuracy {100 * before['balanced_accuracy']:.1f}% -> {100 * after['balanced_accuracy']:.1f}%; "
          f"{changed['changed']} faces read differently: {changed['now_right']} now right, "
          f"{changed['now_wrong']} now wrong")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def main(argv: list[str] | None = None) -> int:
    p = script_parser("training.evaluate_photos", __doc__)
    p.add_argument("--photos", required=True, type=Path, help=f"photos of people, laid out as {LAYOUT}")
    p.add_argument("--checkpoint", help="an .onnx emotion model, run by OpenCV as the app runs it on the CPU "
                                        "(default: the shipped FER+ model)")
    p.add_argument("--face-model", help="YuNet .onnx (default: the one shipped with moodtunes)")
    p.add_argument("--no-decision", action="store_true",
                   help="read the plain argmax of the logits, not the model's balanced decision")
    args = p.parse_args(argv)
    try:
        photos = find_photos(args.photos)
        recognizer = EmotionRecognizer(args.checkpoint, device="cpu", detector="yunet", face_model=args.face_model,
                                       backend="opencv")
    except MoodtunesError as exc:
        error(str(exc))
        return 2
    model_rule = recognizer.classifier.decision
    if args.no_decision:
        # The typical neutral stays: a calibration needs it, and it is no part of the balanced decision.
        recognizer.classifier.decision = DecisionRule(typical_neutral=model_rule.typical_neutral)
        recognizer.calibration = None  # re-derives the recognizer's rule from the classifier's
    calibratable = model_rule.typical_neutral is not None
    if not calibratable:
        warn(f"{recognizer.checkpoint_path.name} stores no typical neutral face, so no calibration is measured; use "
             "a model written by `python -m training.decide`")

    try:
        readings = read_people(recognizer, photos, calibrate=calibratable)
    except MoodtunesError as exc:
        error(str(exc))
        return 2

    decision = "argmax" if args.no_decision else {"tau": model_rule.tau, "prior": model_rule.prior}
    people = readings.people
    result = {"photos_dir": str(args.photos), "checkpoint": str(recognizer.checkpoint_path),
              "detector": recognizer.detector.name, "decision": decision,
              "people": len({photo.person for photo in photos}),
              "uncalibrated": label_table(readings.uncalibrated)}
    rule = "plain argmax" if args.no_decision else f"the model's decision (tau {model_rule.tau:g})"
    print_table(f"All photos, no calibration, read by {rule}:", result["uncalibrated"])
    if calibratable:
        pairs = readings.pairs
        before_table = label_table([(truth, before) for truth, before, _ in pairs])
        after_table = label_table([(truth, after) for truth, _, after in pairs])
        refusals = Counter(entry["refused"] for entry in people.values() if "refused" in entry)
        calibrated = sum("calibrated_on" in entry for entry in people.values())
        without_neutral = sum("no_neutral_photo" in entry for entry in people.values())
        changed = changes(pairs)
        result["calibration"] = {"calibrated": calibrated, "refused": dict(refusals),
                                 "without_neutral_photo": without_neutral, "compared": len(pairs),
                                 "before": before_table, "after": after_table, **changed, "people": people}
        print(f"Personal calibration: {calibrated} of {result['people']} people calibrated on one neutral photo, "
              f"{len(pairs)} of their other photos compared.")
        for reason, n in refusals.items():
            print(f"  refused for {n}: {reason}")
        if without_neutral:
            print(f"  {without_neutral} without a neutral photo to calibrate on")
        print_table("  before (the same faces, no calibration):", before_table)
        print_table("  after (calibrated on the person's neutral photo):", after_table)
        print_comparison(before_table, after_table, changed)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
