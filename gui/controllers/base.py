"""What every controller offers the window."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QActionGroup

from gui.panel import Section


@dataclass(frozen=True)
class Submenu:
    """Actions the menus show in a submenu of their own."""

    title: str
    actions: tuple[QAction, ...]


Entry = QAction | QActionGroup | Submenu  # what a name in the window's menus and toolbar stands for


class Controller(QObject):
    """One feature of the window. ``section`` is its part of the side panel, or None."""

    section: Section | None = None

    def __init__(self, window: QObject) -> None:
        super().__init__(window)  # a child of the window: deleted with it, and its slots disconnected

    def actions(self) -> dict[str, Entry]:
        """Its actions by name: the names the window's MENUS, TOOLBAR and gui.keys.KEYS use."""
        return {}

    def close(self) -> None:
        """The window closes: stop the feature's work (threads, captures) promptly."""
