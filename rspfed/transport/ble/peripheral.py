"""The offerer's side over BLE: a GATT server advertising the session's service.

One interface, :class:`BlePeripheral` (``start``, ``accept``, ``aclose``; an
async context manager), two implementations:

* :class:`BumblePeripheral`: bumble's host stack over an HCI spec
  (``tcp-client:127.0.0.1:P`` for a virtual controller, ``usb:0`` or
  ``hci-socket:0`` for a real adapter bumble drives itself) or an in-process
  :class:`~rspfed.transport.ble.hci.HciEndpoint`.  This is what CI runs.
* :class:`BlessPeripheral`: the platform's Bluetooth stack through ``bless``
  (BlueZ over D-Bus, CoreBluetooth, WinRT), for real hardware.  It is **not
  run in CI** (CI has no Bluetooth adapter); ``examples/ble_check.py`` checks
  it on two machines.  bless reports neither the negotiated MTU nor which
  central wrote, and cannot drop a connection: the stream takes the ATT_MTU
  from the central's OPEN frame, serves the first central that opens, and
  notices a link loss by polling ``is_connected`` (every 0.5 s).

:func:`ble_advertise` picks one (``hci=None``: bless) and starts it.

The GATT layout (see :mod:`rspfed.transport.ble.uuids`): one primary service,
``service_uuid(discovery_id)``, with a write characteristic (write with
response; central to peripheral) and a notify characteristic (notify;
peripheral to central).  The advertisement carries the flags (LE general
discoverable, BR/EDR not supported) and the complete list of 128-bit service
UUIDs (the session's); the scan response carries the local name.  After the
first central connects the peripheral stops advertising and refuses (drops)
any other connection: one pairing attempt per offer.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import importlib
from types import TracebackType
from typing import Any, Self

from bumble import gatt
from bumble.core import UUID as BumbleUUID
from bumble.core import AdvertisingData
from bumble.device import Connection, Device

from rspfed.errors import TransportError, UsageError
from rspfed.transport.ble.fragment import ATT_MIN_MTU, DEFAULT_MAX_MESSAGE_SIZE
from rspfed.transport.ble.hci import HciSpec, OpenedHci, open_device
from rspfed.transport.ble.link import GattRole, GattStream
from rspfed.transport.ble.uuids import (
    notify_characteristic_uuid,
    service_uuid,
    write_characteristic_uuid,
)

__all__ = [
    "BlePeripheral",
    "BlessPeripheral",
    "BlessPeripheralStream",
    "BumblePeripheral",
    "BumblePeripheralStream",
    "ble_advertise",
]


class BlePeripheral(abc.ABC):
    """An advertising GATT server for one session; :meth:`accept` yields its stream."""

    def __init__(
        self,
        discovery_id: bytes,
        *,
        name: str = "rspfed",
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        close_grace: float = 2.0,
    ) -> None:
        self.discovery_id = bytes(discovery_id)
        self.service_uuid = service_uuid(self.discovery_id)
        self.write_uuid = write_characteristic_uuid(self.discovery_id)
        self.notify_uuid = notify_characteristic_uuid(self.discovery_id)
        self.name = name
        self.max_message_size = max_message_size
        self.close_grace = close_grace
        self._stream: GattStream | None = None
        self._arrived = asyncio.Event()

    @abc.abstractmethod
    async def start(self) -> None:
        """Register the GATT service and start advertising it."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Stop advertising, drop any connection, release the adapter (never raises)."""

    async def accept(self, timeout: float | None = None) -> GattStream:
        """Wait for a central to connect and open the stream (TransportError on time-out/loss)."""
        try:
            async with asyncio.timeout(timeout):
                await self._arrived.wait()
                stream = self._stream
                assert stream is not None
                await stream._guarded(stream.opened.wait())
        except TimeoutError:
            raise TransportError(
                f"no BLE central opened the session within {timeout:g} s"
            ) from None
        return stream

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# --------------------------------------------------------------------- bumble
class BumblePeripheralStream(GattStream):
    """The peripheral's stream on a bumble connection."""

    def __init__(
        self,
        device: Device,
        connection: Connection,
        characteristic: gatt.Characteristic[bytes],
        **kwargs: Any,
    ) -> None:
        address = str(connection.peer_address).split("/")[0]
        super().__init__(GattRole.PERIPHERAL, peer=f"ble:{address}", **kwargs)
        self._device = device
        self.connection = connection
        self._characteristic = characteristic

    def frame_received(self, data: bytes) -> None:
        """Track the connection's ATT_MTU until OPEN, then take the frame."""
        if not self.opened.is_set():
            self.mtu = max(ATT_MIN_MTU, self.connection.att_mtu)
        super().frame_received(data)

    async def _transmit(self, frame: bytes) -> None:
        await self._device.notify_subscriber(self.connection, self._characteristic, frame)

    async def _disconnect(self) -> None:
        with contextlib.suppress(Exception):
            await self.connection.disconnect()


