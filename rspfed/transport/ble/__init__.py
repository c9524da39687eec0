"""BLE transport for device-to-device pairing (GATT; bleak central, bumble/bless peripheral).

The offerer is the GATT peripheral (:func:`ble_advertise`), the joiner the
central (:func:`ble_connect`); both produce a
:class:`~rspfed.transport.stream.ByteStream`.  ``hci`` is a bumble transport
spec (``--ble-hci SPEC``, e.g. ``tcp-client:127.0.0.1:9001`` for a virtual
controller from :class:`ControllerProcess`) or ``None`` for the platform's
adapter (bleak's default backend; bless).  See ``docs/transport-ble.md``.

Modules: :mod:`~rspfed.transport.ble.uuids` (per-session UUIDs),
:mod:`~rspfed.transport.ble.fragment` (sans-IO framing and flow control),
:mod:`~rspfed.transport.ble.link` (the shared stream),
:mod:`~rspfed.transport.ble.central`, :mod:`~rspfed.transport.ble.peripheral`,
:mod:`~rspfed.transport.ble.bumble_backend` (a bleak backend on bumble),
:mod:`~rspfed.transport.ble.radio` (virtual controllers),
:mod:`~rspfed.transport.ble.hci` (HCI specs).
"""

from __future__ import annotations

from rspfed.transport.ble.bumble_backend import BumbleBackend, bumble_backend
from rspfed.transport.ble.central import BleCentralStream, ble_connect
from rspfed.transport.ble.hci import HciEndpoint, HciSpec
from rspfed.transport.ble.link import GattStream
from rspfed.transport.ble.peripheral import (
    BlePeripheral,
    BlessPeripheral,
    BumblePeripheral,
    ble_advertise,
)
from rspfed.transport.ble.radio import ControllerProcess, LocalRadio
from rspfed.transport.ble.uuids import (
    notify_characteristic_uuid,
    service_uuid,
    write_characteristic_uuid,
)

__all__ = [
    "BleCentralStream",
    "BlePeripheral",
    "BlessPeripheral",
    "BumbleBackend",
    "BumblePeripheral",
    "ControllerProcess",
    "GattStream",
    "HciEndpoint",
    "HciSpec",
    "LocalRadio",
    "ble_advertise",
    "ble_connect",
    "bumble_backend",
    "notify_characteristic_uuid",
    "service_uuid",
    "write_characteristic_uuid",
]
