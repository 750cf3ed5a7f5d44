"""Spotify setup: the steps a user takes once, written here and nowhere else.

``moodtunes playlist --help``, the error without a client id (the terminal, the window, the
API's 409) and the errors that name a step read them from here; a test holds the README's
"Spotify setup" to the same steps. Not inside ``playlist.spotify``: importing that package loads
spotipy and requests, which ``--help`` and the window's start-up should not wait for.
"""

from __future__ import annotations

from dataclasses import dataclass

README_SETUP = 'the README\'s "Spotify setup"'
DASHBOARD_URL = "https://developer.spotify.com/dashboard"
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8888/callback"


@dataclass(frozen=True)
class SetupStep:
    topic: str  # what the step is about, named in the README's step too
    text: str  # may hold {redirect} and {config}


# Spotify's 2026 rules for a development-mode app: one per developer, its owner has Premium, at most
# 5 users, and a loopback redirect (Spotify refuses "localhost").
SETUP_STEPS = (
    SetupStep("dashboard", f'Open {DASHBOARD_URL} and create an app with "Web API" ticked. Spotify gives each '
                           "developer one development-mode client id: if you already have an app there, use it."),
    SetupStep("Redirect URIs", "Under Redirect URIs add exactly {redirect} (a 127.0.0.1 address: Spotify refuses "
                               "localhost)."),
    SetupStep("Client ID", "Copy the app's Client ID and run `export SPOTIPY_CLIENT_ID=<client id>`, or put "
                           'client_id = "<client id>" under [spotify] in {config}.'),
    SetupStep("User Management", "Under User Management add the e-mail of the Spotify account of everyone who will "
                                 "use it, yourself included: at most 5 users."),
    SetupStep("Premium", "The app's owner needs Spotify Premium."),
    SetupStep("sign in", "Press P in the window, or run `moodtunes playlist --mood happy`: your browser opens "
                         "Spotify's sign-in once."),
)


def step_number(topic: str) -> int:
    """The number of the step about ``topic`` ("Premium", "User Management", ...), as the README numbers it."""
    return next(i for i, step in enumerate(SETUP_STEPS, 1) if step.topic == topic)


def setup_lines(redirect: str = DEFAULT_REDIRECT_URI, config: str = "config.toml in your config folder") -> list[str]:
    """The steps as "1) ..." lines, one step a line, for this computer's redirect URI and config file."""
    return [f"{i}) " + step.text.format(redirect=redirect, config=config) for i, step in enumerate(SETUP_STEPS, 1)]
