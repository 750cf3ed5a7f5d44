"""moodtunes: recognises the emotion on your face through the webcam and turns your mood into a Spotify playlist.

usage examples:
  moodtunes                                  the desktop app on camera 0 (or the last one chosen)
  moodtunes --source clip.mp4 --headless     one JSON line per frame, then a summary line
  moodtunes --source clip.mp4 --benchmark    only the summary, as fast as possible
  moodtunes playlist --mood happy            a playlist for a mood, no camera
  moodtunes playlist --photo me.jpg          a playlist for the mood of the face in a photo
  moodtunes serve                            a local HTTP API and live overlay page on 127.0.0.1:8765

keys in the window:
  P          make a Spotify playlist from the current mood
  Space      pause / resume the video
  Q, Esc     quit

Spotify setup (once: a free developer app and its client id): see the README's
"Spotify setup" section; `moodtunes playlist --mood happy --dry-run` prints the steps too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from emotion.device import device_name
from emotion.errors import ArgumentParser, MoodtunesError

if TYPE_CHECKING:  # the engine loads only when a command needs it
    from emotion.recognizer import EmotionRecognizer


def frame_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of frames, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (all frames) or a positive number of frames")
    return value


def device_arg(text: str) -> str:
    try:
        return device_name(text)
    except MoodtunesError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_source_options(p: argparse.ArgumentParser, default: str | None = None) -> None:
    source = p.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, default=default,
                        help="camera index (default: the one chosen last in the window, else 0)")
    source.add_argument("--source", default=default,
                        help="video file, image file or folder of images instead of the camera")
    p.add_argument("--loop", action="store_true", default=default, help="replay --source from the start when it ends")


def add_engine_options(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """The model and detector options; subcommands pass argparse.SUPPRESS so that they can go either side."""
    def given(value: str) -> str:
        return value if default is None else default

    p.add_argument("--checkpoint", default=default, help="emotion model: .onnx (run by OpenCV) or .pt (run by "
                                                          "torch); default: the shipped FER+ model")
    p.add_argument("--device", default=given("auto"), type=device_arg,
                   help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--backend", choices=("auto", "opencv", "torch"), default=given("auto"),
                   help="what runs the emotion network: auto = torch on a GPU, OpenCV's DNN module on the CPU")
    p.add_argument("--detector", choices=("auto", "yunet", "haar"), default=given("auto"),
                   help="face detector; auto = YuNet, or the Haar cascade when YuNet is unavailable")
    p.add_argument("--face-model", default=default, help="YuNet .onnx file to use instead of the downloaded one")


def recognizer_from_args(args: argparse.Namespace) -> EmotionRecognizer:
    """The EmotionRecognizer that the options of :func:`add_engine_options` ask for."""
    from emotion.recognizer import EmotionRecognizer

    return EmotionRecognizer(args.checkpoint, device=args.device, detector=args.detector,
                             face_model=args.face_model, backend=args.backend)


def build_parser() -> argparse.ArgumentParser:
    summary, details = __doc__.split("\n", 1)
    description = summary.removeprefix("moodtunes: ")
    p = ArgumentParser(prog="moodtunes", description=description[0].upper() + description[1:], epilog=details.strip(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_options(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--headless", action="store_true",
                      help="no window: print one JSON line per frame and a summary")
    mode.add_argument("--benchmark", action="store_true",
                      help="no window: process as fast as possible, print only the summary")
    add_engine_options(p)
    p.add_argument("--max-frames", type=frame_count, default=0, help="stop after this many frames (0 = all)")
    p.add_argument("--first-face-report", action="store_true",
                   help="window: print how long it took from launch to the first frame with a face, then quit")

    sub = p.add_subparsers(dest="command", metavar="{playlist,serve}", parser_class=ArgumentParser)
    pl = sub.add_parser("playlist", help="make a Spotify playlist for a mood or a photo's mood (no camera)")
    from playlist.cli import add_arguments

    add_arguments(pl)
    add_engine_options(pl, default=argparse.SUPPRESS)
    srv = sub.add_parser("serve", help="a local HTTP API with a live overlay page (pip install 'moodtunes[serve]')",
                         description=SERVE_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_options(srv, default=argparse.SUPPRESS)
    add_engine_options(srv, default=argparse.SUPPRESS)
    srv.add_argument("--port", type=int, default=8765, help="default 8765")
    srv.add_argument("--host", default="127.0.0.1",
                     help="interface to listen on (default 127.0.0.1; any other needs --token)")
    srv.add_argument("--token", default=os.environ.get("MOODTUNES_API_TOKEN"),
                     help="required of every request (Authorization: Bearer TOKEN, or ?token=TOKEN); "
                          "default: MOODTUNES_API_TOKEN")
    srv.add_argument("--events-interval-ms", type=int, default=250, help="at most one /events update this often")
    srv.add_argument("--max-listeners", type=int, default=64, help="concurrent /events clients")
    srv.add_argument("--no-source", action="store_true", help="no camera or video: only /analyze and /playlist")
    return p


SERVE_DOC = """Serve the live mood over HTTP on this computer.

  GET  /          the overlay page (add ?transparent=1 for streaming software)
  GET  /health    GET /emotions    GET /mood    GET /events (Server-Sent Events)
  POST /analyze   an image in the body -> its faces
  POST /playlist  {"mood": "current", "strategy": "match", "dry_run": false}
