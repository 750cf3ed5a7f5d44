"""The one exception type that user-facing code turns into a one-line message."""


class MoodtunesError(Exception):
    """A problem the user can fix; str(error) is one line that says what to do."""


class CheckpointError(MoodtunesError):
    """The model file is missing, damaged or does not fit this version of moodtunes."""
