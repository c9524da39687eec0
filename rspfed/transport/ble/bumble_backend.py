"""A bleak backend on bumble: the same ``BleakScanner``/``BleakClient`` code in CI.

bleak 3.1 takes a custom backend class: ``BleakScanner(..., backend=cls)`` and
``BleakClient(..., backend=cls)`` construct ``cls`` with the arguments bleak's
platform backends get.  :func:`bumble_backend` returns a
:class:`BumbleBackend` whose :attr:`~BumbleBackend.scanner` and
:attr:`~BumbleBackend.client` are such classes, bound to one bumble
:class:`~bumble.device.Device` (one adapter: the scanner that finds a device
and the client that connects to it share it, as on a real host).  The device is
opened lazily on first use over an HCI spec (``tcp-client:127.0.0.1:P`` for a
virtual controller from :mod:`rspfed.transport.ble.radio`, or any bumble
transport) or an in-process :class:`~rspfed.transport.ble.hci.HciEndpoint`,
and released by :meth:`BumbleBackend.aclose`.

What it implements: scanning (active, legacy and extended advertising reports;
local name, 16/32/128-bit service UUIDs, manufacturer data, TX power, RSSI;
bleak's ``service_uuids`` filter), connecting (LE, then an ATT_MTU exchange
asking for 517 and service discovery, optionally limited to ``services``),
``mtu_size``, reading and writing characteristics (with or without response)
and descriptors, notifications/indications (``start_notify``/``stop_notify``),
``disconnect`` and the disconnection callback (on every disconnection, as
bleak's BlueZ backend does).  Pairing is not
implemented (rspfed's pairing security is end to end above the link):
``pair``/``unpair`` raise :class:`bleak.exc.BleakError`.  Every bumble failure
surfaces as a :class:`bleak.exc.BleakError` (as bleak's own backends do), and an
operation on a link that drops is cancelled at once instead of waiting for the
30 s ATT timeout.
"""

from __future__ import annotations

import asyncio
import struct
import uuid
from collections.abc import Awaitable
from typing import Any, ClassVar, Literal, TypeVar

import attrs
from bleak.args import SizedBuffer
from bleak.assigned_numbers import gatt_char_props_to_strs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bumble.core import UUID as BumbleUUID
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy, ServiceProxy
from bumble.hci import Address

from rspfed.transport.ble.hci import HciSpec, OpenedHci, open_device

__all__ = [
    "BumbleBackend",
    "BumbleBleakClient",
    "BumbleBleakScanner",
    "BumbleHost",
    "bumble_backend",
    "to_uuid",
]

_T = TypeVar("_T")

#: The ATT_MTU the client asks for after connecting.
REQUESTED_MTU = 517


def to_uuid(value: BumbleUUID) -> str:
    """A bumble UUID as bleak spells UUIDs: 128-bit, lower case, with dashes."""
    return str(uuid.UUID(bytes=value.to_bytes(force_128=True)[::-1]))


class BumbleHost:
    """One bumble Device shared by a backend's scanner and clients (opened lazily)."""

    def __init__(self, hci: HciSpec, *, name: str = "rspfed-central") -> None:
        self.hci = hci
        self.name = name
        self._opened: OpenedHci | None = None
        self._lock = asyncio.Lock()

    async def device(self) -> Device:
        """The powered-on device (opens the HCI transport on first use)."""
        async with self._lock:
            if self._opened is None:
                self._opened = await open_device(self.hci, name=self.name)
            return self._opened.device

    async def aclose(self) -> None:
        """Release the HCI transport (never raises)."""
        async with self._lock:
            opened, self._opened = self._opened, None
        if opened is not None:
            await opened.aclose()