"""


class Stopped(Exception):
    """SIGTERM arrived: end the run as Ctrl-C does, summary included."""


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def configure_threads() -> None:
    """The process-wide thread settings the app runs with, set once at start-up, before cv2 or torch load.

    - OpenCV gets a thread per core, up to 4 (more do not pay for a 48 px network): two
      threads took the benchmark clip from ~103 to ~115-140 frames/s on a 2-core CPU.
    - Its pool's workers sleep instead of spinning while they wait for work. With one busy
      process per core (a laptop with a browser open), spinning workers lost their slices to
      each other: the default spin kept 0.41 of the idle frame rate, no spin 0.58, in the same
      run (tests/bench.py load).
    - The thread that hands out work yields (sched_yield, no busy pause) up to 1000 times while
      the workers finish a layer, instead of sleeping at once: sleeping cost a futex wake per
      layer, which undid the second thread (classification 3.4 ms, as slow as one thread).
      Yielding gives the core back to anyone who wants it: 2.7 ms, 220 instead of 185 frames/s
      idle, and 0.52-0.55 instead of 0.43 of it under load, in the same run.
    - torch (CUDA/MPS, or --backend torch) waits passively for the same reason.
    Users can still set any of these variables themselves; they win.
    """
    os.environ.setdefault("OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER", "0")
    os.environ.setdefault("OPENCV_THREAD_POOL_ACTIVE_WAIT_MAIN", "1000")
    os.environ.setdefault("OPENCV_THREAD_POOL_ACTIVE_WAIT_PAUSE_LIMIT", "0")  # 0: yield, never pause-spin
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("KMP_BLOCKTIME", "0")
    import cv2

    cv2.setNumThreads(int(os.environ.get("MOODTUNES_THREADS", 0)) or min(4, os.cpu_count() or 1))


def run_headless(args: argparse.Namespace) -> int:
    from emotion.pipeline import EmotionPipeline, LatencyStats, peak_rss_mb
    from emotion.sources import open_source

    recognizer = recognizer_from_args(args)
    if recognizer.detector.note:
        warn(recognizer.detector.note)
    pipeline = EmotionPipeline(recognizer)
    stats = LatencyStats()
    frames = with_faces = faces_total = 0
    source = open_source(args.source if args.source is not None else (args.camera or 0), loop=args.loop, warn=warn)
    stopped_by = None
    started = time.perf_counter()

    def on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
        raise Stopped

    previous_handler = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        while not args.max_frames or frames < args.max_frames:
            t_read = time.perf_counter()
            item = source.read()
            if item is None:
                break
            read_ms = (time.perf_counter() - t_read) * 1000
            analysis = pipeline.process(item.image, item.timestamp, item.independent, item.name)
            stats.add({"read_ms": read_ms, **analysis.timings})
            frames += 1
            with_faces += bool(analysis.faces)
            faces_total += len(analysis.faces)
            if not args.benchmark:
                print(json.dumps(analysis.to_dict()), flush=True)
    except KeyboardInterrupt:
        stopped_by = "SIGINT"
    except Stopped:
        stopped_by = "SIGTERM"
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        source.close()
    elapsed = time.perf_counter() - started
    summary = {
        "summary": True,
        "source": source.name,
        "frames": frames,
        "frames_with_faces": with_faces,
        "faces": faces_total,
        "fps": round(frames / elapsed, 2) if elapsed > 0 else None,
        "latency_ms": stats.summary(),
        "classify_ms_per_face": round(stats.total("classify_ms") / faces_total, 3) if faces_total else None,
        "detector": recognizer.detector.name,
        "backend": recognizer.backend,
        "device": recognizer.device,
        "precision": recognizer.precision,
        "checkpoint": str(recognizer.checkpoint_path),
        "peak_rss_mb": peak_rss_mb(),
    }
    if source.skipped:
        summary["skipped_files"] = source.skipped
    if stopped_by:
        summary["stopped_by"] = stopped_by
    print(json.dumps(summary), flush=True)
    return {"SIGINT": 130, "SIGTERM": 143}.get(stopped_by, 0)


def run_serve(args: argparse.Namespace) -> int:
    try:
        from gui.server import LOOPBACK_NAMES, ServeSettings, serve
    except ImportError as exc:
        raise MoodtunesError(f"moodtunes serve needs FastAPI and uvicorn ({exc.name} is missing): "
                             "pip install 'moodtunes[serve]'.") from exc
    from emotion.sources import open_source

    if args.host not in LOOPBACK_NAMES and not args.token:
        raise MoodtunesError(f"Listening on {args.host} lets other computers in: give a --token (or set "
                             "MOODTUNES_API_TOKEN) that every request must carry.")
    settings = ServeSettings(host=args.host, port=args.port, token=args.token,
                             events_interval_ms=args.events_interval_ms, max_listeners=args.max_listeners)
    source = args.source if args.source is not None else (args.camera or 0)
    return serve(settings, lambda: recognizer_from_args(args),
                 None if args.no_source else (lambda warn: open_source(source, loop=args.loop, warn=warn)))


def run_app(args: argparse.Namespace) -> int:
    from gui.app import run

    return run(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_threads()
        if args.command == "playlist":
            from playlist.cli import run as run_playlist

            return run_playlist(args)
        if args.command == "serve":
            return run_serve(args)
        if args.headless or args.benchmark:
            return run_headless(args)
        return run_app(args)
    except MoodtunesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`moodtunes ... | head -1`): stop quietly. Point stdout at
        # devnull so that Python's own flush at exit does not complain about the pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
