"""The engine's one-line messages say what is true of the input at hand, and what to do."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT
from PIL import Image

from emotion.sources import SourceError, open_source


def run(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    """main.py with ``args``, after ``prelude`` (Python run first, in the same process)."""
    script = f"{prelude}\nimport sys, main\nsys.exit(main.main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_a_text_file_named_jpg_is_told_it_is_no_picture(tmp_path):
    notes = tmp_path / "notes.jpg"
    notes.write_text("shopping: milk, eggs")
    result = run("--source", str(notes), "--headless")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {notes} is not an image that moodtunes can read: its contents are no picture (or a damaged one), "
        "whatever its name says. Check the file, or save the picture again as JPEG or PNG."]


def test_a_picture_in_a_format_opencv_does_not_decode_is_told_so(tmp_path):
    icon = tmp_path / "icon.png"  # a Windows icon: a picture, but not one OpenCV decodes
    Image.new("RGB", (16, 16), "red").save(icon, format="ICO")
    with pytest.raises(SourceError) as caught:
        open_source(icon)
    assert str(caught.value) == (f"{icon} cannot be decoded: the picture is damaged or in a format moodtunes does "
                                 "not read. Save it again as JPEG or PNG.")


def test_a_missing_checkpoint_names_both_kinds_of_model_file():
    result = run("--checkpoint", "nonexistent", "--headless")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: Model not found: nonexistent. Check the path: --checkpoint takes a .pt checkpoint (from `python -m "
        "training.train`), a .onnx model (from `python -m training.export`) or a shipped model's name "
        "(emotion_ferplus, emotion_fer2013)."]


@pytest.mark.parametrize("args,why,instead", [
    (["--checkpoint", "checkpoints/emotion_ferplus.pt"], "(a .pt checkpoint, or --backend torch)",
     "or use an .onnx model (the shipped one by default) to run on the CPU without it."),
    (["--backend", "torch"], "(a .pt checkpoint, or --backend torch)",
     "or use an .onnx model (the shipped one by default) to run on the CPU without it."),
    (["--device", "cuda"], "(for --device cuda)", "or leave --device out to run on the CPU without it."),
])
def test_without_pytorch_the_message_names_only_what_asked_for_it(args, why, instead):
    result = run(*args, "--headless", prelude="import sys; sys.modules['torch'] = None")  # PyTorch not installed
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: PyTorch runs emotion_ferplus.pt here " + why)
    assert "is not installed: pip install" in line and line.endswith(instead)
    assert "--device auto" not in line
