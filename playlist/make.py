"""From a mood to a playlist in the user's Spotify account: the one call the app makes.

Once a playlist exists, the result always carries its name and link, with what went wrong
after it ("created, 0 of 25 tracks added: ..."). Asking again for the same mood and strategy
within REUSE_MINUTES does not make a duplicate: it reuses that playlist, and first adds the
tracks that a failure left out.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from emotion.atomic import atomic_write, read_json_object
from playlist.builder import Track, build_playlist
from playlist.player import start_playlist
from playlist.profiles import MoodProfile, load_profiles
from playlist.spotify import SignInRequired, SpotifyAuth, SpotifyClient, SpotifyError, load_config
from playlist.spotify.auth import PLAYER_SCOPES
from playlist.spotify.errors import PermissionNeeded, permission_message
from playlist.taste import TASTE_FILENAME, TasteMemory

# spotipy logs failed requests (and, at debug level, request headers) on its own; moodtunes
# reports errors itself, once, and never lets a token reach a log.
logging.getLogger("spotipy").setLevel(logging.CRITICAL)

REUSE_MINUTES = 15
RECENT_FILENAME = "recent_playlists.json"


@dataclass
class PlaylistResult:
    name: str
    tracks: list[Track]
    url: str | None = None  # None for a dry run
    track_count: int = 0  # what the playlist holds: the tracks Spotify accepted
    notes: list[str] = field(default_factory=list)
    reused: bool = False  # the playlist made a few minutes ago for the same mood
    playlist_id: str | None = None
    device: str | None = None  # the name of the device it started playing on
    play_error: SpotifyError | None = None  # why it did not start, when it was asked to

    @property
    def play_problem(self) -> str | None:
        """Why it did not start, in one line."""
        return str(self.play_error) if self.play_error else None

    @property
    def uri(self) -> str | None:
        return f"spotify:playlist:{self.playlist_id}" if self.playlist_id else None


def playlist_name(emotion: str, when: datetime) -> str:
    return f"moodtunes · {emotion.capitalize()} · {when:%Y-%m-%d %H:%M}"


def playlist_description(emotion: str, confidence: float | None, strategy: str) -> str:
    certainty = f" ({confidence:.0%} confidence)" if confidence is not None else ""
    how = "matches" if strategy == "match" else "starts from and then lifts"
    return f"Made by moodtunes from your face: {emotion}{certainty}. This playlist {how} that mood."


def web_search_url(emotion: str) -> str:
    """Spotify's web search for the mood's first plain query: the fallback without credentials."""
    profile = load_profiles()[emotion]
    return "https://open.spotify.com/search/" + urllib.parse.quote((profile.fallback_queries or profile.queries)[0])


class RecentPlaylists:
    """Playlists made in the last minutes, per mood and strategy, in the config folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict:
        return read_json_object(self.path)

    def find(self, emotion: str, strategy: str, now: float) -> dict | None:
        """The entry made less than REUSE_MINUTES ago, or None (also for one that a damaged file garbled)."""
        entry = self._read().get(f"{emotion}/{strategy}")
        try:
            fresh = 0 <= now - float(entry["created"]) < REUSE_MINUTES * 60
            entry["added"] = int(entry.get("added", 0))
            whole = all(isinstance(entry[k], str) for k in ("id", "url", "name")) and all(
                isinstance(item, list) and len(item) == 5 for item in entry["tracks"])
        except (TypeError, KeyError, ValueError, AttributeError):
            return None
        return entry if fresh and whole else None

    def remember(self, emotion: str, strategy: str, entry: dict) -> None:
        data = self._read()
        data[f"{emotion}/{strategy}"] = entry
        with contextlib.suppress(OSError):  # only the duplicate check is lost; the playlist itself is fine
            atomic_write(self.path, json.dumps(data).encode("utf-8"), mode=0o600)


def _stored(track: Track) -> list:
    return [track.id, track.uri, track.name, list(track.artists), track.url]


