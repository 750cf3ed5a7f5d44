"""The argument parser every ``python -m training.<script>`` starts from."""

from __future__ import annotations

import argparse
from pathlib import Path

from emotion.cli import ArgumentParser
from emotion.errors import MoodtunesError
from training.datasets import DATA_HELP, DATASETS


def script_parser(module: str, doc: str) -> argparse.ArgumentParser:
    """A parser named as the script is run (``python -m training.x``), not as ``x.py``, whose help is
    the module docstring: its first line as the summary, the rest (usage examples) after the options.
    A bad argument gets one line, as in the app."""
    summary, _, details = doc.strip("\n").partition("\n")
    return ArgumentParser(prog=f"python -m {module}", description=summary,
                          epilog=details.strip("\n") or None,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_dataset_arguments(p: argparse.ArgumentParser) -> None:
    """``--dataset`` and ``--data``, as every script that reads faces takes them."""
    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--data", required=True, help=DATA_HELP)


def output_file(path: str, suffix: str) -> Path:
    """``--out`` as the file to write, checked before any work: not a folder, and named for what it holds
    (a checkpoint named .onnx would only fail later, in whatever opens it)."""
    out = Path(path)
    if out.is_dir():
        raise MoodtunesError(f"--out {path} is a folder; name the file to write, e.g. {out / ('model' + suffix)}.")
    if out.suffix.lower() != suffix:
        raise MoodtunesError(f"--out {path}: this writes a {suffix} file; name it so, e.g. {out.with_suffix(suffix)}.")
    return out
