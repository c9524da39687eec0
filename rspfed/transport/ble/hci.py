"""HCI endpoints for bumble: a transport spec string or an in-process controller.

``--ble-hci SPEC`` takes a bumble transport spec (see
:func:`bumble.transport.open_transport`), for example
``tcp-client:127.0.0.1:9001`` for a virtual controller started by
:mod:`rspfed.transport.ble.radio`, ``usb:0`` or ``hci-socket:0`` for a real
adapter driven by bumble's own host stack.  ``None`` means the platform's
Bluetooth stack (bleak's default backend for the central, bless for the
peripheral).  Tests in one process use an :class:`HciEndpoint` from
:class:`rspfed.transport.ble.radio.LocalRadio` instead of a string.

Re-opening a TCP HCI transport.  bumble's ``tcp-server`` transport (what
``python -m bumble.apps.controllers`` and so
:class:`~rspfed.transport.ble.radio.ControllerProcess` serve) keeps one packet
sink that follows its latest client, and clears it when *any* client goes
away.  A host that closes its transport and at once opens a new one (a
watch's ``companion serve`` releasing the first session's peripheral and
advertising the reconnection's) races the server: when it sees the new
client's connection before the old client's end of stream, it drops every
packet to the new client, and the new host's ``HCI_Reset`` is never answered
(bumble waits for ever).  So :func:`open_device` bounds the power-on
(``power_on_timeout``) and, for a transport spec, closes and re-opens the
transport after a short pause (``attempts`` in all; the server has then seen
the old end of stream), and :meth:`OpenedHci.aclose` of a transport spec
pauses briefly after closing (:data:`CLOSE_SETTLE`) so the common case needs
no retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable

import attrs
from bumble.device import Device
from bumble.hci import Address
from bumble.transport import open_transport
from bumble.transport.common import TransportSink, TransportSource

from rspfed.errors import TransportError

__all__ = [
    "CLOSE_SETTLE",
    "POWER_ON_TIMEOUT",
    "HciEndpoint",
    "HciSpec",
    "OpenedHci",
    "open_device",
    "random_static_address",
]

POWER_ON_TIMEOUT = 5.0
"""Seconds :func:`open_device` waits for the controller to answer the power-on."""

CLOSE_SETTLE = 0.1
"""Seconds :meth:`OpenedHci.aclose` waits after closing a transport spec (module doc)."""


@attrs.frozen
class HciEndpoint:
    """An in-process HCI endpoint: a bumble packet source and sink (a controller)."""

    source: TransportSource
    sink: TransportSink
    name: str = "local"


#: A bumble transport spec string, or an in-process endpoint.
HciSpec = str | HciEndpoint


@attrs.define
class OpenedHci:
    """A powered-on bumble :class:`~bumble.device.Device` and how to release it."""

    device: Device
    closer: Callable[[], Awaitable[None]]
    description: str
    settle: float = 0.0

    async def aclose(self) -> None:
        """Release the HCI transport (never raises); then wait ``settle`` seconds
        (the far end of a TCP transport sees the end of stream; module doc)."""
        with contextlib.suppress(Exception):
            await self.closer()
        if self.settle > 0:
            await asyncio.sleep(self.settle)


def random_static_address(rand: Callable[[int], bytes] = os.urandom) -> Address:
    """A random static LE address (top two bits 11), from ``rand``."""
    raw = bytearray(rand(6))
    raw[0] |= 0xC0
    text = ":".join(f"{b:02X}" for b in raw)
    return Address(text, Address.RANDOM_DEVICE_ADDRESS)


async def open_device(
    hci: HciSpec,
    *,
    name: str = "rspfed",
    address: Address | None = None,
    power_on_timeout: float = POWER_ON_TIMEOUT,
    attempts: int = 3,
) -> OpenedHci:
    """Open ``hci``, build a bumble Device on it and power it on.

    The power-on is bounded by ``power_on_timeout`` seconds; a transport spec
    that does not answer in time is closed and re-opened (``attempts`` in
    all; see the module doc).  Raises :class:`~rspfed.errors.TransportError`
    when the transport cannot be opened or the controller does not answer.
    """
    address = address or random_static_address()
    if isinstance(hci, HciEndpoint):
        description = f"in-process controller {hci.name}"
        try:
            return await _power_on(
                hci.source, hci.sink, _nothing, description, name, address, power_on_timeout, 0.0
            )
        except TimeoutError:
            raise TransportError(
                f"BLE controller on {description} did not answer the power-on "
                f"within {power_on_timeout:g} s"
            ) from None
    for attempt in range(1, max(1, attempts) + 1):
        try:
            transport = await open_transport(hci)
        except Exception as exc:
            raise TransportError(f"cannot open BLE HCI transport {hci!r}: {exc}") from exc
        try:
            return await _power_on(
                transport.source,
                transport.sink,
                transport.close,
                hci,
                name,
                address,
                power_on_timeout,
                CLOSE_SETTLE,
            )
        except TimeoutError:
            if attempt >= attempts:
                break
            await asyncio.sleep(CLOSE_SETTLE * attempt)
    raise TransportError(
        f"BLE controller on {hci} did not answer the power-on within {power_on_timeout:g} s "
        f"({attempts} attempts)"
    )


async def _nothing() -> None:
    return None


async def _power_on(
    source: TransportSource,
    sink: TransportSink,
    closer: Callable[[], Awaitable[None]],
    description: str,
    name: str,
    address: Address,
    timeout: float,
    settle: float,
) -> OpenedHci:
    """Power a new Device on; TimeoutError (transport closed) when it does not answer."""
    device = Device.with_hci(name, address, source, sink)
    try:
        async with asyncio.timeout(timeout):
            await device.power_on()
    except TimeoutError:
        with contextlib.suppress(Exception):
            await closer()
        raise
    except Exception as exc:
        with contextlib.suppress(Exception):
            await closer()
        raise TransportError(f"BLE controller on {description} did not power on: {exc}") from exc
    return OpenedHci(device, closer, description, settle)
