"""A LAN pairing peer for the network-namespace tests (run as a child process).

``python -m tests.transport.lan_peer offer|join SESSIONS_JSON IFACE`` runs one
or more sessions concurrently and reports JSON lines on stdout::

    {"event": "listening", "s": i, "port": p}        offerer, server bound
    {"event": "registered", "s": i, "ms": t}         offerer, mDNS registration done
    {"event": "connected", "s": i, "ms": t}          joiner, lan_connect returned
    {"event": "paired", "s": i}                      Noise handshake done
    {"event": "result", "s": i, "outcome": ..., "octets": n, "ms": t}

A session is ``{"id": hex, "psk": hex, "cut": N|null, "direct": [host, port]|null,
"advertise": bool, "timeout": s, "messages": [sizes], "pause": s}``.  ``cut``
makes this side reset the TCP connection (RST) once ``N`` octets crossed it in
either direction (the offset into the conversation).  ``outcome`` is ``"done"``
or the exception class name.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from rspfed.errors import RspfedError, TransportError
from rspfed.transport import Driver
from rspfed.transport.lan import LanOffer, TcpStream, lan_connect
from tests.transport.secure_echo import CLOSED, NEED_DATA, PAIRED, SecureEcho


def emit(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


class CutStream:
    """A TcpStream that resets the connection after ``cut`` octets (both directions)."""

    def __init__(self, inner: TcpStream, cut: int) -> None:
        self.inner = inner
        self.cut = cut
        self.count = 0

    @property
    def peer(self) -> str:
        return self.inner.peer

    def _reset(self) -> TransportError:
        self.inner.abort()
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
            await asyncio.sleep(0.01)  # let the kernel put the octets on the wire
        raise self._reset()

    async def receive(self) -> bytes:
        if self.count >= self.cut:
            raise self._reset()
        data = await self.inner.receive()
        allow = self.cut - self.count
        if len(data) > allow:
            data = data[:allow]
        self.count += len(data)
        return data

    async def aclose(self) -> None:
        await self.inner.aclose()


async def offer_session(i: int, s: dict[str, Any], iface: str) -> None:
    t0 = time.monotonic()
    outcome, octets = "done", 0
    async with LanOffer(
        bytes.fromhex(s["id"]),
        interfaces=[iface],
        advertise=s.get("advertise", True),
        receive_timeout=s["timeout"],
        send_timeout=s["timeout"],
    ) as offer:
        emit(event="listening", s=i, port=offer.port)

        async def report_registration() -> None:
            try:
                await offer.registered()
                emit(event="registered", s=i, ms=(time.monotonic() - t0) * 1000)
            except TransportError as exc:
                emit(event="registration-failed", s=i, error=str(exc))

        reporter = asyncio.create_task(report_registration())
        try:
            tcp = await offer.accept(timeout=s["timeout"] * 4)
            stream: TcpStream | CutStream = (
                tcp if s.get("cut") is None else CutStream(tcp, s["cut"])
            )
            conn = SecureEcho(initiator=False, psk=bytes.fromhex(s["psk"]))
            driver = Driver(conn, stream, need_data=NEED_DATA, timeout=s["timeout"])
            async with driver:
                try:
                    if await driver.next_event() != PAIRED:
                        raise AssertionError("expected the handshake first")
                    emit(event="paired", s=i)
                    while (event := await driver.next_event()) != CLOSED:
                        await driver.send(event)
                finally:
                    octets = driver.octets_sent + driver.octets_received
        except RspfedError as exc:
            outcome = type(exc).__name__
            emit(event="error", s=i, error=str(exc))
        await reporter
    emit(event="result", s=i, outcome=outcome, octets=octets, ms=(time.monotonic() - t0) * 1000)


async def join_session(i: int, s: dict[str, Any], iface: str) -> None:
    t0 = time.monotonic()
    outcome, octets = "done", 0
    try:
        hint = s.get("direct")
        direct = (str(hint[0]), int(hint[1])) if hint else None
        tcp = await lan_connect(
            bytes.fromhex(s["id"]),
            timeout=s["timeout"] * 4,
            interfaces=[iface],
            direct=direct,
            receive_timeout=s["timeout"],
            send_timeout=s["timeout"],
        )
        emit(event="connected", s=i, ms=(time.monotonic() - t0) * 1000, peer=tcp.peer)
        stream: TcpStream | CutStream = tcp if s.get("cut") is None else CutStream(tcp, s["cut"])
        conn = SecureEcho(initiator=True, psk=bytes.fromhex(s["psk"]))
        driver = Driver(conn, stream, need_data=NEED_DATA, timeout=s["timeout"])
        async with driver:
            try:
                if await driver.next_event() != PAIRED:
                    raise AssertionError("expected the handshake first")
                emit(event="paired", s=i)
                if s.get("pause"):
                    await asyncio.sleep(s["pause"])
                for n, size in enumerate(s.get("messages", [])):
                    message = bytes([n % 256]) * size
                    await driver.send(message)
                    if await driver.next_event() != message:
                        raise AssertionError("echo differs")
            finally:
                octets = driver.octets_sent + driver.octets_received
    except RspfedError as exc:
        outcome = type(exc).__name__
        emit(event="error", s=i, error=str(exc))
    emit(event="result", s=i, outcome=outcome, octets=octets, ms=(time.monotonic() - t0) * 1000)


async def main(role: str, sessions: list[dict[str, Any]], iface: str) -> None:
    run = offer_session if role == "offer" else join_session
    await asyncio.gather(*(run(i, s, iface) for i, s in enumerate(sessions)))
    emit(event="exit")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]))
