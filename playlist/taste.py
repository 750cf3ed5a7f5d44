"""What the user liked and skipped, per mood: the DJ's memory, used by every later playlist and queue.

A like remembers the track and its artists as liked for the mood it was picked for (liked artists
come first in later picks for that mood); a skip remembers the track as not for that mood (it is
never picked for it again). One small JSON file in the user's config folder, mode 0600 (it says
what someone listens to), replaced atomically; ``moodtunes playlist --forget-taste`` deletes it.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from emotion.atomic import atomic_write, read_json_object
from emotion.paths import config_dir
from playlist.builder import Track

TASTE_FILENAME = "taste.json"
MAX_PER_LIST = 500  # per mood and list: a long-lived memory stays a small file


def _as_json(track: Track) -> dict:
    return {"id": track.id, "uri": track.uri, "name": track.name, "artists": list(track.artists)}


def _from_json(item: object) -> Track | None:
    if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("id", "uri", "name")):
        return None
    artists = item.get("artists") if isinstance(item.get("artists"), list) else []
    return Track(item["id"], item["uri"], item["name"], tuple(a for a in artists if isinstance(a, str)))


class TasteMemory:
    """Liked and skipped tracks per mood, in one file; every call reads it again (another moodtunes may write)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of_user(cls) -> TasteMemory:
        """The user's own, in the config folder (``MOODTUNES_CONFIG_DIR`` moves it)."""
        return cls(config_dir() / TASTE_FILENAME)

    def _read(self) -> dict:
        return read_json_object(self.path)

    def _tracks(self, data: dict, mood: str, kind: str) -> list[Track]:
        entry = data.get(mood) if isinstance(data.get(mood), dict) else {}
        items = entry.get(kind) if isinstance(entry.get(kind), list) else []
        return [t for t in map(_from_json, items) if t is not None]

    def liked(self, mood: str) -> list[Track]:
        """Liked for ``mood``, the latest first."""
        return self._tracks(self._read(), mood, "liked")

    def skipped(self, mood: str) -> list[Track]:
        return self._tracks(self._read(), mood, "skipped")

    def liked_artists(self, mood: str) -> list[str]:
        """The artists of the tracks liked for ``mood``, the latest first, each once."""
        return list(dict.fromkeys(a for t in self.liked(mood) for a in t.artists))

    def like(self, mood: str, track: Track) -> None:
        self._remember(mood, track, "liked", "skipped")

    def skip(self, mood: str, track: Track) -> None:
        self._remember(mood, track, "skipped", "liked")

    def _remember(self, mood: str, track: Track, kind: str, other: str) -> None:
        data = self._read()
        keep = [t for t in self._tracks(data, mood, kind) if t.id != track.id]
        data[mood] = {kind: [_as_json(t) for t in [track, *keep][:MAX_PER_LIST]],
                      other: [_as_json(t) for t in self._tracks(data, mood, other) if t.id != track.id]}
        atomic_write(self.path, json.dumps(data, indent=1).encode("utf-8"), mode=0o600)

    def forget(self) -> bool:
        """Delete everything remembered; True if there was something."""
        existed = self.path.exists()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        return existed
