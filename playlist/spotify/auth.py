"""PKCE sign-in and always-fresh access tokens.

spotipy does the OAuth work: the PKCE handshake, the token exchange and the refresh, and the
checks of a token's expiry and scopes. Around it this module adds what a desktop app needs: a
sign-in that shows its link for when no browser opens and waits on a loopback server that can be
cancelled, refreshes that several threads and several running moodtunes can share, and an
``invalid_grant`` that never deletes a token another moodtunes has just refreshed.
"""

from __future__ import annotations

import functools
import secrets
import threading
from collections.abc import Callable

import requests
import spotipy

from playlist.spotify.cache import TokenCache
from playlist.spotify.callback import CallbackServer, listen_problem
from playlist.spotify.config import REQUEST_TIMEOUT_S, SpotifyConfig, check_redirect_uri
from playlist.spotify.errors import Offline, SignInRequired, SpotifyError, explain

# playlist-read-private: to find a just-created (private) playlist when Spotify's reply omits it.
PLAYLIST_SCOPES = ("playlist-modify-private", "playlist-modify-public", "playlist-read-private", "user-top-read")
# The DJ's: start, queue and skip music, see what plays and on which device, save liked tracks.
PLAYER_SCOPES = ("user-read-playback-state", "user-modify-playback-state", "user-read-currently-playing",
                 "user-library-modify")
# All are asked at sign-in; a sign-in from before the DJ (playlist scopes only) still makes playlists.
SCOPES = PLAYLIST_SCOPES + PLAYER_SCOPES
SIGN_IN_TIMEOUT_S = 180.0
ASSUMED_TOKEN_LIFETIME_S = 3600  # Spotify's documented access-token lifetime


class _PKCE(spotipy.SpotifyPKCE):
    def _add_custom_values_to_token_info(self, token_info: dict) -> dict:
        # A reply without a usable expires_in must not crash the run: assume Spotify's
        # documented hour; a 401 makes moodtunes refresh sooner if the token dies first.
        expires_in = token_info.get("expires_in")
        if not isinstance(expires_in, (int, float)) or expires_in <= 0:
            token_info["expires_in"] = ASSUMED_TOKEN_LIFETIME_S
        return super()._add_custom_values_to_token_info(token_info)

    def has_scopes(self, token: dict, scopes: tuple[str, ...] = PLAYLIST_SCOPES) -> bool:
        """Whether the token grants every one of ``scopes`` (spotipy's subset check)."""
        granted = token.get("scope")
        return isinstance(granted, str) and self._is_scope_subset(" ".join(scopes), granted)

    def expires_soon(self, token: dict) -> bool:
        """spotipy's expiry check (a minute early); a token saved without expires_at counts as expired."""
        return self.is_token_expired({"expires_at": token.get("expires_at") or 0})


@functools.cache
def _pkce_for(accounts_base: str) -> type[_PKCE]:
    # spotipy takes its endpoints from the class attributes OAUTH_AUTHORIZE_URL and OAUTH_TOKEN_URL, never
    # from its constructor: each accounts service gets a subclass that sets them, and spotipy's classes stay as
    # they are. Cached so that one accounts service is one class, however many sign-ins use it.
    urls = {"OAUTH_AUTHORIZE_URL": f"{accounts_base}/authorize", "OAUTH_TOKEN_URL": f"{accounts_base}/api/token"}
    return type(_PKCE.__name__, (_PKCE,), urls)


