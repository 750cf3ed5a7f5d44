"""The window's keys agree everywhere they are written, its settings are typed and checked, and it
keeps them in moodtunes' config folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, app_settings
from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QToolBar

from emotion.capture import CAPTURE_SECONDS
from emotion.settings import DEFAULT_RESOLUTION, AppSettings, EngineSettings, SourceSettings
from gui.keys import KEYS, key_of
from gui.window import MainWindow


def help_keys() -> list[tuple[str, str]]:
    """The "keys in the window" block of `moodtunes --help`: (keys, what they do) per line."""
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--help"], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    block = result.stdout.split("keys in the window:\n", 1)[1].split("\n\n", 1)[0]
    return [(line[:13].strip(), line[13:]) for line in block.splitlines()]


def readme_keys() -> list[tuple[tuple[str, ...], str]]:
    """The README's "## Keys" table: (the bold keys, the description) per row."""
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Keys\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| **")]
    return [(tuple(re.findall(r"\*\*(.+?)\*\*", keys)), text.strip())
            for keys, text in (row.strip("|").split("|", 1) for row in rows)]


def menu_actions(menu: QMenu) -> list[QAction]:
    found = []
    for action in menu.actions():
        found.append(action)
        if action.menu() is not None:
            found += menu_actions(action.menu())
    return found


def test_the_keys_are_declared_once_and_agree_everywhere(qtbot, tmp_path):
    assert help_keys() == [(", ".join(binding.keys), binding.help) for binding in KEYS]
    readme = readme_keys()
    assert [keys for keys, _text in readme] == [binding.keys for binding in KEYS]
    for (_keys, text), binding in zip(readme, KEYS, strict=True):
        assert text.startswith(binding.help), f"README: {text!r} does not say {binding.help!r}"
    assert f"{CAPTURE_SECONDS:g} s" in next(b.help for b in KEYS if b.action == "calibrate")

    window = MainWindow(app_settings(source=tmp_path / "none.mp4", detector="haar"),
                        QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    in_menus = [action for menu in window.menuBar().findChildren(QMenu) for action in menu_actions(menu)]
    toolbar = window.findChild(QToolBar, "main-toolbar")
    for binding in KEYS:
        action = window.action(binding.action)
        assert [shortcut.toString() for shortcut in action.shortcuts()] == list(binding.keys)
        assert action in in_menus, f"{binding.action} is in no menu"
    # No key is bound anywhere else: every action with a shortcut, in the menus and the toolbar, is in KEYS.
    bound = {binding.action for binding in KEYS}
    for action in {*in_menus, *toolbar.actions(), *window.findChildren(QAction)}:
        if action.shortcuts():
            assert any(window.action(name) is action for name in bound), action.text()
    # The side panel's and the tooltips' hints name the same keys.
    assert f"Press {key_of('playlist')} " in window.playlist.section.label.text()
    window.calibration.section.show_calibrated(False)
    assert f"{key_of('calibrate')}: calibrate" in window.calibration.section.state.text()
    assert f"({key_of('calibrate')})" in window.calibration.calibrate_action.toolTip()
    window.engine.pause_action.setChecked(True)
    assert f"press {key_of('pause')} to resume" in window.notice.text()


def test_help_loads_no_qt():
    probe = ("import sys, main\ntry:\n    main.main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith('PySide6')), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_the_command_line_becomes_one_typed_settings_object():
    from emotion.cli import settings_from_args
    from main import build_parser

    def settings(*argv: str) -> AppSettings:
        return settings_from_args(build_parser().parse_args(argv))

    assert settings("--camera", "2", "--resolution", "1280x720", "--detector", "haar", "--calibration",
                    "me.json", "--first-face-report") == AppSettings(
        source=SourceSettings(camera=2, resolution=(1280, 720)),
        engine=EngineSettings(detector="haar", calibration_file=Path("me.json")), first_face_report=True)
    assert settings("--source", "clip.mp4", "--loop", "--no-calibration") == AppSettings(
        source=SourceSettings(path="clip.mp4", loop=True), engine=EngineSettings(use_calibration=False))
    calibrate = settings("calibrate", "--camera", "1")  # a subcommand without --calibration
    assert calibrate.source.target == 1 and calibrate.engine == EngineSettings()
    assert settings().source.target == 0 and settings().source.camera_size == DEFAULT_RESOLUTION
    with pytest.raises(ValueError, match="cameras are numbered"):
        SourceSettings(camera=-1)
    with pytest.raises(ValueError, match="not a camera resolution"):
        SourceSettings(resolution=(10, 10))


def test_a_bad_remembered_value_is_one_warning_and_the_default(qtbot, tmp_path, capfd):
    store = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    for key, value in (("video/camera", "front"), ("video/resolution", "10x10"), ("playlist/strategy", "loud")):
        store.setValue(key, value)
    store.sync()
    window = MainWindow(app_settings(detector="haar"), store)
    qtbot.addWidget(window)
    assert window.engine.source.camera == 0 and window.engine.camera_actions[0].isChecked()
    assert window.engine.source.resolution == DEFAULT_RESOLUTION and window.playlist.strategy == "match"
    lines = capfd.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("warning: the window's saved ") for line in lines), lines
    camera, resolution, strategy = lines
    assert "'front'" in camera and camera.endswith("using camera 0.")
    assert "from 64x48 to 7680x4320" in resolution and resolution.endswith("using 640x480.")
    assert "'loud'" in strategy and strategy.endswith("using match.")
    assert all(str(tmp_path / "window.ini") in line for line in lines)


def test_the_window_keeps_its_settings_in_the_config_folder(tmp_path, face_video):
    config, home = tmp_path / "config", tmp_path / "home"
    env = {key: value for key, value in os.environ.items() if not key.startswith("XDG_")}
    env.update(QT_QPA_PLATFORM="offscreen", MOODTUNES_CONFIG_DIR=str(config), HOME=str(home))
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--source", str(face_video), "--loop",
                             "--detector", "haar", "--first-face-report"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    store = QSettings(str(config / "window.ini"), QSettings.Format.IniFormat)
    assert store.value("window/geometry") is not None and store.value("playlist/strategy") == "match"
    assert not (home / ".config").exists() or not any((home / ".config").rglob("*"))
