"""Mood profiles: the editable TOML that maps each emotion to music."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

from emotion.classes import EMOTIONS, STYLES
from emotion.errors import MoodtunesError
from emotion.paths import config_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BUNDLED_PROFILES = Path(__file__).with_name("profiles.toml")
STRATEGIES = ("match", "lift")


@dataclass(frozen=True)
class MoodProfile:
    emotion: str
    valence: float
    arousal: float
    queries: tuple[str, ...]
    fallback_queries: tuple[str, ...]  # plain keywords, for when field filters find too little
    keyword: str
    size: int
    lift_to: str


def read_toml(path: Path) -> dict:
    """A TOML file as a dict; an unreadable or invalid file is a one-line MoodtunesError."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise MoodtunesError(f"Cannot read {path}: {exc}.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise MoodtunesError(f"{path} is not valid TOML ({exc}); fix it or delete it to use the defaults.") from exc


def load_profiles(path: str | Path | None = None) -> dict[str, MoodProfile]:
    """Profiles from ``path``, else the user's profiles.toml, else the bundled file."""
    if path is None:
        user_file = config_dir() / "profiles.toml"
        path = user_file if user_file.is_file() else BUNDLED_PROFILES
    path = Path(path)
    data = read_toml(path)
    profiles = {}
    for emotion in EMOTIONS:
        entry = data.get(emotion)
        if not isinstance(entry, dict):
            raise MoodtunesError(f"{path} has no [{emotion}] profile; every one of {', '.join(EMOTIONS)} needs one.")
        keyword = str(entry.get("keyword", emotion))
        try:
            profile = MoodProfile(
                emotion=emotion,
                valence=float(entry.get("valence", STYLES[emotion].valence)),
                arousal=float(entry.get("arousal", STYLES[emotion].arousal)),
                queries=tuple(str(q) for q in entry["queries"]),
                fallback_queries=tuple(str(q) for q in entry.get("fallback_queries", [keyword, f"{keyword} music"])),
                keyword=keyword,
                size=int(entry.get("size", 25)),
                lift_to=str(entry.get("lift_to", emotion)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MoodtunesError(
                f"{path}: [{emotion}] needs queries (a list of strings), and valence and arousal, where given, "
                f"are numbers: {exc}."
            ) from exc
        if not profile.queries or profile.size < 1 or profile.lift_to not in EMOTIONS:
            raise MoodtunesError(
                f"{path}: [{emotion}] needs at least one query, a positive size and lift_to one of "
                f"{', '.join(EMOTIONS)}."
            )
        profiles[emotion] = profile
    return profiles


def plan_stages(
    profiles: dict[str, MoodProfile], emotion: str, strategy: str, size: int
) -> list[tuple[MoodProfile, int]]:
    """Which profile plays how many tracks, in order.

    match: all tracks from the emotion's own profile. lift: walk from the emotion's
    valence/arousal point to its ``lift_to`` profile's in equal steps, each step taking the
    nearest profile; consecutive steps on the same profile merge.
    """
    if strategy not in STRATEGIES:
        raise MoodtunesError(f"Unknown strategy {strategy!r}: use {' or '.join(STRATEGIES)}.")
    start = profiles[emotion]
    if strategy == "match" or start.lift_to == emotion:
        return [(start, size)]
    end = profiles[start.lift_to]
    stages: list[tuple[MoodProfile, int]] = []
    for i in range(size):
        f = i / max(size - 1, 1)
        v = start.valence + f * (end.valence - start.valence)
        a = start.arousal + f * (end.arousal - start.arousal)
        nearest = min(profiles.values(), key=lambda p: math.hypot(p.valence - v, p.arousal - a))
        if stages and stages[-1][0] is nearest:
            stages[-1] = (nearest, stages[-1][1] + 1)
        else:
            stages.append((nearest, 1))
    return stages
