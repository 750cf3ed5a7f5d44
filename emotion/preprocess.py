"""Face preprocessing shared by training and inference: gray, crop, resize, normalise.

Training images (FER2013/FER+) are already 48x48 gray face crops, so training only runs
:func:`normalize`; inference runs :func:`to_gray` and :func:`crop_face` first, which frame
a detected face the way FER frames its faces, then the same :func:`normalize`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import cv2
import numpy as np

from emotion.errors import MoodtunesError

if TYPE_CHECKING:  # the app runs without torch; only training passes tensors
    import torch

Faces = TypeVar("Faces", np.ndarray, "torch.Tensor")

# FER2013 pixel statistics (0..1 scale) over the Training split of the original CSV.
FER_MEAN = 0.5077
FER_STD = 0.2552

# Side of the square crop as a multiple of the detector box's longer side. Measured by
# running each detector on 600 upscaled FER+ test faces: the FER crop is 0.99x (YuNet) and
# 1.01x (Haar) the box side, centred on the box, so 1.0 frames faces as the model saw them.
CROP_SCALE = 1.0

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


def check_image(image: np.ndarray) -> int:
    """Validate an 8-bit gray/BGR/BGRA image and return its channel count (1, 3 or 4)."""
    if not isinstance(image, np.ndarray) or image.size == 0:
        raise MoodtunesError("Empty image: the frame source returned no pixels.")
    if image.dtype != np.uint8:
        raise MoodtunesError(f"Unsupported image type {image.dtype}: expected 8-bit (uint8) pixels.")
    if image.ndim == 2:
        return 1
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        return image.shape[2]
    raise MoodtunesError(f"Unsupported image shape {image.shape}: expected HxW, HxWx3 (BGR) or HxWx4 (BGRA).")


def to_gray(image: np.ndarray, checked: bool = False) -> np.ndarray:
    """Return a 2-D uint8 gray image from a gray, BGR or BGRA image.

    ``checked``: the image, or the frame it was cut from, already passed :func:`check_image`; the
    engine checks each frame once, where it comes in, and then converts its parts unchecked.
    """
    channels = _channels(image) if checked else check_image(image)
    if channels == 1:
        return image if image.ndim == 2 else image[:, :, 0]
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if channels == 3 else cv2.COLOR_BGRA2GRAY)


def to_bgr(image: np.ndarray, checked: bool = False) -> np.ndarray:
    """Return a 3-channel BGR image from a gray, BGR or BGRA image (``checked``: as for :func:`to_gray`)."""
    channels = _channels(image) if checked else check_image(image)
    if channels == 3:
        return image
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return cv2.cvtColor(to_gray(image, checked=True), cv2.COLOR_GRAY2BGR)


def _channels(image: np.ndarray) -> int:
    """The channel count of an image that passed check_image."""
    return 1 if image.ndim == 2 else image.shape[2]


def eye_angle(landmarks: np.ndarray) -> float:
    """Roll of the face in degrees from 5-point landmarks (right eye, left eye, ...)."""
    (rx, ry), (lx, ly) = landmarks[0], landmarks[1]
    return math.degrees(math.atan2(ly - ry, lx - rx))


def crop_face(
    image: np.ndarray,
    box: Box,
    size: int,
    angle: float = 0.0,
    scale: float = CROP_SCALE,
) -> np.ndarray:
    """Cut a gray ``size`` x ``size`` square around ``box`` from a gray, BGR or BGRA image, rotated by ``angle``.

    The square is centred on the box with side ``scale * max(w, h)``; parts outside the frame
    repeat the border pixels, as FER's own crops of faces near the edge do. ``image`` has passed
    :func:`check_image` (the engine checks each frame once, where it comes in).
    """
    x, y, w, h = box
    side = scale * max(w, h)
    if side < 1:
        raise MoodtunesError(f"Face box {box} is empty.")
    centre = (x + w / 2.0, y + h / 2.0)
    # Work on the face's neighbourhood only (a square that holds the crop at any angle):
    # shrinking the whole 640x480 frame cost 0.5 ms per face. Where it meets the frame's
    # edge, the replicated border below is the frame's own.
    reach = math.ceil(0.75 * side) + 2
    x0, y0 = max(0, int(centre[0]) - reach), max(0, int(centre[1]) - reach)
    x1, y1 = min(image.shape[1], int(centre[0]) + reach), min(image.shape[0], int(centre[1]) + reach)
    if x0 < x1 and y0 < y1:
        image = image[y0:y1, x0:x1]
        centre = (centre[0] - x0, centre[1] - y0)
    # Gray of the neighbourhood only: converting a whole 1920x1080 frame took 0.22 ms per frame.
    gray = to_gray(image, checked=True)
    # Shrink in one step (INTER_AREA) before the warp: warping a 200 px face straight to
    # 48 px with bilinear sampling aliases, and FER faces were resized with area averaging.
    shrink = min(1.0, 2.0 * size / side)
    if shrink < 1.0:
        gray = cv2.resize(gray, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        centre = (centre[0] * shrink, centre[1] * shrink)
        side *= shrink
    m = cv2.getRotationMatrix2D(centre, angle, size / side)
    m[0, 2] += size / 2.0 - centre[0]
    m[1, 2] += size / 2.0 - centre[1]
    return cv2.warpAffine(gray, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def resize_faces(faces: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Stack face crops of any size and colour layout into an (N, size, size) uint8 array."""
    out = np.empty((len(faces), size, size), dtype=np.uint8)
    for i, face in enumerate(faces):
        g = to_gray(face)
        if g.shape != (size, size):
            shrinking = g.shape[0] > size or g.shape[1] > size
            g = cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        out[i] = g
    return out


def normalize(faces: Faces, mean: float = FER_MEAN, std: float = FER_STD) -> Faces:
    """uint8 faces (N, H, W) or (N, 1, H, W) -> float32 (N, 1, H, W), zero mean, unit std.

    One function for training (torch tensors) and the app (NumPy arrays), so both see exactly
    the same numbers.
    """
    if faces.ndim == 3:
        faces = faces[:, None]
    faces = faces.astype(np.float32) if isinstance(faces, np.ndarray) else faces.float()
    return (faces / 255.0 - mean) / std
