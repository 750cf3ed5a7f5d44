"""Where the Spotify sign-in is kept between runs: one JSON file in the user's config folder."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path

from spotipy.cache_handler import CacheHandler

from emotion.atomic import atomic_write


# Not spotipy's CacheFileHandler: it writes in place and only then chmods, drops a token it cannot
# save, and has no way to forget a dead sign-in that spares the newer one another moodtunes just saved.
class TokenCache(CacheHandler):
    """spotipy's token JSON in one file, mode 0600, replaced atomically; kept in memory too.

    Several moodtunes may run at once, so every read goes back to the file and, of two tokens,
    the one that lives longer wins. A write that fails (read-only folder, full disk) keeps the
    token in memory for this session and leaves ``problem`` set to one line for the user; the
    file on disk is untouched.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._memory: dict | None = None
        self._unreplaced: str | None = None  # the access token a failed write left on disk
        self.problem: str | None = None

    def _read_disk(self) -> dict | None:
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode & 0o077:  # readable by others: a secret should not be
                os.chmod(self.path, 0o600)
            token = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return token if isinstance(token, dict) and isinstance(token.get("access_token"), str) else None

    def get_cached_token(self) -> dict | None:
        disk = self._read_disk()
        memory = self._memory
        if memory is None or disk is None:
            return disk or memory
        if disk["access_token"] in (memory["access_token"], self._unreplaced):
            return memory  # the file holds nothing newer than what this process has
        # Another moodtunes wrote the file since: the token that lives longer is the newer one.
        return disk if disk.get("expires_at", 0) >= memory.get("expires_at", 0) else memory

    def save_token_to_cache(self, token_info: dict) -> None:
        before = self._read_disk()
        self._memory = dict(token_info)
        try:
            atomic_write(self.path, json.dumps(token_info).encode("utf-8"), mode=0o600)
            self.problem, self._unreplaced = None, None
        except OSError as exc:
            self._unreplaced = before["access_token"] if before else None
            self.problem = (f"Your Spotify sign-in could not be saved in {self.path.parent} ({exc.strerror or exc}); "
                            "it works until you quit, then you will have to sign in again. Make that folder "
                            "writable, or point MOODTUNES_CONFIG_DIR at one that is.")

    def clear(self, refresh_token: str | None = None) -> bool:
        """Forget the sign-in, unless the file now holds another refresh token; True if cleared."""
        disk = self._read_disk()
        if refresh_token is not None and disk is not None and disk.get("refresh_token") != refresh_token:
            return False
        self._memory = None
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
        return True
