"""The headless contract: interrupted runs still summarise, pipes close quietly, bad files and
values get one line, memory stays bounded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zlib

import cv2
import pytest
import torch
from clips import face_scene
from conftest import ROOT

from emotion.checkpoint import load_checkpoint, save_checkpoint
from emotion.errors import CheckpointError
from emotion.model import CustomDeepEmotionNet, EmotionNetConfig
from emotion.preprocess import FER_MEAN, FER_STD
from emotion.recognizer import EmotionRecognizer

MAIN = [sys.executable, str(ROOT / "main.py")]


def start(*args: str) -> subprocess.Popen:
    # SIGINT as a terminal delivers it: a test runner started in the background may ignore it,
    # and a child would inherit that.
    return subprocess.Popen([*MAIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def run(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*MAIN, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_runs_still_print_the_summary(face_video, sig, code):
    app = start("--source", str(face_video), "--loop", "--headless", "--detector", "haar")
    for _ in range(5):  # it is analysing frames
        assert json.loads(app.stdout.readline())["frame"] >= 0
    app.send_signal(sig)
    out, err = app.communicate(timeout=30)
    assert app.returncode == code, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["summary"] is True and summary["stopped_by"] == sig.name and summary["frames"] >= 5
    assert "Traceback" not in err


def test_a_closed_stdout_ends_quietly(face_video):
    app = start("--source", str(face_video), "--loop", "--headless", "--detector", "haar")
    first = app.stdout.readline()  # what `| head -1` reads before it exits
    app.stdout.close()
    app.wait(timeout=60)
    err = app.stderr.read()
    assert json.loads(first)["frame"] == 0
    assert app.returncode == 1 and err == "", err


def test_an_unreadable_photo_in_a_folder_is_skipped_with_one_warning(tmp_path, astronaut_bgr):
    cv2.imwrite(str(tmp_path / "a.png"), face_scene(astronaut_bgr))
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg at all")
    cv2.imwrite(str(tmp_path / "c.png"), face_scene(astronaut_bgr, dx=200))
    result = run("--source", str(tmp_path), "--headless", "--detector", "haar")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "b.jpg" in warnings[0] and "Traceback" not in result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("photo") for line in lines[:-1]] == ["a.png", "c.png"]
    assert lines[-1]["frames"] == 2 and lines[-1]["skipped_files"] == 1


@pytest.mark.parametrize("args,message", [
    (["--max-frames", "-1"], "--max-frames"),
    (["--max-frames", "many"], "--max-frames"),
    (["--device", "xpu"], "Unknown device 'xpu'"),
    (["--device", "cuda:x"], "Unknown device"),
    pytest.param(["--device", "cuda:0"], "no CUDA GPU",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="cuda:0 is usable on this machine")),
    (["--device", "mps"], "MPS is not available"),
    (["--backend", "tensorflow"], "--backend"),
    (["--backend", "onnxruntime", "--checkpoint", "checkpoints/emotion_ferplus.pt"], "runs .onnx models"),
])
def test_bad_values_are_refused_in_one_line(face_video, args, message):
    result = run("--source", str(face_video), "--headless", "--detector", "haar", *args)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "error" in lines[0]


def test_a_checkpoint_whose_output_layer_disagrees_with_its_classes_is_refused(tmp_path, face_video):
    path = tmp_path / "eight.pt"
    eight_classes = EmotionNetConfig(num_classes=8, widths=(8,) * 5, depths=(1,) * 5)
    save_checkpoint(path, CustomDeepEmotionNet(eight_classes), mean=FER_MEAN, std=FER_STD, metadata={})
    with pytest.raises(CheckpointError, match="output layer has 8 classes but it names 7"):
        load_checkpoint(path)
    result = run("--source", str(face_video), "--headless", "--checkpoint", str(path), "--detector", "haar")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "output layer" in result.stderr


def write_large_png(path, width: int, height: int) -> None:
    """A valid gray PNG of width x height black pixels, written without holding them in memory."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    compressor, row = zlib.compressobj(1), b"\0" * (width + 1)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def test_a_gigapixel_photo_is_refused_without_decoding_it(tmp_path):
    path = tmp_path / "huge.png"
    write_large_png(path, 20_000, 20_000)  # 400 MP: 400 MB as gray, 1.2 GB as colour
    probe = ("import json, sys; sys.path.insert(0, sys.argv[2]); from emotion.sources import open_source, "
             "SourceError; from emotion.pipeline import peak_rss_mb\n"
             "try:\n    open_source(sys.argv[1])\nexcept SourceError as exc:\n"
             "    print(json.dumps({'error': str(exc), 'peak_rss_mb': peak_rss_mb()}))")
    result = subprocess.run([sys.executable, "-c", probe, str(path), str(ROOT)], capture_output=True, text=True,
                            timeout=120)
    report = json.loads(result.stdout)
    assert "400 megapixels" in report["error"] and "shrink it" in report["error"]
    assert report["peak_rss_mb"] < 250, report


def test_a_big_jpeg_is_read_at_reduced_size_with_a_note(tmp_path, astronaut_bgr):
    path = tmp_path / "big.jpg"
    scene = face_scene(astronaut_bgr)
    big = cv2.resize(scene, (9000, 6750), interpolation=cv2.INTER_LINEAR)  # 61 MP
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 70])
    del big
    result = run("--source", str(path), "--headless", "--detector", "haar")
    assert result.returncode == 0, result.stderr
    assert "61 megapixels; read at 1/2 of its size" in result.stderr
    *frames, summary = [json.loads(line) for line in result.stdout.splitlines()]
    # The box is reported in the photo's own 9000 x 6750 pixels, not in the half-size copy analysed.
    (small_face,) = EmotionRecognizer(device="cpu", detector="haar").analyze(scene)
    expected = [v * 9000 / scene.shape[1] for v in small_face.box]
    assert frames[0]["faces"][0]["box"] == pytest.approx(expected, rel=0.05, abs=40)
    assert summary["peak_rss_mb"] < 300  # decoding it at full size peaks above 400 MB


def test_a_truncated_video_says_so(tmp_path, face_video):
    data = face_video.read_bytes()
    truncated = tmp_path / "cut.avi"
    truncated.write_bytes(data[: len(data) // 2])
    result = run("--source", str(truncated), "--benchmark", "--detector", "haar")
    assert result.returncode == 0
    assert "looks truncated" in result.stderr and "of the 30 frames" in result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["frames"] < 30


def test_a_complete_video_raises_no_truncation_warning(face_video):
    result = run("--source", str(face_video), "--benchmark", "--detector", "haar")
    assert result.returncode == 0 and "truncated" not in result.stderr


def test_ctrl_c_via_timeout_in_a_shell(face_video):
    """As the brief does it: `timeout -s INT N cmd` (a background job in a script ignores SIGINT)."""
    if not os.path.exists("/usr/bin/timeout"):
        pytest.skip("no coreutils timeout")
    started = time.monotonic()
    result = subprocess.run(["timeout", "--preserve-status", "-s", "INT", "6", *MAIN, "--source", str(face_video),
                             "--loop", "--headless", "--detector", "haar"], capture_output=True, text=True, timeout=120)
    assert time.monotonic() - started < 60
    assert result.returncode == 130 and json.loads(result.stdout.splitlines()[-1])["stopped_by"] == "SIGINT"
