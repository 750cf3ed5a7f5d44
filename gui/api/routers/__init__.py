"""The API's endpoints, one router per topic. A new topic is a module with its ``router``, named here once."""

from __future__ import annotations

from gui.api.routers import analyze, calibration, live, overview, playlist

# In the order /docs and `moodtunes serve --help` list them.
ROUTERS = (overview.router, analyze.router, live.router, playlist.router, calibration.router)
