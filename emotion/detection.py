"""Face detection behind one small interface: YuNet (default) or OpenCV's Haar cascade.

``create_detector("auto")`` uses YuNet, from the official model that ships inside the package
(``emotion/models``, MIT licence; see the notice beside it) or from a file the caller names, so
it works offline from the first run and downloads nothing. Only when the shipped model is
missing or unusable does it fall back to the Haar cascade that comes with opencv-python,
recording why, and what to do, in ``detector.note`` for the user to see.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from emotion.errors import MoodtunesError
from emotion.preprocess import Box, to_bgr, to_gray

# The official 2023mar release, package data; YUNET_SHA256 is the oid of opencv_zoo's Git LFS pointer.
YUNET_MODEL = Path(str(files(__package__) / "models" / "face_detection_yunet_2023mar.onnx"))
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
DETECTORS = ("auto", "yunet", "haar")
ROI_SCALE = 2.3  # the search square around a known face, in face sides
ROI_SIDE = 64  # pixels the search square is shrunk (or grown) to
# A face that the 64 px square loses is searched again at 96 px (its face ~42 px instead of ~28): a
# turned face (scikit-image's cameraman) is found in 0 of 60 HD frames at 64 and 80 px, 60 of 60 at 96.
ROI_SIDE_WIDE = 96
SAME_FACE_IOU = 0.3  # a face found in a square is the one searched for if its box overlaps the last one this much
MOSAIC_ROW = 400  # px: the squares of several faces sit in rows of at most this width, one network call for all
MOSAIC_GAP = 8  # px of blank between two squares of the mosaic
# Whole-frame searches shrink the frame to this long side: 320 for frames up to 640 px wide (a face
# of 52 px and more in 640x480); larger frames to 480, which found 229-231 of the 240 faces of the
# 8-face 1280x720 and 1920x1080 clips where 320 found 179-181, for three times the cost (once a second).
FULL_SIDE = 320
FULL_SIDE_HD = 480
# A face box may overhang the frame (a close-up cut by its edges), but not by this many frames.
MAX_BOX_FRAMES = 4


class DetectorUnavailable(MoodtunesError):
    """The asked-for face detector cannot run here; the message says why and what to do."""


@dataclass(frozen=True)
class Detection:
    box: Box  # x, y, w, h in frame pixels
    score: float | None  # detector confidence (None for Haar, which has none)
    landmarks: np.ndarray | None  # (5, 2): right eye, left eye, nose, mouth right, mouth left


class FaceDetector(Protocol):
    name: str  # what the user sees, e.g. "YuNet" or "Haar cascade"
    note: str  # why this detector was chosen when it was not the one asked for; else ""

    def detect(self, frame: np.ndarray) -> list[Detection]:
        """Faces in a gray, BGR or BGRA frame that passed ``check_image`` (the engine checks each frame once)."""
        ...


@functools.cache
def _official_yunet(path: Path) -> Path:
    """``path`` once its bytes are checked to be the official YuNet release, else DetectorUnavailable.

    A damaged install or a swapped file must not silently run another network. Hashing the
    233 kB takes a quarter of a millisecond; still, it is done once per process (and path).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DetectorUnavailable(f"{path.name} cannot be read: {exc.strerror or exc}") from exc
    if hashlib.sha256(data).hexdigest() != YUNET_SHA256:
        raise DetectorUnavailable(f"{path.name} is not the official release (its SHA-256 differs)")
    return path