class SpotifyAuth:
    """PKCE sign-in and always-fresh access tokens.

    ``again`` is how the user retries in this front end ("press P", "run the command again");
    ``show_link`` receives the sign-in address, for when no browser opens by itself.
    """

    def __init__(self, config: SpotifyConfig, open_browser: Callable[[str], object] | None = None,
                 show_link: Callable[[str], object] | None = None, again: str = "try again") -> None:
        self.config = config
        self.again = again
        self.cache = TokenCache(config.token_path)
        self.open_browser = open_browser or _open_in_browser
        self.show_link = show_link or (lambda url: None)
        self._pkce = _pkce_for(config.accounts_base)(
            client_id=config.client_id,
            redirect_uri=config.redirect_uri,
            scope=list(SCOPES),
            cache_handler=self.cache,
            requests_timeout=REQUEST_TIMEOUT_S,
            open_browser=False,
        )
        self._lock = threading.Lock()

    @property
    def signed_in(self) -> bool:
        token = self.cache.get_cached_token()
        return bool(token and token.get("refresh_token") and self._pkce.has_scopes(token))

    def missing_scopes(self, scopes: tuple[str, ...]) -> list[str]:
        """Which of ``scopes`` the cached sign-in lacks (all of them without a sign-in)."""
        token = self.cache.get_cached_token() or {}
        granted = set(str(token.get("scope") or "").split())
        return [scope for scope in scopes if scope not in granted]

    def sign_in(self, cancel: threading.Event | None = None, timeout: float = SIGN_IN_TIMEOUT_S) -> None:
        """Open Spotify's consent page, wait for its redirect to our loopback address and store the token.

        The browser's page answers only once the token is stored, or says what failed.
        """
        host, port, path = check_redirect_uri(self.config.redirect_uri)
        state = secrets.token_urlsafe(16)
        self._pkce.get_pkce_handshake_parameters()
        try:
            server = CallbackServer((host, port), path, state)
        except OSError as exc:
            raise SpotifyError(listen_problem(host, port, exc)) from exc
        with server:
            url = self._pkce.get_authorize_url(state)
            self.show_link(url)
            self.open_browser(url)
            code = server.wait(timeout, cancel, self.again, self.config.redirect_uri)
            outcome = "Signing in to Spotify was interrupted; moodtunes says why."
            try:
                self._exchange(code)
                outcome = ("Signed in to Spotify. You can close this tab and return to moodtunes." if not
                           self.cache.problem else "Signed in to Spotify, for this session only: the sign-in could "
                           "not be saved (moodtunes says why). You can close this tab.")
            except SpotifyError as exc:
                outcome = f"Signing in to Spotify failed: {exc}"
                raise
            finally:  # only now does the browser's page say how it went
                server.tell_browser(outcome)

    def _exchange(self, code: str) -> None:
        """Trade the authorisation code for tokens and store them; SpotifyError says why not."""
        try:
            self._pkce.get_access_token(code=code, check_cache=False)
        except spotipy.SpotifyOauthError as exc:
            raise SpotifyError(explain(exc.error, exc.error_description) or
                               f"Spotify refused the sign-in ({exc.error_description or exc.error}); "
                               f"{self.again} to try again.") from exc
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise SpotifyError(f"Could not finish signing in with Spotify ({type(exc).__name__}); check your "
                               f"connection and {self.again}.") from exc
        if not self.signed_in:  # a reply without a refresh token or with fewer scopes than asked for
            raise SpotifyError(f"Spotify's sign-in did not grant what moodtunes asks for ({', '.join(SCOPES)}); "
                               f"{self.again} to try again, and allow it on Spotify's page.")

    def get_access_token(self) -> str:
        """A valid access token, refreshed when it is about to expire."""
        # Not spotipy's get_access_token: without a token it prompts on stdin, and it retries a dead refresh token
        # on every call; here a missing sign-in is an error the front end shows, and refreshes hold one lock.
        with self._lock:
            token = self.cache.get_cached_token()
            if not token or not token.get("refresh_token") or not self._pkce.has_scopes(token):
                raise SignInRequired(f"Not signed in to Spotify; {self.again} to sign in.")
            if self._pkce.expires_soon(token):
                token = self._refresh(token)
            return token["access_token"]

    def force_refresh(self) -> None:
        """Refresh now: after a 401 the cached token is no good whatever its expiry says."""
        with self._lock:
            token = self.cache.get_cached_token()
            if not token or not token.get("refresh_token"):
                raise SignInRequired(f"Not signed in to Spotify; {self.again} to sign in.")
            self._refresh(token)

    def _refresh(self, token: dict) -> dict:
        used = token["refresh_token"]
        try:
            fresh = self._pkce.refresh_access_token(used)
        except spotipy.SpotifyOauthError as exc:
            if exc.error == "invalid_grant":
                # Maybe another moodtunes refreshed in between and Spotify rotated the refresh
                # token: then the cache holds a good one. Only a cache still holding the dead
                # token is cleared (spotipy would keep it and fail again on every call).
                latest = self.cache.get_cached_token()
                if latest and latest.get("refresh_token") not in (None, used) and not self._pkce.expires_soon(latest):
                    return latest
                self.cache.clear(refresh_token=used)
                raise SignInRequired(
                    f"Your Spotify sign-in has expired or was revoked; {self.again} to sign in again."
                ) from exc
            raise SpotifyError(explain(exc.error, exc.error_description) or
                               f"Spotify refused to refresh the sign-in ({exc.error_description or exc.error}); "
                               f"{self.again}.") from exc
        except (requests.RequestException, ValueError) as exc:
            unreachable = Offline if isinstance(exc, requests.RequestException) else SpotifyError
            raise unreachable(f"Cannot reach Spotify's sign-in service ({type(exc).__name__}); check your "
                              "connection.") from exc
        if not isinstance(fresh, dict) or not isinstance(fresh.get("access_token"), str):
            raise SpotifyError(f"Spotify's sign-in service answered without an access token; {self.again}.")
        return fresh


def _open_in_browser(url: str) -> None:
    import webbrowser

    webbrowser.open(url)
