"""A bumble BLE peripheral for the two-process tests (run as a child process).

``python -m tests.transport_ble.ble_peer HCI DISCOVERY_ID_HEX MODE [N]``:

``drop N``
    accept, read until ``N`` octets arrived, then drop the link (an HCI
    disconnect, as when the central walks out of range) and check that the
    next ``receive`` raises TransportError.
``send N``
    accept, send ``N`` octets, expect the central to drop the link meanwhile.

Prints ``ready`` once advertising, then one result line: ``LOST <error class>``
when the link loss surfaced as a TransportError, ``DONE`` or ``FAIL <why>``.
"""

from __future__ import annotations

import asyncio
import os
import sys

from rspfed.errors import TransportError
from rspfed.transport.ble import BumblePeripheral
from rspfed.transport.ble.peripheral import BumblePeripheralStream


async def main(hci: str, discovery_id: bytes, mode: str, count: int) -> str:
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
