"""Speed and memory figures for the README, each printed as JSON lines by the command that measures it.

    python tests/bench.py load      --clip face.avi [--face-model yunet.onnx]   idle vs one busy process per core
    python tests/bench.py startup   --photo me.jpg  [--face-model yunet.onnx]   one photo from process start
    python tests/bench.py window    --clip face.avi [--face-model yunet.onnx]   window launch to first face
    python tests/bench.py detection [--face-model yunet.onnx]                   detection cost and faces found
    python tests/bench.py fer       --clip face.avi --fer-python VENV/bin/python the fer package on the same clip
    python tests/bench.py scaling   [--clips DIR] [--fer-python VENV/bin/python] [--against OTHER_CHECKOUT]
                                    HD and groups: 640x480, 1280x720 and 1920x1080 with 1, 4 and 8 faces
    python tests/bench.py resolution                                          the smallest face found, per resolution
    python tests/bench.py batch                                               the network's cost per face, per runtime
    python tests/bench.py stages                                              each HD saving against the way before it

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


def benchmark(clip: str, face_model: str | None, extra: list[str] = (), main: list[str] = MAIN) -> dict:
    args = [*main, "--source", clip, "--benchmark", *extra]
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


SCALING_CLIPS = (((640, 480), 1), ((1280, 720), 1), ((1280, 720), 4), ((1280, 720), 8),
                 ((1920, 1080), 1), ((1920, 1080), 4), ((1920, 1080), 8))


def scaling_clips(folder: Path) -> list[tuple[Path, tuple[int, int], int]]:
    """The clips of `scaling`, written into ``folder`` the first time (about 40 s)."""
    from clips import write_face_clip, write_group_clip

    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for size, faces in SCALING_CLIPS:
        path = folder / f"{'face' if size == (640, 480) else 'group'}_{size[0]}x{size[1]}_{faces}.avi"
        if not path.exists():
            (write_face_clip(path) if size == (640, 480) else write_group_clip(path, size, faces))
        clips.append((path, size, faces))
    return clips


def scaling(args) -> None:
    """Frames/s, per-stage p50/p95 and ms per face on each clip, runs alternating across clips (and
    checkouts, with --against: before/after in the same run), then the fer package on the same clips."""
    clips = scaling_clips(Path(args.clips))
    trees = {"this": MAIN}
    if args.against:
        trees["against"] = [sys.executable, str(Path(args.against).resolve() / "main.py")]
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.runs):
        for path, _size, _faces in clips:
            for tree, main in trees.items():
                runs.setdefault((tree, path.name), []).append(benchmark(str(path), args.face_model, main=main))
    for tree in trees:
        per_size: dict[tuple[int, int], list[tuple[float, float]]] = {}  # (faces found per frame, total p50)
        for path, size, faces in clips:
            results = runs[(tree, path.name)]
            stages = {stage: {q: statistics.median(r["latency_ms"][stage][q] for r in results) for q in ("p50", "p95")}
                      for stage in ("detect", "classify", "total")}
            found = statistics.median(r["faces"] / r["frames"] for r in results)
            per_size.setdefault(size, []).append((found, stages["total"]["p50"]))
            print(json.dumps({"tree": tree, "clip": path.name, "fps": [r["fps"] for r in results],
                              "fps_median": statistics.median(r["fps"] for r in results),
                              "faces_found_share": round(statistics.median(r["faces"] for r in results)
                                                         / (faces * results[0]["frames"]), 3),
                              "ms": stages, "classify_ms_per_face": statistics.median(
                                  r["classify_ms_per_face"] for r in results if r["classify_ms_per_face"])}))
        for size, points in per_size.items():
            (fewest, first), (most, last) = min(points), max(points)
            if most > fewest:  # the cost of each face found beyond the fewest, from the frame's total p50
                print(json.dumps({"tree": tree, "size": f"{size[0]}x{size[1]}", "ms_per_additional_face":
                                  round((last - first) / (most - fewest), 3)}))
    if args.against:
        for path, _size, _faces in clips:
            ratio = (statistics.median(r["fps"] for r in runs[("this", path.name)])
                     / statistics.median(r["fps"] for r in runs[("against", path.name)]))
            print(json.dumps({"clip": path.name, "fps_this_over_against": round(ratio, 3)}))
    if args.fer_python:
        for path, _size, _faces in clips:
            theirs = fer_fps(args.fer_python, str(path), args.fer_frames)
            ours = statistics.median(r["fps"] for r in runs[("this", path.name)])
            print(json.dumps({"clip": path.name, "fer_fps": round(theirs["fps"], 2), "fer_faces": theirs["faces"],
                              "fer_frames": theirs["frames"], "moodtunes_fps": ours,
                              "speedup": round(ours / theirs["fps"], 2)}))


def smallest_face(args) -> None:
    """Per camera resolution: the smallest face, of each real face available offline, that the app's
    whole-frame search finds at all nine places tried in the frame, and what that search costs. Smaller
    faces are followed once found, but never found."""
    import cv2
    import numpy as np
    from clips import BACKGROUND, real_portraits

    from emotion.detection import YuNetDetector, create_detector, iou

    cv2.setNumThreads(args.threads)
    for width, height in ((640, 480), (1280, 720), (1920, 1080)):
        detector = YuNetDetector(args.face_model) if args.face_model else create_detector("yunet")
        smallest, cost = {}, []
        for portrait in real_portraits():
            for share in np.arange(0.30, 0.02, -0.01):  # face height as a share of the frame's height
                side = round(portrait.tile.shape[0] * share * height / portrait.face_box[3])
                tile = cv2.resize(portrait.tile, (side, side), interpolation=cv2.INTER_AREA)
                found_everywhere = True
                for x0, y0 in ((round(fx * (width - side)), round(fy * (height - side)))
                               for fx in (0.2, 0.5, 0.8) for fy in (0.25, 0.5, 0.75)):
                    frame = np.full((height, width, 3), BACKGROUND, np.uint8)
                    frame[y0 : y0 + side, x0 : x0 + side] = tile
                    started = time.perf_counter()
                    found = detector.detect(frame)
                    cost.append((time.perf_counter() - started) * 1000)
                    scale = side / portrait.tile.shape[0]
                    x, y, w, h = portrait.face_box
                    truth = (x0 + x * scale, y0 + y * scale, w * scale, h * scale)
                    found_everywhere &= any(iou(d.box, truth) > 0.4 for d in found)
                if not found_everywhere:
                    break
                smallest[portrait.name] = {"share_of_height": round(share, 2), "px": round(share * height)}
        print(json.dumps({"resolution": f"{width}x{height}", "smallest_face_found": smallest,
                          "whole_frame_search_ms_p50": round(statistics.median(cost), 2)}))


def batch(args) -> None:
    """The emotion network at batch 1, 2, 4 and 8 on each CPU runtime (ONNX Runtime in int8, the app's
    default, and in float32; OpenCV in float32), runs alternating, with the app's thread settings:
    wall and CPU ms per face. For OpenCV also where the time goes, by each convolution's input size
    (OpenCV runs its Winograd convolution only on inputs of 12x12 and more; smaller ones take its
    generic path)."""
    import main

    main.configure_process()
    import cv2
    import numpy as np

    from emotion.classifier import OnnxRuntimeClassifier, open_classifier

    int8, opencv = open_classifier(args.model, backend="onnxruntime"), open_classifier(args.model, backend="opencv")
    classifiers = {"onnxruntime int8": int8, "onnxruntime float32": OnnxRuntimeClassifier(opencv.path),
                   "opencv": opencv}  # as the app opens the model it is given by name
    net = classifiers["opencv"]._net  # the very network the app runs on OpenCV: its per-layer profile
    size = classifiers["opencv"].input_size
    _, inputs, _ = net.getLayersShapes([1, 1, size, size])
    kinds = [net.getLayer(i).type for i in range(1, len(inputs))]
    sides = [int(shape[0][-1]) if shape else 0 for shape in inputs[1:]]  # a constant (the mirror's indices) has none
    rng = np.random.default_rng(0)
    for n in (1, 2, 4, 8):
        faces = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        walls: dict[str, list[float]] = {backend: [] for backend in classifiers}
        cpu = dict.fromkeys(classifiers, 0.0)
        fastest = None
        for classifier in classifiers.values():
            classifier.logits(faces)
        for _ in range(args.runs * 10):
            for backend, classifier in classifiers.items():
                cpu_started, started = time.process_time(), time.perf_counter()
                classifier.logits(faces)
                walls[backend].append((time.perf_counter() - started) * 1000)
                cpu[backend] += (time.process_time() - cpu_started) * 1000
                if backend == "opencv":
                    layers = np.asarray(net.getPerfProfile()[1]).ravel() / cv2.getTickFrequency() * 1000
                    fastest = layers if fastest is None else np.minimum(fastest, layers)
        by_input = {}
        for kind, side, ms in zip(kinds, sides, fastest, strict=True):
            if kind == "Convolution":
                key = f"conv_on_{side}x{side}"
                by_input[key] = round(by_input.get(key, 0.0) + ms / n, 3)
        for backend, classifier in classifiers.items():
            figures = {"model": args.model, "batch": n, "backend": classifier.backend,
                       "precision": classifier.precision, "threads": cv2.getNumThreads(),
                       "wall_ms_per_face_p50": round(statistics.median(walls[backend]) / n, 3),
                       "cpu_ms_per_face": round(cpu[backend] / len(walls[backend]) / n, 3)}
            if backend == "opencv":
                figures["fastest_layer_ms_per_face"] = by_input
            print(json.dumps(figures))


def stages(args) -> None:
    """Each saving of issue 27 against what it replaced, alternating in one run on the group scenes: ms per
    frame (median of --runs runs, each the median over 20 frames), and the faces found where that can change."""
    import main

    main.configure_process()
    import cv2
    from clips import GroupScene, real_portraits

    from emotion.detection import FULL_SIDE, FULL_SIDE_HD, YuNetDetector, create_detector, iou, shrink
    from emotion.pipeline import SceneCutDetector
    from emotion.preprocess import crop_face, eye_angle, to_gray

    portraits = real_portraits()
    detector = YuNetDetector(args.face_model) if args.face_model else create_detector("yunet")
    cuts = SceneCutDetector()

    def whole_frame_thumbnail(frame, found):  # SceneCutDetector before: gray and shrink every pixel
        return cv2.resize(to_gray(frame), (32, 24), interpolation=cv2.INTER_AREA)

    def grid_thumbnail(frame, found):
        return cuts.is_cut(frame)

    def whole_frame_gray_crops(frame, found):  # recognizer.crops before: the whole frame to gray first
        gray = to_gray(frame)
        return [crop_face(gray, d.box, 48, eye_angle(d.landmarks)) for d in found]

    def neighbourhood_crops(frame, found):
        return [crop_face(frame, d.box, 48, eye_angle(d.landmarks)) for d in found]

    def full_pass(side, halving):  # YuNetDetector.detect before: INTER_AREA straight down to 320 px
        def search(frame, found):
            h, w = frame.shape[:2]
            scale, size = side / max(h, w), (round(w * side / max(h, w)), round(h * side / max(h, w)))
            small = shrink(frame, size) if halving else cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            return detector._detect_scaled(small, scale, (0, 0), (w, h))

        search.__name__ = f"{'halving' if halving else 'area'}_{side}px"
        return search

    def search_per_face(frame, found):  # FaceFinder before: one network call per face
        return [d for face in found for d in detector.detect_near(frame, [face.box])[0]]

    def search_mosaic(frame, found):
        return [d for near in detector.detect_near(frame, [face.box for face in found]) for d in near]

    comparisons = {"scene_cut": (whole_frame_thumbnail, grid_thumbnail),
                   "crops": (whole_frame_gray_crops, neighbourhood_crops),
                   "full_pass_resize": (full_pass(FULL_SIDE, False), full_pass(FULL_SIDE, True)),
                   "full_pass_hd_side": (full_pass(FULL_SIDE, True), full_pass(FULL_SIDE_HD, True)),
                   "neighbourhood_search": (search_per_face, search_mosaic)}
    for size in ((640, 480), (1280, 720), (1920, 1080)):
        for faces in (1, 8) if size != (640, 480) else (1,):
            scene = GroupScene(size, faces)
            frames = [scene.frame(i, portraits) for i in range(20)]
            truths = [scene.face_boxes(i, portraits) for i in range(20)]
            found = [[near[0] for near in detector.detect_near(frame, [tuple(round(v) for v in box) for box in truth])
                      if near] for frame, truth in zip(frames, truths, strict=True)]
            for name, pair in comparisons.items():
                if name == "full_pass_hd_side" and size == (640, 480):
                    continue
                times: dict[str, list[float]] = {fn.__name__: [] for fn in pair}
                for _ in range(args.runs):
                    for fn in pair:
                        per_frame = []
                        for frame, known in zip(frames, found, strict=True):
                            started = time.perf_counter()
                            fn(frame, known)
                            per_frame.append((time.perf_counter() - started) * 1000)
                        times[fn.__name__].append(statistics.median(per_frame))
                line = {"size": f"{size[0]}x{size[1]}", "faces": faces, "stage": name,
                        **{fn: round(statistics.median(ms), 3) for fn, ms in times.items()}}
                if name.startswith(("full_pass", "neighbourhood")):
                    for fn in pair:
                        hits = sum(any(iou(d.box, box) > 0.4 for d in fn(frame, known)) for frame, known, truth
                                   in zip(frames, found, truths, strict=True) for box in truth)
                        line[f"{fn.__name__}_faces_found"] = f"{hits}/{faces * len(frames)}"
                print(json.dumps(line))


FER_TIMING = """
import json, sys, time, cv2
from fer.fer import FER
detector = FER()  # its defaults: Haar cascade (scale 1.1, min face 50 px) + mini-Xception
cap, frames, limit = cv2.VideoCapture(sys.argv[1]), [], int(sys.argv[2]) if len(sys.argv) > 2 else 0
while (not limit or len(frames) < limit) and (item := cap.read())[0]:
    frames.append(item[1])
