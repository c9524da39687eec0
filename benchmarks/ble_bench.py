"""BLE transport figures on bumble's virtual radio (no hardware needed).

``python benchmarks/ble_bench.py`` prints, for the in-process radio
(:class:`~rspfed.transport.ble.radio.LocalRadio`) and for the TCP-linked
controllers subprocess (:class:`~rspfed.transport.ble.radio.ControllerProcess`,
both hosts in this process over their TCP HCI transports):

* connect: ``ble_connect`` (scan, connect, ATT_MTU exchange, service
  discovery, subscribe, OPEN) until the peripheral's ``accept`` returned;
* round trip of a 100-octet message (median of 50);
* throughput central -> peripheral (writes with response) and peripheral ->
  central (credited notifications), 256 KiB each.

These are virtual-radio figures: they measure the stack and the framing, not
air time (a real LE 1M link at ATT_MTU 247 carries some 20-90 kB/s).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

from rspfed.transport.ble import (
    BumblePeripheral,
    ControllerProcess,
    GattStream,
    HciSpec,
    LocalRadio,
    ble_connect,
)
from rspfed.transport.stream import ByteStream

SIZE = 256 * 1024


async def _read(stream: ByteStream, size: int) -> None:
    got = 0
    while got < size:
        got += len(await stream.receive())


async def _run(label: str, central_hci: HciSpec, peripheral_hci: HciSpec) -> None:
    did = os.urandom(16)
    async with BumblePeripheral(did, hci=peripheral_hci) as peripheral:
        t0 = time.perf_counter()
        accepted = asyncio.create_task(peripheral.accept(timeout=20))
        central = await ble_connect(did, hci=central_hci, timeout=20, close_grace=0.2)
        stream: GattStream = await accepted
        connect = time.perf_counter() - t0
        rtts = []
        for _ in range(50):
            t1 = time.perf_counter()
            await central.send(b"x" * 100)
            await _read(stream, 100)
            await stream.send(b"y" * 100)
            await _read(central, 100)
            rtts.append(time.perf_counter() - t1)
        t1 = time.perf_counter()
        await asyncio.gather(central.send(os.urandom(SIZE)), _read(stream, SIZE))
        up = SIZE / (time.perf_counter() - t1)
        t1 = time.perf_counter()
        await asyncio.gather(stream.send(os.urandom(SIZE)), _read(central, SIZE))
        down = SIZE / (time.perf_counter() - t1)
        await asyncio.gather(central.aclose(), stream.aclose())
    print(
        f"{label:28s} connect {connect * 1000:7.1f} ms  rtt(100 B) "
        f"{statistics.median(rtts) * 1000:6.2f} ms  ATT_MTU {central.mtu}  "
        f"central->peripheral {up / 1000:7.1f} kB/s  peripheral->central {down / 1000:7.1f} kB/s"
    )


async def _local() -> None:
    radio = LocalRadio()
    await _run("in-process LocalRadio", radio.endpoint(), radio.endpoint())


def main() -> None:
    asyncio.run(_local())
    with ControllerProcess.start() as radio:
        asyncio.run(_run("bumble.apps.controllers TCP", radio.specs[0], radio.specs[1]))


if __name__ == "__main__":
    main()
