"""Transports for device-to-device pairing: byte streams over memory, LAN and BLE.

Every transport produces a :class:`~rspfed.transport.stream.ByteStream`; the
sans-IO pairing core runs over one through :class:`~rspfed.transport.drive.Driver`.

* :mod:`rspfed.transport.stream`: the protocol and an in-memory pair with fault
  injection (:func:`memory_stream_pair`), for tests of every layer.
* :mod:`rspfed.transport.lan`: TCP plus zeroconf (``_rspfed._tcp.local.``);
  import it explicitly (it loads ``zeroconf``).
* :mod:`rspfed.transport.ble`: BLE GATT (bleak / bumble).
"""

from __future__ import annotations

from rspfed.transport.drive import Driver, SansIOConnection
from rspfed.transport.stream import (
    DEFAULT_MAX_RECEIVE,
    ByteStream,
    MemoryLink,
    MemoryStream,
    Tamper,
    memory_stream_pair,
)

__all__ = [
    "DEFAULT_MAX_RECEIVE",
    "ByteStream",
    "Driver",
    "MemoryLink",
    "MemoryStream",
    "SansIOConnection",
    "Tamper",
    "memory_stream_pair",
]
