"""`python main.py playlist --mood happy [--strategy lift] [--dry-run]`."""

from __future__ import annotations

import argparse
import sys
import webbrowser

from emotion.classes import EMOTIONS
from playlist.profiles import STRATEGIES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mood", choices=EMOTIONS, required=True, help="the emotion to make a playlist for")
    parser.add_argument("--strategy", choices=STRATEGIES, default="match",
                        help="match the mood (default) or start there and lift it")
    parser.add_argument("--dry-run", action="store_true", help="print the tracks, create nothing")
    parser.add_argument("--size", type=int, help="number of tracks (default: the profile's, 25)")
    parser.add_argument("--seed", type=int, help="same seed, same playlist (default: a new one each time)")
    parser.add_argument("--no-taste", action="store_true", help="do not blend in your favourite artists")
    parser.add_argument("--no-open", action="store_true", help="do not open the browser (sign-in link is printed)")


def run(args: argparse.Namespace) -> int:
    from playlist.make import make_playlist, web_search_url
    from playlist.spotify import NotConfigured

    def open_url(url: str) -> None:
        if args.no_open:
            print(f"open: {url}", file=sys.stderr)
        else:
            webbrowser.open(url)

    try:
        result = make_playlist(
            args.mood, strategy=args.strategy, dry_run=args.dry_run, seed=args.seed, size=args.size,
            use_taste=not args.no_taste, progress=lambda m: print(m, file=sys.stderr), open_url=open_url,
        )
    except NotConfigured as exc:
        print(f"error: {exc}", file=sys.stderr)
        url = web_search_url(args.mood)
        print(f"Meanwhile, here is Spotify's web search for {args.mood} music: {url}", file=sys.stderr)
        open_url(url)
        return 2
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    for i, track in enumerate(result.tracks, 1):
        print(f"{i:2d}. {track}")
    if result.url:
        print(f"Created {result.name} with {result.track_count} tracks: {result.url}")
    else:
        print(f"Dry run: {result.name} would get these {len(result.tracks)} tracks.")
    return 0
