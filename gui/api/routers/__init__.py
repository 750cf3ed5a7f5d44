"""The API's endpoints, one router per topic (FastAPI's "bigger applications" layout).

A new topic is a module here with an ``APIRouter`` named ``router``, and its name in ``TOPICS``.
"""

from __future__ import annotations

from importlib import import_module

from fastapi import APIRouter

# In the order /docs and `moodtunes serve --help` list them.
TOPICS = ("overview", "analyze", "live", "playlist", "dj", "calibration")
ROUTERS: tuple[APIRouter, ...] = tuple(import_module(f"{__name__}.{topic}").router for topic in TOPICS)
