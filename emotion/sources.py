"""Where frames come from: a camera, a video file, an image or a folder of images.

Files are read frame by frame with timestamps from the file's own clock, so a run is
repeatable. A camera is read by a background thread that keeps only the newest frame: a
slow consumer gets the latest picture instead of an ever-growing backlog.

Ownership: a source is read and closed by one thread, its consumer's. Any other thread may
only call :meth:`FrameSource.interrupt`, which wakes a waiting ``read()`` (it then returns
None) and never touches the capture. A ``cv2.VideoCapture`` released by one thread while
another is inside its ``read()`` aborts the process (FFmpeg's frame-thread assertions).
"""

from __future__ import annotations

import io
import math
import queue
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import cv2
import numpy as np

from emotion.errors import MoodtunesError

if TYPE_CHECKING:
    from PIL import Image

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}
# Larger photos are decoded at a reduced size (JPEG) or refused (other formats): a 200 MP
# picture would otherwise take 600 MB as BGR, and OpenCV's own limit is 1 Gpx (3 GB).
MAX_IMAGE_PIXELS = 50_000_000
# OpenCV turns reduced JPEGs upright by their EXIF orientation but not full-size reads (IMREAD_UNCHANGED):
# moodtunes turns every image itself (see _upright), so none is turned twice.
JPEG_REDUCED_FLAGS = {2: cv2.IMREAD_REDUCED_COLOR_2 | cv2.IMREAD_IGNORE_ORIENTATION,
                      4: cv2.IMREAD_REDUCED_COLOR_4 | cv2.IMREAD_IGNORE_ORIENTATION,
                      8: cv2.IMREAD_REDUCED_COLOR_8 | cv2.IMREAD_IGNORE_ORIENTATION}
# A file whose header promises more frames than it delivers, by more than this share, is reported.
TRUNCATION_TOLERANCE = 0.02

Warn = Callable[[str], None]


class SourceError(MoodtunesError):
    """A frame source cannot be opened or was lost."""


class ImageTooLarge(SourceError):
    """An image with more pixels than moodtunes decodes (see MAX_IMAGE_PIXELS)."""


class Frame(NamedTuple):
    image: np.ndarray  # BGR, BGRA or gray uint8; read-only, nobody changes it after it is handed over
    timestamp: float  # seconds on the source's own clock
    independent: bool = False  # a separate photo: no history with the frame before it
    name: str = ""  # the photo's file name (photos only)
    reduction: float = 1.0  # original pixels per pixel of ``image`` (> 1: a huge photo read at reduced size)


class Picture(NamedTuple):
    """A decoded image and how much it was shrunk while decoding."""

    image: np.ndarray  # read-only uint8
    reduction: float = 1.0  # original pixels per decoded pixel: > 1 when a huge JPEG was decoded reduced


def _frozen(image: np.ndarray) -> np.ndarray:
    image.flags.writeable = False
    return image


