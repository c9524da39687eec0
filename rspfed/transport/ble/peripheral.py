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
import functools
import importlib
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import attrs
from bumble import gatt
from bumble.core import UUID as BumbleUUID
from bumble.core import AdvertisingData
from bumble.device import (
    AdvertisingEventProperties,
    AdvertisingParameters,
    AdvertisingSet,
    Connection,
    Device,
)

from rspfed.errors import ProtocolError, TransportError, UsageError
from rspfed.transport.ble.fragment import ATT_MIN_MTU, DEFAULT_MAX_MESSAGE_SIZE
from rspfed.transport.ble.hci import HciSpec, OpenedHci, open_device
from rspfed.transport.ble.link import GattRole, GattStream
from rspfed.transport.ble.uuids import (
    notify_characteristic_uuid,
    service_uuid,
    write_characteristic_uuid,
)

if TYPE_CHECKING:  # bless is the optional "hardware" extra
    from bless.backends.server import BaseBlessServer

__all__ = [
    "BleAcceptor",
    "BlePeripheral",
    "BlessPeripheral",
    "BlessPeripheralStream",
    "BumblePeripheral",
    "BumblePeripheralStream",
    "SessionUuids",
    "ble_advertise",
]


@attrs.frozen
class SessionUuids:
    """The GATT UUIDs of one discovery identifier (see :mod:`~rspfed.transport.ble.uuids`)."""

    discovery_id: bytes
    service: uuid.UUID
    write: uuid.UUID
    notify: uuid.UUID

    @classmethod
    def of(cls, discovery_id: bytes) -> SessionUuids:
        """The UUIDs derived from ``discovery_id``."""
        return cls(
            bytes(discovery_id),
            service_uuid(discovery_id),
            write_characteristic_uuid(discovery_id),
            notify_characteristic_uuid(discovery_id),
        )


class BleAcceptor:
    """One discovery identifier's view of a :class:`BlePeripheral`.

    Has what an offerer's listener needs (as :class:`~rspfed.transport.lan.LanOffer`):
    :attr:`discovery_id`, :meth:`accept` (the stream, if it comes in on this
    identifier's service) and :meth:`aclose` (closes the shared peripheral,
    which keeps an accepted stream alive).
    """

    def __init__(self, peripheral: BlePeripheral, discovery_id: bytes) -> None:
        self.peripheral = peripheral
        self.discovery_id = discovery_id

    async def accept(self, timeout: float | None = None) -> GattStream:
        """The stream opened on this identifier's service (TransportError on time-out)."""
        return await self.peripheral.accept(timeout, discovery_id=self.discovery_id)

    async def aclose(self) -> None:
        """Close the peripheral (idempotent; an accepted stream lives on)."""
        await self.peripheral.aclose()


