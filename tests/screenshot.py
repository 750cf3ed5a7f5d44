"""The README's pictures, taken from the app as it is: the window, offscreen, following a clip whose face goes
happy -> sad -> happy, with the fake Spotify playing (nothing leaves this computer), grabbed once the music has
followed both changes.

    QT_QPA_PLATFORM=offscreen MOODTUNES_SHARED=../shared python tests/screenshot.py docs/screenshot.png
    QT_QPA_PLATFORM=offscreen MOODTUNES_SHARED=../shared python tests/screenshot.py docs/dj_panel.png --span 30

The first is the window with the app's own settings (the default model, detector and 5-minute timeline); the
second shows the last 30 s on the timeline, where the DJ's marks stand apart. The sad face is a FER2013 face from the
shared data (MOODTUNES_SHARED). The track playing is liked (L) as the music starts, so the panel shows a like among
the DJ's actions. Prints one JSON line: the file and the actions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TIMEOUT_S = 120


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--span", type=float, help="seconds of mood the timeline shows (default: the app's own)")
    parser.add_argument("--detector", default="auto", help="auto (the app's default), yunet or haar")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="moodtunes-screenshot-"))
    os.environ["MOODTUNES_CONFIG_DIR"] = str(work / "config")  # the fake's sign-in, not the user's

    from clips import astronaut, write_mood_clip
    from conftest import free_port
    from fake_spotify import FakeSpotify, consent_in_browser
    from test_dj_headless import fer2013_face

    fake = FakeSpotify().start()
    os.environ.update(SPOTIPY_CLIENT_ID=fake.client_id, SPOTIPY_REDIRECT_URI=f"http://127.0.0.1:{free_port()}/callback",
                      SPOTIFY_API_BASE_URL=f"{fake.base_url}/v1", SPOTIFY_ACCOUNTS_BASE_URL=fake.base_url)
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from emotion.settings import AppSettings, EngineSettings, SourceSettings
    from gui.window import MainWindow
    from playlist.spotify import SpotifyAuth, load_config

    SpotifyAuth(load_config(), open_browser=consent_in_browser).sign_in(timeout=10)
    face = astronaut()
    clip = write_mood_clip(work / "happy-sad-happy.avi", [(face, 3), (fer2013_face(4, 21), 5), (face, 6)], fps=5)
    app = QApplication(sys.argv[:1])
    settings = replace(AppSettings(source=SourceSettings(path=str(clip)),
                                   engine=EngineSettings(detector=args.detector)),
                       follow=True, follow_hold_s=1.5, follow_gap_s=3.0)
    if args.span:
        settings = replace(settings, timeline_span_s=args.span)
    window = MainWindow(settings, QSettings(str(work / "window.ini"), QSettings.Format.IniFormat),
                        open_url=lambda url: None)
    window.resize(1100, 700)
    outcome: dict = {}

    def changes() -> list:
        session = window.dj.session
        return [a for a in session.state.recent if a.action in ("play", "queue")] if session else []

    def look() -> None:
        done = changes()
        if len(done) == 1 and not outcome.get("liked"):
            outcome["liked"] = True
            window.dj.like_action.trigger()
        if len(done) == 3 and not outcome.get("shooting"):
            outcome["shooting"] = True
            QTimer.singleShot(1000, shoot)

    def shoot() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(args.out))
        outcome.update(screenshot=str(args.out), actions=[a.detail for a in window.dj.session.state.recent])
        window.close()
        app.quit()

    poll = QTimer(interval=200, timeout=look)
    poll.start()
    QTimer.singleShot(TIMEOUT_S * 1000, app.quit)
    window.show()
    window.start()
    app.exec()
    fake.stop()
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({k: v for k, v in outcome.items() if k in ("screenshot", "actions")}), flush=True)
    return 0 if "screenshot" in outcome else 1


if __name__ == "__main__":
    sys.exit(main())
