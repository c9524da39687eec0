"""A whole pairing (PairingConnection through the Driver) over BLE on the virtual radio.

The offerer's GATT peripheral serves both discovery identifiers of its offer
(the QR secret's and the short code's nameplate's), as ``rspfed pair show``
does; the joiner finds it by the one it knows.  The applications are
G-proto's test granter and requester (``tests/transfer/pairing_world.py``).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from rspfed.errors import RspfedError, TransportError
from rspfed.transfer.code import ShortCode
from rspfed.transfer.connection import (
    NEED_DATA,
    ByeReceived,
    ConnectionClosed,
    JoinResultReceived,
    PairingConnection,
    Role,
    TokenGranted,
)
from rspfed.transfer.offer import PairingOffer
from rspfed.transport import Driver
from rspfed.transport.ble import BumblePeripheral, LocalRadio, ble_connect
from rspfed.transport.ble.link import GattStream
from rspfed.transport.stream import ByteStream, memory_stream_pair
from tests.transfer.pairing_world import ICCID, PRIMARY_HELLO, SECONDARY_HELLO, App, make_offer

TIMEOUT = 10.0


async def _converse(stream: ByteStream, conn: PairingConnection, app: App) -> None:
    async with Driver(conn, stream, need_data=NEED_DATA, timeout=TIMEOUT) as driver:
        while True:
            event = await driver.next_event()
            if isinstance(event, ConnectionClosed):
                return
            app.on_event(conn, event)
            await driver.flush()
            if isinstance(event, ByeReceived):
                return


@pytest.mark.parametrize("method", ["qr", "code"])
def test_a_whole_pairing_over_ble(method: str) -> None:
    offer = make_offer(rand=os.urandom)
    code = ShortCode.generate(os.urandom)
    primary, secondary = App(granter=True), App(granter=False)
    offerer = PairingConnection(
        Role.OFFERER, local=PRIMARY_HELLO, rand=os.urandom, offer=offer, code=code
    )
    # What the joiner scanned or typed: the URI, or the code's text.
    joiner_offer: PairingOffer | None = None
    joiner_code: ShortCode | None = None
    if method == "qr":
        joiner_offer = PairingOffer.from_uri(offer.to_uri())
        did = joiner_offer.discovery_id
    else:
        joiner_code = ShortCode.parse(str(code))
        did = joiner_code.discovery_id
    joiner = PairingConnection(
        Role.JOINER, local=SECONDARY_HELLO, rand=os.urandom, offer=joiner_offer, code=joiner_code
    )

    async def main() -> None:
        radio = LocalRadio()
        ids = [offer.discovery_id, code.discovery_id]
        async with asyncio.timeout(30), BumblePeripheral(ids, hci=radio.endpoint()) as peripheral:

            async def offer_side() -> Any:
                stream = await peripheral.accept(timeout=10)
                assert stream.discovery_id == did
                await _converse(stream, offerer, primary)

            async def join_side() -> Any:
                stream = await ble_connect(did, hci=radio.endpoint(), timeout=10)
                await _converse(stream, joiner, secondary)

            await asyncio.gather(offer_side(), join_side())

    asyncio.run(main())
    assert primary.error is None
    assert secondary.error is None
    assert len(primary.granted) == 1
    assert secondary.token_received
    results = [e for e in primary.events if isinstance(e, JoinResultReceived)]
    assert [r.message.iccid for r in results] == [ICCID]
    assert offerer.state.value == joiner.state.value == "closed"


class BleCut:
    """A BLE stream that drops the link (HCI disconnect) once ``cut`` octets crossed it."""

    def __init__(self, inner: GattStream, cut: int) -> None:
        self.inner = inner
        self.cut = cut
        self.count = 0

    @property
    def peer(self) -> str:
        return self.inner.peer

    async def _drop(self) -> TransportError:
        await self.inner._disconnect()
        return TransportError(f"test cut after {self.cut} octets")

    async def send(self, data: bytes) -> None:
        allow = self.cut - self.count
        if allow >= len(data):
            self.count += len(data)
            await self.inner.send(data)
            return
        if allow > 0:
            self.count += allow
            await self.inner.send(data[:allow])
        raise await self._drop()

    async def receive(self) -> bytes:
        if self.count >= self.cut:
            raise await self._drop()
        data = await self.inner.receive()
        data = data[: self.cut - self.count]
        self.count += len(data)
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


def _pairing_chunks() -> list[int]:
    """Sizes of the octet chunks of a whole QR pairing, from an in-memory run."""

    async def main() -> list[int]:
        a, b = memory_stream_pair()
        offer = make_offer(rand=os.urandom)
        off = PairingConnection(Role.OFFERER, local=PRIMARY_HELLO, rand=os.urandom, offer=offer)
        join = PairingConnection(Role.JOINER, local=SECONDARY_HELLO, rand=os.urandom, offer=offer)
        await asyncio.gather(
            _converse(b, off, App(granter=True)), _converse(a, join, App(granter=False))
        )
        return [len(chunk) for _, chunk in a.link.transcript]

    return asyncio.run(main())


def test_a_link_drop_at_sampled_offsets_of_a_pairing() -> None:
    """Handshake, token grant, last octet: clean TransportError, offer burnt, no hang."""
    chunks = _pairing_chunks()
    total = sum(chunks)
    ends = [sum(chunks[: k + 1]) for k in range(len(chunks))]
    grant = max(range(len(chunks)), key=lambda k: chunks[k])  # the token grant is the largest
    offsets = sorted(
        {
            chunks[0] // 2,  # inside the opening Noise message
            ends[1],  # right after the handshake
            ends[grant] - chunks[grant] // 2,  # inside the token grant
            total - 1,  # the last octet (inside the final bye)
        }
    )

    async def one(cut: int, cutter: str) -> None:
        offer = make_offer(rand=os.urandom)
        primary, secondary = App(granter=True), App(granter=False)
        offerer = PairingConnection(Role.OFFERER, local=PRIMARY_HELLO, rand=os.urandom, offer=offer)
        joiner = PairingConnection(Role.JOINER, local=SECONDARY_HELLO, rand=os.urandom, offer=offer)
        radio = LocalRadio()
        outcome: dict[str, str] = {}
        elapsed: dict[str, float] = {}

        async def side(name: str, get: Any, conn: PairingConnection, app: App) -> None:
            stream = await get()
            t0 = time.monotonic()
            wrapped: ByteStream = BleCut(stream, cut) if cutter == name else stream
            try:
                await _converse(wrapped, conn, app)
                outcome[name] = "done"
            except RspfedError as exc:
                outcome[name] = type(exc).__name__
            elapsed[name] = time.monotonic() - t0

        async with (
            asyncio.timeout(3 * TIMEOUT),
            BumblePeripheral(offer.discovery_id, hci=radio.endpoint()) as peripheral,
        ):
            await asyncio.gather(
                side("offer", lambda: peripheral.accept(timeout=10), offerer, primary),
                side(
                    "join",
                    lambda: ble_connect(offer.discovery_id, hci=radio.endpoint(), timeout=10),
                    joiner,
                    secondary,
                ),
            )
        where = (cut, cutter, outcome)
        for conn in (offerer, joiner):
            assert conn.burnt, where
            assert conn.state.value == "closed", where
        for name in ("offer", "join"):
            assert elapsed[name] < TIMEOUT, where  # a link drop, not a time-out
        assert outcome["join"] == "TransportError", where
        if cut < total - 1 or cutter == "offer":
            assert outcome["offer"] == "TransportError", where
        else:
            # The joiner dropped the link on the last octet of the final bye:
            # the offerer had sent everything and may have finished.
            assert outcome["offer"] in ("done", "TransportError"), where
        if cut < ends[grant] - 1:
            assert not any(isinstance(e, TokenGranted) for e in secondary.events), where
        results = [e for e in primary.events if isinstance(e, JoinResultReceived)]
        assert not results or cut >= ends[grant], where

    for n, cut in enumerate(offsets):
        asyncio.run(one(cut, "offer" if n % 2 else "join"))
