"""Frame sources: files, folders, and a camera thread that never builds a backlog or hangs."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from emotion.sources import CameraSource, ImageListSource, SourceError, VideoFileSource, open_source


def test_video_frames_and_timestamps(face_video):
    with open_source(face_video) as source:
        assert isinstance(source, VideoFileSource) and source.fps == pytest.approx(15)
        items = list(source)
    assert len(items) == 30
    assert [round(f.timestamp, 4) for f in items[:3]] == [0.0, round(1 / 15, 4), round(2 / 15, 4)]
    assert items[0].image.shape == (480, 640, 3) and not items[0].image.flags.writeable


def test_video_loops_with_increasing_time(face_video):
    with open_source(face_video, loop=True) as source:
        stamps = [source.read().timestamp for _ in range(45)]
    assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False))


def test_image_and_folder_sources(tmp_path, astronaut_bgr):
    cv2.imwrite(str(tmp_path / "a.png"), astronaut_bgr)
    cv2.imwrite(str(tmp_path / "b.jpg"), astronaut_bgr)
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(tmp_path / "a.png") as one:
        assert isinstance(one, ImageListSource) and len(list(one)) == 1
    with open_source(tmp_path) as folder:
        assert len(list(folder)) == 2


def test_16_bit_and_gray_images_are_read(tmp_path):
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((40, 40), 40000, np.uint16))
    frame = open_source(tmp_path / "deep.png").read().image
    assert frame.dtype == np.uint8 and frame.shape == (40, 40)


@pytest.mark.parametrize("name,content,message", [
    ("clip.mp4", b"this is not a video", "neither a video nor an image"),
    ("photo.jpg", b"this is not a jpeg", "not an image"),
    ("notes.txt", b"hello", "neither a video nor an image"),
])
def test_unreadable_files_give_one_clear_error(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(SourceError, match=message):
        open_source(tmp_path / name)


def test_missing_source_and_empty_folder(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        open_source(tmp_path / "nothing.mp4")
    with pytest.raises(SourceError, match="No images"):
        open_source(tmp_path)


def test_camera_hands_over_the_newest_frame(face_video):
    # A real VideoCapture on a file stands in for the device: it delivers frames faster
    # than this consumer takes them, exactly the situation that must not build a backlog.
    camera = CameraSource(capture_factory=lambda: cv2.VideoCapture(str(face_video)), reconnect_timeout=3)
    try:
        first = camera.read()
        time.sleep(0.3)
        second = camera.read()
        assert second.timestamp > first.timestamp
        assert camera._seq - camera._taken == 0  # nothing queued behind what we just got
    finally:
        camera.close()


def test_camera_that_never_opens_fails_fast_with_advice():
    started = time.monotonic()
    with pytest.raises(SourceError, match="Cannot open camera 7.*--camera N"):
        CameraSource(7, open_timeout=1.0, retry_interval=0.1,
                     capture_factory=lambda: cv2.VideoCapture("/nonexistent/device.avi"))
    assert time.monotonic() - started < 3


def test_lost_camera_reconnects_then_gives_up_with_a_clear_error(tmp_path, face_video):
    opened = []

    def factory():
        opened.append(time.monotonic())
        # First the "camera" works (a short clip), then it is unplugged for good.
        return cv2.VideoCapture(str(face_video) if len(opened) == 1 else "/nonexistent/device.avi")

    camera = CameraSource(capture_factory=factory, reconnect_timeout=1.0, retry_interval=0.2)
    try:
        with pytest.raises(SourceError, match="stopped sending frames"):
            for _ in range(1000):
                camera.read()
        assert len(opened) >= 3  # it tried to reconnect before giving up
    finally:
        camera.close()


def test_camera_close_is_prompt(face_video):
    camera = CameraSource(capture_factory=lambda: cv2.VideoCapture(str(face_video)))
    started = time.monotonic()
    camera.close()
    assert time.monotonic() - started < 1.0 and camera.read() is None
