"""Spotify's JSON read tolerantly: a missing or null field skips the item instead of crashing the run."""

from __future__ import annotations

from dataclasses import dataclass

from playlist.builder import Track


@dataclass(frozen=True)
class Device:
    id: str
    name: str
    type: str = ""
    is_active: bool = False
    is_restricted: bool = False  # Spotify accepts no Web API commands for it


@dataclass(frozen=True)
class Playback:
    """What plays on the user's Spotify (GET /me/player)."""

    track: Track | None
    context_uri: str | None
    device: Device | None
    is_playing: bool


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


def parse_device(item: object) -> Device | None:
    """A Device from the device list, or None for one without an id (Spotify lists some that way)."""
    item = as_dict(item)
    device_id = nonblank(item.get("id"))
    if device_id is None:
        return None
    return Device(device_id, nonblank(item.get("name")) or "a Spotify device", nonblank(item.get("type")) or "",
                  item.get("is_active") is True, item.get("is_restricted") is True)


def parse_playback(body: object) -> Playback | None:
    """The playback state, or None when nothing plays (Spotify's 204, or an empty reply)."""
    body = as_dict(body)
    if not body:
        return None
    return Playback(parse_track(body.get("item")), nonblank(as_dict(body.get("context")).get("uri")),
                    parse_device(body.get("device")), body.get("is_playing") is True)
