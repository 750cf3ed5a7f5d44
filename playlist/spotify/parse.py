"""Spotify's JSON read tolerantly: a missing or null field skips the item instead of crashing the run."""

from __future__ import annotations

from playlist.builder import Track


def parse_track(item: object) -> Track | None:
    """A Track from a search or playlist item, or None when an essential field is missing or null."""
    if not isinstance(item, dict):
        return None
    inner = item.get("item") or item.get("track")  # playlist entries wrap tracks
    if isinstance(inner, dict):
        item = inner
    track_id, uri, name = nonblank(item.get("id")), nonblank(item.get("uri")), nonblank(item.get("name"))
    if not (track_id and uri and name):
        return None
    artists = item.get("artists")
    names = tuple(a["name"] for a in (artists if isinstance(artists, list) else [])
                  if isinstance(a, dict) and nonblank(a.get("name")))
    return Track(id=track_id, uri=uri, name=name, artists=names,
                 url=nonblank(as_dict(item.get("external_urls")).get("spotify")) or "")


def nonblank(value: object) -> str | None:
    """A string field with its whitespace trimmed, or None when it is missing, not a string, or blank."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def as_dict(value: object) -> dict:
    """An object field, or an empty one when Spotify sent null or something else."""
    return value if isinstance(value, dict) else {}