class FrameSource:
    """Iterate :class:`Frame`; ``read()`` returns None at the end or after ``interrupt()``."""

    name: str = ""
    kind: str = "video"  # "camera", "video" or "photos"
    # A viewer should show each frame at its timestamp (files, photos); a camera paces itself.
    paced: bool = True
    fps: float = 30.0
    skipped: int = 0  # unreadable files passed over (folders of photos)

    def read(self) -> Frame | None:
        raise NotImplementedError

    def interrupt(self) -> None:
        """Make ``read()`` return None from now on. Safe from any thread."""

    def close(self) -> None:
        """Release the device or file. Only the thread that reads may call this."""

    def __iter__(self):
        while (item := self.read()) is not None:
            yield item

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoFileSource(FrameSource):
    """A video file, decoded on a thread of its own a few frames ahead of its reader.

    The decoding thread opens, reads and releases the capture (nothing else touches it) and
    hands frames over in order through a small queue: decoding the next frame overlaps with
    analysing this one (1.5 ms for a 640x480 MJPG frame on a 2-core CPU), and none is dropped.
    ``paced=False`` asks viewers to show it as fast as it can be analysed.
    """

    kind = "video"

    def __init__(self, path: Path, loop: bool = False, warn: Warn | None = None, paced: bool = True,
                 ahead: int = 2) -> None:
        self.name, self.path, self.loop, self.paced = str(path), Path(path), loop, paced
        self._warn = warn or (lambda message: None)
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._ended = False
        self.fps, self.frame_count = 30.0, 0
        opened, failed = threading.Event(), []
        self._thread = threading.Thread(target=self._decode, args=(opened, failed), name=f"decode {self.path.name}",
                                        daemon=True)
        self._thread.start()
        opened.wait()
        if failed:
            self._thread.join()
            raise SourceError(f"{path} is neither a video nor an image that OpenCV can read; "
                              "use a common format (mp4, avi, mkv, jpg, png).")

    def _decode(self, opened: threading.Event, failed: list) -> None:
        cap = cv2.VideoCapture(str(self.path))
        try:
            ok, frame = cap.read() if cap.isOpened() else (False, None)
            if not ok or frame is None:
                failed.append(True)
                return
            fps = cap.get(cv2.CAP_PROP_FPS)
            self.fps = fps if 1 <= fps <= 1000 else 30.0
            self.frame_count = int(max(cap.get(cv2.CAP_PROP_FRAME_COUNT), 0))
            opened.set()
            index, offset, reported = 0, 0.0, False
            while not self._stop.is_set():
                if frame is None:
                    ok, frame = cap.read()
                    if not ok:
                        if not reported and self._truncated(index):
                            reported = True
                        if not (self.loop and index > 0):
                            break
                        offset += index / self.fps  # time already played in earlier loops
                        index = 0
                        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                        ok, frame = cap.read()
                        if not ok:
                            break
                if not self._put(Frame(_frozen(frame), offset + index / self.fps)):
                    return
                index, frame = index + 1, None
            self._put(None)  # the end
        finally:
            opened.set()
            cap.release()

    def _truncated(self, frames_read: int) -> bool:
        missing = self.frame_count - frames_read
        if missing <= max(1, TRUNCATION_TOLERANCE * self.frame_count):
            return False
        self._warn(f"{self.path} ended after {frames_read} of the {self.frame_count} frames its header "
                   "announces: the file looks truncated (an interrupted download or recording?).")
        return True

    def _put(self, item: Frame | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read(self) -> Frame | None:
        while not self._ended and not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self._ended = True
                continue
            if item is None:
                self._ended = True
            return item
        return None

    def interrupt(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.interrupt()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)


def read_image(path: str | Path, warn: Warn | None = None) -> np.ndarray:
    """An image file as uint8 (gray, BGR or BGRA), upright as its EXIF orientation says (a phone's photo),
    at most MAX_IMAGE_PIXELS; SourceError if unreadable.

    A JPEG larger than that is read at 1/2, 1/4 or 1/8 of its size (``warn`` hears of it):
    :func:`load_image` also says by how much, to map boxes back onto the original.
    """
    return load_image(path, warn).image


def load_image(path: str | Path, warn: Warn | None = None) -> Picture:
    """An image file and how much it was reduced while decoding (see :func:`read_image`)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(3)
    except OSError as exc:
        raise SourceError(f"Cannot read {path}: {exc.strerror}.") from exc
    return _decode(str(path), head, path, lambda flags: cv2.imread(str(path), flags), warn)


def decode_image(data: bytes, name: str = "the image", warn: Warn | None = None) -> Picture:
    """Image bytes (an upload) and how much they were reduced while decoding; size rules as :func:`read_image`."""
    buffer = np.frombuffer(data, np.uint8)
    return _decode(name, data[:3], io.BytesIO(data), lambda flags: cv2.imdecode(buffer, flags), warn)


def _decode(name: str, head: bytes, header_source: Path | io.BytesIO, decode: Callable[[int], np.ndarray | None],
            warn: Warn | None) -> Picture:
    """The size is read from the header first (Pillow reads only the header), so a huge image is
    never decoded at full size: JPEGs are decoded at 1/2, 1/4 or 1/8 scale (libjpeg does that
    without the full-size buffer), other formats are refused. The pixels are then turned upright as the
    EXIF orientation says: phones store a photo as the sensor saw it and record how to hold it."""
    pixels, width, orientation = _header(header_source)
    reduction = 1.0
    if pixels is not None and pixels > MAX_IMAGE_PIXELS:
        factor = next((f for f in JPEG_REDUCED_FLAGS if pixels / (f * f) <= MAX_IMAGE_PIXELS), None)
        if head != b"\xff\xd8\xff" or factor is None:
            size = f"{pixels / 1e6:.0f} megapixels" if math.isfinite(pixels) else "hundreds of megapixels"
            raise ImageTooLarge(f"{name} has {size}, more than the {MAX_IMAGE_PIXELS // 10**6} that moodtunes reads; "
                              "shrink it first (or save it as JPEG).")
        frame = decode(JPEG_REDUCED_FLAGS[factor])
        if frame is not None:
            reduction = width / frame.shape[1] if width else float(factor)  # both as stored, before turning
            if warn is not None:
                warn(f"{name} has {pixels / 1e6:.0f} megapixels; read at 1/{factor} of its size.")
    else:
        frame = decode(cv2.IMREAD_UNCHANGED)
    if frame is None:
        if pixels is None:  # not even Pillow knows the header: not a picture, whatever its name says
            raise SourceError(f"{name} is not an image that moodtunes can read: its contents are no picture (or a "
                              "damaged one), whatever its name says. Check the file, or save the picture again as "
                              "JPEG or PNG.")
        raise SourceError(f"{name} cannot be decoded: the picture is damaged or in a format moodtunes does not read. "
                          "Save it again as JPEG or PNG.")
    if frame.dtype != np.uint8:  # 16-bit PNGs and the like
        frame = cv2.convertScaleAbs(frame, alpha=255.0 / max(float(frame.max()), 1.0))
    if frame.ndim == 3 and frame.shape[2] not in (3, 4):
        frame = frame[:, :, 0]
    return Picture(_frozen(_upright(frame, orientation)), reduction)


def _upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels turned as EXIF ``orientation`` (1-8, as Pillow's ImageOps.exif_transpose reads it) says.

    On the decoded array rather than through Pillow's own exif_transpose: OpenCV decodes (and, for a
    huge JPEG, decodes reduced) and Pillow only reads the header.
    """
    if orientation == 2:
        return cv2.flip(image, 1)  # mirrored left to right
    if orientation == 3:
        return cv2.rotate(image, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(image, 0)  # mirrored top to bottom
    if orientation == 5:
        return cv2.transpose(image)  # mirrored across the main diagonal
    if orientation == 6:
        return cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(image), cv2.ROTATE_180)  # mirrored across the other diagonal
    if orientation == 8:
        return cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return image


def _header(source: Path | io.BytesIO) -> tuple[float | None, int | None, int]:
    """(pixels, width, EXIF orientation) from the image's header: (None, None, 1) when Pillow cannot tell;
    a width of None (and pixels perhaps inf) when the image is more than Pillow opens. The width is the
    stored one, before the orientation turns it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Of the header, Pillow warns of a decompression bomb (checked here) and of each damaged
            # EXIF tag (a damaged orientation reads as none): neither is for the user.
            warnings.simplefilter("ignore")
            with Image.open(source) as image:  # lazy: reads the header, not the pixels
                width, height = image.size
                orientation = _orientation(image)
    except Image.DecompressionBombError as exc:  # Pillow refuses to open over ~179 MP, and says how many
        found = re.search(r"\((\d+) pixels\)", str(exc))
        return (float(found.group(1)) if found else math.inf), None, 1
    except (OSError, UnidentifiedImageError, ValueError):
        return None, None, 1
    return float(width * height), width, orientation


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8) in a Pillow image's header; 1 (as stored) when there is none or it is damaged."""
    from PIL import ExifTags, Image

    try:
        # Image's own getexif, not PngImageFile's: that one decodes every pixel to look for EXIF
        # after the image data too; the header's (where writers put it) is what counts.
        value = Image.Image.getexif(image).get(ExifTags.Base.Orientation, 1)
    except (OSError, ValueError, SyntaxError):  # what Pillow raises for a damaged block
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


class ImageListSource(FrameSource):
    """One image or a folder of images, one per ``1 / fps`` seconds of stream time.

    Each photo stands alone (``Frame.independent``). In a folder, an unreadable file is
    skipped with a warning and counted in ``skipped``; a single unreadable file is an error.
    """

    kind = "photos"

    def __init__(self, paths: list[Path], name: str, loop: bool = False, fps: float = 1.0,
                 warn: Warn | None = None) -> None:
        if not paths:
            raise SourceError(f"No images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {name}.")
        self.paths, self.name, self.loop, self.fps = paths, name, loop, fps
        self._warn = warn or (lambda message: None)
        self._interrupted = threading.Event()
        self._index = 0
        self.skipped = 0
        self._bad: set[int] = set()
        if len(paths) == 1:
            self._first: Picture | None = load_image(paths[0], self._warn)  # fail now, with its reason
        else:
            self._first = None

    def _load(self, i: int) -> Picture | None:
        if i in self._bad:
            return None
        try:
            return load_image(self.paths[i], self._warn)
        except SourceError as exc:
            self._bad.add(i)
            self.skipped += 1
            self._warn(f"skipped a file: {exc}")
            return None

    def read(self) -> Frame | None:
        n = len(self.paths)
        while not self._interrupted.is_set():
            if self._index >= n and (not self.loop or len(self._bad) == n):
                if len(self._bad) == n and n > 1:
                    raise SourceError(f"None of the {n} images in {self.name} could be read.")
                return None
            i = self._index % n
            t = self._index / self.fps
            self._index += 1
            picture = self._first if (i == 0 and self._first is not None) else self._load(i)
            if picture is not None:
                return Frame(picture.image, t, independent=True, name=self.paths[i].name, reduction=picture.reduction)
        return None

    def interrupt(self) -> None:
        self._interrupted.set()


class CameraSource(FrameSource):
    """A camera read on a background thread that always hands over the newest frame.

    The background thread opens, reads and releases the capture; nothing else touches it.
    If the camera stops delivering, the thread reopens it every ``retry_interval`` seconds;
    after ``reconnect_timeout`` seconds without a frame ``read()`` raises SourceError. A
    driver whose ``read()`` never returns cannot hold up ``close()`` for more than
    ``close_timeout``: the thread then releases the capture whenever the driver lets go.
    """

    kind = "camera"
    paced = False

    def __init__(
        self,
        index: int = 0,
        open_timeout: float = 5.0,
        reconnect_timeout: float = 10.0,
        retry_interval: float = 1.0,
        close_timeout: float = 0.5,
        capture_factory: Callable[[], cv2.VideoCapture] | None = None,
        resolution: tuple[int, int] | None = None,
        warn: Warn | None = None,
    ) -> None:
        """``resolution``: the (width, height) to ask the camera for (None: its own default). A camera
        that gives another keeps it (``size`` says which), and ``warn`` hears of it in one line."""
        if index < 0:  # checked here, in Python: cv2.VideoCapture(-1) crashes the process
            raise SourceError(f"There is no camera {index}: cameras are numbered 0, 1, 2, ...")
        missing = None if capture_factory is not None else missing_camera_device(index)
        if missing:  # said now: waiting open_timeout for a device that does not exist tells nobody anything
            raise SourceError(f"Cannot open camera {index} ({missing}). Connect one, pick another with --camera N, "
                              "or use --source FILE.")
        self.name = f"camera {index}"
        self.index = index
        self.resolution = resolution
        self.size: tuple[int, int] | None = None  # (width, height) of the frames it gives
        self.reconnect_timeout = reconnect_timeout
        self.retry_interval = retry_interval
        self.close_timeout = close_timeout
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
            self.size = (self._frame.shape[1], self._frame.shape[0])
        if resolution is not None and self.size != tuple(resolution) and warn is not None:
            warn(f"camera {index} gives {self.size[0]}x{self.size[1]}, not the {resolution[0]}x{resolution[1]} asked "
                 "for; using that")

    def _run(self) -> None:
        cap = None
        last_frame_time = time.monotonic()
        try:
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
                    if self.resolution is not None:  # a request: the driver picks its nearest mode
                        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.resolution[0])
                        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.resolution[1])
                ok, frame = cap.read()
                if ok and frame is not None and frame.size:
                    last_frame_time = time.monotonic()
                    with self._cond:
                        self._frame, self._stamp = _frozen(frame), last_frame_time
                        self._seq += 1
                        self._cond.notify_all()
                    continue
                cap.release()  # lost: reopen on the next turn
                cap = None
                if self._lost_for(last_frame_time):
                    return
                self._stop.wait(self.retry_interval)
        finally:
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

    def read(self) -> Frame | None:
        with self._cond:
            self._cond.wait_for(lambda: self._seq > self._taken or self._error is not None or self._stop.is_set(),
                                timeout=self.reconnect_timeout + 2 * self.retry_interval)
            if self._stop.is_set():
                return None
            if self._seq > self._taken:
                self._taken = self._seq
                return Frame(self._frame, self._stamp)
            raise SourceError(
                f"{self._error or f'camera {self.index} stopped sending frames'}. Reconnect it and restart, "
                "or pick another with --camera N."
            )

    def interrupt(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        self.interrupt()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.close_timeout)


