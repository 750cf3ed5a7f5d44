"""moodtunes: recognise the emotion on your face and turn your mood into a Spotify playlist.

    python main.py                              the desktop app on camera 0
    python main.py --source clip.mp4 --headless one JSON line per frame, then a summary
    python main.py --source clip.mp4 --benchmark only the summary, as fast as possible
    python main.py playlist --mood happy        a playlist for a mood, no camera
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from emotion.errors import MoodtunesError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="moodtunes", description=__doc__.split("\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n")[1])
    source = p.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
    source.add_argument("--source", help="video file, image file or folder of images instead of the camera")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--headless", action="store_true",
                      help="no window: print one JSON line per frame and a summary")
    mode.add_argument("--benchmark", action="store_true",
                      help="no window: process as fast as possible, print only the summary")
    p.add_argument("--checkpoint", help="emotion model (default: checkpoints/emotion_ferplus.pt)")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--detector", choices=("auto", "yunet", "haar"), default="auto",
                   help="face detector; auto = YuNet, or the Haar cascade when YuNet is unavailable")
    p.add_argument("--face-model", help="YuNet .onnx file to use instead of the downloaded one")
    p.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0 = all)")
    p.add_argument("--loop", action="store_true", help="replay --source from the start when it ends")

    sub = p.add_subparsers(dest="command", metavar="{playlist}")
    pl = sub.add_parser("playlist", help="make a Spotify playlist for a mood (no camera)")
    from playlist.cli import add_arguments

    add_arguments(pl)
    return p


def run_headless(args: argparse.Namespace) -> int:
    from emotion.pipeline import EmotionPipeline, LatencyStats, peak_rss_mb
    from emotion.recognizer import EmotionRecognizer
    from emotion.sources import open_source

    recognizer = EmotionRecognizer(args.checkpoint, device=args.device, detector=args.detector,
                                   face_model=args.face_model)
    if recognizer.detector.note:
        print(f"warning: {recognizer.detector.note}", file=sys.stderr)
    pipeline = EmotionPipeline(recognizer)
    stats = LatencyStats()
    frames = with_faces = faces_total = 0
    source = open_source(args.source if args.source is not None else args.camera, loop=args.loop)
    started = time.perf_counter()
    try:
        while not args.max_frames or frames < args.max_frames:
            t_read = time.perf_counter()
            item = source.read()
            if item is None:
                break
            read_ms = (time.perf_counter() - t_read) * 1000
            analysis = pipeline.process(*item)
            stats.add({"read_ms": read_ms, **analysis.timings})
            frames += 1
            with_faces += bool(analysis.faces)
            faces_total += len(analysis.faces)
            if not args.benchmark:
                print(json.dumps(analysis.to_dict()), flush=True)
    finally:
        source.close()
    elapsed = time.perf_counter() - started
    classify = stats.samples.get("classify_ms", [])
    summary = {
        "summary": True,
        "source": source.name,
        "frames": frames,
        "frames_with_faces": with_faces,
        "faces": faces_total,
        "fps": round(frames / elapsed, 2) if elapsed > 0 else None,
        "latency_ms": stats.summary(),
        "classify_ms_per_face": round(sum(classify) / faces_total, 3) if faces_total else None,
        "detector": recognizer.detector.name,
        "device": str(recognizer.device),
        "precision": str(recognizer.dtype).removeprefix("torch."),
        "checkpoint": str(recognizer.checkpoint_path),
        "peak_rss_mb": peak_rss_mb(),
    }
    print(json.dumps(summary), flush=True)
    return 0


def run_app(args: argparse.Namespace) -> int:
    from gui.app import run

    return run(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "playlist":
            from playlist.cli import run as run_playlist

            return run_playlist(args)
        if args.headless or args.benchmark:
            return run_headless(args)
        return run_app(args)
    except MoodtunesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