class BlePeripheral(abc.ABC):
    """An advertising GATT server for one offer; :meth:`accept` yields its stream.

    ``discovery_ids``: one identifier, or two (the QR secret's and the short
    code's nameplate's): one GATT service each, the first advertised in the
    advertising data, the second in the scan response.  The first central that
    opens either service gets the stream (``stream.discovery_id`` tells which).

    Ownership: :meth:`aclose` stops advertising and releases the adapter
    unless a stream was accepted and is still open; closing that stream then
    releases it.  So a listener may close the peripheral right after
    :meth:`accept`, and the stream keeps working until it is closed.
    """

    def __init__(
        self,
        discovery_ids: bytes | Sequence[bytes],
        *,
        name: str = "rspfed",
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        close_grace: float = 2.0,
    ) -> None:
        ids = [discovery_ids] if isinstance(discovery_ids, bytes) else list(discovery_ids)
        if not 1 <= len(ids) <= 2 or len(set(ids)) != len(ids):
            raise UsageError("a BLE peripheral serves one or two distinct discovery identifiers")
        self.sessions = [SessionUuids.of(i) for i in ids]
        self.name = name
        self.max_message_size = max_message_size
        self.close_grace = close_grace
        self._stream: GattStream | None = None
        self._arrived = asyncio.Event()
        self._closed = False
        self._released = False

    @property
    def discovery_id(self) -> bytes:
        """The first discovery identifier."""
        return self.sessions[0].discovery_id

    @property
    def service_uuid(self) -> uuid.UUID:
        """The first identifier's service UUID."""
        return self.sessions[0].service

    def acceptors(self) -> list[BleAcceptor]:
        """One :class:`BleAcceptor` per discovery identifier."""
        return [BleAcceptor(self, s.discovery_id) for s in self.sessions]

    @abc.abstractmethod
    async def start(self) -> None:
        """Register the GATT services and start advertising them."""

    @abc.abstractmethod
    async def _stop_advertising(self) -> None:
        """Stop advertising (never raises)."""

    @abc.abstractmethod
    async def _release(self) -> None:
        """Release the adapter / HCI transport (never raises)."""

    async def aclose(self) -> None:
        """Stop advertising; release the adapter unless an accepted stream is open."""
        if self._closed:
            return
        self._closed = True
        await self._stop_advertising()
        stream = self._stream
        if stream is not None and not stream.opened.is_set():
            await stream.aclose()  # a central that never opened: drop it
        if stream is None or stream.closed or stream.is_lost or not stream.opened.is_set():
            await self._release_once()

    async def _release_once(self) -> None:
        if not self._released:
            self._released = True
            await self._release()

    async def _stream_closed(self) -> None:
        """Called by the stream after it disconnected."""
        if self._closed:
            await self._release_once()

    async def accept(
        self, timeout: float | None = None, *, discovery_id: bytes | None = None
    ) -> GattStream:
        """Wait for a central to connect and open the stream (TransportError on time-out/loss).

        With ``discovery_id``, only a stream opened on that identifier's
        service is returned (otherwise this waits until ``timeout``).
        """
        if self._closed:
            raise TransportError("the BLE peripheral is closed")
        try:
            async with asyncio.timeout(timeout):
                await self._arrived.wait()
                stream = self._stream
                assert stream is not None
                await stream._guarded(stream.opened.wait())
                if discovery_id is not None and stream.discovery_id != discovery_id:
                    await asyncio.Event().wait()  # another identifier's attempt
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
        owner: BumblePeripheral,
        connection: Connection,
        **kwargs: Any,
    ) -> None:
        address = str(connection.peer_address).split("/")[0]
        super().__init__(GattRole.PERIPHERAL, peer=f"ble:{address}", **kwargs)
        self._owner = owner
        self.connection = connection
        self.connection_down = False
        self._characteristic: gatt.Characteristic[bytes] | None = None

    def frame_from(self, discovery_id: bytes, data: bytes) -> None:
        """A frame written to ``discovery_id``'s write characteristic."""
        if self.discovery_id is None:
            self.discovery_id = discovery_id
            self._characteristic = self._owner._notify_chars[discovery_id]
        elif self.discovery_id != discovery_id:
            self._framing_failed(ProtocolError("BLE frames on two sessions' services"))
            return
        if not self.opened.is_set():
            # Track the connection's ATT_MTU until OPEN.
            self.mtu = max(ATT_MIN_MTU, self.connection.att_mtu)
        self.frame_received(data)

    async def _transmit(self, frame: bytes) -> None:
        if self._characteristic is None:
            raise TransportError("BLE stream not opened")
        device = self._owner.device
        await device.notify_subscriber(self.connection, self._characteristic, frame)

    def connection_lost(self, reason: int) -> None:
        """The connection's disconnection event."""
        self.connection_down = True
        self.link_lost(f"disconnected (HCI reason 0x{reason:02x})")

    async def _disconnect(self) -> None:
        if not self.connection_down:
            # (bumble waits for ever on a connection that is already down.)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.connection.disconnect(), 5.0)
        await self._owner._stream_closed()


