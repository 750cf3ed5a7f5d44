"""Private by default: analysing a photo writes nothing to the user's home (ONNX Runtime's telemetry
included), and a user's own ORT_DISABLE_TELEMETRY is kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from clips import astronaut
from conftest import ROOT

TELEMETRY = "ORT_DISABLE_TELEMETRY"


CI_VARIABLES = ("CI", "TF_BUILD", "GITHUB_ACTIONS", "JENKINS_URL", "GITLAB_CI", "TRAVIS", "CIRCLECI", "BUILDKITE")


def fresh_home_env(home: Path) -> dict[str, str]:
    """This process's environment with a new, empty home: every place a library could write to is inside it."""
    # ONNX Runtime keeps quiet by itself on a CI machine (CI, TF_BUILD, GITHUB_ACTIONS, JENKINS_URL...), where
    # these tests run: without those variables they see what a person's computer would get.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "MOODTUNES_")) and k not in (TELEMETRY, *CI_VARIABLES)}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"),
               XDG_DATA_HOME=str(home / ".local/share"), XDG_STATE_HOME=str(home / ".local/state"),
               XDG_RUNTIME_DIR=str(home / "run"), MOODTUNES_CONFIG_DIR=str(home / ".config" / "moodtunes"))
    return env


def files_under(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*"))


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(path), astronaut())
    return path


def test_a_headless_analysis_writes_nothing_to_the_home_folder(tmp_path, photo):
    home = tmp_path / "home"
    home.mkdir()
    run = subprocess.run([sys.executable, str(ROOT / "main.py"), "--source", str(photo), "--headless"],
                         cwd=ROOT, env=fresh_home_env(home), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert '"faces": 1' in run.stdout.splitlines()[-1]  # it did analyse the face (ONNX Runtime ran)
    assert files_under(home) == []


def test_the_python_api_writes_nothing_to_the_home_folder(tmp_path, photo):
    home = tmp_path / "home"
    home.mkdir()
    script = ("from emotion import EmotionRecognizer, read_image\n"
              f"faces = EmotionRecognizer().analyze(read_image({str(photo)!r}))\n"
              "import onnxruntime\n"  # the network really ran on ONNX Runtime
              "print(len(faces), faces[0].label)")
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=fresh_home_env(home), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1", "happy"]
    assert files_under(home) == []


def test_onnx_runtime_itself_would_write_there(tmp_path):
    """What the tests above guard against: imported without moodtunes, ONNX Runtime leaves a device id."""
    home = tmp_path / "home"
    home.mkdir()
    subprocess.run([sys.executable, "-c", "import onnxruntime"], env=fresh_home_env(home), check=True, timeout=60)
    assert any("onnxruntime" in name for name in files_under(home))


@pytest.mark.parametrize("module", ["emotion", "training"])
def test_telemetry_is_off_unless_the_user_said_otherwise(tmp_path, module):
    script = f"import os, {module}; print(os.environ[{TELEMETRY!r}])"
    env = fresh_home_env(tmp_path)
    assert subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "1"
    env[TELEMETRY] = "0"
    assert subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "0"
