"""The window's features, one controller each: it owns its actions, its worker, its signals and its
panel section, and the window (:mod:`gui.window`) only places them.

Adding a feature: subclass :class:`Controller`, name its actions in ``actions()``, give it a
``section`` for the side panel if it shows something there, then add it to the window's
controllers and name its actions in ``gui.window.MENUS``/``TOOLBAR`` (and its keys in
``gui.keys.KEYS``).
"""

from gui.controllers.base import Controller, Entry, Submenu
from gui.controllers.calibration import CalibrationController
from gui.controllers.engine import EngineController
from gui.controllers.playlist import PlaylistController
from gui.controllers.timeline import TimelineController

__all__ = ["CalibrationController", "Controller", "EngineController", "Entry", "PlaylistController", "Submenu",
           "TimelineController"]
