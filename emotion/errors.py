"""How a problem the user can fix reaches them: as one line that says what to do."""

from __future__ import annotations


class MoodtunesError(Exception):
    """A problem the user can fix; str(error) is one line that says what to do."""


class CheckpointError(MoodtunesError):
    """The model file is missing, damaged or does not fit this version of moodtunes."""