detector.detect_emotions(frames[0])  # load and warm up
started = time.perf_counter()
faces = sum(len(detector.detect_emotions(f)) for f in frames)
print(json.dumps({"fps": len(frames) / (time.perf_counter() - started), "faces": faces, "frames": len(frames)}))
"""


def fer_fps(python: str, clip: str, frames: int = 0) -> dict:
    """The fer package's frames/s on ``clip`` (its first ``frames`` frames; 0: all), in its own interpreter."""
    result = subprocess.run([python, "-c", FER_TIMING, clip, str(frames)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def fer_baseline(args) -> None:
    """The fer package's own path on the clip, and moodtunes on the same clip, in the same run.

    fer needs TensorFlow and opencv-contrib, so it runs in an interpreter of its own
    (--fer-python: a venv with `pip install fer --no-deps tensorflow-cpu opencv-python requests pillow`).
    """
    theirs = fer_fps(args.fer_python, args.clip)
    ours = benchmark(args.clip, args.face_model)
    print(json.dumps({"fer_fps": round(theirs["fps"], 2), "fer_faces": theirs["faces"], "moodtunes_fps": ours["fps"],
                      "moodtunes_faces": ours["faces"], "speedup": round(ours["fps"] / theirs["fps"], 2)}))


def main() -> None:
    from emotion.classifier import DEFAULT_MODEL, SHIPPED_MODELS

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog="\n".join(__doc__.split("\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("load", "startup", "window", "detection", "fer", "scaling", "resolution", "batch",
                                     "stages"))
    p.add_argument("--clip", default="/tmp/face.avi", help="made by python tests/clips.py")
    p.add_argument("--photo", default="/tmp/photo.jpg")
    p.add_argument("--face-model", help="YuNet .onnx (default: the app's own)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--model", default=DEFAULT_MODEL, choices=SHIPPED_MODELS,
                   help="`batch`: which shipped model (its int8 and float32 files)")
    p.add_argument("--busy", type=int, default=0, help="busy processes for `load` (default: one per core)")
    p.add_argument("--threads", type=int, default=1, help="OpenCV threads for `detection` and `resolution`")
    p.add_argument("--fer-python", help="an interpreter with the fer package, for `fer` (needed) and `scaling`")
    p.add_argument("--fer-frames", type=int, default=0, help="`scaling`: time fer on this many frames of each clip "
                                                             "(default: all)")
    p.add_argument("--clips", default="/tmp/moodtunes_clips", help="`scaling`: where its clips are (written if "
                                                                   "missing)")
    p.add_argument("--against", help="`scaling`: another checkout (e.g. `git worktree add /tmp/before HEAD~1`), run "
                                     "alternately with this one")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    {"load": load, "startup": startup, "window": window, "detection": detection, "fer": fer_baseline,
     "scaling": scaling, "resolution": smallest_face, "batch": batch, "stages": stages}[args.mode](args)


if __name__ == "__main__":
    main()
