"""Shared fixtures: an isolated config dir, no internet, offscreen Qt, the fake Spotify."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SHARED = Path(os.environ.get("MOODTUNES_SHARED", ROOT.parent / "shared"))
FER2013_CSV = SHARED / "datasets" / "fer2013.csv.xz"
FER2013_ZIP = SHARED / "datasets" / "fer2013.zip"
FERPLUS_ZIP = SHARED / "datasets" / "ferplus.zip"
YUNET_TEST_MODEL = SHARED / "models" / "face_detection_yunet_2026may.onnx"
SHIPPED_CHECKPOINT = ROOT / "checkpoints" / "emotion_ferplus.pt"

from clips import astronaut, write_face_clip  # noqa: E402  (after the sys.path set-up)


def needs(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not available (shared data)")


def app_settings(source: object = None, camera: int | None = None, loop: bool = False,
                 resolution: tuple[int, int] | None = None, calibration: str | None = None,
                 no_calibration: bool = False, timeline_span_s: float | None = None, **engine: object):
    """The window's settings, named as the command line's options are (source=, camera=, detector=, ...)."""
    from emotion.settings import AppSettings, EngineSettings, SourceSettings

    extra = {} if timeline_span_s is None else {"timeline_span_s": timeline_span_s}
    return AppSettings(source=SourceSettings(path=None if source is None else str(source), camera=camera, loop=loop,
                                             resolution=resolution),
                       engine=EngineSettings(calibration_file=Path(calibration) if calibration else None,
                                             use_calibration=not no_calibration, **engine), **extra)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory, monkeypatch):
    """No test touches the user's config, or the internet."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("MOODTUNES_CONFIG_DIR", str(home / "config"))
    for var in ("SPOTIPY_CLIENT_ID", "SPOTIPY_REDIRECT_URI", "SPOTIFY_API_BASE_URL", "SPOTIFY_ACCOUNTS_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    yield home


@pytest.fixture
def fake_spotify(monkeypatch):
    from fake_spotify import FakeSpotify

    fake = FakeSpotify().start()
    monkeypatch.setenv("SPOTIPY_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("SPOTIPY_REDIRECT_URI", f"http://127.0.0.1:{free_port()}/callback")
    monkeypatch.setenv("SPOTIFY_API_BASE_URL", f"{fake.base_url}/v1")
    monkeypatch.setenv("SPOTIFY_ACCOUNTS_BASE_URL", fake.base_url)
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised (untrained) model in the real checkpoint format."""
    import torch

    from emotion.checkpoint import save_checkpoint
    from emotion.model import CustomDeepEmotionNet, EmotionNetConfig
    from emotion.preprocess import FER_MEAN, FER_STD

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    model = CustomDeepEmotionNet(EmotionNetConfig(widths=(8, 8, 16, 16, 16), depths=(1, 1, 1, 1, 1)))
    save_checkpoint(path, model, mean=FER_MEAN, std=FER_STD, metadata={"dataset": "none", "note": "untrained"})
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint, tmp_path_factory) -> Path:
    """The tiny checkpoint exported to ONNX: what the app runs on the CPU, through OpenCV."""
    from training.export import export_onnx

    return export_onnx(tiny_checkpoint, tmp_path_factory.mktemp("onnx") / "tiny.onnx")


@pytest.fixture(scope="session")
def astronaut_bgr():
    return astronaut()


@pytest.fixture(scope="session")
def face_video(tmp_path_factory) -> Path:
    """A 2 s, 15 fps MJPG video of the astronaut's face drifting left and right."""
    return write_face_clip(tmp_path_factory.mktemp("video") / "face.avi", frames=30, fps=15)


@pytest.fixture
def x_display(tmp_path):
    """A real X server (Xvfb) for a real window: the environment a program needs to use it.

    Skips where Xvfb or xdotool (which types into the window as a person does) is missing.
    """
    if not sys.platform.startswith("linux") or not (shutil.which("Xvfb") and shutil.which("xdotool")):
        pytest.skip("needs Xvfb and xdotool (apt-get install xvfb xdotool)")
    number = next((n for n in range(90, 140) if not os.path.exists(f"/tmp/.X11-unix/X{n}")
                   and not os.path.exists(f"/tmp/.X{n}-lock")), None)
    if number is None:
        pytest.skip("no free X display number")
    xvfb = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not os.path.exists(f"/tmp/.X11-unix/X{number}") and time.monotonic() < deadline:
        time.sleep(0.05)
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    env.update(DISPLAY=f":{number}", XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    try:
        yield env
    finally:
        xvfb.terminate()
        xvfb.wait(5)