class YuNetDetector:
    """OpenCV's YuNet CNN face detector with 5 landmarks, run on a downscaled frame.

    Faces at desk distance span 100+ pixels of a 640x480 frame; detecting at ``max_side``
    = 320 keeps them above YuNet's ~26 px minimum and costs a quarter of the full frame. Larger
    frames are searched at 480 px (FULL_SIDE_HD) unless ``max_side`` says otherwise.
    """

    name = "YuNet"

    def __init__(self, model_path: str | Path, score_threshold: float = 0.7, max_side: int | None = None,
                 note: str = ""):
        self.note = note
        self.max_side = max_side
        model_path = Path(model_path)
        if not model_path.is_file():
            raise DetectorUnavailable(f"face model not found: {model_path}")
        try:
            self._net = cv2.FaceDetectorYN.create(model=str(model_path), config="", input_size=(320, 320),
                                                  score_threshold=score_threshold, nms_threshold=0.3, top_k=50)
        except cv2.error as exc:
            raise DetectorUnavailable(f"{model_path} is not a usable YuNet ONNX model") from exc
        self._input_size: tuple[int, int] | None = None

    def detect(self, frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        side = self.max_side or (FULL_SIDE if max(h, w) <= 640 else FULL_SIDE_HD)
        zoom = min(1.0, side / max(h, w))  # searched pixels per frame pixel
        image = to_bgr(shrink(frame, (round(w * zoom), round(h * zoom))), checked=True)  # colour after shrinking
        return self._detect_zoomed(image, zoom, (0, 0), (w, h))

    def _detect_zoomed(self, image: np.ndarray, zoom: float, origin: tuple[int, int],
                       frame_size: tuple[int, int]) -> list[Detection]:
        """Faces in ``image``, a part of the frame (from ``origin``) at ``zoom`` pixels per frame pixel, in frame
        pixels."""
        size = (image.shape[1], image.shape[0])
        if size != self._input_size:
            self._net.setInputSize(size)
            self._input_size = size
        _, faces = self._net.detect(image)
        results = []
        for row in faces if faces is not None else []:
            if not np.isfinite(row[:15]).all():  # YuNet's overflow on some small images: not a face
                continue
            x, y, bw, bh = (row[:4] / zoom).tolist()
            box = _clip_box(origin[0] + x, origin[1] + y, bw, bh, *frame_size)
            if box is not None:
                landmarks = (row[4:14] / zoom).reshape(5, 2) + np.array(origin, dtype=np.float32)
                results.append(Detection(box, float(row[14]), landmarks))
        return results

    def detect_near(self, frame: np.ndarray, boxes: Sequence[Box], sides: Sequence[int] | None = None
                    ) -> list[list[Detection]]:
        """Faces in the square around each of ``boxes`` (ROI_SCALE times its side), searched at
        ``sides`` px (default ROI_SIDE), all in one network call.

        Each square is shrunk to its side and the squares are laid side by side in a mosaic, in
        rows of up to MOSAIC_ROW px with a blank gap between them; a face found in the mosaic
        belongs to the square its centre falls in. One call on a 64 px square costs 0.3-0.4 ms on
        a 2-core CPU against 6 ms for a 320x240 frame, and the face keeps ~28 px in it; eight
        squares in one mosaic cost 2.5-3.6 ms against 4.1-5.7 ms in eight calls (1280x720, same run).
        """
        h, w = frame.shape[:2]
        sides = [ROI_SIDE] * len(boxes) if sides is None else sides
        tiles, places = [], []
        for box, size in zip(boxes, sides, strict=True):
            x, y, bw, bh = box
            side = ROI_SCALE * max(bw, bh)
            x0, y0 = int(round(x + bw / 2 - side / 2)), int(round(y + bh / 2 - side / 2))
            x1, y1 = int(round(x0 + side)), int(round(y0 + side))
            cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
            if cx1 - cx0 < 8 or cy1 - cy0 < 8:
                tiles.append(None)
                continue
            zoom = size / side  # square pixels per frame pixel
            tile = shrink(frame[cy0:cy1, cx0:cx1], (max(8, round((cx1 - cx0) * zoom)),
                                                    max(8, round((cy1 - cy0) * zoom))))
            tiles.append(to_bgr(tile, checked=True))  # colour converted after shrinking: the square, not the frame
            places.append((zoom, (cx0, cy0)))
        found: list[list[Detection]] = [[] for _ in boxes]
        laid = [tile for tile in tiles if tile is not None]
        if not laid:
            return found
        if len(laid) == 1:
            mosaic, origins = laid[0], [(0, 0)]
        else:
            mosaic, origins = _mosaic(laid)
        hits = self._detect_zoomed(mosaic, 1.0, (0, 0), (mosaic.shape[1], mosaic.shape[0]))
        owners = [k for k, tile in enumerate(tiles) if tile is not None]
        for k, (tile, (mx, my), (zoom, (cx0, cy0))) in enumerate(zip(laid, origins, places, strict=True)):
            th, tw = tile.shape[:2]
            for hit in hits:
                bx, by, bw, bh = hit.box
                if not (mx <= bx + bw / 2 < mx + tw and my <= by + bh / 2 < my + th):
                    continue
                box = _clip_box(cx0 + (bx - mx) / zoom, cy0 + (by - my) / zoom, bw / zoom, bh / zoom, w, h)
                if box is not None:
                    landmarks = (hit.landmarks - np.array((mx, my), np.float32)) / zoom + np.array((cx0, cy0),
                                                                                                   np.float32)
                    found[owners[k]].append(Detection(box, hit.score, landmarks))
        return found


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``size`` (width, height); shrinking averages every pixel away, as INTER_AREA does.

    Halvings first (INTER_LINEAR at exactly one half is the mean of each 2x2 block), then one
    INTER_AREA step for the rest: INTER_AREA straight from 1920x1080 to 480x270 takes ~1.2 ms on
    a 2-core CPU, its non-integer ratios (1280 -> 480) more.
    """
    w, h = size
    while image.shape[1] >= 2 * w and image.shape[0] >= 2 * h:
        image = cv2.resize(image, ((image.shape[1] + 1) // 2, (image.shape[0] + 1) // 2),
                           interpolation=cv2.INTER_LINEAR)
    if (image.shape[1], image.shape[0]) == (w, h):
        return image
    shrinking = image.shape[1] > w or image.shape[0] > h
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _mosaic(tiles: list[np.ndarray]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """``tiles`` laid in rows of up to MOSAIC_ROW px, MOSAIC_GAP apart, on black; each one's top-left corner."""
    origins, x, y, row_height, width = [], 0, 0, 0, 0
    for tile in tiles:
        th, tw = tile.shape[:2]
        if x and x + tw > MOSAIC_ROW:
            x, y, row_height = 0, y + row_height + MOSAIC_GAP, 0
        origins.append((x, y))
        x += tw + MOSAIC_GAP
        row_height, width = max(row_height, th), max(width, x - MOSAIC_GAP)
    mosaic = np.zeros((y + row_height, width, 3), np.uint8)
    for tile, (x, y) in zip(tiles, origins, strict=True):
        mosaic[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return mosaic, origins


class HaarDetector:
    """The frontal-face Haar cascade bundled with opencv-python: the fallback, without landmarks."""

    name = "Haar cascade"

    def __init__(self, max_side: int = 320, note: str = ""):
        self.note = note
        self.max_side = max_side
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise DetectorUnavailable(
                f"the Haar cascade {path} is missing; install opencv-python 4.x (5.x ships none)"
            )

    def detect(self, frame: np.ndarray) -> list[Detection]:
        gray = to_gray(frame, checked=True)
        h, w = gray.shape
        zoom = min(1.0, self.max_side / max(h, w))  # searched pixels per frame pixel
        if zoom < 1.0:
            gray = cv2.resize(gray, (round(w * zoom), round(h * zoom)), interpolation=cv2.INTER_AREA)
        min_side = max(20, min(gray.shape) // 12)
        # minNeighbors 7 (OpenCV's default is 3): on test scenes 5 and 6 still boxed parts of
        # the background as faces, 7 removed them and kept every real face, 8 started losing them.
        boxes = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=7, minSize=(min_side, min_side))
        results = []
        for x, y, bw, bh in boxes:
            box = _clip_box(x / zoom, y / zoom, bw / zoom, bh / zoom, w, h)
            if box is not None:
                results.append(Detection(box, None, None))
        return results


def create_detector(kind: str = "auto", face_model: str | Path | None = None) -> FaceDetector:
    """Build the face detector ``kind`` (auto, yunet, haar).

    auto: YuNet on the shipped model, else (that model missing or unusable) Haar with ``note``
    saying why. yunet: YuNet or DetectorUnavailable. An explicit ``face_model`` file is used as
    given, unchecked, instead of the shipped one; if it fails, that is an error, not a fallback.
    """
    if kind not in DETECTORS:
        raise MoodtunesError(f"Unknown detector {kind!r}: use one of {', '.join(DETECTORS)}.")
    if kind == "haar":
        return HaarDetector()
    try:
        return YuNetDetector(face_model or _official_yunet(YUNET_MODEL))
    except DetectorUnavailable as exc:
        if kind == "yunet" or face_model:
            raise DetectorUnavailable(
                f"YuNet face detector unavailable: {exc}. Pass --face-model with a YuNet .onnx file, "
                "or --detector haar."
            ) from exc
        # Short enough for the window's status bar, where it is shown in full.
        return HaarDetector(note=f"YuNet unavailable ({exc}); using the Haar cascade. Reinstall moodtunes to fix this.")


class FaceFinder:
    """Faces frame after frame, at a fraction of the cost of detecting in every whole frame.

    Between full-frame detections it searches only around the faces of the frame before
    (``detect_near``, all of them in one network call), which follows moving heads. A face
    its square loses is looked for once more in a wider square (ROI_SIDE_WIDE), which it then
    keeps. The whole frame is searched every ``every_frames`` frames or ``every_seconds`` of
    stream time, whichever comes first (new faces show up within a second), whenever a face is
    lost, and while there is none. Every 30 frames (once a second from a 30 fps camera) keeps
    full searches to 3 % of the frames, clear of the 95th latency percentile. Detectors without
    ``detect_near`` (Haar) search every whole frame. Call :meth:`reset` when the next frame has
    nothing to do with the last.
    """

    def __init__(self, detector: FaceDetector, every_frames: int = 30, every_seconds: float = 1.0) -> None:
        self.detector = detector
        self.every_frames, self.every_seconds = every_frames, every_seconds
        self._last: list[Detection] = []
        self._sides: list[int] = []  # the search square's side for each face of _last
        self._last_full: float | None = None
        self._frames_since_full = 0

    def find(self, frame: np.ndarray, timestamp: float) -> list[Detection]:
        near = getattr(self.detector, "detect_near", None)
        self._frames_since_full += 1
        due = (self._last_full is None or self._frames_since_full >= self.every_frames
               or not 0 <= timestamp - self._last_full < self.every_seconds)
        if near is not None and self._last and not due:
            boxes = [d.box for d in self._last]
            candidates = self._same_faces(near(frame, boxes, self._sides), boxes)
            narrow = [i for i, found in enumerate(candidates) if not found and self._sides[i] < ROI_SIDE_WIDE]
            if narrow:
                wide = self._same_faces(near(frame, [boxes[i] for i in narrow], [ROI_SIDE_WIDE] * len(narrow)),
                                        [boxes[i] for i in narrow])
                for i, found in zip(narrow, wide, strict=True):
                    candidates[i], self._sides[i] = found, ROI_SIDE_WIDE
            if all(candidates):  # else a face is lost: look everywhere
                found = [max(c, key=lambda d, box=box: iou(d.box, box)) for c, box in zip(candidates, boxes,
                                                                                         strict=True)]
                self._last, self._sides = _distinct(found, self._sides)
                return self._last
        self._last_full, self._frames_since_full = timestamp, 0
        self._last = self.detector.detect(frame)
        self._sides = [ROI_SIDE] * len(self._last)
        return self._last

    def reset(self) -> None:
        self._last, self._sides, self._last_full, self._frames_since_full = [], [], None, 0

    @staticmethod
    def _same_faces(candidates: list[list[Detection]], boxes: list[Box]) -> list[list[Detection]]:
        """Of what each square holds, what overlaps its face's last box (as much as a track needs, SAME_FACE_IOU).

        A square also holds part of a neighbour's face when two faces are close: on the 8-face
        clip, a turned face's square once found only half of the face beside it, which would
        otherwise have been taken for it.
        """
        return [[d for d in found if iou(d.box, box) >= SAME_FACE_IOU] for found, box in zip(candidates, boxes,
                                                                                                strict=True)]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two x, y, w, h boxes."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _distinct(detections: list[Detection], sides: list[int]) -> tuple[list[Detection], list[int]]:
    """Two searches that found the same face (two faces close together) keep it once, with its search side."""
    kept: list[Detection] = []
    kept_sides: list[int] = []
    for d, side in zip(detections, sides, strict=True):
        if all(iou(d.box, k.box) < 0.5 for k in kept):
            kept.append(d)
            kept_sides.append(side)
    return kept, kept_sides


def _clip_box(x: float, y: float, w: float, h: float, frame_w: int, frame_h: int) -> Box | None:
    """The part of a box that lies in the frame, in whole pixels; None for one that is no face there.

    Every detector's box passes here. For inputs of a few dozen pixels a side YuNet now and then
    returns infinite coordinates (2-3 % of images of 2-160 px a side, not the same ones from run to
    run), which round() cannot take and which are no face: a box that is not finite, or more than
    MAX_BOX_FRAMES times the frame's size, is dropped.
    """
    if not all(math.isfinite(v) for v in (x, y, w, h)) or max(w / frame_w, h / frame_h) > MAX_BOX_FRAMES:
        return None
    x0, y0 = max(0, round(x)), max(0, round(y))
    x1, y1 = min(frame_w, round(x + w)), min(frame_h, round(y + h))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return (x0, y0, x1 - x0, y1 - y0)