def missing_camera_device(index: int) -> str | None:
    """Why camera ``index`` cannot exist, when the system says so at once; None when it may exist.

    On Linux OpenCV opens camera N as /dev/videoN (V4L2): without that file there is no camera to
    wait for. Elsewhere cameras have no such file, and opening one is the only way to know.
    """
    device = Path(f"/dev/video{index}")
    if sys.platform.startswith("linux") and not device.exists():
        return f"there is no {device}"
    return None


def is_camera(source: str | int | Path) -> bool:
    """A camera index (0, "1"; negative ones too, which CameraSource refuses) rather than a path."""
    return isinstance(source, int) or (isinstance(source, str) and re.fullmatch(r"-?\d+", source) is not None)


def existing_file(source: str | Path) -> Path:
    """``source`` as a path that exists (a file or a folder), or a one-line SourceError."""
    path = Path(source)
    if not path.exists():
        raise SourceError(f"Source not found: {path}. Pass a video, an image, a folder of images or a camera index.")
    return path


def open_source(source: str | int | Path, loop: bool = False, warn: Warn | None = None,
                resolution: tuple[int, int] | None = None) -> FrameSource:
    """A camera index (0, "1"), a video file, an image file or a folder of images.

    ``warn`` receives one line for each thing worth telling that does not stop the run (a
    skipped photo, a truncated video, a huge photo read at reduced size, a camera that does not
    give the ``resolution`` asked for). Files keep their own size: ``resolution`` is for cameras.
    """
    if is_camera(source):
        return CameraSource(int(source), resolution=resolution, warn=warn)
    path = existing_file(source)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        return ImageListSource(images, str(path), loop=loop, warn=warn)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return ImageListSource([path], str(path), loop=loop, warn=warn)
    return VideoFileSource(path, loop=loop, warn=warn)
