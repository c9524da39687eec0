"""A bumble BLE peripheral for the two-process tests (run as a child process).

``python -m tests.transport_ble.ble_peer HCI DISCOVERY_ID_HEX MODE [N]``:

``drop N``
    accept, read until ``N`` octets arrived, then drop the link (an HCI
    disconnect, as when the central walks out of range) and check that the
    next ``receive`` raises TransportError.
``send N``
    accept, send ``N`` octets, expect the central to drop the link meanwhile.

``offer``
    a whole pairing's offerer (G-proto's test granter, a primary): prints
    ``uri <rspfed:...>`` and ``code <short code>``, serves both discovery ids
    (``DISCOVERY_ID_HEX`` is ignored), grants the token, then prints
    ``PAIRED granted=<n> iccid=<iccid> state=<state>`` or ``FAIL <why>``.

Prints ``ready`` once advertising, then one result line: ``LOST <error class>``
when the link loss surfaced as a TransportError, ``DONE`` or ``FAIL <why>``.
"""

from __future__ import annotations

import asyncio
import os
import sys

from rspfed.errors import RspfedError, TransportError
from rspfed.transfer.code import ShortCode
from rspfed.transfer.connection import (
    NEED_DATA,
    ByeReceived,
    ConnectionClosed,
    JoinResultReceived,
    PairingConnection,
    Role,
)
from rspfed.transport import Driver
from rspfed.transport.ble import BumblePeripheral
from rspfed.transport.ble.peripheral import BumblePeripheralStream
from tests.transfer.pairing_world import PRIMARY_HELLO, App, make_offer


async def offer(hci: str) -> str:
    offer = make_offer(rand=os.urandom)
    code = ShortCode.generate(os.urandom)
    app = App(granter=True)
    conn = PairingConnection(
        Role.OFFERER, local=PRIMARY_HELLO, rand=os.urandom, offer=offer, code=code
    )
    ids = [offer.discovery_id, code.discovery_id]
    async with asyncio.timeout(30), BumblePeripheral(ids, hci=hci) as peripheral:
        print(f"uri {offer.to_uri()}", flush=True)
        print(f"code {code}", flush=True)
        print("ready", flush=True)
        stream = await peripheral.accept(timeout=20)
        try:
            async with Driver(conn, stream, need_data=NEED_DATA, timeout=10) as driver:
                while True:
                    event = await driver.next_event()
                    if isinstance(event, ConnectionClosed):
                        break
                    app.on_event(conn, event)
                    await driver.flush()
                    if isinstance(event, ByeReceived):
                        break
        except RspfedError as exc:
            return f"FAIL {type(exc).__name__}: {exc}"
    iccids = [str(e.message.iccid) for e in app.events if isinstance(e, JoinResultReceived)]
    return f"PAIRED granted={len(app.granted)} iccid={','.join(iccids)} state={conn.state.value}"


async def main(hci: str, discovery_id: bytes, mode: str, count: int) -> str:
    if mode == "offer":
        return await offer(hci)
    async with asyncio.timeout(30), BumblePeripheral(discovery_id, hci=hci) as peripheral:
        print("ready", flush=True)
        stream = await peripheral.accept(timeout=20)
        assert isinstance(stream, BumblePeripheralStream)
        try:
            if mode == "drop":
                got = 0
                while got < count:
                    got += len(await stream.receive())
                await stream.connection.disconnect()
                await stream.receive()
                return "FAIL receive after the drop returned"
            await stream.send(os.urandom(count))
            return "FAIL the whole send went through"
        except TransportError as exc:
            return f"LOST {type(exc).__name__}"
        finally:
            await stream.aclose()


if __name__ == "__main__":
    hci, hex_id, mode = sys.argv[1:4]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    print(asyncio.run(main(hci, bytes.fromhex(hex_id), mode, count)), flush=True)
