"""Check rspfed's BLE transport over a real radio between two machines.

Run on one machine (the offerer, a GATT peripheral)::

    python examples/ble_check.py --peripheral --session lab1

and on another, within reach (the joiner, a GATT central through bleak)::

    python examples/ble_check.py --central --session lab1

Both need a Bluetooth LE adapter: with ``--hci`` omitted the peripheral uses
the platform stack through ``bless`` (``pip install 'rspfed[hardware]'``; on
Linux BlueZ with D-Bus access) and the central bleak's platform backend.  With
``--hci SPEC`` either side drives an adapter (or a virtual controller) through
bumble instead, e.g. ``--hci usb:0`` or ``--hci hci-socket:0`` (Linux; the
adapter must be down for BlueZ: ``sudo hciconfig hci0 down``) or
``--hci tcp-client:127.0.0.1:P`` (a virtual controller from ``python -m
rspfed.transport.ble``).

The central sends messages of several sizes (1 octet to 64 KiB); the
peripheral checks each and echoes it; the central checks the echo.  Each side
prints the figures (connect time, round-trip times, throughput) and ``PASS``
(exit status 0) or ``FAIL: <reason>`` (exit status 1).  Both sides must use
the same ``--session`` text: the session's BLE service UUID comes from it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import time

from rspfed.errors import RspfedError
from rspfed.transport.ble import ble_advertise, ble_connect, service_uuid
from rspfed.transport.stream import ByteStream

SIZES = (1, 17, 20, 200, 509, 510, 1000, 4096, 20000, 65536)


def discovery_id(session: str) -> bytes:
    """The 16-octet discovery id both sides derive from the session text."""
    return hashlib.sha256(b"rspfed ble_check v1|" + session.encode()).digest()[:16]


def pattern(index: int, size: int) -> bytes:
    """The ``index``-th test message (deterministic, so both sides can check it)."""
    seed = hashlib.sha256(index.to_bytes(4, "big")).digest()
    return (seed * (size // len(seed) + 1))[:size]


async def read_exactly(stream: ByteStream, size: int) -> bytes:
    """Read ``size`` octets (the transport keeps messages whole, but do not rely on it)."""
    out = bytearray()
    while len(out) < size:
        chunk = await stream.receive()
        if not chunk:
            raise EOFError(f"end of stream after {len(out)} of {size} octets")
        out += chunk
    return bytes(out)


async def run_peripheral(args: argparse.Namespace) -> str | None:
    did = discovery_id(args.session)
    print(f"advertising service {service_uuid(did)} (session {args.session!r})", flush=True)
    peripheral = await ble_advertise(did, hci=args.hci, name="rspfed-check")
    try:
        stream = await peripheral.accept(timeout=args.timeout)
        print(f"central {stream.peer} connected (ATT_MTU {stream.mtu})", flush=True)
        for index, size in enumerate(SIZES):
            got = await read_exactly(stream, size)
            if got != pattern(index, size):
                return f"message {index} ({size} octets) arrived altered"
            await stream.send(got)
        tail = await stream.receive()
        if tail:
            return f"{len(tail)} unexpected octets after the last message"
        await stream.aclose()
        return None
    finally:
        await peripheral.aclose()


async def run_central(args: argparse.Namespace) -> str | None:
    did = discovery_id(args.session)
    print(f"looking for service {service_uuid(did)} (session {args.session!r})", flush=True)
    start = time.perf_counter()
    stream = await ble_connect(did, hci=args.hci, timeout=args.timeout)
    print(
        f"connected to {stream.peer} in {time.perf_counter() - start:.3f} s (ATT_MTU {stream.mtu})",
        flush=True,
    )
    try:
        total = 0
        started = time.perf_counter()
        for index, size in enumerate(SIZES):
            message = pattern(index, size)
            t0 = time.perf_counter()
            await stream.send(message)
            echo = await read_exactly(stream, size)
            rtt = time.perf_counter() - t0
            if echo != message:
                return f"echo of message {index} ({size} octets) differs"
            total += 2 * size
            print(f"  {size:6d} octets: round trip {rtt * 1000:8.1f} ms", flush=True)
        elapsed = time.perf_counter() - started
        print(f"throughput {total / elapsed / 1000:.1f} kB/s (both directions)", flush=True)
        return None
    finally:
        await stream.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    role = parser.add_mutually_exclusive_group(required=True)
    role.add_argument("--peripheral", action="store_true", help="advertise and echo (offerer)")
    role.add_argument("--central", action="store_true", help="scan, connect, send (joiner)")
    parser.add_argument("--session", default="rspfed-ble-check", help="shared session text")
    parser.add_argument("--hci", default=None, help="bumble HCI spec (default: platform stack)")
    parser.add_argument("--timeout", type=float, default=60.0, help="scan/accept time-out (s)")
    args = parser.parse_args(argv)
    runner = run_peripheral if args.peripheral else run_central
    try:
        failure = asyncio.run(runner(args))
    except (RspfedError, EOFError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
    if failure is None:
        print("PASS", flush=True)
        return 0
    print(f"FAIL: {failure}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
