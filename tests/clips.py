"""Test and benchmark footage made from real faces, offline.

    python tests/clips.py face.avi [--frames 300] [--fps 30]            one face in 640x480 (the README's clip)
    python tests/clips.py photo.jpg
    python tests/clips.py group.avi --size 1920x1080 --faces 8          a group moving in an HD frame

The faces are the real photos that ship with the test dependencies, so nothing is downloaded:
scikit-image's astronaut (Eileen Collins) and cameraman, and matplotlib's Grace Hopper. Three
people are all there are offline (scikit-image's ``lfw_subset`` and the FER faces in ../shared
are 25 and 48 px: too small to stand for a face in an HD frame), so a group of more than
three repeats them, mirrored and at other sizes, each on a path of its own.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

BACKGROUND = 40  # the flat gray backdrop of every scene (MJPG decodes it fast: the cost measured is ours)


def astronaut() -> np.ndarray:
    """Eileen Collins' NASA portrait from scikit-image: a real, smiling face (BGR)."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def face_scene(face_bgr: np.ndarray, dx: int = 60, size=(640, 480), face_side: int = 360) -> np.ndarray:
    """The face photo placed on a gray background of ``size`` at horizontal offset ``dx``."""
    canvas = np.full((size[1], size[0], 3), BACKGROUND, np.uint8)
    face = cv2.resize(face_bgr, (face_side, face_side), interpolation=cv2.INTER_AREA)
    y = (size[1] - face_side) // 2
    canvas[y : y + face_side, dx : dx + face_side] = face
    return canvas


def write_clip(path: Path, frames: Iterable[np.ndarray], fps: float = 30) -> Path:
    """An MJPG clip of ``frames`` (BGR, all of the first one's size)."""
    writer = None
    for frame in frames:
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (frame.shape[1], frame.shape[0]))
        writer.write(frame)
    if writer is not None:
        writer.release()
    return path


def write_mood_clip(path: Path, parts: Iterable[tuple[np.ndarray, float]], fps: float = 5) -> Path:
    """A clip whose face changes: each part is (face photo, seconds), the face drifting a little."""
    frames = (face_scene(face, dx=60 + 4 * (i % 5)) for face, seconds in parts for i in range(round(seconds * fps)))
    return write_clip(path, frames, fps=fps)


def write_face_clip(path: Path, frames: int = 300, fps: float = 30, size: tuple[int, int] = (640, 480)) -> Path:
    """An MJPG clip of the astronaut drifting left and right; one face in every frame."""
    portrait = astronaut()
    scale = size[0] / 640
    return write_clip(path, (face_scene(portrait, dx=int(scale * (140 + 80 * np.sin(i / 5))), size=size,
                                        face_side=int(360 * scale)) for i in range(frames)), fps)


@dataclass(frozen=True)
class Portrait:
    """A head-and-shoulders tile cut from a real photo: the face's box inside it is ``face_box``."""

    name: str
    tile: np.ndarray  # BGR, square
    face_box: tuple[float, float, float, float]  # x, y, w, h in tile pixels


# YuNet's boxes of each face in its photo (2023mar model, whole photo): where the tiles are cut.
_FACES = {"astronaut": (178, 63, 90, 113), "grace_hopper": (183, 120, 170, 213), "cameraman": (196, 113, 60, 81)}
TILE_SCALE = 1.8  # tile side in face heights: hair, chin and a margin around the box


def real_portraits() -> list[Portrait]:
    """The three real faces available offline, each cut to a square tile around its face."""
    from matplotlib import cbook
    from skimage import data

    photos = {
        "astronaut": astronaut(),
        "grace_hopper": cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))),
        "cameraman": cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR),
    }
    portraits = []
    for name, photo in photos.items():
        x, y, w, h = _FACES[name]
        side = round(TILE_SCALE * h)
        x0, y0 = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
        padded = cv2.copyMakeBorder(photo, side, side, side, side, cv2.BORDER_REPLICATE)
        tile = padded[y0 + side : y0 + 2 * side, x0 + side : x0 + 2 * side].copy()
        portraits.append(Portrait(name, tile, (x - x0, y - y0, w, h)))
    return portraits


# Face heights of a group, as a share of the frame's height: 8 people at 1.5-3 m from the camera.
GROUP_FACE_HEIGHTS = (0.14, 0.11, 0.13, 0.10, 0.15, 0.12, 0.115, 0.135)