def _restored(item: list) -> Track:
    return Track(item[0], item[1], item[2], tuple(item[3]), item[4])


def make_playlist(
    emotion: str,
    confidence: float | None = None,
    strategy: str = "match",
    *,
    dry_run: bool = False,
    new: bool = False,
    seed: int | None = None,
    size: int | None = None,
    use_taste: bool = True,
    progress: Callable[[str], None] = lambda message: None,
    cancel: threading.Event | None = None,
    open_url: Callable[[str], object] | None = None,
    show_link: Callable[[str], object] | None = None,
    again: str = "try again",
    new_hint: str = "",
    sign_in: bool = True,
    play: bool = False,
    exclude: list[Track] | None = None,
) -> PlaylistResult:
    """Sign in if needed, pick tracks for ``emotion``, create the playlist, open it, and with ``play`` start it.

    Raises NotConfigured (with the setup steps) when there is no Spotify client id, and other
    SpotifyError subclasses with a one-line reason while nothing has been created yet. ``again``
    names how the user retries in this front end; ``new`` skips the reuse of a recent playlist;
    ``sign_in=False`` raises SignInRequired instead of waiting for a browser sign-in. ``exclude``: tracks
    not to pick (the session's); those skipped for this mood are never picked. A playlist that cannot
    start (no Premium, no device) is still made: ``play_error`` says why, in one line.
    """
    profiles = load_profiles()
    config = load_config()
    recent = RecentPlaylists(config.config_dir / RECENT_FILENAME)
    auth = SpotifyAuth(config, open_browser=open_url, show_link=show_link, again=again)
    if not auth.signed_in:
        if not sign_in:
            raise SignInRequired(f"Not signed in to Spotify; {again} to sign in.")
        progress("Sign in to Spotify in your browser...")
        auth.sign_in(cancel=cancel)
    client = SpotifyClient(auth)
    notes: list[str] = []

    taste = TasteMemory(config.config_dir / TASTE_FILENAME)
    previous = None if dry_run or new else recent.find(emotion, strategy, time.time())
    if previous is not None and {t.uri for t in taste.skipped(emotion)} & {item[1] for item in previous["tracks"]}:
        previous = None  # it holds a track skipped for this mood since: a skipped track never plays again for it
    if previous is not None:
        result = _reuse(previous, client, emotion, strategy, recent, progress, again, new_hint)
    else:
        result = _create(profiles, client, emotion, confidence, strategy, recent, dry_run, seed, size, use_taste,
                         progress, again, notes, taste, exclude or [])
    if play and result.uri and result.track_count:  # an empty playlist (its tracks failed) has nothing to play
        _start(auth, client, result, again, sign_in, cancel, progress)
    if auth.cache.problem:
        result.notes.append(auth.cache.problem)
    if result.url and open_url is not None:
        open_url(result.url)
    return result


def _start(auth: SpotifyAuth, client: SpotifyClient, result: PlaylistResult, again: str, sign_in: bool,
           cancel: threading.Event | None, progress: Callable[[str], None]) -> None:
    """Start the made playlist; what stops it becomes ``play_error``: the playlist stays made, its link shown."""
    try:
        if auth.missing_scopes(PLAYER_SCOPES):  # a sign-in from before the DJ: ask once more, saying why
            if not sign_in:
                raise PermissionNeeded(permission_message(again))
            progress("Sign in to Spotify once more, to let moodtunes start the music on your device...")
            auth.sign_in(cancel=cancel)
        progress(f"Starting {result.name}...")
        result.device = start_playlist(client, result.uri or "", again).name
    except SpotifyError as exc:
        result.play_error = exc


