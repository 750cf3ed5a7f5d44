"""How a problem the user can fix reaches them: as one line that says what to do."""

from __future__ import annotations

import argparse
from typing import NoReturn


class MoodtunesError(Exception):
    """A problem the user can fix; str(error) is one line that says what to do."""


class CheckpointError(MoodtunesError):
    """The model file is missing, damaged or does not fit this version of moodtunes."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: what is wrong and where to look, without the usage block.

    Every command line of the project (the app and each ``python -m training.x``) builds this one."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
