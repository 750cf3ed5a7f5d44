"""Build a playlist for a mood from track searches: no HTTP, no Qt, just choices.

The builder asks a :class:`TrackSearch` (the Spotify client, or anything with the same
method) for tracks page by page (Spotify allows at most 10 per page since 2026), interleaves
the profile's queries for variety, drops duplicates (same track id, or same main artist and
title: remasters, live cuts and re-releases), allows at most ``max_per_artist`` tracks per
artist, and is deterministic for a given seed. When the profile's queries (often genre
filters, which return little in some markets) leave the playlist short, its plain-keyword
fallback queries fill it up.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from playlist.profiles import MoodProfile, plan_stages

PAGE_SIZE = 10  # Spotify's search maximum for development-mode apps (2026)


@dataclass(frozen=True)
class Track:
    id: str
    uri: str
    name: str
    artists: tuple[str, ...]
    url: str = ""

    @property
    def main_artist(self) -> str:
        return self.artists[0] if self.artists else ""

    def __str__(self) -> str:
        return f"{', '.join(self.artists)} - {self.name}"


@dataclass(frozen=True)
class SearchPage:
    tracks: list[Track]  # the usable tracks of the page
    raw_count: int  # items Spotify returned, unusable (null) ones included: what paging goes by
    total: int | None = None  # all results of the query, when Spotify said

    def is_last(self, offset: int, limit: int) -> bool:
        return self.raw_count < limit or (self.total is not None and offset + self.raw_count >= self.total)


class TrackSearch(Protocol):
    def search_tracks(self, query: str, limit: int, offset: int) -> SearchPage: ...


def normalized_title(title: str) -> str:
    """'Song (Remastered 2011) - Live' -> 'song': what makes two releases the same song."""
    title = re.sub(r"\s*[(\[].*?[)\]]", "", title.lower())
    title = re.split(r"\s+-\s+", title)[0]
    title = re.sub(r"\s+(feat\.?|ft\.?|featuring)\s.*$", "", title)
    return re.sub(r"[^\w]+", " ", title).strip()


def song_of(track: Track) -> tuple[str, str]:
    """(main artist, normalized title): what makes two tracks the same song."""
    return track.main_artist.lower(), normalized_title(track.name)


class _Picker:
    """The playlist so far and the rules a new track must pass."""

    def __init__(self, max_per_artist: int, exclude: Iterable[Track] = ()) -> None:
        self.max_per_artist = max_per_artist
        self.tracks: list[Track] = []
        excluded = list(exclude)  # refused like duplicates, without counting towards any artist
        self._ids: set[str] = {t.id for t in excluded}
        self._songs: set[tuple[str, str]] = {song_of(t) for t in excluded}
        self._per_artist: Counter[str] = Counter()

    def add(self, track: Track) -> bool:
        artist = track.main_artist.lower()
        song = song_of(track)
        if track.id in self._ids or song in self._songs or self._per_artist[artist] >= self.max_per_artist:
            return False
        self._ids.add(track.id)
        self._songs.add(song)
        self._per_artist[artist] += 1
        self.tracks.append(track)
        return True


def build_playlist(
    profiles: dict[str, MoodProfile],
    emotion: str,
    search: TrackSearch,
    strategy: str = "match",
    size: int | None = None,
    seed: int = 0,
    taste_artists: Sequence[str] = (),
    taste_share: float = 0.2,
    max_pages: int = 3,
    max_per_artist: int = 2,
    progress: Callable[[str], None] | None = None,
    exclude: Iterable[Track] = (),
) -> list[Track]:
    """Up to ``size`` tracks (default: the profile's size) for ``emotion``, none of them (or the same song
    as one) in ``exclude``: tracks skipped for this mood, or already played or queued in this session."""
    size = size or profiles[emotion].size
    rng = random.Random(seed)
    picker = _Picker(max_per_artist, exclude)
    for profile, count in plan_stages(profiles, emotion, strategy, size):
        if progress:
            progress(f"Finding {profile.emotion} tracks...")
        goal = len(picker.tracks) + count
        taste = [f'artist:"{name}" {profile.keyword}' for name in taste_artists]
        if taste:
            _fill(picker, search, taste, len(picker.tracks) + round(count * taste_share), rng, 1)
        for queries in (list(profile.queries), list(profile.fallback_queries)):
            rng.shuffle(queries)
            _fill(picker, search, queries, goal, rng, max_pages)
    return picker.tracks[:size]


def _fill(picker: _Picker, search: TrackSearch, queries: list[str], goal: int, rng: random.Random,
          max_pages: int) -> None:
    """Add tracks round-robin over ``queries``, one page per query per turn, up to ``goal``."""
    # Each query starts at a seeded random page, so each seed gives a different cut of the results.
    pages: dict[str, list[int]] = {}
    for query in queries:
        first = rng.randrange(max_pages)
        pages[query] = [(first + i) % max_pages for i in range(max_pages)]
    while any(pages.values()):
        for query in queries:
            if len(picker.tracks) >= goal:
                return
            if not pages[query]:
                continue
            page = pages[query].pop(0)
            results = search.search_tracks(query, limit=PAGE_SIZE, offset=page * PAGE_SIZE)
            if results.is_last(page * PAGE_SIZE, PAGE_SIZE):  # no later page has anything
                pages[query] = [p for p in pages[query] if p < page]
            for track in results.tracks:
                if len(picker.tracks) >= goal:
                    return
                picker.add(track)
