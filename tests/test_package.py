"""A real wheel: what the app loads is package data, every import is declared, the API is importable."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import cv2
import pytest
from clips import face_scene
from conftest import ROOT

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

APP_CODE = ["main.py", "emotion", "gui", "playlist", "checkpoints"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w",
                    str(out), str(ROOT)], check=True, capture_output=True, timeout=600)
    (built,) = out.glob("moodtunes-*.whl")
    return built


def test_the_wheel_carries_what_the_app_loads(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    models = [f"checkpoints/emotion_{name}.{ext}" for name in ("ferplus", "fer2013") for ext in ("pt", "onnx",
                                                                                                 "int8.onnx")]
    yunet = [f"emotion/models/face_detection_yunet_2023mar.{ext}" for ext in ("onnx", "LICENSE.txt")]
    for needed in ("main.py", "checkpoints/__init__.py", *models, *yunet, "playlist/profiles.toml",
                   "emotion/classifier.py", "gui/window.py", "gui/overlay.html", "gui/api/routers/live.py",
                   "gui/controllers/engine.py", "training/train.py"):
        assert needed in names, needed


def test_the_installed_app_runs_from_any_folder(wheel, tmp_path, astronaut_bgr):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target",
                    str(site), str(wheel)], check=True, capture_output=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cv2.imwrite(str(elsewhere / "photo.jpg"), face_scene(astronaut_bgr))
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import emotion, checkpoints; print(emotion.__file__); "
                            "print(checkpoints.shipped('emotion_ferplus.onnx')); "
                            "from emotion.detection import YUNET_MODEL, create_detector; print(YUNET_MODEL); "
                            "assert create_detector('auto').note == ''"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert all(line.startswith(str(site)) for line in where.stdout.splitlines())  # the installed copy, not the repo
    result = subprocess.run([str(site / "bin" / "moodtunes"), "--source", "photo.jpg", "--headless", "--detector",
                             "haar"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    *frames, summary = [json.loads(line) for line in result.stdout.splitlines()]
    assert frames[0]["faces"][0]["label"] == "happy"
    assert summary["checkpoint"].startswith(str(site)) and summary["backend"] == "onnxruntime"
    assert summary["checkpoint"].endswith("emotion_ferplus.int8.onnx") and summary["precision"] == "int8"


def imported_modules(path: Path) -> set[str]:
    files = [path] if path.suffix == ".py" else path.rglob("*.py")
    names = set()
    for file in files:
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    def names(requirements: list[str]) -> set[str]:
        return {normalized(re.split(r"[<>=!~;\[ ]", req)[0]) for req in requirements}

    runtime = names(project["dependencies"])
    extras = project["optional-dependencies"]
    app_features = names(extras["gpu"] + extras["serve"])  # what the app imports only for those features
    ours = {"emotion", "gui", "playlist", "training", "checkpoints", "main"}
    distributions = packages_distributions()

    def undeclared(paths, declared):
        missing = set()
        for module in set().union(*(imported_modules(ROOT / p) for p in paths)) - ours:
            if module in sys.stdlib_module_names or module == "__future__":
                continue
            names = {normalized(d) for d in distributions.get(module, [module])}
            if not names & declared:
                missing.add(module)
        return missing

    assert not undeclared(APP_CODE, runtime | app_features), "the app imports undeclared packages"
    assert not undeclared(["training"], runtime | names(extras["train"])), "training imports undeclared packages"


def test_every_install_hint_has_the_one_form_and_names_a_real_extra():
    """pip install "moodtunes[EXTRA]": it adds the extra to the moodtunes that is installed, from a clone with
    `pip install .`, with -e or with pipx alike, and its double quotes work in every shell, Windows' included."""
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    code = "".join(file.read_text(encoding="utf-8") for p in ["emotion", "gui", "playlist", "training", "main.py"]
                   for file in ([ROOT / p] if p.endswith(".py") else (ROOT / p).rglob("*.py")))
    hints = re.findall(r'.{0,13}moodtunes\[\w+\].?', code)
    assert hints and all(re.fullmatch(r'pip install "moodtunes\[\w+\]"', hint) for hint in hints), hints
    assert {re.search(r"\[(\w+)\]", hint)[1] for hint in hints} <= extras
    assert "pip install -e" not in code and "pip install '" not in code
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install \"moodtunes[serve]\"" in readme and "pipx install ." in readme


def test_help_describes_the_app_its_keys_and_spotify_setup():
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--help"], capture_output=True, text=True)
    lines = result.stdout.splitlines()
    description = lines[lines.index("") + 1]
    assert description.startswith("Recognises the emotion on your face")
    for key in ("P ", "Space", "Q, Esc"):
        assert any(line.strip().startswith(key) for line in lines), key
    assert "Spotify setup" in result.stdout


def test_the_api_is_importable_from_the_package_top():
    result = subprocess.run([sys.executable, "-c", "import sys; from emotion import EmotionRecognizer, read_image, "
                             "EMOTIONS, EmotionPipeline, open_source; print('torch' in sys.modules)"],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"  # and it costs no PyTorch


def test_a_recognizer_changes_no_process_wide_setting():
    from emotion import EmotionRecognizer

    cv2.setNumThreads(3)
    EmotionRecognizer(device="cpu", detector="haar")
    assert cv2.getNumThreads() == 3


def test_training_reports_without_matplotlib(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    """No matplotlib: evaluate still prints its JSON, with one line saying why there is no PNG."""
    import csv

    from training.evaluate import main as evaluate_main

    data = tmp_path / "fer.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for i in range(14):
            w.writerow([i % 7, " ".join(["128"] * 2304), "PublicTest"])
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert evaluate_main(["--dataset", "fer2013", "--data", str(data), "--checkpoint", str(tiny_checkpoint),
                          "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["n"] == 14 and "confusion_png" not in json.loads(out)
    assert [line for line in err.splitlines() if line.startswith("warning:")] == [
        'warning: matplotlib is not installed, so no PNG was written; install it with pip install "moodtunes[train]"']


@pytest.mark.parametrize("mode", [["--headless"], ["--first-face-report"]], ids=["headless", "window"])
def test_the_cpu_path_never_imports_torch(mode, tmp_path, astronaut_bgr):
    photo = tmp_path / "me.jpg"
    cv2.imwrite(str(photo), face_scene(astronaut_bgr))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    result = subprocess.run([sys.executable, "-X", "importtime", str(ROOT / "main.py"), "--source", str(photo),
                             "--detector", "haar", *mode], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "import time:" in line}
    assert "cv2" in imported and "torch" not in imported
    if mode == ["--first-face-report"]:
        assert json.loads(result.stdout.splitlines()[-1])["launch_to_first_face_s"] > 0
