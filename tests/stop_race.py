"""Start and stop the analysis worker at random moments, many times; print one JSON line.

    python tests/stop_race.py CLIP [--cycles 120] [--camera-like]

Run by tests/test_threads.py in a subprocess: a capture released by one thread while another
is inside its read() aborts the whole process, which must fail the test, not kill pytest.
--camera-like reads the clip continuously on a capture thread, as a camera is read.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emotion.pipeline import EmotionPipeline  # noqa: E402
from emotion.recognizer import EmotionRecognizer  # noqa: E402
from emotion.sources import CameraSource, open_source  # noqa: E402
from gui.workers import AnalysisWorker  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("clip")
    p.add_argument("--cycles", type=int, default=120)
    p.add_argument("--camera-like", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rng = random.Random(args.seed)
    recognizer = EmotionRecognizer(device="cpu", detector="haar")

    def make_source(warn):
        if args.camera_like:
            return CameraSource(capture_factory=lambda: cv2.VideoCapture(args.clip), retry_interval=0.0)
        return open_source(args.clip, loop=True, warn=warn)

    stop_times, hung = [], 0
    for _ in range(args.cycles):
        worker = AnalysisWorker(make_source, lambda: EmotionPipeline(recognizer))
        worker.start()
        time.sleep(rng.uniform(0.0, 0.3))  # while opening, reading, decoding or classifying
        started = time.monotonic()
        ended = worker.stop(timeout=2.0)
        stop_times.append(time.monotonic() - started)
        hung += not ended
    print(json.dumps({"cycles": args.cycles, "hung": hung, "max_stop_s": round(max(stop_times), 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
