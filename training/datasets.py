"""Loaders for FER2013 (CSV or image folders, from a folder or a zip) and FER+.

Every loader returns a :class:`FaceData`: 48x48 uint8 faces decoded once into memory, a
majority label per face (class index in :data:`emotion.classes.EMOTIONS` order) and, for
FER+, the annotators' vote distribution. Unreadable images are skipped and counted in a
warning, never fatal.

Either dataset can also be read from a folder that ``python -m training.pack`` wrote: the same
faces as uint8 arrays in ``.npz`` shards small enough to carry to a GPU machine.
"""

from __future__ import annotations

import csv
import io
import json
import lzma
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
from tqdm import tqdm

from emotion.classes import EMOTIONS, NUM_CLASSES
from emotion.errors import MoodtunesError

IMAGE_SIZE = 48
SPLITS = ("train", "val", "test")
DATASETS = ("fer2013", "ferplus")
NO_LABEL = -1  # FER+ faces whose top vote count is shared by several emotions
PACK_MANIFEST = "moodtunes-pack.json"  # names the dataset and the faces per split of a packed folder
# What --data may be, for the scripts' help and for the error that a wrong --data gets.
DATA_HELP = ("fer2013: .csv/.csv.xz or image folders/.zip; ferplus: folder or .zip; "
             "either: a folder from training.pack")

# Usage column / file-name prefix of FER2013 and folder names of FER+, per split.
FER2013_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
FERPLUS_FOLDER = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}
# FER+ vote columns, in label.csv order, mapped to EMOTIONS indices; contempt, unknown
# and not-a-face have no place among the 7 classes.
FERPLUS_COLUMNS = ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt", "unknown", "NF")
FERPLUS_TO_EMOTION = [EMOTIONS.index(name) for name in FERPLUS_COLUMNS[:7]]


@dataclass
class FaceData:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, NO_LABEL where FER+ votes tie
    soft_targets: np.ndarray | None  # (N, 7) float32 vote shares (FER+ only)
    name: str
    split: str

    def __len__(self) -> int:
        return len(self.labels)

    def labelled(self) -> FaceData:
        """The faces that have a single majority label (what accuracy is measured on)."""
        keep = self.labels != NO_LABEL
        soft = None if self.soft_targets is None else self.soft_targets[keep]
        return FaceData(self.images[keep], self.labels[keep], soft, self.name, self.split)


def load_dataset(dataset: str, path: str | Path, split: str) -> FaceData:
    """Load ``split`` of ``dataset`` from ``path``.

    fer2013: the challenge CSV (``.csv`` or ``.csv.xz``) or the image-folder layout (a folder
    or a ``.zip``). ferplus: the FERPlus folders with label.csv and PNGs (a folder or a zip).
    """
    path = Path(path)
    if split not in SPLITS:
        raise MoodtunesError(f"Unknown split {split!r}: use one of {', '.join(SPLITS)}.")
    if not path.exists():
        raise MoodtunesError(f"Dataset not found: {path}. Pass --data with the dataset's file or folder.")
    if (path / PACK_MANIFEST).is_file():
        return load_packed(path, dataset, split)
    if dataset == "fer2013":
        if path.name.endswith((".csv", ".csv.xz")):
            return load_fer2013_csv(path, split)
        return load_fer2013_folder(path, split)
    if dataset == "ferplus":
        return load_ferplus(path, split)
    raise MoodtunesError(f"Unknown dataset {dataset!r}: use one of {', '.join(DATASETS)}.")


def load_fer2013_csv(path: str | Path, split: str) -> FaceData:
    """The original challenge file: ``emotion,pixels,Usage`` with 2304 gray values per row."""
    path = Path(path)
    opener = lzma.open if path.suffix == ".xz" else open
    usage = FER2013_USAGE[split]
    images, labels, skipped = [], [], 0
    try:
        with opener(path, "rt", newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:3]] != ["emotion", "pixels", "Usage"]:
                raise MoodtunesError(f"{path} is not a FER2013 CSV: expected the header emotion,pixels,Usage.")
            for row in tqdm(reader, desc=f"reading {path.name}", unit=" rows", leave=False):
                if len(row) < 3 or row[2].strip() != usage:
                    continue
                try:
                    label = int(row[0])
                    pixels = np.array(row[1].split(), dtype=np.uint8)
                except ValueError:
                    skipped += 1
                    continue
                if pixels.size != IMAGE_SIZE * IMAGE_SIZE or not 0 <= label < NUM_CLASSES:
                    skipped += 1
                    continue
                images.append(pixels.reshape(IMAGE_SIZE, IMAGE_SIZE))
                labels.append(label)
    except (OSError, lzma.LZMAError, UnicodeDecodeError) as exc:
        raise MoodtunesError(f"Cannot read {path}: {exc}. Check the file is a complete FER2013 CSV.") from exc
    _warn_skipped(skipped, path, split)
    return _face_data(images, labels, None, "fer2013", split, path)


def load_fer2013_folder(path: str | Path, split: str) -> FaceData:
    """``train/<class>/Training_*.jpg`` and ``test/<class>/{PublicTest,PrivateTest}_*.jpg``."""
    path = Path(path)
    prefix = FER2013_USAGE[split] + "_"
    folder_to_label = {name: i for i, name in enumerate(EMOTIONS)}
    images, labels, skipped = [], [], 0
    for name, read in _image_files(path):
        parts = PurePosixPath(name).parts
        if len(parts) < 2 or not parts[-1].startswith(prefix) or parts[-2] not in folder_to_label:
            continue
        image = _decode_gray(read())
        if image is None:
            skipped += 1
            continue
        images.append(image)
        labels.append(folder_to_label[parts[-2]])
    _warn_skipped(skipped, path, split)
    return _face_data(images, labels, None, "fer2013", split, path)