def _ad_fields(advertisement: Advertisement) -> AdvertisementData:
    local_name: str | None = None
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    services: list[str] = []
    tx_power: int | None = None
    for ad_type, value in advertisement.data.ad_structures:
        code = int(ad_type)
        if code in (0x08, 0x09):
            local_name = value.decode("utf-8", "replace")
        elif code in (0x02, 0x03, 0x04, 0x05, 0x06, 0x07):
            width = {0x02: 2, 0x03: 2, 0x04: 4, 0x05: 4, 0x06: 16, 0x07: 16}[code]
            for i in range(0, len(value) - width + 1, width):
                services.append(to_uuid(BumbleUUID.from_bytes(value[i : i + width])))
        elif code == 0xFF and len(value) >= 2:
            manufacturer[struct.unpack_from("<H", value)[0]] = value[2:]
        elif code == 0x0A and len(value) == 1:
            tx_power = struct.unpack("b", value)[0]
        elif code in (0x16, 0x20, 0x21):
            width = {0x16: 2, 0x20: 4, 0x21: 16}[code]
            if len(value) >= width:
                key = to_uuid(BumbleUUID.from_bytes(value[:width]))
                service_data[key] = value[width:]
    return AdvertisementData(
        local_name=local_name,
        manufacturer_data=manufacturer,
        service_data=service_data,
        service_uuids=list(dict.fromkeys(services)),
        tx_power=tx_power,
        rssi=advertisement.rssi,
        platform_data=(advertisement,),
    )


class BumbleBleakScanner(BaseBleakScanner):
    """bleak scanner backend on a :class:`BumbleHost` (use :func:`bumble_backend`)."""

    host: ClassVar[BumbleHost | None] = None

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        if self.host is None:
            raise BleakError("BumbleBleakScanner is not bound: use bumble_backend(hci).scanner")
        self._host = self.host
        self._active = scanning_mode == "active"
        self._device: Device | None = None

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        data = _ad_fields(advertisement)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = str(advertisement.address).split("/")[0]
        device = self.create_or_update_device(
            str(advertisement.address), address, data.local_name, advertisement.address, data
        )
        self.call_detection_callbacks(device, data)

    async def start(self) -> None:
        """Start scanning (opens the bumble device on first use)."""
        try:
            device = await self._host.device()
            self.seen_devices = {}
            device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
            self._device = device
            await device.start_scanning(active=self._active, filter_duplicates=False)
        except Exception as exc:
            raise BleakError(f"bumble scan failed to start: {exc}") from exc

    async def stop(self) -> None:
        """Stop scanning."""
        device, self._device = self._device, None
        if device is None:
            return
        device.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        try:
            if device.is_scanning:
                await device.stop_scanning()
        except Exception as exc:
            raise BleakError(f"bumble scan failed to stop: {exc}") from exc


