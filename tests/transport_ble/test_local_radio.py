"""BLE central (bleak API on the bumble backend) and bumble peripheral on an in-process radio."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import pytest

from rspfed.errors import ProtocolError, TransportError
from rspfed.transport.ble import (
    BleCentralStream,
    BumblePeripheral,
    GattStream,
    LocalRadio,
    ble_connect,
)
from rspfed.transport.stream import ByteStream

SIZES = (1, 17, 18, 508, 509, 510, 2000, 70000)
Body = Callable[[BleCentralStream, GattStream, LocalRadio], Awaitable[None]]


async def _read(stream: ByteStream, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        chunk = await stream.receive()
        assert chunk, f"end of stream after {len(out)} of {size}"
        out += chunk
    return bytes(out)


def _run(body: Body, *, limit: float = 20.0) -> None:
    """Connect a central and a peripheral on a fresh radio, run ``body``, never hang."""

    async def main() -> None:
        radio = LocalRadio()
        did = os.urandom(16)
        async with asyncio.timeout(limit), BumblePeripheral(did, hci=radio.endpoint()) as p:
            accepted = asyncio.create_task(p.accept(timeout=10))
            central = await ble_connect(did, hci=radio.endpoint(), timeout=10, close_grace=0.5)
            peripheral = await accepted
            try:
                await body(central, peripheral, radio)
            finally:
                await central.aclose()

    asyncio.run(main())


def test_messages_of_several_sizes_both_ways() -> None:
    async def body(central: BleCentralStream, peripheral: GattStream, _: LocalRadio) -> None:
        assert isinstance(central, ByteStream)
        assert isinstance(peripheral, ByteStream)
        assert central.mtu == peripheral.mtu == 517
        assert central.peer.startswith("ble:")
        assert peripheral.peer.startswith("ble:")
        for size in SIZES:
            message = os.urandom(size)
            await central.send(message)
            assert await _read(peripheral, size) == message
            await peripheral.send(message[::-1])
            assert await _read(central, size) == message[::-1]

    _run(body)


def test_both_directions_at_once_and_an_orderly_end() -> None:
    up, down = os.urandom(40_000), os.urandom(40_000)

    async def body(central: BleCentralStream, peripheral: GattStream, _: LocalRadio) -> None:
        got_up, got_down, _x, _y = await asyncio.gather(
            _read(peripheral, len(up)),
            _read(central, len(down)),
            central.send(up),
            peripheral.send(down),
        )
        assert (got_up, got_down) == (up, down)
        await peripheral.send(b"last words")
        closing = asyncio.create_task(peripheral.aclose())  # lingers for the central's CLOSE
        # The central reads what was sent before the CLOSE, then the end.
        assert await central.receive() == b"last words"
        assert await central.receive() == b""
        await central.aclose()
        await closing

    _run(body)


def test_a_lazy_reader_holds_the_sender_back_without_loss() -> None:
    async def body(central: BleCentralStream, peripheral: GattStream, _: LocalRadio) -> None:
        window = central._returns.window
        await peripheral.send(b"m" * 10)
        messages = [os.urandom(5) for _ in range(window * 3)]
        sender = asyncio.create_task(_send_each(peripheral, messages))
        await asyncio.sleep(0.3)
        # The central has read nothing: at most one window of messages waits there.
        assert not sender.done()
        assert len(central._inbox) <= window
        assert await central.receive() == b"m" * 10
        for message in messages:
            assert await central.receive() == message
        await sender

    _run(body)


async def _drain(stream: ByteStream) -> None:
    while await stream.receive():
        pass


async def _send_each(stream: ByteStream, messages: list[bytes]) -> None:
    for message in messages:
        await stream.send(message)


def test_peripheral_drops_the_link_mid_transfer() -> None:
    async def body(central: BleCentralStream, peripheral: GattStream, _: LocalRadio) -> None:
        big = os.urandom(400_000)
        sending = asyncio.create_task(central.send(big))
        first = await peripheral.receive()
        assert first
        await peripheral._disconnect()  # the link drops (as out of range)
        with pytest.raises(TransportError):
            await sending
        with pytest.raises(TransportError):
            await _drain(peripheral)
        with pytest.raises(TransportError):
            await central.receive()
        with pytest.raises(TransportError):
            await peripheral.send(b"x")

    _run(body)


def test_central_drops_the_link_mid_transfer() -> None:
    async def body(central: BleCentralStream, peripheral: GattStream, _: LocalRadio) -> None:
        sending = asyncio.create_task(peripheral.send(os.urandom(400_000)))
        assert await central.receive()
        assert central.client is not None
        await central.client.disconnect()
        with pytest.raises(TransportError):
            await sending
        with pytest.raises(TransportError):
            await _drain(central)
        with pytest.raises(TransportError):
            await _drain(peripheral)

    _run(body)


def test_a_framing_violation_tears_the_link_down() -> None:
    async def body(central: BleCentralStream, peripheral: GattStream, _: LocalRadio) -> None:
        await central.send(b"hello")
        assert await peripheral.receive() == b"hello"
        # Replay the OPEN frame's sequence number: a duplicate.
        assert central.client is not None
        assert central._write_char is not None
        await central.client.write_gatt_char(central._write_char, b"\x01\x00\x00x", response=True)
        with pytest.raises(TransportError) as caught:
            await peripheral.receive()
        assert isinstance(caught.value.__cause__, ProtocolError)
        with pytest.raises(TransportError):
            await central.receive()

    _run(body)


def test_nobody_there_fails_fast() -> None:
    async def main() -> None:
        radio = LocalRadio()
        with pytest.raises(TransportError, match="no BLE offerer"):
            await ble_connect(os.urandom(16), hci=radio.endpoint(), timeout=0.3)
        async with BumblePeripheral(os.urandom(16), hci=radio.endpoint()) as p:
            with pytest.raises(TransportError, match="no BLE central"):
                await p.accept(timeout=0.2)

    asyncio.run(main())


def test_one_central_per_offer() -> None:
    async def body(central: BleCentralStream, peripheral: GattStream, radio: LocalRadio) -> None:
        # The offerer stopped advertising once the first central connected.
        did = os.urandom(16)
        with pytest.raises(TransportError):
            await ble_connect(did, hci=radio.endpoint(), timeout=0.3)
        await central.send(b"still here")
        assert await peripheral.receive() == b"still here"

    _run(body)


def test_two_identifiers_one_peripheral_and_the_stream_outlives_it() -> None:
    """QR secret id and nameplate id: the central finds the second (scan response)."""

    async def main() -> None:
        radio = LocalRadio()
        qr_id, nameplate_id = os.urandom(16), os.urandom(16)
        peripheral = BumblePeripheral([qr_id, nameplate_id], hci=radio.endpoint())
        await peripheral.start()
        acceptors = peripheral.acceptors()
        assert [a.discovery_id for a in acceptors] == [qr_id, nameplate_id]
        waiting = [asyncio.create_task(a.accept(timeout=5)) for a in acceptors]
        async with asyncio.timeout(15):
            central = await ble_connect(nameplate_id, hci=radio.endpoint(), timeout=5)
            done, pending = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            assert done == {waiting[1]}
            for task in pending:
                task.cancel()
            stream = waiting[1].result()
            assert stream.discovery_id == nameplate_id == central.discovery_id
            # The listener closes every acceptor: the accepted stream lives on.
            for acceptor in acceptors:
                await acceptor.aclose()
            await central.send(b"ping")
            assert await stream.receive() == b"ping"
            await stream.send(b"pong")
            assert await central.receive() == b"pong"
            closing = asyncio.create_task(stream.aclose())
            assert await central.receive() == b""
            await central.aclose()
            await closing
            with pytest.raises(TransportError):
                await peripheral.accept(timeout=0.1)

    asyncio.run(main())
