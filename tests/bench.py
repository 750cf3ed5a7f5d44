"""Speed and memory figures for the README, each printed as JSON lines by the command that measures it.

    python tests/bench.py load      --clip face.avi [--face-model yunet.onnx]   idle vs one busy process per core
    python tests/bench.py startup   --photo me.jpg  [--face-model yunet.onnx]   one photo from process start
    python tests/bench.py window    --clip face.avi [--face-model yunet.onnx]   window launch to first face
    python tests/bench.py detection [--face-model yunet.onnx]                   detection cost and faces found
    python tests/bench.py fer       --clip face.avi --fer-python VENV/bin/python the fer package on the same clip

Each figure compares runs made in the same invocation (the machine is shared: compare ratios,
not figures from different days). Benchmarks print figures; they assert nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAIN = [sys.executable, str(ROOT / "main.py")]


def _spin() -> None:
    while True:
        pass


def benchmark(clip: str, face_model: str | None, extra: list[str] = ()) -> dict:
    args = [*MAIN, "--source", clip, "--benchmark", *extra]
    if face_model:
        args += ["--face-model", face_model]
    result = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def load(args) -> None:
    """fps with the machine idle, then with one busy-looping process per core, alternating."""
    busy_count = args.busy or os.cpu_count() or 1
    idle, loaded = [], []
    for _ in range(args.runs):
        idle.append(benchmark(args.clip, args.face_model))
        spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(busy_count)]
        for p in spinners:
            p.start()
        try:
            loaded.append(benchmark(args.clip, args.face_model))
        finally:
            for p in spinners:
                p.terminate()
                p.join()
    for name, runs in (("idle", idle), ("loaded", loaded)):
        print(json.dumps({"condition": name, "busy_processes": busy_count if name == "loaded" else 0,
                          "fps": [r["fps"] for r in runs],
                          "total_p95_ms": [r["latency_ms"]["total"]["p95"] for r in runs],
                          "classify_p50_ms": [r["latency_ms"]["classify"]["p50"] for r in runs],
                          "detect_p50_ms": [r["latency_ms"]["detect"]["p50"] for r in runs]}))
    ratio = statistics.median(r["fps"] for r in loaded) / statistics.median(r["fps"] for r in idle)
    print(json.dumps({"loaded_over_idle_fps": round(ratio, 3)}))


def startup(args) -> None:
    """One photo, headless, from process start to exit: wall time and peak memory."""
    command = [*MAIN, "--source", args.photo, "--headless"] + (["--face-model", args.face_model]
                                                                 if args.face_model else [])
    subprocess.run(command, capture_output=True, check=True)  # warm the file cache
    times, rss = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - started)
        rss.append(json.loads(result.stdout.strip().splitlines()[-1])["peak_rss_mb"])
    print(json.dumps({"photo_seconds": [round(t, 3) for t in times], "median_s": round(statistics.median(times), 3),
                      "peak_rss_mb": rss, "torch_imported": "torch" in result.stderr}))


def window(args) -> None:
    """Launch the real window (offscreen unless DISPLAY is set) and time its first frame with a face."""
    env = {**os.environ}
    if not env.get("DISPLAY"):
        env["QT_QPA_PLATFORM"] = "offscreen"
    command = [*MAIN, "--source", args.clip, "--loop", "--first-face-report"] + (
        ["--face-model", args.face_model] if args.face_model else [])
    seconds = []
    for _ in range(args.runs):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=True)
        seconds.append(json.loads(result.stdout.strip().splitlines()[-1])["launch_to_first_face_s"])
    print(json.dumps({"launch_to_first_face_s": seconds, "median_s": statistics.median(seconds)}))


def detection(args) -> None:
    """Per-frame detection cost and faces found: the whole frame at several sizes, and FaceFinder."""
    import cv2
    import numpy as np
    from clips import astronaut, face_scene

    from emotion.detection import FaceFinder, YuNetDetector, create_detector

    cv2.setNumThreads(args.threads)
    portrait = astronaut()
    model = args.face_model
    for label, portrait_side in (("desk (face ~65 px in 640x480)", 360), ("far (face ~33 px)", 200),
                                 ("close (face ~130 px)", 470)):
        frames = [face_scene(portrait, dx=int((640 - portrait_side) / 2 + 60 * np.sin(i / 5)),
                             face_side=portrait_side) for i in range(120)]
        setups = [(f"whole frame at {side} px", (lambda s=side: YuNetDetector(model, max_side=s) if model else
                                                create_detector("yunet")), None) for side in (320, 240, 160)]
        setups.append(("FaceFinder (around the last face; the whole frame every 30 frames)",
                       lambda: YuNetDetector(model) if model else create_detector("yunet"), "finder"))
        for name, make, kind in setups:
            detector = make()
            finder = FaceFinder(detector) if kind == "finder" else None
            def find(i, frame, finder=finder, detector=detector):
                return finder.find(frame, i / 30) if finder else detector.detect(frame)

            find(0, frames[0])
            started = time.perf_counter()
            found = [find(i, f) for i, f in enumerate(frames)]
            ms = (time.perf_counter() - started) / len(frames) * 1000
            print(json.dumps({"faces": label, "detector": name, "ms_per_frame": round(ms, 2),
                              "frames_with_the_face": sum(bool(f) for f in found), "frames": len(frames)}))


FER_TIMING = """
import json, sys, time, cv2
from fer.fer import FER
detector = FER()  # its defaults: Haar cascade (scale 1.1, min face 50 px) + mini-Xception
cap, frames = cv2.VideoCapture(sys.argv[1]), []
while (item := cap.read())[0]:
    frames.append(item[1])
detector.detect_emotions(frames[0])  # load and warm up
started = time.perf_counter()
faces = sum(len(detector.detect_emotions(f)) for f in frames)
print(json.dumps({"fps": len(frames) / (time.perf_counter() - started), "faces": faces}))
"""


def fer_baseline(args) -> None:
    """The fer package's own path on the clip, and moodtunes on the same clip, in the same run.

    fer needs TensorFlow and opencv-contrib, so it runs in an interpreter of its own
    (--fer-python: a venv with `pip install fer --no-deps tensorflow-cpu opencv-python requests pillow`).
    """
    result = subprocess.run([args.fer_python, "-c", FER_TIMING, args.clip], capture_output=True, text=True, check=True)
    theirs = json.loads(result.stdout.strip().splitlines()[-1])
    ours = benchmark(args.clip, args.face_model)
    print(json.dumps({"fer_fps": round(theirs["fps"], 2), "fer_faces": theirs["faces"], "moodtunes_fps": ours["fps"],
                      "moodtunes_faces": ours["faces"], "speedup": round(ours["fps"] / theirs["fps"], 2)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="\n".join(__doc__.split("\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("load", "startup", "window", "detection", "fer"))
    p.add_argument("--clip", default="/tmp/face.avi", help="made by python tests/clips.py")
    p.add_argument("--photo", default="/tmp/photo.jpg")
    p.add_argument("--face-model", help="YuNet .onnx (default: the app's own)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--busy", type=int, default=0, help="busy processes for `load` (default: one per core)")
    p.add_argument("--threads", type=int, default=1, help="OpenCV threads for `detection`")
    p.add_argument("--fer-python", default="python", help="an interpreter with the fer package, for `fer`")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    {"load": load, "startup": startup, "window": window, "detection": detection, "fer": fer_baseline}[args.mode](args)


if __name__ == "__main__":
    main()
