"""What a webcam does to a face, as functions of a strength in [0, 1].

Each corruption takes a 2-D uint8 gray face, a strength (0 = untouched, 1 = the worst the
robustness benchmark uses) and a NumPy generator, and returns a new uint8 face of the same
size. The benchmark (``training.robustness``) measures at strengths 1/3, 2/3 and 1; training
(``--corrupt``) draws a random strength per face, so it sees the same kinds of damage at every
degree in between. Parameters are given for 48x48 faces and scale with the face's side.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

Corruption = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def noise(face: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise: additive Gaussian, sigma up to 30 gray levels."""
    return _to_uint8(face + rng.normal(0.0, 30.0 * strength, face.shape))


def blur(face: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Defocus and motion softness: Gaussian blur, sigma up to 2 px at 48 px."""
    if strength <= 0:
        return face.copy()
    sigma = (0.3 + 1.7 * strength) * face.shape[0] / 48
    return cv2.GaussianBlur(face, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)


def low_light(face: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A dim room: brightness down to 25 %, few gray levels left, and the noise of high gain."""
    dark = face * (1.0 - 0.75 * strength)
    return _to_uint8(dark + rng.normal(0.0, 6.0 * strength, face.shape))


def gamma(face: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Over-exposure from auto-exposure or a window behind the screen: gamma down to 1/3."""
    g = 1.0 / (1.0 + 2.0 * strength)
    return _to_uint8(255.0 * (face / 255.0) ** g)


def jpeg(face: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Compression by the camera or a video call: JPEG quality from 60 down to 8."""
    quality = int(round(60 - 52 * strength))
    ok, data = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)


def downscale(face: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A face far from the camera: down to a quarter of the side, then back up."""
    side = face.shape[0]
    small = max(4, int(round(side / (1.0 + 3.0 * strength))))
    tiny = cv2.resize(face, (small, small), interpolation=cv2.INTER_AREA)
    return cv2.resize(tiny, (side, side), interpolation=cv2.INTER_LINEAR)


def hand(face: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A hand on the chin or cheek: a smooth blob over up to 35 % of the face, from below or a side."""
    out = face.copy()
    if strength <= 0:
        return out
    side = face.shape[0]
    area = 0.35 * strength * side * side
    ax = np.sqrt(area / np.pi * rng.uniform(0.8, 1.6))
    ay = area / (np.pi * ax)
    edge = rng.integers(3)  # 0: from below, 1: from the left, 2: from the right
    if edge == 0:
        cx, cy = rng.uniform(0.25, 0.75) * side, side - 0.4 * ay
    else:
        cx, cy = (0.4 * ax if edge == 1 else side - 0.4 * ax), rng.uniform(0.5, 0.9) * side
    mask = np.zeros_like(face)
    cv2.ellipse(mask, (int(cx), int(cy)), (int(ax), int(ay)), rng.uniform(-30, 30), 0, 360, 255, -1)
    skin = rng.uniform(90, 220) + rng.normal(0, 6, face.shape)  # a lit, slightly textured surface
    alpha = cv2.GaussianBlur(mask, (0, 0), 1.0).astype(np.float32) / 255.0
    return _to_uint8(alpha * skin + (1 - alpha) * out)


def glasses(face: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Dark glasses: two lenses and a bridge across the eyes, up to a fifth of the face high."""
    out = face.copy()
    if strength <= 0:
        return out
    side = face.shape[0]
    height = max(1, int(round((0.05 + 0.15 * strength) * side)))
    y = int(round(rng.uniform(0.3, 0.42) * side))
    shade = int(rng.uniform(0, 60))
    lens_w = int(round(0.3 * side))
    gap = int(round(0.08 * side))
    x_left = side // 2 - gap // 2 - lens_w
    cv2.rectangle(out, (x_left, y), (x_left + lens_w, y + height), shade, -1)
    cv2.rectangle(out, (side // 2 + gap // 2, y), (side // 2 + gap // 2 + lens_w, y + height), shade, -1)
    cv2.line(out, (x_left + lens_w, y + height // 3), (side // 2 + gap // 2, y + height // 3), shade,
             max(1, side // 48))
    return out


def crop_jitter(face: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A detector box that is off: shift and zoom up to 15 %, roll up to 20 degrees, random signs."""
    side = face.shape[0]
    sign = rng.choice([-1.0, 1.0], size=4)
    angle = sign[0] * 20.0 * strength
    scale = 1.0 + sign[1] * 0.15 * strength
    m = cv2.getRotationMatrix2D((side / 2, side / 2), angle, scale)
    m[0, 2] += sign[2] * 0.15 * strength * side
    m[1, 2] += sign[3] * 0.15 * strength * side
    return cv2.warpAffine(face, m, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


CORRUPTIONS: dict[str, Corruption] = {
    "noise": noise,
    "blur": blur,
    "low_light": low_light,
    "gamma": gamma,
    "jpeg": jpeg,
    "downscale": downscale,
    "hand": hand,
    "glasses": glasses,
    "crop_jitter": crop_jitter,
}
# What --corrupt draws from: crop jitter is left out because training's RandomAffine already
# shifts, zooms and rotates every face.
PHOTOMETRIC = tuple(name for name in CORRUPTIONS if name != "crop_jitter")
SEVERITIES = (1 / 3, 2 / 3, 1.0)


def corrupt_random(face: np.ndarray, rng: np.random.Generator, names: tuple[str, ...] = PHOTOMETRIC) -> np.ndarray:
    """One corruption drawn from ``names`` at a uniformly drawn strength."""
    name = names[rng.integers(len(names))]
    return CORRUPTIONS[name](face, float(rng.uniform(0.0, 1.0)), rng)


def corrupt_all(faces: np.ndarray, name: str, strength: float, seed: int = 0) -> np.ndarray:
    """``faces`` (N, H, W) uint8 under one corruption at one strength, repeatably."""
    rng = np.random.default_rng(seed)
    fn = CORRUPTIONS[name]
    return np.stack([fn(face, strength, rng) for face in faces])
