"""From a mood to a playlist in the user's Spotify account: the one call the app makes."""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from playlist.builder import Track, build_playlist
from playlist.profiles import load_profiles
from playlist.spotify import SignInRequired, SpotifyAuth, SpotifyClient, SpotifyError, load_config

# spotipy logs failed requests (and, at debug level, request headers) on its own; moodtunes
# reports errors itself, once, and never lets a token reach a log.
logging.getLogger("spotipy").setLevel(logging.CRITICAL)


@dataclass
class PlaylistResult:
    name: str
    tracks: list[Track]
    url: str | None = None  # None for a dry run
    track_count: int = 0
    notes: list[str] = field(default_factory=list)


def playlist_name(emotion: str, when: datetime) -> str:
    return f"moodtunes · {emotion.capitalize()} · {when:%Y-%m-%d %H:%M}"


def playlist_description(emotion: str, confidence: float | None, strategy: str) -> str:
    certainty = f" ({confidence:.0%} confidence)" if confidence is not None else ""
    how = "matches" if strategy == "match" else "starts from and then lifts"
    return f"Made by moodtunes from your face: {emotion}{certainty}. This playlist {how} that mood."


def web_search_url(emotion: str) -> str:
    """Spotify's web search for the mood's first query: the fallback without credentials."""
    query = load_profiles()[emotion].queries[0]
    return "https://open.spotify.com/search/" + urllib.parse.quote(query)


def make_playlist(
    emotion: str,
    confidence: float | None = None,
    strategy: str = "match",
    *,
    dry_run: bool = False,
    seed: int | None = None,
    size: int | None = None,
    use_taste: bool = True,
    progress: Callable[[str], None] = lambda message: None,
    cancel: threading.Event | None = None,
    open_url: Callable[[str], object] | None = None,
) -> PlaylistResult:
    """Sign in if needed, pick tracks for ``emotion``, create the playlist and open it.

    Raises NotConfigured (with the setup steps) when there is no Spotify client id, and
    other SpotifyError subclasses with a one-line reason for everything that can go wrong.
    """
    profiles = load_profiles()
    config = load_config()
    auth = SpotifyAuth(config, open_browser=open_url)
    if not auth.signed_in:
        progress("Sign in to Spotify in your browser...")
        auth.sign_in(cancel=cancel)
    client = SpotifyClient(auth)
    notes: list[str] = []
    taste: list[str] = []
    if use_taste:
        progress("Reading your favourite artists...")
        try:
            taste = client.top_artists()
        except SignInRequired:
            raise
        except SpotifyError as exc:  # taste is a bonus; the mood playlist still works without it
            notes.append(f"Your favourite artists were not blended in: {exc}")
    tracks = build_playlist(profiles, emotion, client, strategy=strategy, size=size,
                            seed=int(time.time()) if seed is None else seed, taste_artists=taste, progress=progress)
    if not tracks:
        raise SpotifyError(f"Spotify's search found no tracks for {emotion}; edit the queries in profiles.toml.")
    name = playlist_name(emotion, datetime.now())
    if dry_run:
        return PlaylistResult(name, tracks, None, len(tracks), notes)
    progress(f"Creating {name}...")
    created = client.create_playlist(name, playlist_description(emotion, confidence, strategy))
    client.add_tracks(created["id"], [t.uri for t in tracks])
    url = (created.get("external_urls") or {}).get("spotify") or f"https://open.spotify.com/playlist/{created['id']}"
    if open_url is not None:
        open_url(url)
    return PlaylistResult(name, tracks, url, client.playlist_size(created["id"]), notes)
