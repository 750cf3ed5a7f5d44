"""main.py --headless / --benchmark end to end, and its answers to bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, YUNET_TEST_MODEL, needs


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy())


def test_headless_prints_a_line_per_frame_and_a_summary(face_video):
    result = run("--source", str(face_video), "--headless", "--detector", "haar")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    frames, summary = lines[:-1], lines[-1]
    assert len(frames) == 30 and [f["frame"] for f in frames] == list(range(30))
    assert frames[5]["t"] == pytest.approx(5 / 15, abs=1e-3)
    face = frames[-1]["faces"][0]
    assert {"box", "label", "confidence", "probabilities", "track", "smoothed"} <= set(face)
    assert len({f["faces"][0]["track"] for f in frames if f["faces"]}) == 1  # one face, one track
    assert frames[-1]["mood"]["label"] == "happy"
    assert summary["summary"] is True and summary["frames"] == 30 and summary["frames_with_faces"] >= 28
    assert summary["detector"] == "Haar cascade" and summary["device"] == "cpu"
    assert summary["precision"] == "int8" and summary["backend"] == "onnxruntime"  # the CPU default
    for stage in ("detect", "classify", "total"):
        assert summary["latency_ms"][stage]["p95"] >= summary["latency_ms"][stage]["p50"] > 0


def run_after(prelude: str, *args: str) -> subprocess.CompletedProcess:
    """``run``, with ``prelude`` first in the app's own interpreter: what a test cannot set from outside."""
    script = f"{prelude}\nimport sys, main\nsys.exit(main.main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=180, env=os.environ.copy())


NO_NETWORK = ("import socket\n"
              "def refuse(*args, **kwargs):\n    raise OSError('this test has no network')\n"
              "socket.socket.connect = socket.getaddrinfo = refuse")


def test_yunet_from_the_first_run_offline(face_video):
    """An empty config folder (see conftest) and no network: YuNet from the shipped model, no warning."""
    result = run_after(NO_NETWORK, "--source", str(face_video), "--benchmark")
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("warning:")] == []
    (summary,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert summary["detector"] == "YuNet" and summary["frames_with_faces"] == 30


def test_auto_detector_fallback_is_announced(face_video, tmp_path):
    # The shipped model gone, as from a broken install. (Importing cv2 before main.main sets
    # OpenCV's thread settings only costs speed, which this test does not measure.)
    gone = ("import emotion.detection, pathlib\n"
            f"emotion.detection.YUNET_MODEL = pathlib.Path({str(tmp_path / 'gone.onnx')!r})")
    result = run_after(gone, "--source", str(face_video), "--benchmark", "--max-frames", "3")
    assert result.returncode == 0, result.stderr
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert "YuNet unavailable" in warning and "Haar" in warning and "Reinstall moodtunes" in warning
    (summary,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert summary["frames"] == 3 and summary["detector"] == "Haar cascade"


@needs(YUNET_TEST_MODEL)
def test_benchmark_with_yunet(face_video):
    result = run("--source", str(face_video), "--benchmark", "--face-model", str(YUNET_TEST_MODEL))
    assert result.returncode == 0, result.stderr
    (summary,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert summary["detector"] == "YuNet" and summary["frames_with_faces"] == 30
    assert summary["classify_ms_per_face"] > 0 and summary["fps"] > 0


@pytest.mark.parametrize("make_args,message", [
    (lambda tmp: ["--source", str(tmp / "missing.mp4")], "Source not found"),
    (lambda tmp: ["--source", str(write(tmp / "notes.txt", b"hi"))], "neither a video nor an image"),
    (lambda tmp: ["--source", str(write(tmp / "x.png", b"junk"))], "not an image"),
    (lambda tmp: ["--checkpoint", str(write(tmp / "bad.pt", b"junk")), "--source", "x"], "not a readable"),
    (lambda tmp: ["--checkpoint", str(tmp / "none.pt"), "--source", "x"], "Checkpoint not found"),
    (lambda tmp: ["--detector", "yunet", "--face-model", str(tmp / "none.onnx"), "--source", "x"],
     "YuNet face detector unavailable"),
    # No machine has GPU 99: without CUDA the message says so, with it that there is no such GPU.
    (lambda tmp: ["--device", "cuda:99", "--source", "x"], "no CUDA GPU|no such GPU"),
])
def test_bad_input_gives_one_line_and_no_traceback(tmp_path, make_args, message):
    result = run(*make_args(tmp_path), "--headless")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and re.search(message, error_lines[0])


def write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("args,message,help_command", [
    (["--max-frames=-1"], "--max-frames: must be 0", "moodtunes --help"),
    (["--no-such-option"], "unrecognized arguments", "moodtunes --help"),
    (["playlist", "--mood", "bored"], "--mood: invalid choice", "moodtunes playlist --help"),
])
def test_a_bad_argument_gets_one_line_without_the_usage_block(args, message, help_command):
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert result.stderr.strip().endswith(f"(see {help_command})")


def test_help_names_the_keys_and_the_playlist_setup():
    main_help = run("--help")
    assert main_help.returncode == 0
    for key in ("Ctrl+O", "  C  ", "  P  ", "Space"):
        assert key in main_help.stdout, key
    playlist_help = run("playlist", "--help")
    assert playlist_help.returncode == 0
    assert "SPOTIPY_CLIENT_ID" in playlist_help.stdout and '"Spotify setup"' in playlist_help.stdout
    assert "Make a Spotify playlist" in playlist_help.stdout  # a description, not only the usage


@pytest.mark.parametrize("threads", ["abc", "0", "-2", "1.5"])
def test_a_bad_thread_count_is_one_clear_line(threads):
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--help"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "MOODTUNES_THREADS": threads})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line, no traceback
    assert "MOODTUNES_THREADS must be a whole number" in result.stderr and repr(threads) in result.stderr


def test_serve_without_fastapi_names_what_is_missing_and_the_one_install_line():
    blocked = "import sys; sys.modules['fastapi'] = sys.modules['uvicorn'] = None; import main; "
    result = subprocess.run([sys.executable, "-c", blocked + "sys.exit(main.main(['serve', '--no-source']))"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        'error: moodtunes serve needs FastAPI and uvicorn (fastapi, fastapi_offline, uvicorn are missing): '
        'pip install "moodtunes[serve]".']