def load_ferplus(path: str | Path, split: str) -> FaceData:
    """FER+ majority-vote labels (Barsoum et al. 2016) and vote distributions.

    A face is kept when its most-voted column is one of the 7 emotions; faces whose top
    count goes to contempt, unknown or not-a-face (alone or tied) are dropped. When several
    emotions share the top count the face has no majority label (``NO_LABEL``): it is left
    out of accuracy but kept for soft-target training, where its tied votes are the target.
    """
    path = Path(path)
    folder = FERPLUS_FOLDER[split]
    files = dict(_image_files(path, under=folder))
    label_key = f"{folder}/label.csv"
    if label_key not in files:
        raise MoodtunesError(f"{path} has no {label_key}: pass --data with the FERPlus folder or ferplus.zip.")
    rows = csv.reader(io.StringIO(files[label_key]().decode("utf-8")))
    images, labels, soft, skipped = [], [], [], 0
    for row in rows:
        if len(row) < 12:
            continue
        try:
            votes = np.array([float(v) for v in row[2:12]], dtype=np.float32)
        except ValueError:
            skipped += 1
            continue
        top = votes.max()
        if top <= 0 or (votes[7:] == top).any():
            continue
        emotion_votes = np.zeros(NUM_CLASSES, dtype=np.float32)
        emotion_votes[FERPLUS_TO_EMOTION] = votes[:7]
        read = files.get(f"{folder}/{row[0]}")
        image = _decode_gray(read()) if read else None
        if image is None:
            skipped += 1
            continue
        winners = np.flatnonzero(emotion_votes == top)
        images.append(image)
        labels.append(int(winners[0]) if len(winners) == 1 else NO_LABEL)
        soft.append(emotion_votes / emotion_votes.sum())
    _warn_skipped(skipped, path, split)
    return _face_data(images, labels, soft, "ferplus", split, path)


def load_packed(path: str | Path, dataset: str, split: str) -> FaceData:
    """A split from a folder written by ``python -m training.pack``: its ``{split}-NNN.npz`` shards, in order."""
    path = Path(path)
    try:
        manifest = json.loads((path / PACK_MANIFEST).read_text())
        packed, expected = manifest["dataset"], manifest["splits"].get(split)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MoodtunesError(f"{path / PACK_MANIFEST} is unreadable ({exc}): pack the dataset again with "
                             "`python -m training.pack`.") from None
    if packed != dataset:
        raise MoodtunesError(f"{path} holds {packed}, not {dataset}: pass --dataset {packed}.")
    if expected is None:
        raise MoodtunesError(f"{path} has no {split} split: pack it with `python -m training.pack --split {split}`.")
    shards = [_read_npz(shard) for shard in sorted(path.glob(f"{split}-*.npz"))]
    found = sum(len(shard["labels"]) for shard in shards)
    if found != expected["faces"] or len(shards) != expected["shards"]:
        raise MoodtunesError(f"{path} holds {found} of the {expected['faces']} {split} faces in {len(shards)} of "
                             f"{expected['shards']} shards: copy all of its {split}-*.npz files.")
    soft = [shard["soft_targets"] for shard in shards if "soft_targets" in shard]
    return FaceData(
        images=np.concatenate([shard["images"] for shard in shards]),
        labels=np.concatenate([shard["labels"] for shard in shards]).astype(np.int64),
        soft_targets=np.concatenate(soft) if soft else None,
        name=dataset,
        split=split,
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz, each decompressed once (an open NpzFile decompresses on every access)."""
    with np.load(path) as npz:
        return dict(npz)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize (N, 48, 48) faces to (N, size, size), for models trained at another input size."""
    if images.shape[1:] == (size, size):
        return images
    return np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_LINEAR) for im in images])


def _image_files(path: Path, under: str = "") -> Iterator[tuple[str, callable]]:
    """(posix name relative to the dataset root, function returning the bytes) per file."""
    if path.is_file():
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise MoodtunesError(f"{path} is not a readable zip file: re-download it, or pass --data as "
                                 f"{DATA_HELP}.") from exc
        names = [n for n in archive.namelist() if not n.endswith("/")]
        # Accept zips that wrap everything in one top folder (e.g. fer2013/train/...).
        root = _common_root(names, under)
        for n in names:
            rel = n[len(root) :]
            if rel.startswith(under):
                yield rel, (lambda n=n: archive.read(n))
    else:
        for p in sorted(path.rglob("*")):
            rel = p.relative_to(path).as_posix()
            if p.is_file() and rel.startswith(under):
                yield rel, p.read_bytes


def _common_root(names: list[str], under: str) -> str:
    for marker in (under, "train/", "test/"):
        if not marker:
            continue
        for n in names:
            i = n.find(marker)
            if i >= 0:
                return n[:i]
    return ""


def _decode_gray(data: bytes) -> np.ndarray | None:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE) if data else None
    if image is None:
        return None
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return image


def _warn_skipped(skipped: int, path: Path, split: str) -> None:
    if skipped:
        warnings.warn(f"{path} ({split}): skipped {skipped} unreadable or malformed images", stacklevel=3)


def _face_data(images: list[np.ndarray], labels: list[int], soft: list[np.ndarray] | None, name: str, split: str,
               path: Path) -> FaceData:
    if not images:
        raise MoodtunesError(f"No {split} images found in {path} for {name}; check --dataset and --data.")
    return FaceData(
        images=np.stack(images),
        labels=np.array(labels, dtype=np.int64),
        soft_targets=None if soft is None else np.stack(soft).astype(np.float32),
        name=name,
        split=split,
    )
