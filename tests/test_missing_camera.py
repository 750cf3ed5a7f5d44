"""A camera that does not exist is said at once, in every mode; one that exists keeps its time to start.

On Linux a camera N is the file /dev/videoN: this machine (and CI) has none.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, free_port

from emotion.sources import CameraSource, SourceError, open_source

MAIN = [sys.executable, str(ROOT / "main.py")]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or Path("/dev/video0").exists(),
                                reason="needs Linux without a camera 0")
NO_CAMERA = ("Cannot open camera 0 (there is no /dev/video0). Connect one, pick another with --camera N, "
             "or use --source FILE.")


def test_the_library_says_so_at_once():
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        open_source(0)
    assert time.monotonic() - started < 0.5  # the camera's own wait is 5 s
    assert str(caught.value) == NO_CAMERA


@pytest.mark.parametrize("mode", [["--headless"], ["--benchmark"], ["calibrate"]])
def test_the_command_line_says_so_in_one_line_at_once(mode):
    started = time.monotonic()
    result = subprocess.run([*MAIN, *mode], capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {NO_CAMERA}"]
    # Python, ONNX Runtime and the model start in ~0.5 s here; the camera's wait alone was 5 s.
    assert elapsed < 3, elapsed


def test_serve_says_so_right_after_it_starts():
    server = subprocess.Popen([*MAIN, "serve", "--port", str(free_port())], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        listening = server.stdout.readline()
        started = time.monotonic()
        stopped = server.stdout.readline()
        elapsed = time.monotonic() - started
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
    assert "moodtunes API on" in listening, listening
    assert stopped == f"warning: the live source stopped: {NO_CAMERA}\n"
    assert elapsed < 1, elapsed


def test_where_no_device_file_tells_the_camera_keeps_its_time_to_start(monkeypatch):
    """Elsewhere (macOS, Windows) only opening the camera tells: it is given open_timeout, as before."""
    monkeypatch.setattr(sys, "platform", "darwin")
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"Cannot open camera 0 \(no picture within 1 s\)"):
        CameraSource(0, open_timeout=1.0, retry_interval=0.1)
    assert time.monotonic() - started >= 1.0
