"""HCI endpoints for bumble: a transport spec string or an in-process controller.

``--ble-hci SPEC`` takes a bumble transport spec (see
:func:`bumble.transport.open_transport`), for example
``tcp-client:127.0.0.1:9001`` for a virtual controller started by
:mod:`rspfed.transport.ble.radio`, ``usb:0`` or ``hci-socket:0`` for a real
adapter driven by bumble's own host stack.  ``None`` means the platform's
Bluetooth stack (bleak's default backend for the central, bless for the
peripheral).  Tests in one process use an :class:`HciEndpoint` from
:class:`rspfed.transport.ble.radio.LocalRadio` instead of a string.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable

import attrs
from bumble.device import Device
from bumble.hci import Address
from bumble.transport import open_transport
from bumble.transport.common import TransportSink, TransportSource

from rspfed.errors import TransportError

__all__ = ["HciEndpoint", "HciSpec", "OpenedHci", "open_device", "random_static_address"]


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

    async def aclose(self) -> None:
        """Release the HCI transport (never raises)."""
        with contextlib.suppress(Exception):
            await self.closer()


def random_static_address(rand: Callable[[int], bytes] = os.urandom) -> Address:
    """A random static LE address (top two bits 11), from ``rand``."""
    raw = bytearray(rand(6))
    raw[0] |= 0xC0
    text = ":".join(f"{b:02X}" for b in raw)
    return Address(text, Address.RANDOM_DEVICE_ADDRESS)


async def open_device(
    hci: HciSpec, *, name: str = "rspfed", address: Address | None = None
) -> OpenedHci:
    """Open ``hci``, build a bumble Device on it and power it on.

    Raises :class:`~rspfed.errors.TransportError` when the transport cannot be
    opened or the controller does not answer.
    """
    address = address or random_static_address()
    if isinstance(hci, HciEndpoint):
        source, sink = hci.source, hci.sink

        async def closer() -> None:
            return None

        description = f"in-process controller {hci.name}"
    else:
        try:
            transport = await open_transport(hci)
        except Exception as exc:
            raise TransportError(f"cannot open BLE HCI transport {hci!r}: {exc}") from exc
        source, sink = transport.source, transport.sink
        closer = transport.close
        description = hci
    device = Device.with_hci(name, address, source, sink)
    try:
        await device.power_on()
    except Exception as exc:
        await closer()
        raise TransportError(f"BLE controller on {description} did not power on: {exc}") from exc
    return OpenedHci(device, closer, description)
