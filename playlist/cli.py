"""`moodtunes playlist --mood happy | --photo me.jpg [--strategy lift] [--dry-run] [--new] [--no-play]`,
`moodtunes playlist --forget-taste`."""

from __future__ import annotations

import argparse
import json
import math
import sys
import webbrowser
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playlist.dj import DJAction, FollowSettings

from emotion.classes import EMOTIONS
from playlist.profiles import STRATEGIES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--mood", choices=EMOTIONS, help="the emotion to make a playlist for")
    what.add_argument("--photo", help="a photo: the playlist is for the mood of its main face")
    what.add_argument("--forget-taste", action="store_true",
                      help="forget the tracks you liked and skipped (the DJ's memory), then stop")
    parser.add_argument("--strategy", choices=STRATEGIES, default="match",
                        help="match the mood (default) or start there and lift it")
    parser.add_argument("--dry-run", action="store_true", help="print the tracks, create nothing")
    parser.add_argument("--new", action="store_true",
                        help="make a new playlist even if one was made for this mood in the last 15 minutes")
    parser.add_argument("--size", type=int, help="number of tracks (default: the profile's, 25)")
    parser.add_argument("--seed", type=int, help="same seed, same playlist (default: a new one each time)")
    parser.add_argument("--no-taste", action="store_true", help="do not blend in your favourite artists")
    parser.add_argument("--no-open", action="store_true", help="do not open the browser (links are printed)")
    parser.add_argument("--no-play", action="store_true",
                        help="only make the playlist; do not start it on your Spotify (playing needs Premium)")


DJ_WAIT_S = 20.0  # at the end of a file, how long --headless waits for the DJ's pending requests


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds: give 0 or more")
    return value


def add_follow_arguments(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """--follow and its timings: the music follows the mood (Spotify Premium; see the README's DJ section).
    Subcommands pass argparse.SUPPRESS, so that the options can go either side of the command's name."""
    from playlist.dj import FollowSettings

    defaults = FollowSettings()  # None below: not given (the window's settings tell "not given" from the default)

    def given(value: bool | None) -> bool | None | str:
        return value if default is None else default

    parser.add_argument("--follow", action="store_true", default=given(False),
                        help="the DJ: start music when a mood holds, and queue tracks for each new mood that holds")
    parser.add_argument("--follow-hold", type=seconds, default=given(None), metavar="S",
                        help="how long a new mood must hold before the music follows it "
                             f"(default: {defaults.hold_s:g} s)")
    parser.add_argument("--follow-gap", type=seconds, default=given(None), metavar="S",
                        help=f"the least time between two changes of the music (default: {defaults.gap_s:g} s)")


def follow_settings(hold_s: float | None, gap_s: float | None, strategy: str = "match") -> FollowSettings:
    """The DJ's timings as --follow-hold / --follow-gap give them (None: the default)."""
    from playlist.dj import FollowSettings

    given = {name: value for name, value in (("hold_s", hold_s), ("gap_s", gap_s)) if value is not None}
    return FollowSettings(strategy=strategy, **given)


class HeadlessFollower:
    """--headless --follow: the DJ fed from the analysis loop, each action printed as a JSON line."""

    def __init__(self, args: argparse.Namespace, say: Callable[[str], None]) -> None:
        from playlist.dj_worker import DJSession, DJWorker

        worker = DJWorker.for_user("run this again", say)
        self.session = DJSession(worker, follow_settings(args.follow_hold, args.follow_gap), following=True)
        self.counts: Counter[str] = Counter()

    def frame(self, t: float, mood: str | None) -> None:
        self._print(self.session.observe(t, mood))

    def finish(self, timeout: float = DJ_WAIT_S) -> dict[str, int]:
        """Wait (at most ``timeout`` s) for pending requests, print their actions, stop; the count of each action."""
        self._print(self.session.wait(timeout))
        self.session.close()
        return dict(self.counts)

    def _print(self, actions: list[DJAction]) -> None:
        for action in actions:
            self.counts[action.action] += 1
            print(json.dumps(action.as_json()), flush=True)


def run(args: argparse.Namespace) -> int:
    from emotion.cli import error
    from playlist.make import make_playlist, web_search_url
    from playlist.spotify import NotConfigured
    from playlist.spotify_setup import DASHBOARD_URL, README_SETUP

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def open_url(url: str) -> None:
        if not args.no_open:
            webbrowser.open(url)

    if args.forget_taste:
        return forget_taste()
    confidence = None
    if args.photo:
        args.mood, confidence = mood_of_photo(args)
        say(f"{args.photo}: {args.mood} ({confidence:.0%})")
    try:
        result = make_playlist(
            args.mood, confidence, strategy=args.strategy, dry_run=args.dry_run, new=args.new, seed=args.seed,
            size=args.size, use_taste=not args.no_taste, progress=say, open_url=open_url,
            show_link=lambda url: say(f"{'Next' if args.no_open else 'If no browser opens'}, open this link to sign "
                                      f"in to Spotify: {url}"),
            again="run this command again", new_hint=" (add --new to make another now)", play=not args.no_play,
        )
    except NotConfigured as exc:
        if args.dry_run:  # a dry run searches Spotify too, so it says what is missing and where the steps are
            error(f"Spotify is not set up: {exc.missing}. `moodtunes playlist --help` lists the "
                  f"{len(exc.steps)} steps that get one at {DASHBOARD_URL}.")
        else:
            error(f"Spotify is not set up: {exc.missing}. Set it up once, in {len(exc.steps)} steps "
                  f"({README_SETUP} says more):")
            for step in exc.steps:
                say(f"  {step}")
            say(f"Meanwhile, Spotify's web search for {args.mood} music: {web_search_url(args.mood)}")
        return 2
    for note in result.notes:
        say(f"note: {note}")
    for i, track in enumerate(result.tracks, 1):
        print(f"{i:2d}. {track}")
    if result.url is None:
        print(f"Dry run: {result.name} would get these {len(result.tracks)} tracks.")
    elif result.reused:
        print(f"{result.name} ({result.track_count} tracks): {result.url}")
    else:
        print(f"Created {result.name} with {result.track_count} of {len(result.tracks)} tracks: {result.url}")
    if result.device:
        print(f"Playing on {result.device}.")
    elif result.play_problem:  # made but not started, as asked: the line says why, with the playlist's link
        error(f"{result.play_problem} The playlist: {result.url}")
        return 2
    return 0


def forget_taste() -> int:
    from playlist.taste import TasteMemory

    memory = TasteMemory.of_user()
    if memory.forget():
        print(f"Forgot the tracks you liked and skipped ({memory.path} deleted).")
    else:
        print("Nothing to forget: no liked or skipped tracks are remembered.")
    return 0


def mood_of_photo(args: argparse.Namespace) -> tuple[str, float]:
    """The emotion and confidence of the main face in ``args.photo`` (MoodtunesError when there is none)."""
    from emotion.cli import settings_from_args, warn
    from emotion.errors import MoodtunesError
    from emotion.smoothing import main_face
    from emotion.sources import read_image

    image = read_image(args.photo, warn=warn)
    faces = settings_from_args(args).engine.make_recognizer().analyze(image)
    if not faces:
        raise MoodtunesError(f"No face found in {args.photo}; use a photo where a face is clearly visible, "
                             "or say the mood with --mood.")
    face = main_face(faces, (image.shape[1], image.shape[0]))
    return face.label, face.confidence
