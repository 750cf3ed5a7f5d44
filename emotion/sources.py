"""Where frames come from: a camera, a video file, an image or a folder of images.

Files are read frame by frame with timestamps from the file's own clock, so a run is
repeatable. A camera is read by a background thread that keeps only the newest frame: a
slow consumer gets the latest picture instead of an ever-growing backlog.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from emotion.errors import MoodtunesError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}


class SourceError(MoodtunesError):
    """A frame source cannot be opened or was lost."""


class FrameSource:
    """Iterate ``(frame_bgr, timestamp_seconds)``; ``read()`` returns None at the end."""

    name: str = ""
    live: bool = False  # frames arrive in real time (a camera)
    fps: float = 30.0

    def read(self) -> tuple[np.ndarray, float] | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __iter__(self):
        while (item := self.read()) is not None:
            yield item

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoFileSource(FrameSource):
    def __init__(self, path: Path, loop: bool = False) -> None:
        self.name, self.path, self.loop = str(path), path, loop
        self._cap = cv2.VideoCapture(str(path))
        ok, self._pending = self._cap.read() if self._cap.isOpened() else (False, None)
        if not ok or self._pending is None:
            self._cap.release()
            raise SourceError(f"{path} is neither a video nor an image that OpenCV can read; "
                              "use a common format (mp4, avi, mkv, jpg, png).")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1 <= fps <= 1000 else 30.0
        self._index = 0
        self._offset = 0.0  # time already played in earlier loops

    def read(self) -> tuple[np.ndarray, float] | None:
        frame, self._pending = self._pending, None
        if frame is None:
            ok, frame = self._cap.read()
            if not ok and self.loop and self._index > 0:
                self._offset += self._index / self.fps
                self._index = 0
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = self._cap.read()
            if not ok:
                return None
        t = self._offset + self._index / self.fps
        self._index += 1
        return frame, t

    def close(self) -> None:
        self._cap.release()


class ImageListSource(FrameSource):
    """One image or a folder of images, one per ``1 / fps`` seconds of stream time."""

    def __init__(self, paths: list[Path], name: str, loop: bool = False, fps: float = 1.0) -> None:
        if not paths:
            raise SourceError(f"No images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {name}.")
        self.paths, self.name, self.loop, self.fps = paths, name, loop, fps
        self._index = 0
        self._first = self._load(paths[0])  # fail now, not mid-run, when the first is bad

    @staticmethod
    def _load(path: Path) -> np.ndarray:
        frame = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if frame is None:
            raise SourceError(f"{path} is not an image that OpenCV can read; use jpg, png or bmp.")
        if frame.dtype != np.uint8:  # 16-bit PNGs and the like
            frame = cv2.convertScaleAbs(frame, alpha=255.0 / max(float(frame.max()), 1.0))
        return frame

    def read(self) -> tuple[np.ndarray, float] | None:
        n = len(self.paths)
        if self._index >= n and not self.loop:
            return None
        i = self._index % n
        frame = self._first if i == 0 else self._load(self.paths[i])
        t = self._index / self.fps
        self._index += 1
        return frame, t


class CameraSource(FrameSource):
    """A camera read on a background thread that always hands over the newest frame.

    If the camera stops delivering, the thread reopens it every ``retry_interval`` seconds;
    after ``reconnect_timeout`` seconds without a frame ``read()`` raises SourceError.
    """

    live = True

    def __init__(
        self,
        index: int = 0,
        open_timeout: float = 5.0,
        reconnect_timeout: float = 10.0,
        retry_interval: float = 1.0,
        capture_factory: Callable[[], cv2.VideoCapture] | None = None,
    ) -> None:
        self.name = f"camera {index}"
        self.index = index
        self.reconnect_timeout = reconnect_timeout
        self.retry_interval = retry_interval
        self._open = capture_factory or (lambda: cv2.VideoCapture(index))
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._stamp = 0.0
        self._seq = 0
        self._taken = 0
        self._error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{index}", daemon=True)
        self._thread.start()
        with self._cond:
            self._cond.wait_for(lambda: self._seq > 0 or self._error is not None, timeout=open_timeout)
            if self._seq == 0:
                reason = self._error or f"no picture within {open_timeout:.0f} s"
                self.close()
                raise SourceError(
                    f"Cannot open camera {index} ({reason}). Check that it is connected and not used by "
                    "another app, pick another with --camera N, or use --source FILE."
                )

    def _run(self) -> None:
        cap = None
        last_frame_time = time.monotonic()
        while not self._stop.is_set():
            if cap is None:
                cap = self._open()
                if not cap.isOpened():
                    cap.release()
                    cap = None
                    if self._lost_for(last_frame_time):
                        return
                    self._stop.wait(self.retry_interval)
                    continue
            ok, frame = cap.read()
            if ok and frame is not None and frame.size:
                last_frame_time = time.monotonic()
                with self._cond:
                    self._frame, self._stamp = frame, last_frame_time
                    self._seq += 1
                    self._cond.notify_all()
                continue
            cap.release()  # lost: reopen on the next turn
            cap = None
            if self._lost_for(last_frame_time):
                return
            self._stop.wait(self.retry_interval)
        if cap is not None:
            cap.release()

    def _lost_for(self, last_frame_time: float) -> bool:
        if time.monotonic() - last_frame_time < self.reconnect_timeout:
            return False
        with self._cond:
            what = "stopped sending frames" if self._seq else "gives no picture"
            self._error = f"camera {self.index} {what} for {self.reconnect_timeout:.0f} s"
            self._cond.notify_all()
        return True

    def read(self) -> tuple[np.ndarray, float] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._seq > self._taken or self._error is not None or self._stop.is_set(),
                                timeout=self.reconnect_timeout + 2 * self.retry_interval)
            if self._stop.is_set():
                return None
            if self._seq > self._taken:
                self._taken = self._seq
                return self._frame, self._stamp
            raise SourceError(
                f"{self._error or f'camera {self.index} stopped sending frames'}. Reconnect it and restart, "
                "or pick another with --camera N."
            )

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


def open_source(source: str | int | Path, loop: bool = False) -> FrameSource:
    """A camera index (0, "1"), a video file, an image file or a folder of images."""
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return CameraSource(int(source))
    path = Path(source)
    if not path.exists():
        raise SourceError(f"Source not found: {path}. Pass a video, an image, a folder of images or a camera index.")
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        return ImageListSource(images, str(path), loop=loop)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageListSource([path], str(path), loop=loop)
    return VideoFileSource(path, loop=loop)
