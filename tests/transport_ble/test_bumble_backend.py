"""The bumble-backed bleak backend used through bleak's public API, like any backend."""

from __future__ import annotations

import asyncio
import os

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError

from rspfed.transport.ble import BumblePeripheral, LocalRadio, bumble_backend
from rspfed.transport.ble.uuids import (
    notify_characteristic_uuid,
    service_uuid,
    write_characteristic_uuid,
)

GAP_DEVICE_NAME = "00002a00-0000-1000-8000-00805f9b34fb"
CCCD = "00002902-0000-1000-8000-00805f9b34fb"


def _connected(client: BleakClient) -> bool:
    return client.is_connected


def test_scan_connect_discover_read_write_notify() -> None:
    async def main() -> None:
        radio = LocalRadio()
        did = os.urandom(16)
        svc = str(service_uuid(did))
        backend = bumble_backend(radio.endpoint())
        async with (
            asyncio.timeout(20),
            BumblePeripheral(did, hci=radio.endpoint(), name="offer") as peripheral,
        ):
            # Scanning: the service filter, the scan response's name, the address.
            found = await BleakScanner.discover(
                timeout=0.3, return_adv=True, service_uuids=[svc], backend=backend.scanner
            )
            assert len(found) == 1
            device, adv = next(iter(found.values()))
            assert adv.service_uuids == [svc]
            assert str(peripheral.device.random_address).startswith(device.address)
            named = await BleakScanner.find_device_by_name(
                "offer", timeout=2, backend=backend.scanner
            )
            assert named is not None
            assert named.address == device.address
            other = await BleakScanner.discover(
                timeout=0.2, service_uuids=[str(service_uuid(bytes(16)))], backend=backend.scanner
            )
            assert other == []

            lost: list[BleakClient] = []
            client = BleakClient(device, lost.append, backend=backend.client, timeout=5)
            await client.connect()
            assert client.is_connected
            assert client.mtu_size == 517
            assert client.backend_id == "Client"
            # Discovery: the GAP service and ours with its two characteristics.
            assert await client.read_gatt_char(GAP_DEVICE_NAME) == b"offer"
            service = client.services.get_service(svc)
            assert service is not None
            write = service.get_characteristic(str(write_characteristic_uuid(did)))
            notify = service.get_characteristic(str(notify_characteristic_uuid(did)))
            assert write is not None
            assert notify is not None
            assert write.properties == ["write"]
            assert notify.properties == ["notify"]
            assert write.max_write_without_response_size == 514
            received: list[bytes] = []

            def on_notify(_: BleakGATTCharacteristic, data: bytearray) -> None:
                received.append(bytes(data))

            await client.start_notify(notify, on_notify)
            cccd = notify.get_descriptor(CCCD)
            assert cccd is not None
            assert await client.read_gatt_descriptor(cccd.handle) == b"\x01\x00"
            # An OPEN frame (MTU 517, 4 credits) then a message: the peripheral echoes
            # nothing by itself, so send from its stream and watch the notification.
            accepted = asyncio.create_task(peripheral.accept(timeout=5))
            await client.write_gatt_char(write, b"\x04\x00\x00\x02\x05\x00\x04", response=True)
            stream = await accepted
            await stream.send(b"hi")
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.01)
            assert received == [b"\x01\x00\x00hi"]
            await client.stop_notify(notify)
            assert await client.read_gatt_descriptor(cccd.handle) == b"\x00\x00"
            with pytest.raises(BleakError):
                await client.pair()
            # The peripheral drops the link: the callback fires.
            await stream.aclose()
            for _ in range(100):
                if lost:
                    break
                await asyncio.sleep(0.01)
            assert lost == [client]
            assert not _connected(client)
            with pytest.raises(BleakError):
                await client.write_gatt_char(write, b"x", response=True)
        await backend.aclose()

    asyncio.run(main())