@dataclass(frozen=True)
class GroupScene:
    """``count`` faces, each in a cell of a grid, each drifting on a path of its own (no two cross)."""

    size: tuple[int, int]  # width, height
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= len(GROUP_FACE_HEIGHTS):
            raise ValueError(f"1 to {len(GROUP_FACE_HEIGHTS)} faces, not {self.count}")

    @property
    def grid(self) -> tuple[int, int]:
        rows = max(1, round(math.sqrt(self.count * self.size[1] / self.size[0])))
        return math.ceil(self.count / rows), rows

    def tile_sides(self) -> list[int]:
        return [round(TILE_SCALE * GROUP_FACE_HEIGHTS[k] * self.size[1]) for k in range(self.count)]

    def tile_origins(self, index: int) -> list[tuple[int, int]]:
        """Top-left corner of each face's tile in frame ``index``.

        Neighbours swing towards each other until their tiles overlap by up to 0.3 of a tile
        (the margins, not the faces): each face's search square (2.3 face sides) then reaches
        into its neighbour's face.
        """
        columns, rows = self.grid
        cell_w, cell_h = self.size[0] / columns, self.size[1] / rows
        origins = []
        for k, side in enumerate(self.tile_sides()):
            column, row = k % columns, k // columns
            swing_x = min(side, max(0.0, (cell_w - side) / 2 + 0.15 * side))
            swing_y = min(side / 4, max(0.0, (cell_h - side) / 4))
            # Next-door columns swing in opposite phase: each pair closes in, then the next.
            cx = (column + 0.5) * cell_w + swing_x * math.sin(2 * math.pi * index / (60 + 10 * row)
                                                              + math.pi * column + 0.5 * row)
            cy = (row + 0.5) * cell_h + swing_y * math.sin(2 * math.pi * index / (80 + 5 * k) + 1.8 * k)
            origins.append((round(cx - side / 2), round(cy - side / 2)))
        return origins

    def face_boxes(self, index: int, portraits: list[Portrait]) -> list[tuple[float, float, float, float]]:
        """Where each face is in frame ``index``: ground truth for the tracks."""
        boxes = []
        for k, ((ox, oy), side) in enumerate(zip(self.tile_origins(index), self.tile_sides(), strict=True)):
            portrait = portraits[k % len(portraits)]
            scale = side / portrait.tile.shape[0]
            x, y, w, h = portrait.face_box
            if (k // len(portraits)) % 2:  # mirrored
                x = portrait.tile.shape[1] - x - w
            boxes.append((ox + x * scale, oy + y * scale, w * scale, h * scale))
        return boxes

    def frame(self, index: int, portraits: list[Portrait]) -> np.ndarray:
        canvas = np.full((self.size[1], self.size[0], 3), BACKGROUND, np.uint8)
        for k, ((ox, oy), side) in enumerate(zip(self.tile_origins(index), self.tile_sides(), strict=True)):
            tile = portraits[k % len(portraits)].tile
            if (k // len(portraits)) % 2:
                tile = tile[:, ::-1]
            tile = cv2.resize(tile, (side, side), interpolation=cv2.INTER_AREA)
            x0, y0 = max(0, ox), max(0, oy)
            x1, y1 = min(self.size[0], ox + side), min(self.size[1], oy + side)
            canvas[y0:y1, x0:x1] = tile[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
        return canvas


def write_group_clip(path: Path, size: tuple[int, int] = (1920, 1080), faces: int = 8, frames: int = 300,
                     fps: float = 30) -> Path:
    """An MJPG clip of ``faces`` real faces moving in a ``size`` frame (see :class:`GroupScene`)."""
    scene, portraits = GroupScene(size, faces), real_portraits()
    return write_clip(path, (scene.frame(i, portraits) for i in range(frames)), fps)


def frame_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--fps", type=float, default=30)
    parser.add_argument("--size", type=frame_size, help="WxH: a group clip of --faces real faces (default 640x480, "
                                                        "the one-face clip)")
    parser.add_argument("--faces", type=int, default=1)
    args = parser.parse_args()
    try:
        if args.out.suffix.lower() in (".jpg", ".jpeg", ".png"):
            cv2.imwrite(str(args.out), face_scene(astronaut()))
            print(args.out)
        elif args.size:
            print(write_group_clip(args.out, args.size, args.faces, args.frames, args.fps))
        else:
            print(write_face_clip(args.out, args.frames, args.fps))
    except ModuleNotFoundError as exc:  # the photos of real people come from these two packages
        raise SystemExit(f"error: tests/clips.py needs {exc.name}: pip install scikit-image matplotlib") from None
