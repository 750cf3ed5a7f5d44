"""Test and benchmark footage: a real face (scikit-image's astronaut) moving in a 640x480 frame.

    python tests/clips.py face.avi [--frames 300] [--fps 30]
    python tests/clips.py photo.jpg

write the clip and the photo that the README's speed figures were measured on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def astronaut() -> np.ndarray:
    """Eileen Collins' NASA portrait from scikit-image: a real, smiling face (BGR)."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def face_scene(face_bgr: np.ndarray, dx: int = 60, size=(640, 480), face_side: int = 360) -> np.ndarray:
    """The face photo placed on a gray background of ``size`` at horizontal offset ``dx``."""
    canvas = np.full((size[1], size[0], 3), 40, np.uint8)
    face = cv2.resize(face_bgr, (face_side, face_side), interpolation=cv2.INTER_AREA)
    y = (size[1] - face_side) // 2
    canvas[y : y + face_side, dx : dx + face_side] = face
    return canvas


def write_face_clip(path: Path, frames: int = 300, fps: float = 30, size: tuple[int, int] = (640, 480)) -> Path:
    """An MJPG clip of the astronaut drifting left and right; one face in every frame."""
    portrait = astronaut()
    scale = size[0] / 640
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(frames):
        dx = int(scale * (140 + 80 * np.sin(i / 5)))
        writer.write(face_scene(portrait, dx=dx, size=size, face_side=int(360 * scale)))
    writer.release()
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--fps", type=float, default=30)
    args = parser.parse_args()
    if args.out.suffix.lower() in (".jpg", ".jpeg", ".png"):
        cv2.imwrite(str(args.out), face_scene(astronaut()))
        print(args.out)
    else:
        print(write_face_clip(args.out, args.frames, args.fps))