class BumblePeripheral(BlePeripheral):
    """:class:`BlePeripheral` on a bumble device over ``hci`` (runs in CI)."""

    def __init__(
        self,
        discovery_id: bytes,
        *,
        hci: HciSpec,
        advertising_interval_ms: float = 20.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(discovery_id, **kwargs)
        self.hci = hci
        self.advertising_interval_ms = advertising_interval_ms
        self._opened_hci: OpenedHci | None = None
        self._notify_char: gatt.Characteristic[bytes] | None = None

    @property
    def device(self) -> Device:
        """The bumble device (after :meth:`start`)."""
        if self._opened_hci is None:
            raise UsageError("the BLE peripheral is not started")
        return self._opened_hci.device

    async def start(self) -> None:
        """Open the controller, add the service, advertise."""
        if self._opened_hci is not None:
            raise UsageError("the BLE peripheral is already started")
        self._opened_hci = await open_device(self.hci, name=self.name)
        device = self._opened_hci.device
        write_char: gatt.Characteristic[bytes] = gatt.Characteristic(
            str(self.write_uuid),
            gatt.Characteristic.Properties.WRITE,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(write=self._on_write),
        )
        notify_char: gatt.Characteristic[bytes] = gatt.Characteristic(
            str(self.notify_uuid),
            gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.READABLE,
            b"",
        )
        self._notify_char = notify_char
        device.add_service(gatt.Service(str(self.service_uuid), [write_char, notify_char]))
        device.on(Device.EVENT_CONNECTION, self._on_connection)
        uuid_le = BumbleUUID(str(self.service_uuid)).to_bytes(force_128=True)
        advertising = AdvertisingData(
            [
                (AdvertisingData.FLAGS, bytes([0x06])),
                (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, uuid_le),
            ]
        )
        scan_response = AdvertisingData(
            [(AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()[:29])]
        )
        try:
            await device.start_advertising(
                advertising_data=bytes(advertising),
                scan_response_data=bytes(scan_response),
                advertising_interval_min=self.advertising_interval_ms,
                advertising_interval_max=self.advertising_interval_ms * 2,
            )
        except Exception as exc:
            await self.aclose()
            raise TransportError(f"BLE advertising failed: {exc}") from exc

    def _on_connection(self, connection: Connection) -> None:
        if self._stream is not None or self._notify_char is None:
            # One central per offer: refuse any other.
            asyncio.get_running_loop().create_task(self._drop(connection))
            return
        stream = BumblePeripheralStream(
            self.device,
            connection,
            self._notify_char,
            max_message_size=self.max_message_size,
            close_grace=self.close_grace,
        )
        connection.on(
            Connection.EVENT_DISCONNECTION,
            lambda reason: stream.link_lost(f"disconnected (HCI reason 0x{reason:02x})"),
        )
        self._stream = stream
        self._arrived.set()
        asyncio.get_running_loop().create_task(self._stop_advertising())

    async def _drop(self, connection: Connection) -> None:
        with contextlib.suppress(Exception):
            await connection.disconnect()

    async def _stop_advertising(self) -> None:
        with contextlib.suppress(Exception):
            await self.device.stop_advertising()

    def _on_write(self, connection: Connection, value: bytes) -> None:
        stream = self._stream
        if isinstance(stream, BumblePeripheralStream) and stream.connection is connection:
            stream.frame_received(bytes(value))

    async def aclose(self) -> None:
        """Drop the connection and release the HCI transport (never raises)."""
        opened, self._opened_hci = self._opened_hci, None
        if self._stream is not None and not self._stream.is_lost:
            await self._stream.aclose()
        if opened is not None:
            with contextlib.suppress(Exception):
                if opened.device.is_advertising:
                    await opened.device.stop_advertising()
            await opened.aclose()


# ---------------------------------------------------------------------- bless
class BlessPeripheralStream(GattStream):
    """The peripheral's stream through ``bless`` (real hardware; not run in CI)."""

    def __init__(self, owner: BlessPeripheral, **kwargs: Any) -> None:
        super().__init__(GattRole.PERIPHERAL, peer="ble:central", **kwargs)
        self._owner = owner

    def _local_mtu_known(self) -> bool:
        return False  # bless does not expose it: take the central's OPEN value

    async def _transmit(self, frame: bytes) -> None:
        await self._owner._notify(frame)

    async def _disconnect(self) -> None:
        return None  # bless cannot drop a central; BlessPeripheral.aclose stops the server


class BlessPeripheral(BlePeripheral):
    """:class:`BlePeripheral` on the platform stack through ``bless`` (not run in CI)."""

    def __init__(self, discovery_id: bytes, *, poll_interval: float = 0.5, **kwargs: Any) -> None:
        super().__init__(discovery_id, **kwargs)
        self.poll_interval = poll_interval
        self._server: Any = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Register the service with the OS stack and advertise (needs an adapter)."""
        try:
            # bless is the optional "hardware" extra; its platform class is
            # chosen at import time (typed here through its base class).
            from bless.backends.attribute import GATTAttributePermissions
            from bless.backends.characteristic import GATTCharacteristicProperties
            from bless.backends.server import BaseBlessServer

            server_class: type[BaseBlessServer] = importlib.import_module("bless").BlessServer
            server = server_class(name=self.name)
            svc = str(self.service_uuid)
            await server.add_new_service(svc)
            await server.add_new_characteristic(
                svc,
                str(self.write_uuid),
                GATTCharacteristicProperties.write,
                None,
                GATTAttributePermissions.writeable,
            )
            await server.add_new_characteristic(
                svc,
                str(self.notify_uuid),
                GATTCharacteristicProperties.notify | GATTCharacteristicProperties.read,
                None,
                GATTAttributePermissions.readable,
            )
            server.read_request_func = lambda characteristic, **_: characteristic.value
            server.write_request_func = self._on_write
            await server.start()
        except Exception as exc:
            raise TransportError(f"bless GATT server failed to start: {exc}") from exc
        self._server = server
        self._watch = asyncio.get_running_loop().create_task(self._watch_connection())

    def _on_write(self, characteristic: Any, value: Any, **_: Any) -> None:
        if str(characteristic.uuid).lower() != str(self.write_uuid):
            return
        if self._stream is None:
            self._stream = BlessPeripheralStream(
                self, max_message_size=self.max_message_size, close_grace=self.close_grace
            )
            self._arrived.set()
        self._stream.frame_received(bytes(value))

    async def _notify(self, frame: bytes) -> None:
        server = self._server
        if server is None:
            raise TransportError("the bless server is stopped")
        characteristic = server.get_characteristic(str(self.notify_uuid))
        characteristic.value = bytearray(frame)
        # CoreBluetooth refuses while its transmit queue is full: retry briefly.
        for _ in range(200):
            if server.update_value(str(self.service_uuid), str(self.notify_uuid)) is not False:
                return
            await asyncio.sleep(0.01)
        raise TransportError("the OS Bluetooth stack refused the notification")

    async def _watch_connection(self) -> None:
        seen = False
        while self._server is not None:
            try:
                connected = bool(await self._server.is_connected())
            except Exception:
                connected = False
            if connected:
                seen = True
            elif seen and self._stream is not None:
                self._stream.link_lost("the central disconnected")
                return
            await asyncio.sleep(self.poll_interval)

    async def aclose(self) -> None:
        """Stop the server (never raises)."""
        if self._stream is not None and not self._stream.is_lost:
            await self._stream.aclose()
        server, self._server = self._server, None
        if self._watch is not None:
            self._watch.cancel()
        if server is not None:
            with contextlib.suppress(Exception):
                await server.stop()


async def ble_advertise(
    discovery_id: bytes,
    *,
    hci: HciSpec | None = None,
    name: str = "rspfed",
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    close_grace: float = 2.0,
) -> BlePeripheral:
    """Start advertising ``discovery_id``'s service: bumble over ``hci``, or bless if None.

    Returns the started :class:`BlePeripheral`; ``await p.accept(timeout)``
    gives the stream, ``await p.aclose()`` releases everything.
    """
    peripheral: BlePeripheral
    if hci is None:
        peripheral = BlessPeripheral(
            discovery_id, name=name, max_message_size=max_message_size, close_grace=close_grace
        )
    else:
        peripheral = BumblePeripheral(
            discovery_id,
            hci=hci,
            name=name,
            max_message_size=max_message_size,
            close_grace=close_grace,
        )
    await peripheral.start()
    return peripheral
