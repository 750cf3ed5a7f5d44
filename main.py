"""moodtunes: recognises the emotion on your face through the webcam and turns your mood into a Spotify playlist.

usage examples:
  moodtunes                                  the desktop app on camera 0 (or the last one chosen)
  moodtunes --source clip.mp4 --headless     one JSON line per frame, then a summary line
  moodtunes --source clip.mp4 --benchmark    only the summary, as fast as possible
  moodtunes --follow                         the window, and the music follows your mood (Spotify Premium)
  moodtunes --source clip.mp4 --headless --follow   the DJ too: its actions as JSON lines (Spotify Premium)
  moodtunes playlist --mood happy            a playlist for a mood, played on your Spotify (--no-play: only made)
  moodtunes playlist --photo me.jpg          a playlist for the mood of the face in a photo
  moodtunes calibrate                        teach it your neutral face (hold a relaxed face still)
  moodtunes serve                            a local HTTP API and live overlay page on 127.0.0.1:8765
  moodtunes serve --follow                   the same, with the DJ following the live mood (GET /dj)

environment:
  MOODTUNES_THREADS=N        threads for OpenCV and ONNX Runtime (default 1; without ONNX Runtime, 1 per core up to 4)
  MOODTUNES_CONFIG_DIR=DIR   where settings, the Spotify sign-in and the calibration are kept

Spotify setup (once, 6 steps: a development-mode app on developer.spotify.com, whose owner needs
Spotify Premium, and its client id): `moodtunes playlist --help` lists them, as does the README's
"Spotify setup".
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from emotion.capture import CAPTURE_SECONDS
from emotion.cli import (
    ArgumentParser,
    add_engine_options,
    add_source_options,
    error,
    frame_count,
    settings_from_args,
    warn,
)
from emotion.errors import MoodtunesError
from gui.api.settings import LOOPBACK_NAMES, ServeSettings
from playlist.spotify_setup import setup_lines


def build_parser() -> argparse.ArgumentParser:
    from gui.keys import keys_help  # the window's key table, without Qt

    summary, details = __doc__.split("\n", 1)
    description = summary.removeprefix("moodtunes: ")
    epilog = details.strip().replace("\n\nenvironment:", f"\n\n{keys_help()}\n\nenvironment:", 1)
    p = ArgumentParser(prog="moodtunes", description=description[0].upper() + description[1:], epilog=epilog,
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
    from playlist.cli import add_follow_arguments

    add_follow_arguments(p)
    p.add_argument("--no-play", action="store_true",
                   help="window: P only makes the playlist and does not start it on your Spotify (the Playlist "
                        "menu's \"Play when made\")")

    sub = p.add_subparsers(dest="command", metavar="{playlist,calibrate,serve}", parser_class=CommandParser)
    pl = sub.add_parser("playlist", help="make a Spotify playlist for a mood or a photo's mood (no camera)",
                        description=PLAYLIST_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    from playlist.cli import add_arguments

    add_arguments(pl)
    add_engine_options(pl, default=argparse.SUPPRESS)
    cal = sub.add_parser("calibrate",
                         help=f"teach moodtunes your neutral face: hold a relaxed face for {CAPTURE_SECONDS:g} s",
                         description=CALIBRATE_DOC, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_options(cal, default=argparse.SUPPRESS)
    add_engine_options(cal, default=argparse.SUPPRESS, calibration=False)  # it makes one, and measures the raw face

    cal.add_argument("--seconds", type=float, default=CAPTURE_SECONDS,
                     help=f"how long to capture (default {CAPTURE_SECONDS:g})")
    cal.add_argument("--out", help="where to save it (default: the config folder, used from then on)")
    cal.add_argument("--reset", action="store_true", help="delete the saved calibration instead")
    srv = sub.add_parser("serve", help=f"a local HTTP API with a live overlay page ({install_hint('serve')})",
                         describe=serve_description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_options(srv, default=argparse.SUPPRESS)
    add_engine_options(srv, default=argparse.SUPPRESS)
    srv.add_argument("--port", type=int, default=ServeSettings.port,
                     help="the port to listen on (default: %(default)s)")
    srv.add_argument("--host", default=ServeSettings.host,
                     help="interface to listen on (default: %(default)s; any other needs --token)")
    srv.add_argument("--token", default=os.environ.get("MOODTUNES_API_TOKEN"),
                     help="required of every request (Authorization: Bearer TOKEN, or ?token=TOKEN); "
                          "default: $MOODTUNES_API_TOKEN, else none")
    srv.add_argument("--events-interval-ms", type=int, default=ServeSettings.events_interval_ms,
                     help="at most one /events update this often (default: %(default)s)")
    srv.add_argument("--max-listeners", type=int, default=ServeSettings.max_listeners,
                     help="concurrent /events clients (default: %(default)s)")
    srv.add_argument("--no-source", action="store_true",
                     help="no camera or video, only /analyze and /playlist (without it: --source, --camera, "
                          "else camera 0)")
    srv.add_argument("--no-play", action="store_true",
                     help='POST /playlist only makes the playlist (a request can still say "play": true); '
                          "without it, the playlist starts on your Spotify (Premium)")
    add_follow_arguments(srv, default=argparse.SUPPRESS)  # the live mood; POST /dj/follow switches it
    return p


class CommandParser(ArgumentParser):
    """A subcommand's parser; ``describe`` writes its description when its help is shown, not at every start."""

    def __init__(self, *args: Any, describe: Callable[[], str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.describe = describe

    def format_help(self) -> str:
        if self.describe is not None:
            self.description = self.describe()
        return super().format_help()


SERVE_DOC = """Serve the live mood over HTTP on this computer.

{endpoints}

Needs FastAPI and uvicorn: {install}.
"""


def importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def install_hint(extra: str) -> str:
    """How to add an extra to this moodtunes: pipx's own command inside a pipx environment, where pip is not
    what the user runs."""
    if "pipx" in Path(sys.prefix).parts:  # ~/.local/share/pipx/venvs/moodtunes, or ~/.local/pipx/venvs/...
        return f'pipx inject moodtunes "moodtunes[{extra}]"'
    return f'pip install "moodtunes[{extra}]"'


def serve_description() -> str:
    """serve --help: the endpoints as the API's routers declare them (which loads FastAPI, for this help only)."""
    try:
        from gui.api import endpoints

        listing = "\n".join(f"  {method:<6} {path:<10}  {summary}" for method, path, summary in endpoints())
    except ImportError:
        listing = "  (the endpoints are listed here once FastAPI is installed)"
    return SERVE_DOC.format(endpoints=listing, install=install_hint("serve"))


_SETUP_LINES = "\n".join(f"  {line}" for line in setup_lines())
PLAYLIST_DOC = f"""Make a Spotify playlist in your account for a mood, or for the mood of the face in a photo.

Spotify setup, once (the README's "Spotify setup" says more; without a client id the command
prints these steps too):
{_SETUP_LINES}

  moodtunes playlist --mood happy                 a playlist that matches the mood
  moodtunes playlist --mood sad --strategy lift   start there, then lift it
  moodtunes playlist --photo me.jpg --dry-run     the tracks for a photo's mood, nothing created
"""


CALIBRATE_DOC = f"""Teach moodtunes your neutral face.

Sit in front of the camera, relax your face (mouth closed, no smile) and look at the camera
for about {CAPTURE_SECONDS:g} seconds. A resting face that looks stern or sad is read as neutral from then on,
by the window, --headless and the API. The calibration belongs to the model it was measured
with; `moodtunes calibrate --reset` forgets it, `--no-calibration` ignores it for one run.
"""


class Stopped(Exception):
    """SIGTERM arrived: end the run as Ctrl-C does, summary included."""


def thread_count() -> int:
    """MOODTUNES_THREADS, else one thread, or a thread per core (up to 4) where OpenCV runs the network
    (see configure_process)."""
    value = os.environ.get("MOODTUNES_THREADS", "").strip()
    if not value:
        # emotion.classifier.onnxruntime_installed, without importing that module (and its imports) here
        network_on_opencv = importlib.util.find_spec("onnxruntime") is None
        return min(4, os.cpu_count() or 1) if network_on_opencv else 1
    if not value.isdigit() or int(value) < 1:
        raise MoodtunesError(f"MOODTUNES_THREADS must be a whole number of threads, 1 or more (it is {value!r}); "
                             "unset it to let moodtunes choose.")
    return int(value)


def configure_process() -> None:
    """The process-wide settings the app runs with, set once at start-up, before cv2 or torch load.

    OpenCV reads its thread-pool variables once, when it is loaded, so this runs before anything
    imports cv2 (main.py's own imports do not).

    - One thread for OpenCV's pool and ONNX Runtime's (which follows it) unless MOODTUNES_THREADS
      says otherwise. The parallelism that pays is between the app's own threads (the camera or
      file reader decodes the next frame while this one is analysed; the window draws on its
      own); splitting each layer of a 48 px int8 network or a 320 px detector across cores costs
      a hand-over per layer. On a 2-core CPU, alternating (tests/bench.py load): one face in
      640x480 747-875 against 592-817 frames/s idle, 378-443 against 217-317 with one busy
      process per core; eight faces in 1080p 115-123 against 120-144 idle, 61-79 against 53-73
      loaded. Without ONNX Runtime the float32 network runs on OpenCV, where a thread per core
      (up to 4) still pays: eight faces in 1080p 58-66 against 43-46 frames/s with one.
    - Where the pool has more threads (MOODTUNES_THREADS), its workers sleep instead of spinning
      while they wait for work. With one busy
      process per core (a laptop with a browser open), spinning workers lost their slices to
      each other: the default spin kept 0.41 of the idle frame rate, no spin 0.58, in the same
      run (tests/bench.py load).
    - The thread that hands out work yields (sched_yield, no busy pause) up to 1000 times while
      the workers finish a layer, instead of sleeping at once: sleeping cost a futex wake per
      layer, which undid the second thread (classification 3.4 ms, as slow as one thread).
      Yielding gives the core back to anyone who wants it: 2.7 ms, 220 instead of 185 frames/s
      idle, and 0.52-0.55 instead of 0.43 of it under load, in the same run.
    - torch (CUDA/MPS, or --backend torch) waits passively for the same reason.
    - OpenCV's own log is silenced: a missing camera made it print about 40 lines of
      [ WARN ]/[ ERROR ] before moodtunes' one clear line. The app's process only: the
      emotion package, used as a library, leaves its caller's logging alone.
    - ONNX Runtime's telemetry (a device id and an event store in ~/.cache) is off: not here but in
      emotion/__init__.py, which main.py's first import (emotion.cli) runs, so that library users
      and training scripts get the same; ONNX Runtime reads ORT_DISABLE_TELEMETRY once, on import.
    Users can still set any of these variables themselves (OPENCV_LOG_LEVEL included); they win.
    """
    threads = thread_count()  # a bad MOODTUNES_THREADS is refused before any native library loads
    os.environ.setdefault("OPENCV_THREAD_POOL_ACTIVE_WAIT_WORKER", "0")
    os.environ.setdefault("OPENCV_THREAD_POOL_ACTIVE_WAIT_MAIN", "1000")
    os.environ.setdefault("OPENCV_THREAD_POOL_ACTIVE_WAIT_PAUSE_LIMIT", "0")  # 0: yield, never pause-spin
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("KMP_BLOCKTIME", "0")
    import cv2

    cv2.setNumThreads(threads)
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def run_headless(args: argparse.Namespace) -> int:
    import time

    from emotion.history import MoodHistory
    from emotion.live import analysed_frames
    from emotion.pipeline import EmotionPipeline, LatencyStats, peak_rss_mb
    from emotion.sources import open_source
    from playlist.cli import DJ_WAIT_S, HeadlessFollower

    settings = settings_from_args(args)
    recognizer = settings.engine.make_recognizer()
    for note in (recognizer.detector.note, recognizer.calibration_note):
        if note:
            warn(note)
    pipeline = EmotionPipeline(recognizer)
    stats = LatencyStats()
    moods = MoodHistory(span=0)  # only the share of each mood: no segments kept for drawing
    frames = with_faces = faces_total = 0
    source = open_source(settings.source.target, loop=settings.source.loop, warn=warn,
                         resolution=settings.source.camera_size)
    dj = HeadlessFollower(args, warn) if args.follow and not args.benchmark else None
    stopped_by = None
    started = time.perf_counter()

    def on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
        raise Stopped

    previous_handler = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        for turn in analysed_frames(source, pipeline, threading.Event(), paced=False):
            analysis = turn.analysis
            stats.add({"read_ms": turn.read_ms, **analysis.timings})
            frames += 1
            with_faces += bool(analysis.faces)
            faces_total += len(analysis.faces)
            moods.add(analysis.timestamp, analysis.mood.label if analysis.mood else None)
            if not args.benchmark:
                print(json.dumps(analysis.to_dict()), flush=True)
            if dj:
                dj.frame(analysis.timestamp, analysis.mood.label if analysis.mood else None)
            if frames == args.max_frames:
                break
    except KeyboardInterrupt:
        stopped_by = "SIGINT"
    except Stopped:
        stopped_by = "SIGTERM"
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        source.close()
    if frames:  # the last frame's mood holds for one frame too: a single photo has a mood for its second
        moods.add(analysis.timestamp + 1 / source.fps, None)
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
        "mood_share": {label: round(share, 3) for label, share in moods.share().items()},  # of the time with a mood
        "detector": recognizer.detector.name,
        "backend": recognizer.backend,
        "device": recognizer.device,
        "precision": recognizer.precision,
        "checkpoint": str(recognizer.checkpoint_path),
        "calibration": str(settings.engine.calibration_path) if recognizer.calibration else None,
        "peak_rss_mb": peak_rss_mb(),
    }
    if dj:  # the file is done: its pending requests get a bounded wait (none after a signal)
        summary["dj_actions"] = dj.finish(0 if stopped_by else DJ_WAIT_S)
    if source.skipped:
        summary["skipped_files"] = source.skipped
    if stopped_by:
        summary["stopped_by"] = stopped_by
    print(json.dumps(summary), flush=True)
    return {"SIGINT": 130, "SIGTERM": 143}.get(stopped_by, 0)


def run_calibrate(args: argparse.Namespace) -> int:
    """Capture the main face for --seconds, check it is a resting face, save it (or --reset)."""
    from dataclasses import replace

    from emotion.calibration import calibrated_message, delete_calibration, saved_calibration_path
    from emotion.live import analysed_frames
    from emotion.pipeline import EmotionPipeline
    from emotion.sources import open_source

    path = Path(args.out) if args.out else saved_calibration_path()
    if args.reset:
        deleted = delete_calibration(path)
        print(f"Calibration deleted: {path}" if deleted else f"No saved calibration to forget at {path}.",
              file=sys.stderr)
        return 0
    settings = settings_from_args(args)
    # Measure the raw face, not one shifted by an older calibration.
    recognizer = replace(settings.engine, use_calibration=False).make_recognizer()
    if not recognizer.can_calibrate:  # before anyone holds still for nothing
        raise MoodtunesError(recognizer.cannot_calibrate_reason + ".")
    if recognizer.detector.note:
        warn(recognizer.detector.note)
    with open_source(settings.source.target, loop=settings.source.loop, warn=warn,
                     resolution=settings.source.camera_size) as source:
        if source.kind == "photos":  # separate photos of the same face: no capture time, each judged alone
            calibration = recognizer.calibrate([frame.image for frame in source], photos=True)
            calibration.save(path)
            print(f"{calibrated_message(calibration.frames, photos=True)} Saved to {path}.", file=sys.stderr)
            return 0
        print(f"Look at the camera with a relaxed, neutral face for {args.seconds:g} seconds...", file=sys.stderr,
              flush=True)
        pipeline = EmotionPipeline(recognizer)
        pipeline.start_calibration(save_to=path, seconds=args.seconds)
        status = None
        for turn in analysed_frames(source, pipeline, threading.Event(), paced=False):
            status = turn.analysis.calibration
            if status.state != "capturing":
                break
    if status is None or status.state == "capturing":
        raise MoodtunesError(f"The video ended before {args.seconds:g} seconds: use the camera, a longer video, or "
                             "photos of your neutral face.")
    if status.state == "failed":
        raise MoodtunesError(status.message)
    print(f"{status.message} Saved to {path}.", file=sys.stderr)
    return 0


def run_serve(args: argparse.Namespace) -> int:
    try:
        from gui.api import serve
    except ImportError as exc:
        missing = [name for name in ("fastapi", "fastapi_offline", "uvicorn") if not importable(name)] or [exc.name]
        raise MoodtunesError(f"moodtunes serve needs FastAPI and uvicorn ({', '.join(missing)} "
                             f"{'is' if len(missing) == 1 else 'are'} missing): {install_hint('serve')}.") from exc
    from emotion.sources import existing_file, is_camera, open_source
    from playlist.cli import follow_settings

    app = settings_from_args(args)
    source = app.source.target
    if not args.no_source and not is_camera(source):
        existing_file(source)  # a mistyped file is an error now, not a server whose only source failed
    if args.host not in LOOPBACK_NAMES and not args.token:
        raise MoodtunesError(f"Listening on {args.host} lets other computers in: give a --token (or set "
                             "MOODTUNES_API_TOKEN) that every request must carry.")
    settings = ServeSettings(host=args.host, port=args.port, token=args.token,
                             events_interval_ms=args.events_interval_ms, max_listeners=args.max_listeners,
                             calibration_file=Path(args.calibration) if args.calibration else None,
                             play=not args.no_play, follow=args.follow,
                             follow_settings=follow_settings(args.follow_hold, args.follow_gap))
    return serve(settings, app.engine.make_recognizer,
                 None if args.no_source else (lambda warn: open_source(source, loop=app.source.loop, warn=warn,
                                                                      resolution=app.source.camera_size)))


def run_app(args: argparse.Namespace) -> int:
    from gui.app import run

    return run(settings_from_args(args))


def main(argv: list[str] | None = None) -> int:
    try:
        configure_process()
        args = build_parser().parse_args(argv)
        if args.command == "playlist":
            from playlist.cli import run as run_playlist

            return run_playlist(args)
        if args.command == "serve":
            return run_serve(args)
        if args.command == "calibrate":
            return run_calibrate(args)
        if args.headless or args.benchmark:
            return run_headless(args)
        return run_app(args)
    except MoodtunesError as exc:
        error(str(exc))
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