def _create(profiles: dict[str, MoodProfile], client: SpotifyClient, emotion: str, confidence: float | None,
            strategy: str, recent: RecentPlaylists, dry_run: bool, seed: int | None, size: int | None,
            use_taste: bool, progress: Callable[[str], None], again: str, notes: list[str], taste: TasteMemory,
            exclude: list[Track]) -> PlaylistResult:
    artists: list[str] = []
    if use_taste:
        progress("Reading your favourite artists...")
        artists = taste.liked_artists(emotion)  # liked for this mood first, then the all-time favourites
        try:
            artists = list(dict.fromkeys([*artists, *client.top_artists()]))
        except SignInRequired:
            raise
        except SpotifyError as exc:  # taste is a bonus; the mood playlist still works without it
            notes.append(f"Your favourite artists were not blended in: {exc}")
    tracks = build_playlist(profiles, emotion, client, strategy=strategy, size=size,
                            seed=int(time.time()) if seed is None else seed, taste_artists=artists, progress=progress,
                            exclude=[*exclude, *taste.skipped(emotion)])
    if not tracks:
        raise SpotifyError(f"Spotify's search found no tracks for {emotion}; edit the queries in profiles.toml.")
    wanted = size or profiles[emotion].size
    if len(tracks) < wanted:
        notes.append(f"Spotify's search gave {len(tracks)} suitable tracks, not {wanted}.")
    name = playlist_name(emotion, datetime.now())
    if dry_run:
        return PlaylistResult(name, tracks, None, len(tracks), notes)

    progress(f"Creating {name}...")
    playlist_id, url = client.create_playlist(name, playlist_description(emotion, confidence, strategy))
    entry = {"id": playlist_id, "url": url, "name": name, "created": time.time(),
             "tracks": [_stored(t) for t in tracks], "added": 0}
    recent.remember(emotion, strategy, entry)  # before adding: a crash mid-way still prevents a duplicate
    _add(client, entry, recent, emotion, strategy, progress, again, notes)
    return PlaylistResult(name, tracks, url, entry["added"], notes, playlist_id=playlist_id)


def _reuse(entry: dict, client: SpotifyClient, emotion: str, strategy: str, recent: RecentPlaylists,
           progress: Callable[[str], None], again: str, new_hint: str) -> PlaylistResult:
    tracks = [_restored(item) for item in entry["tracks"]]
    minutes = max(1, round((time.time() - float(entry["created"])) / 60))
    notes: list[str] = []
    try:
        held = client.playlist_size(entry["id"])
    except SpotifyError:
        held = None
    if held is not None and held >= len(tracks):
        entry["added"] = len(tracks)
    if entry["added"] < len(tracks):
        progress(f"Finishing {entry['name']}...")
        before = entry["added"]
        _add(client, entry, recent, emotion, strategy, progress, again, notes)
        notes.insert(0, f"Finished the playlist made {minutes} min ago for {emotion}: "
                        f"{entry['added'] - before} more tracks added.")
    else:
        notes.append(f"You made this playlist {minutes} min ago for {emotion} ({strategy}); here it is again, no "
                     f"duplicate made. For {REUSE_MINUTES} minutes the same mood reuses it{new_hint}.")
    return PlaylistResult(entry["name"], tracks, entry["url"], entry["added"], notes, reused=True,
                          playlist_id=entry["id"])


def _add(client: SpotifyClient, entry: dict, recent: RecentPlaylists, emotion: str, strategy: str,
         progress: Callable[[str], None], again: str, notes: list[str]) -> None:
    """Add the entry's tracks that are not in the playlist yet; a failure becomes a note, not an error."""
    uris = [item[1] for item in entry["tracks"]]

    def took(n: int) -> None:
        entry["added"] += n
        recent.remember(emotion, strategy, entry)

    try:
        progress(f"Adding {len(uris) - entry['added']} tracks...")
        client.add_tracks(entry["id"], uris[entry["added"]:], added=took)
    except SpotifyError as exc:
        notes.insert(0, f"Created, {entry['added']} of {len(uris)} tracks added: {exc} To add the rest, {again} "
                        f"within {REUSE_MINUTES} minutes: the same playlist is completed, not duplicated.")
