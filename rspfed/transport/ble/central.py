"""The joiner's side over BLE: a GATT central written against bleak's public API.

:func:`ble_connect` scans for the session's service UUID
(:func:`~rspfed.transport.ble.uuids.service_uuid` of the discovery id) with
``BleakScanner.find_device_by_filter``, connects with ``BleakClient``,
subscribes to the notify characteristic (``start_notify``), writes the OPEN
frame (its ATT_MTU and the credit window) to the write characteristic
(``write_gatt_char(..., response=True)``) and returns a
:class:`BleCentralStream`, a :class:`~rspfed.transport.stream.ByteStream`.

The bleak code is the same on every platform; only the backend classes differ:
``hci=None`` uses bleak's platform backend (BlueZ, CoreBluetooth, WinRT,
Android), ``hci="tcp-client:127.0.0.1:P"`` (any bumble transport spec) or an
in-process :class:`~rspfed.transport.ble.hci.HciEndpoint` uses
:func:`~rspfed.transport.ble.bumble_backend.bumble_backend`, which CI runs on
bumble's virtual controller.
"""

from __future__ import annotations

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

from rspfed.errors import TransportError, UsageError
from rspfed.transport.ble.bumble_backend import BumbleBackend, bumble_backend
from rspfed.transport.ble.fragment import (
    ATT_MAX_MTU,
    ATT_MIN_MTU,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_WINDOW,
)
from rspfed.transport.ble.hci import HciSpec
from rspfed.transport.ble.link import GattRole, GattStream
from rspfed.transport.ble.uuids import (
    notify_characteristic_uuid,
    service_uuid,
    write_characteristic_uuid,
)

__all__ = ["BleCentralStream", "ble_connect"]


class BleCentralStream(GattStream):
    """The central's :class:`~rspfed.transport.stream.ByteStream` (see :func:`ble_connect`).

    ``client`` is the connected :class:`bleak.BleakClient`; ``mtu`` the ATT_MTU
    the frames are sized for.  ``aclose`` disconnects and releases a bumble
    backend this stream opened.
    """

    def __init__(
        self,
        *,
        peer: str,
        max_message_size: int,
        window: int,
        close_grace: float,
        backend: BumbleBackend | None,
    ) -> None:
        super().__init__(
            GattRole.CENTRAL,
            peer=peer,
            max_message_size=max_message_size,
            window=window,
            close_grace=close_grace,
        )
        self.client: BleakClient | None = None
        self._write_char: BleakGATTCharacteristic | None = None
        self._backend = backend

    async def _transmit(self, frame: bytes) -> None:
        if self.client is None or self._write_char is None:
            raise TransportError("BLE central is not connected")
        await self.client.write_gatt_char(self._write_char, frame, response=True)

    async def _disconnect(self) -> None:
        client, self.client = self.client, None
        try:
            if client is not None:
                await client.disconnect()
        except Exception:  # noqa: S110 - the link may already be gone
            pass
        finally:
            if self._backend is not None:
                await self._backend.aclose()
                self._backend = None

    def _on_notify(self, _characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        self.frame_received(bytes(data))

    def _on_disconnected(self, _client: BleakClient) -> None:
        self.link_lost("the peripheral disconnected")

    async def _setup(
        self,
        device: BLEDevice,
        discovery_id: bytes,
        client_backend: type[BaseBleakClient] | None,
        timeout: float,
    ) -> None:
        svc = str(service_uuid(discovery_id))
        self.discovery_id = discovery_id
        client = BleakClient(
            device,
            self._on_disconnected,
            services=[svc],
            timeout=timeout,
            backend=client_backend,
        )
        await client.connect()
        self.client = client
        service = client.services.get_service(svc)
        if service is None:
            raise TransportError("the BLE peripheral does not offer the session service")
        write_char = service.get_characteristic(str(write_characteristic_uuid(discovery_id)))
        notify_char = service.get_characteristic(str(notify_characteristic_uuid(discovery_id)))
        if write_char is None or notify_char is None:
            raise TransportError("the BLE peripheral lacks the session characteristics")
        self._write_char = write_char
        # BlueZ reports 23 in mtu_size; the write-without-response size is right.
        mtu = max(client.mtu_size, write_char.max_write_without_response_size + 3)
        self.mtu = max(ATT_MIN_MTU, min(ATT_MAX_MTU, mtu))
        await client.start_notify(notify_char, self._on_notify)
        await self._transmit(self._tx.open(self.mtu, self._returns.window))
        self._opened.set()


async def ble_connect(
    discovery_id: bytes,
    *,
    hci: HciSpec | None = None,
    timeout: float = 20.0,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    window: int = DEFAULT_WINDOW,
    close_grace: float = 2.0,
    scanner_backend: type[BaseBleakScanner] | None = None,
    client_backend: type[BaseBleakClient] | None = None,
) -> BleCentralStream:
    """Find the offerer advertising ``discovery_id``'s service, connect, open the stream.

    ``hci``: a bumble transport spec or in-process endpoint (the bumble-backed
    bleak backend), or ``None`` for bleak's platform backend; explicit
    ``scanner_backend``/``client_backend`` classes override both.  ``timeout``
    bounds the scan and the connection each.  Raises
    :class:`~rspfed.errors.TransportError` when nothing is found in time or the
    connection or GATT set-up fails (the connection is then released).
    """
    if timeout <= 0:
        raise UsageError("timeout must be > 0")
    backend: BumbleBackend | None = None
    if hci is not None and scanner_backend is None and client_backend is None:
        backend = bumble_backend(hci)
        scanner_backend, client_backend = backend.scanner, backend.client
    svc = str(service_uuid(discovery_id))

    def matches(_device: BLEDevice, adv: AdvertisementData) -> bool:
        return svc in adv.service_uuids

    stream = BleCentralStream(
        peer="ble:?",
        max_message_size=max_message_size,
        window=window,
        close_grace=close_grace,
        backend=backend,
    )
    try:
        if scanner_backend is None:
            device = await BleakScanner.find_device_by_filter(
                matches, timeout=timeout, service_uuids=[svc]
            )
        else:
            device = await BleakScanner.find_device_by_filter(
                matches, timeout=timeout, service_uuids=[svc], backend=scanner_backend
            )
        if device is None:
            raise TransportError(f"no BLE offerer advertising the session within {timeout:g} s")
        stream._peer = f"ble:{device.address}"
        await stream._setup(device, discovery_id, client_backend, timeout)
    except BaseException as exc:
        await stream._disconnect()
        if isinstance(exc, TransportError) or not isinstance(exc, Exception):
            raise
        raise TransportError(f"BLE connect failed: {exc}") from exc
    return stream
