"""A whole pairing (PairingConnection through the Driver) over BLE on the virtual radio.

The offerer's GATT peripheral serves both discovery identifiers of its offer
(the QR secret's and the short code's nameplate's), as ``rspfed pair show``
does; the joiner finds it by the one it knows.  The applications are
G-proto's test granter and requester (``tests/transfer/pairing_world.py``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from rspfed.transfer.code import ShortCode
from rspfed.transfer.connection import (
    NEED_DATA,
    ByeReceived,
    ConnectionClosed,
    JoinResultReceived,
    PairingConnection,
    Role,
)
from rspfed.transfer.offer import PairingOffer
from rspfed.transport import Driver
from rspfed.transport.ble import BumblePeripheral, LocalRadio, ble_connect
from rspfed.transport.stream import ByteStream
from tests.transfer.pairing_world import ICCID, PRIMARY_HELLO, SECONDARY_HELLO, App, make_offer


async def _converse(stream: ByteStream, conn: PairingConnection, app: App) -> None:
    async with Driver(conn, stream, need_data=NEED_DATA, timeout=10) as driver:
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
