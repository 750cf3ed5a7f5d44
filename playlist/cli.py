"""`moodtunes playlist --mood happy | --photo me.jpg [--strategy lift] [--dry-run] [--new]`."""

from __future__ import annotations

import argparse
import sys
import webbrowser

from emotion.classes import EMOTIONS
from playlist.profiles import STRATEGIES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--mood", choices=EMOTIONS, help="the emotion to make a playlist for")
    what.add_argument("--photo", help="a photo: the playlist is for the mood of its main face")
    parser.add_argument("--strategy", choices=STRATEGIES, default="match",
                        help="match the mood (default) or start there and lift it")
    parser.add_argument("--dry-run", action="store_true", help="print the tracks, create nothing")
    parser.add_argument("--new", action="store_true",
                        help="make a new playlist even if one was made for this mood in the last 15 minutes")
    parser.add_argument("--size", type=int, help="number of tracks (default: the profile's, 25)")
    parser.add_argument("--seed", type=int, help="same seed, same playlist (default: a new one each time)")
    parser.add_argument("--no-taste", action="store_true", help="do not blend in your favourite artists")
    parser.add_argument("--no-open", action="store_true", help="do not open the browser (links are printed)")


def run(args: argparse.Namespace) -> int:
    from emotion.cli import error
    from playlist.make import make_playlist, web_search_url
    from playlist.spotify import NotConfigured

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def open_url(url: str) -> None:
        if not args.no_open:
            webbrowser.open(url)

    confidence = None
    if args.photo:
        args.mood, confidence = mood_of_photo(args)
        say(f"{args.photo}: {args.mood} ({confidence:.0%})")
    try:
        result = make_playlist(
            args.mood, confidence, strategy=args.strategy, dry_run=args.dry_run, new=args.new, seed=args.seed,
            size=args.size, use_taste=not args.no_taste, progress=say, open_url=open_url,
            show_link=lambda url: say(f"If no browser opens, open this link to sign in to Spotify: {url}"),
            again="run this command again", new_hint=" (add --new to make another now)",
        )
    except NotConfigured as exc:
        if args.dry_run:  # a dry run searches Spotify too, and searching needs a sign-in
            error(str(exc))
        else:
            error(f"{exc} Meanwhile, Spotify's web search for {args.mood} music: {web_search_url(args.mood)}")
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
