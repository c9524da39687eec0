"""Throughput and latency of the vpcd bridge (rspfed.euicc.vpcd).

Prints:

1. the sans-IO framer's parsing rate (frames/s, MB/s) for 261-byte APDUs;
2. APDU round trips through ``serve_vpcd`` against a stand-in vpcd on
   loopback that, like Debian 12's vpcd driver, sends each frame's length and
   payload in two writes with Nagle on;
3. if pyscard and a pcscd with the vpcd reader are available, APDU round
   trips through the real pcscd (``Virtual PCD 00 00``) with pyscard.

Run: ``python benchmarks/vpcd.py`` (the third part needs ``scripts/start-pcscd.sh``).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

from rspfed.euicc.vpcd import VpcdFraming, serve_vpcd

SELECT_MF = bytes.fromhex("00A40004023F00")
ATR = bytes.fromhex("3B9F96801FC78031A073BE21136743200718000001A5")


class EchoCard:
    """Answers every APDU with 9000."""

    def power_on(self) -> bytes:
        return ATR

    def reset(self) -> bytes:
        return ATR

    def power_off(self) -> None:
        pass

    def transmit(self, apdu: bytes) -> bytes:
        return b"\x90\x00"


def bench_framer() -> None:
    apdu = bytes([0x80, 0xE2, 0x91, 0x00, 0xFF]) + bytes(range(256))  # 261 bytes
    frame = struct.pack("!H", len(apdu)) + apdu
    n = 100_000
    stream = frame * n
    chunks = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
    framing = VpcdFraming()
    count = 0
    start = time.perf_counter()
    for chunk in chunks:
        framing.receive_data(chunk)
        while framing.next_event() is not None:
            count += 1
    elapsed = time.perf_counter() - start
    assert count == n
    print(
        f"framer: {n / elapsed:,.0f} frames/s, {len(stream) / elapsed / 1e6:.1f} MB/s "
        f"(261-byte APDUs, 4 KiB reads)"
    )


async def _fake_vpcd_round_trips(n: int) -> float:
    connected: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await connected.put((r, w))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    task = asyncio.create_task(serve_vpcd(EchoCard(), "127.0.0.1", port, stop=stop))
    reader, writer = await connected.get()
    # asyncio turns TCP_NODELAY on; vpcd does not.
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
    start = time.perf_counter()
    for _ in range(n):
        # Like vpcd 3.3 (Debian 12): length and payload in separate sends.
        writer.write(struct.pack("!H", len(SELECT_MF)))
        await writer.drain()
        writer.write(SELECT_MF)
        await writer.drain()
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        await reader.readexactly(length)
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    server.close()
    await server.wait_closed()
    return elapsed / n


def bench_fake_vpcd() -> None:
    n = 2000
    per = asyncio.run(_fake_vpcd_round_trips(n))
    print(f"serve_vpcd vs stand-in vpcd (split writes): {per * 1e6:.0f} us per APDU ({n} APDUs)")


def bench_pcscd() -> None:
    try:
        from smartcard.System import readers
    except ImportError:
        print("pcscd: skipped (pyscard not installed)")
        return
    try:
        reader = next(r for r in readers() if str(r) == "Virtual PCD 00 00")
    except Exception as exc:
        print(f"pcscd: skipped ({type(exc).__name__}: no pcscd/vpcd; scripts/start-pcscd.sh)")
        return
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    def run() -> None:
        loop.run_until_complete(serve_vpcd(EchoCard(), stop=stop))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while True:
        connection = reader.createConnection()
        try:
            connection.connect()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    n = 2000
    apdu = list(SELECT_MF)
    start = time.perf_counter()
    for _ in range(n):
        connection.transmit(apdu)
    elapsed = time.perf_counter() - start
    connection.disconnect()
    loop.call_soon_threadsafe(stop.set)
    thread.join(5)
    per = elapsed / n * 1e6
    print(f"pyscard -> pcscd -> vpcd -> serve_vpcd: {per:.0f} us per APDU ({n} APDUs)")


if __name__ == "__main__":
    bench_framer()
    bench_fake_vpcd()
    bench_pcscd()
