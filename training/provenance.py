"""Where a model came from, as its checkpoint records it: the command's arguments and the git commit."""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

# Arguments that name files: stored relative (or by name) in shipped metadata, see portable_path.
PATH_ARGS = ("data", "out", "resume", "teacher", "init")


def portable_path(path: str) -> str:
    """``path`` as stored in shipped metadata: as given, or relative to the working folder, or its name.

    Absolute paths would publish the layout of the machine that trained the model.
    """
    if not os.path.isabs(path):
        return path
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return Path(path).name


def portable_args(args: argparse.Namespace) -> dict:
    """The run's arguments as stored in shipped metadata, paths made portable (see :func:`portable_path`)."""
    out = dict(vars(args))
    for key in PATH_ARGS:
        value = out.get(key)
        if isinstance(value, list):
            out[key] = [portable_path(v) for v in value]
        elif value:
            out[key] = portable_path(value)
    return out


def git_commit() -> str | None:
    """The commit the code was run from (``-dirty`` with uncommitted changes), or None outside git."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).resolve().parent).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None