class BumbleBleakClient(BaseBleakClient):
    """bleak client backend on a :class:`BumbleHost` (use :func:`bumble_backend`)."""

    host: ClassVar[BumbleHost | None] = None

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Any = None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        if self.host is None:
            raise BleakError("BumbleBleakClient is not bound: use bumble_backend(hci).client")
        self._host = self.host
        target: Address
        if isinstance(address_or_ble_device, BLEDevice) and isinstance(
            address_or_ble_device.details, Address
        ):
            target = address_or_ble_device.details
        else:
            target = Address(self.address, Address.RANDOM_DEVICE_ADDRESS)
        self._target = target
        self._services_filter = services
        self._connection: Connection | None = None
        self._peer: Peer | None = None

    # ------------------------------------------------------------- helpers
    def _require(self) -> tuple[Connection, Peer]:
        if self._connection is None or self._peer is None:
            raise BleakError("not connected")
        return self._connection, self._peer

    async def _io(self, what: str, awaitable: Awaitable[_T]) -> _T:
        connection, _ = self._require()
        try:
            return await connection.cancel_on_disconnection(awaitable)
        except asyncio.CancelledError:
            if self._connection is None:
                raise BleakError(f"{what}: disconnected") from None
            raise
        except BleakError:
            raise
        except Exception as exc:
            raise BleakError(f"{what} failed: {exc}") from exc

    def _on_disconnection(self, reason: int) -> None:
        self._connection = None
        self._peer = None
        self.services = None
        # Like bleak's BlueZ backend: on every disconnection, solicited or not.
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    # ------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        """The peer's address (bumble does not read the GAP name here)."""
        return str(self._target).split("/")[0]

    @property
    def mtu_size(self) -> int:
        """The negotiated ATT_MTU (23 before connecting)."""
        return self._connection.att_mtu if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        """Whether the LE connection is up."""
        return self._connection is not None

    # -------------------------------------------------------- connectivity
    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, exchange ATT_MTU (517 asked) and discover the services."""
        if pair:
            raise BleakError("pairing is not supported by the rspfed bumble backend")
        device = await self._host.device()
        try:
            connection = await device.connect(self._target, timeout=self._timeout)
        except Exception as exc:
            raise BleakError(f"bumble connect to {self.name} failed: {exc}") from exc
        self._connection = connection
        self._peer = Peer(connection)
        connection.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            await self._io("MTU exchange", self._peer.request_mtu(REQUESTED_MTU))
            self.services = await self._io("service discovery", self._discover())
        except BaseException:
            await self.disconnect()
            raise

    async def _discover(self) -> BleakGATTServiceCollection:
        _, peer = self._require()
        collection = BleakGATTServiceCollection()
        proxies: list[ServiceProxy]
        if self._services_filter:
            proxies = []
            for wanted in self._services_filter:
                proxies += await peer.discover_service(wanted)
        else:
            proxies = await peer.discover_services()
        for proxy in proxies:
            service = BleakGATTService(proxy, proxy.handle, to_uuid(proxy.uuid))
            collection.add_service(service)
            for char_proxy in await proxy.discover_characteristics():
                characteristic = BleakGATTCharacteristic(
                    char_proxy,
                    char_proxy.handle,
                    to_uuid(char_proxy.uuid),
                    sorted(gatt_char_props_to_strs(int(char_proxy.properties))),
                    lambda: self.mtu_size - 3,
                    service,
                )
                collection.add_characteristic(characteristic)
                for desc_proxy in await peer.discover_descriptors(char_proxy):
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            desc_proxy, desc_proxy.handle, to_uuid(desc_proxy.type), characteristic
                        )
                    )
        return collection

    async def disconnect(self) -> None:
        """Disconnect (the disconnected callback fires, as with BlueZ)."""
        connection = self._connection
        if connection is None:
            return
        done = asyncio.get_running_loop().create_future()

        def on_done(reason: int) -> None:
            if not done.done():
                done.set_result(None)

        connection.once(Connection.EVENT_DISCONNECTION, on_done)
        try:
            await connection.disconnect()
            await asyncio.wait_for(done, self._timeout)
        except Exception:  # noqa: S110 - the link may already be gone
            pass
        self._connection = None
        self._peer = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Not supported (raises BleakError)."""
        raise BleakError("pairing is not supported by the rspfed bumble backend")

    async def unpair(self) -> None:
        """Not supported (raises BleakError)."""
        raise BleakError("unpairing is not supported by the rspfed bumble backend")

    # ----------------------------------------------------------------- I/O
    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a characteristic value."""
        _, peer = self._require()
        return bytearray(await self._io("read", peer.read_value(characteristic.handle)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a descriptor value."""
        _, peer = self._require()
        return bytearray(await self._io("read", peer.read_value(descriptor.handle)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        """Write a characteristic value (``response``: a write request, else a command)."""
        _, peer = self._require()
        value = bytes(memoryview(data))
        await self._io("write", peer.write_value(characteristic.handle, value, response))

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        """Write a descriptor value (write request)."""
        _, peer = self._require()
        value = bytes(memoryview(data))
        await self._io("write", peer.write_value(descriptor.handle, value, True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Subscribe (notifications preferred over indications)."""
        _, peer = self._require()
        proxy = characteristic.obj
        if not isinstance(proxy, CharacteristicProxy):
            raise BleakError("characteristic does not come from this backend")

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        await self._io("subscribe", peer.subscribe(proxy, deliver, prefer_notify=True))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Unsubscribe."""
        _, peer = self._require()
        proxy = characteristic.obj
        if not isinstance(proxy, CharacteristicProxy):
            raise BleakError("characteristic does not come from this backend")
        await self._io("unsubscribe", peer.unsubscribe(proxy))


@attrs.frozen
class BumbleBackend:
    """A bumble-backed bleak backend: pass ``backend=b.scanner`` / ``backend=b.client``."""

    host: BumbleHost
    scanner: type[BaseBleakScanner]
    client: type[BaseBleakClient]

    async def aclose(self) -> None:
        """Release the bumble device and its HCI transport."""
        await self.host.aclose()


def bumble_backend(hci: HciSpec, *, name: str = "rspfed-central") -> BumbleBackend:
    """A bleak backend pair (scanner, client) on a bumble device over ``hci``."""
    host = BumbleHost(hci, name=name)

    class Scanner(BumbleBleakScanner):
        pass

    class Client(BumbleBleakClient):
        pass

    Scanner.host = host
    Client.host = host
    return BumbleBackend(host, Scanner, Client)