class BumblePeripheral(BlePeripheral):
    """:class:`BlePeripheral` on a bumble device over ``hci`` (runs in CI)."""

    def __init__(
        self,
        discovery_ids: bytes | Sequence[bytes],
        *,
        hci: HciSpec,
        advertising_interval_ms: float = 20.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(discovery_ids, **kwargs)
        self.hci = hci
        self.advertising_interval_ms = advertising_interval_ms
        self._opened_hci: OpenedHci | None = None
        self._notify_chars: dict[bytes, gatt.Characteristic[bytes]] = {}
        self._sets: list[AdvertisingSet] = []

    @property
    def device(self) -> Device:
        """The bumble device (after :meth:`start`)."""
        if self._opened_hci is None:
            raise TransportError("the BLE peripheral's controller is released")
        return self._opened_hci.device

    async def start(self) -> None:
        """Open the controller, add the services, advertise."""
        if self._opened_hci is not None or self._closed:
            raise UsageError("a BLE peripheral starts once")
        self._opened_hci = await open_device(self.hci, name=self.name)
        device = self._opened_hci.device
        uuid_lists: list[bytes] = []
        for session in self.sessions:
            write_char: gatt.Characteristic[bytes] = gatt.Characteristic(
                str(session.write),
                gatt.Characteristic.Properties.WRITE,
                gatt.Characteristic.WRITEABLE,
                gatt.CharacteristicValue(write=functools.partial(self._on_write, session)),
            )
            notify_char: gatt.Characteristic[bytes] = gatt.Characteristic(
                str(session.notify),
                gatt.Characteristic.Properties.NOTIFY,
                gatt.Characteristic.READABLE,
                b"",
            )
            self._notify_chars[session.discovery_id] = notify_char
            device.add_service(gatt.Service(str(session.service), [write_char, notify_char]))
            uuid_lists.append(BumbleUUID(str(session.service)).to_bytes(force_128=True))
        device.on(Device.EVENT_CONNECTION, self._on_connection)
        try:
            await self._advertise(device, uuid_lists)
        except Exception as exc:
            await self.aclose()
            raise TransportError(f"BLE advertising failed: {exc}") from exc

    async def _advertise(self, device: Device, uuid_lists: list[bytes]) -> None:
        complete = AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS
        flags = (AdvertisingData.FLAGS, bytes([0x06]))
        encoded = self.name.encode()
        name = (AdvertisingData.COMPLETE_LOCAL_NAME, encoded[:29])
        # 31 octets: flags (3) + one 128-bit UUID list (18) leave 10 for a name.
        short = (
            (AdvertisingData.COMPLETE_LOCAL_NAME, encoded)
            if len(encoded) <= 8
            else (AdvertisingData.SHORTENED_LOCAL_NAME, encoded[:8])
        )

        def advertising(uuid_le: bytes) -> bytes:
            return bytes(AdvertisingData([flags, (complete, uuid_le), short]))

        interval = self.advertising_interval_ms
        if len(uuid_lists) > 1 and device.supports_le_extended_advertising:
            # One advertising set (legacy PDUs) per session: each UUID on the air.
            for sid, uuid_le in enumerate(uuid_lists):
                parameters = AdvertisingParameters(
                    advertising_event_properties=AdvertisingEventProperties(
                        is_connectable=True, is_scannable=True, is_legacy=True
                    ),
                    primary_advertising_interval_min=interval,
                    primary_advertising_interval_max=interval * 2,
                    advertising_sid=sid,
                )
                self._sets.append(
                    await device.create_advertising_set(
                        advertising_parameters=parameters,
                        advertising_data=advertising(uuid_le),
                        scan_response_data=bytes(AdvertisingData([name])),
                    )
                )
            return
        # One set: the first UUID advertised, a second one in the scan response
        # (a controller without extended advertising; real scanners merge both).
        response = [(complete, uuid_lists[1])] if len(uuid_lists) > 1 else [name]
        await device.start_advertising(
            advertising_data=advertising(uuid_lists[0]),
            scan_response_data=bytes(AdvertisingData(response)),
            advertising_interval_min=interval,
            advertising_interval_max=interval * 2,
        )

    def _on_connection(self, connection: Connection) -> None:
        if self._stream is not None or self._closed:
            # One central per offer: refuse any other.
            asyncio.get_running_loop().create_task(self._drop(connection))
            return
        stream = BumblePeripheralStream(
            self,
            connection,
            max_message_size=self.max_message_size,
            close_grace=self.close_grace,
        )
        connection.on(Connection.EVENT_DISCONNECTION, stream.connection_lost)
        self._stream = stream
        self._arrived.set()
        asyncio.get_running_loop().create_task(self._stop_advertising())

    async def _drop(self, connection: Connection) -> None:
        with contextlib.suppress(Exception):
            await connection.disconnect()

    async def _stop_advertising(self) -> None:
        sets, self._sets = self._sets, []
        for advertising_set in sets:
            with contextlib.suppress(Exception):
                await advertising_set.stop()
        with contextlib.suppress(Exception):
            if self._opened_hci is not None and self._opened_hci.device.is_advertising:
                await self._opened_hci.device.stop_advertising()

    def _on_write(self, session: SessionUuids, connection: Connection, value: bytes) -> None:
        stream = self._stream
        if isinstance(stream, BumblePeripheralStream) and stream.connection is connection:
            stream.frame_from(session.discovery_id, bytes(value))

    async def _release(self) -> None:
        opened, self._opened_hci = self._opened_hci, None
        if opened is not None:
            await opened.aclose()


# ---------------------------------------------------------------------- bless
class BlessPeripheralStream(GattStream):
    """The peripheral's stream through ``bless`` (real hardware; not run in CI)."""

    def __init__(self, owner: BlessPeripheral, discovery_id: bytes, **kwargs: Any) -> None:
        super().__init__(GattRole.PERIPHERAL, peer="ble:central", **kwargs)
        self._owner = owner
        self.discovery_id = discovery_id

    def _local_mtu_known(self) -> bool:
        return False  # bless does not expose it: take the central's OPEN value

    async def _transmit(self, frame: bytes) -> None:
        assert self.discovery_id is not None
        await self._owner._notify(self.discovery_id, frame)

    async def _disconnect(self) -> None:
        # bless cannot drop one central; stopping the server (on release) does.
        await self._owner._stream_closed()


class BlessPeripheral(BlePeripheral):
    """:class:`BlePeripheral` on the platform stack through ``bless`` (not run in CI)."""

    def __init__(
        self, discovery_ids: bytes | Sequence[bytes], *, poll_interval: float = 0.5, **kwargs: Any
    ) -> None:
        super().__init__(discovery_ids, **kwargs)
        self.poll_interval = poll_interval
        self._server: BaseBlessServer | None = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Register the services with the OS stack and advertise (needs an adapter)."""
        try:
            # bless is the optional "hardware" extra; its platform class is
            # chosen at import time (typed here through its base class).
            from bless.backends.attribute import GATTAttributePermissions
            from bless.backends.characteristic import GATTCharacteristicProperties

            server_class: type[BaseBlessServer] = importlib.import_module("bless").BlessServer
            server = server_class(name=self.name)
            for session in self.sessions:
                svc = str(session.service)
                await server.add_new_service(svc)
                await server.add_new_characteristic(
                    svc,
                    str(session.write),
                    GATTCharacteristicProperties.write,
                    None,
                    GATTAttributePermissions.writeable,
                )
                await server.add_new_characteristic(
                    svc,
                    str(session.notify),
                    GATTCharacteristicProperties.notify | GATTCharacteristicProperties.read,
                    None,
                    GATTAttributePermissions.readable,
                )
            server.read_request_func = _read_value
            server.write_request_func = self._on_write
            await server.start()
        except Exception as exc:
            raise TransportError(f"bless GATT server failed to start: {exc}") from exc
        self._server = server
        self._watch = asyncio.get_running_loop().create_task(self._watch_connection())

    def _on_write(self, characteristic: Any, value: Any, **_: Any) -> None:
        written = str(characteristic.uuid).lower()
        for session in self.sessions:
            if written == str(session.write):
                break
        else:
            return
        stream = self._stream
        if stream is None:
            if self._closed:
                return
            stream = BlessPeripheralStream(
                self,
                session.discovery_id,
                max_message_size=self.max_message_size,
                close_grace=self.close_grace,
            )
            self._stream = stream
            self._arrived.set()
        if stream.discovery_id != session.discovery_id:
            stream._framing_failed(ProtocolError("BLE frames on two sessions' services"))
            return
        stream.frame_received(bytes(value))

    async def _notify(self, discovery_id: bytes, frame: bytes) -> None:
        server = self._server
        if server is None:
            raise TransportError("the bless server is stopped")
        session = next(s for s in self.sessions if s.discovery_id == discovery_id)
        characteristic = server.get_characteristic(str(session.notify))
        if characteristic is None:
            raise TransportError("the bless server lost its notify characteristic")
        characteristic.value = bytearray(frame)
        # CoreBluetooth refuses while its transmit queue is full: retry briefly.
        for _ in range(200):
            if server.update_value(str(session.service), str(session.notify)):
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

    async def _stop_advertising(self) -> None:
        return None  # bless advertises while the server runs; released below

    async def _release(self) -> None:
        server, self._server = self._server, None
        if self._watch is not None:
            self._watch.cancel()
        if server is not None:
            with contextlib.suppress(Exception):
                await server.stop()


def _read_value(characteristic: Any, **_: Any) -> Any:
    return characteristic.value


async def ble_advertise(
    discovery_ids: bytes | Sequence[bytes],
    *,
    hci: HciSpec | None = None,
    name: str = "rspfed",
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    close_grace: float = 2.0,
) -> BlePeripheral:
    """Advertise the services of ``discovery_ids`` (one or two): bumble over ``hci``, bless if None.

    Returns the started :class:`BlePeripheral`; ``await p.accept(timeout)``
    gives the stream, ``await p.aclose()`` releases everything.
    """
    peripheral: BlePeripheral
    if hci is None:
        peripheral = BlessPeripheral(
            discovery_ids, name=name, max_message_size=max_message_size, close_grace=close_grace
        )
    else:
        peripheral = BumblePeripheral(
            discovery_ids,
            hci=hci,
            name=name,
            max_message_size=max_message_size,
            close_grace=close_grace,
        )
    await peripheral.start()
    return peripheral
