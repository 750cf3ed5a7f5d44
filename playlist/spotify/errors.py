"""Spotify's refusals as errors that say why and what to do, in the README's words where it has a step."""

from __future__ import annotations

import requests

from emotion.errors import MoodtunesError
from playlist.spotify.parse import nonblank
from playlist.spotify_setup import README_SETUP, step_number


class SpotifyError(MoodtunesError):
    """Spotify could not do what was asked; the message says why and what to do."""


class NotConfigured(SpotifyError):
    """No client id: the app is not registered with Spotify yet.

    The message is one line (an API answer, a status text); ``missing`` says in a few words what is
    missing, and ``steps`` holds the setup one step a line, for a terminal.
    """

    def __init__(self, message: str, missing: str = "", steps: tuple[str, ...] = ()) -> None:
        self.missing, self.steps = missing, steps
        super().__init__(message)


class SignInRequired(SpotifyError):
    """There is no usable sign-in (none yet, expired or revoked)."""


class SignInCancelled(SpotifyError):
    """The user cancelled, or never finished, the browser sign-in."""


class Offline(SpotifyError):
    """Spotify could not be reached at all (no network, DNS, a timeout): worth retrying later."""


class PermissionNeeded(SignInRequired):
    """The sign-in predates a permission this call needs: signing in once more grants it."""


class PremiumRequired(SpotifyError):
    """Spotify refused a player command (play, queue, next): the account has no Premium."""


class NoDevice(SpotifyError):
    """No Spotify app is open to play on (none active, none listed, or the chosen one went away)."""


def no_device_message(again: str) -> str:
    return f"No Spotify is open to play on: open Spotify on any device (phone, desktop, web player) and {again}."


def premium_message() -> str:
    return ("Spotify plays music from other apps only for Premium accounts (403 PREMIUM_REQUIRED); the playlist is "
            "made, play it in Spotify yourself.")


def permission_message(again: str) -> str:
    return ("moodtunes now starts your music and follows your mood, which needs Spotify's permission to control "
            f"playback and save the tracks you like; {again} to sign in once more and allow it.")


class RateLimited(SpotifyError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


def format_wait(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds} s"


def error_details(response: requests.Response) -> tuple[str | None, str | None, str | None]:
    """(code, message, reason) from an error reply of the Web API or of the accounts service.

    The Web API answers {"error": {"status", "message", "reason"}}; the accounts service, and
    some Web API gateways, {"error": "invalid_client", "error_description": "..."}.
    """
    try:
        body = response.json()
    except ValueError:
        return None, (response.text or "").strip()[:200] or None, None
    if not isinstance(body, dict):
        return None, None, None
    error = body.get("error")
    if isinstance(error, dict):
        return None, nonblank(error.get("message")), nonblank(error.get("reason"))
    return nonblank(error), nonblank(body.get("error_description")), None


def explain(code: str | None, message: str | None, reason: str | None = None) -> str | None:
    """The README step that fixes what Spotify reported, when there is one."""
    said = f"{message or ''} {code or ''}".lower()
    if "premium" in said:
        return (f"Spotify says: {message or code}. Since 2026 the owner of a development-mode app needs Spotify "
                f"Premium; see step {step_number('Premium')} of {README_SETUP}.")
    if "not registered" in said or "user not approved" in said:
        return (f"Spotify says: {message or code}. Add your Spotify account (its e-mail) under User Management in "
                f"your app on developer.spotify.com; see step {step_number('User Management')} of {README_SETUP}.")
    if code == "invalid_client" or "invalid client" in said:
        return (f"Spotify does not recognise the client id ({message or code}). Check that SPOTIPY_CLIENT_ID (or "
                f"client_id in config.toml) is the Client ID shown in your app on developer.spotify.com; see step "
                f"{step_number('Client ID')} of {README_SETUP}.")
    if reason == "QUOTA_EXCEEDED" or "quota" in said:
        return (f"Spotify's quota for this app is used up ({message or reason}); it resets later. This is a quota, "
                "not a short rate limit: waiting a few seconds will not help.")
    return None


def describe_api_error(response: requests.Response, again: str) -> str:
    code, message, reason = error_details(response)
    status = response.status_code
    known = explain(code, message, reason)
    if known:
        return known
    said = message or code or "no details"
    if status == 403:
        return (f"Spotify refused the request (403: {said}). In development mode only the app's owner (with "
                f"Premium) and the users added under User Management (at most 5) may use it; see {README_SETUP}.")
    if status >= 500:
        return f"Spotify is having problems ({status}: {said}); {again} in a minute."
    return f"Spotify answered {status}: {said}."
