"""The real window on a display, waiting for a person's P, then a screenshot of the screen.

    python tests/window_shot.py CLIP OUT_DIR [--span 20] [--warm 6] [--settle 3]

Plays CLIP in the window (Haar, looped) and prints {"window": X window id} once a mood has been
shown for --warm seconds. Whoever runs it presses P in that window (tests/test_gui.py does it
with xdotool); --settle seconds later it grabs the whole screen from the X server into
OUT_DIR/screen.png and prints where the timeline's strip is on it and when, before the grab,
the mood was first and last shown and P was pressed (seconds, on the timeline's clock).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QSettings, QTimer  # noqa: E402  (after the sys.path set-up)
from PySide6.QtWidgets import QApplication  # noqa: E402

from emotion.settings import AppSettings, EngineSettings, SourceSettings  # noqa: E402
from gui.window import MainWindow  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("clip")
    parser.add_argument("out", type=Path)
    parser.add_argument("--span", type=float, default=20.0)
    parser.add_argument("--warm", type=float, default=6.0)
    parser.add_argument("--settle", type=float, default=3.0)
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])
    settings = QSettings(str(args.out / "window_shot.ini"), QSettings.Format.IniFormat)
    run = AppSettings(source=SourceSettings(path=args.clip, loop=True), engine=EngineSettings(detector="haar"),
                      timeline_span_s=args.span)
    window = MainWindow(run, settings,
                        open_url=lambda url: None)
    moods: list[tuple[float, str]] = []  # (when shown, label) of each frame with a mood
    pressed: list[float] = []
    told = False

    def note_mood() -> None:
        nonlocal told
        mood = window.engine.latest.analysis.mood if window.engine.latest else None
        if mood is None:
            return
        moods.append((window.timeline.clock(), mood.label))
        if window.timeline.clock() - moods[0][0] >= args.warm and not told:
            told = True
            print(json.dumps({"window": int(window.winId())}), flush=True)

    def shoot() -> None:
        window.timeline.strip.repaint()  # painted now, at this clock reading
        now = window.timeline.clock()
        screenshot = args.out / "screen.png"
        window.screen().grabWindow(0).save(str(screenshot))  # the X server's pixels: what is on the screen
        strip = window.timeline.strip.strip_rect().toRect()
        corner = window.timeline.strip.mapToGlobal(strip.topLeft())
        print(json.dumps({"screenshot": str(screenshot), "strip": [corner.x(), corner.y(), strip.width(),
                                                                  strip.height()],
                          "labels": sorted({label for _t, label in moods}), "mood_from_s": now - moods[0][0],
                          "mood_to_s": now - moods[-1][0], "pressed_s": now - pressed[0]}), flush=True)
        window.close()
        app.quit()

    def on_press() -> None:
        pressed.append(window.timeline.clock())
        QTimer.singleShot(round(args.settle * 1000), shoot)

    window.show()
    window.start()
    window.engine.worker.frame_ready.connect(note_mood)  # after the window's own slot: it sees what was shown
    window.playlist.action.triggered.connect(on_press)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
