"""Start a playlist on the user's Spotify: which device, and what to say when there is none."""

from __future__ import annotations

from typing import Protocol

from playlist.spotify import Device, NoDevice
from playlist.spotify.errors import no_device_message


class Player(Protocol):
    def devices(self) -> list[Device]: ...

    def play(self, context_uri: str, device_id: str | None = None) -> None: ...


def choose_device(devices: list[Device]) -> Device | None:
    """The active device; with none active, the one available (a computer first: the user sits at one)."""
    usable = [d for d in devices if not d.is_restricted]
    active = [d for d in usable if d.is_active]
    if active:
        return active[0]
    usable.sort(key=lambda d: d.type.lower() != "computer")
    return usable[0] if usable else None


def start_playlist(player: Player, context_uri: str, again: str = "try again") -> Device:
    """Play ``context_uri`` from its start and return the device it plays on.

    The device goes by its id, so a device that is open but idle starts too. One that disappears
    between the list and the command is looked up once more; with none at all, NoDevice says
    to open Spotify somewhere.
    """
    device = _device(player, again)
    try:
        player.play(context_uri, device.id)
    except NoDevice:  # it went away since the list was read: look once more
        device = _device(player, again)
        player.play(context_uri, device.id)
    return device


def _device(player: Player, again: str) -> Device:
    device = choose_device(player.devices())
    if device is None:
        raise NoDevice(no_device_message(again))
    return device
