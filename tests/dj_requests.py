"""How many Spotify requests the DJ sends while following: a 10-minute stream of moods against the fake Spotify.

    python tests/dj_requests.py [--minutes 10] [--fps 5]

prints one JSON line: the DJ's actions, and its requests per minute beyond the playlist's own creation
(search, create, add, devices, play). The stream is happy, then sad, then happy, each holding a third of
it; a track ends every 200 stream seconds, as songs do. Requests are given time to finish between the
stream's seconds, as they would live.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TRACK_S = 200.0


def mood_stream(minutes: float, fps: float) -> list[tuple[float, str | None]]:
    """(stream seconds, mood) frames: happy, sad, happy, a third each."""
    frames = int(minutes * 60 * fps)
    return [(i / fps, ("happy", "sad", "happy")[min(3 * i // frames, 2)]) for i in range(frames)]


def simulate(fake, minutes: float = 10.0, fps: float = 5.0, settings=None) -> dict:
    """Follow the stream with a signed-in sign-in against ``fake``; the actions and the request counts."""
    from emotion.paths import config_dir
    from playlist.dj import PLAY
    from playlist.dj_worker import DJSession, DJWorker, signed_in_client
    from playlist.taste import TASTE_FILENAME, TasteMemory

    worker = DJWorker(signed_in_client, TasteMemory(config_dir() / TASTE_FILENAME))
    session = DJSession(worker, settings, following=True)
    actions, after_creation, next_track_end, second = [], None, TRACK_S, -1
    try:
        for t, mood in mood_stream(minutes, fps):
            if int(t) != second:  # live, a request is done long before the next second
                second = int(t)
                actions += session.wait(10)
                if after_creation is None and any(a.action == PLAY for a in actions):
                    after_creation = fake.count()
            if t >= next_track_end:
                fake.finish_track()
                next_track_end += TRACK_S
            actions += session.observe(t, mood)
        actions += session.wait(10)
    finally:
        session.close()
    following = fake.count() - (after_creation if after_creation is not None else fake.count())
    return {"actions": [a.as_json()["dj"] for a in actions], "minutes": minutes,
            "requests_after_creation": following, "requests_per_minute": round(following / minutes, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=5.0)
    args = parser.parse_args()

    from conftest import free_port
    from fake_spotify import FakeSpotify, consent_in_browser

    fake = FakeSpotify().start()
    with tempfile.TemporaryDirectory() as home:
        os.environ.update(MOODTUNES_CONFIG_DIR=home, SPOTIPY_CLIENT_ID=fake.client_id,
                          SPOTIPY_REDIRECT_URI=f"http://127.0.0.1:{free_port()}/callback",
                          SPOTIFY_API_BASE_URL=f"{fake.base_url}/v1", SPOTIFY_ACCOUNTS_BASE_URL=fake.base_url)
        from playlist.spotify import SpotifyAuth, load_config

        SpotifyAuth(load_config(), open_browser=consent_in_browser).sign_in(timeout=10)
        figures = simulate(fake, args.minutes, args.fps)
    fake.stop()
    print(json.dumps({k: v for k, v in figures.items() if k != "actions"} | {"actions": len(figures["actions"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
