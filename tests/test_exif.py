"""Phone photos stand upright: every way a photo comes in honours its EXIF orientation, and boxes are
in the upright photo's pixels. The photo is a real face saved with each of the 8 orientations: the
pixels stored turned or mirrored, and the tag that turns them back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT
from fastapi.testclient import TestClient
from PIL import ExifTags, Image, ImageOps

from emotion import sources
from emotion.recognizer import EmotionRecognizer
from emotion.sources import load_image, open_source, read_image
from gui.api import ServeSettings, create_app

# What a camera stores for each orientation tag: the upright picture turned the other way (Pillow's names).
STORED = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
          4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
          7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


def save_oriented(upright_bgr: np.ndarray, orientation: int, path: Path) -> Path:
    image = Image.fromarray(cv2.cvtColor(upright_bgr, cv2.COLOR_BGR2RGB))
    if STORED[orientation] is not None:
        image = image.transpose(STORED[orientation])
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    image.save(path, exif=exif, **({"quality": 95} if path.suffix == ".jpg" else {}))
    return path


@pytest.fixture(scope="module")
def upright(astronaut_bgr) -> np.ndarray:
    return np.ascontiguousarray(astronaut_bgr[:, 40:424])  # 384 x 512: turning it a quarter shows


@pytest.fixture(scope="module")
def photos(tmp_path_factory, upright) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("oriented")
    paths = {o: save_oriented(upright, o, folder / f"orientation{o}.jpg") for o in STORED}
    for orientation, path in paths.items():  # the files are what the tests say: Pillow turns each one upright
        with Image.open(path) as image:
            turned = cv2.cvtColor(np.asarray(ImageOps.exif_transpose(image)), cv2.COLOR_RGB2BGR)
        assert turned.shape == upright.shape and np.abs(turned.astype(int) - upright).mean() < 3, orientation
    return paths


@pytest.fixture(scope="module")
def recognizer() -> EmotionRecognizer:
    return EmotionRecognizer(device="cpu")


@pytest.fixture(scope="module")
def upright_boxes(recognizer, photos) -> list[tuple[int, int, int, int]]:
    boxes = [face.box for face in recognizer.analyze(read_image(photos[1]))]
    assert len(boxes) == 1
    return boxes


def assert_same_boxes(found, expected, tolerance: float = 4) -> None:
    assert len(found) == len(expected), (found, expected)
    for box, want in zip(found, expected, strict=True):
        assert np.abs(np.subtract(box, want)).max() <= tolerance, (box, want)


def test_each_orientation_is_read_upright(photos, upright):
    for orientation, path in photos.items():
        image = read_image(path)
        assert image.shape == upright.shape, orientation
        assert np.abs(image.astype(int) - upright).mean() < 3, orientation


def test_a_png_with_an_orientation_is_read_upright_too(tmp_path, upright):
    for orientation in (3, 6, 7):
        image = read_image(save_oriented(upright, orientation, tmp_path / f"o{orientation}.png"))
        assert np.array_equal(image, upright), orientation


def test_a_folder_of_oriented_photos_gives_upright_frames_and_faces(photos, recognizer, upright_boxes):
    with open_source(photos[1].parent) as source:  # the window's folders and File -> Open, and calibration
        frames = list(source)
    assert [frame.name for frame in frames] == [path.name for path in photos.values()]
    for frame in frames:
        assert_same_boxes([face.box for face in recognizer.analyze(frame.image)], upright_boxes)


def test_a_huge_jpeg_read_reduced_is_upright_and_its_boxes_in_the_photo_pixels(monkeypatch, photos, upright,
                                                                                recognizer, upright_boxes):
    monkeypatch.setattr(sources, "MAX_IMAGE_PIXELS", 60_000)  # 384 x 512 is then "huge": decoded at 1/2
    for orientation in (5, 6, 8):
        picture = load_image(photos[orientation])
        assert picture.reduction == 2 and picture.image.shape[:2] == (256, 192), orientation
        boxes = [[round(v * picture.reduction) for v in face.box] for face in recognizer.analyze(picture.image)]
        assert_same_boxes(boxes, upright_boxes, tolerance=8)


def test_headless_reports_boxes_in_the_upright_photo(photos, upright_boxes):
    one = subprocess.run([sys.executable, str(ROOT / "main.py"), "--source", str(photos[6]), "--headless"],
                         capture_output=True, text=True, timeout=120)
    folder = subprocess.run([sys.executable, str(ROOT / "main.py"), "--source", str(photos[1].parent),
                             "--headless"], capture_output=True, text=True, timeout=120)
    for run, count in ((one, 1), (folder, 8)):
        assert run.returncode == 0, run.stderr
        *frames, _ = [json.loads(line) for line in run.stdout.splitlines()]
        assert len(frames) == count
        for frame in frames:
            assert_same_boxes([face["box"] for face in frame["faces"]], upright_boxes)


def test_post_analyze_reports_boxes_in_the_upright_photo(photos, upright, upright_boxes):
    app = create_app(ServeSettings(port=0), lambda: EmotionRecognizer(device="cpu"), None)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for orientation, path in photos.items():
            response = client.post("/analyze", content=path.read_bytes(), headers={"Content-Type": "image/jpeg"})
            assert response.status_code == 200, response.text
            analysis = response.json()
            assert (analysis["height"], analysis["width"]) == upright.shape[:2], orientation
            assert_same_boxes([face["box"] for face in analysis["faces"]], upright_boxes)
