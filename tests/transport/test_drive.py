"""The asyncio driver over a toy h11-style line protocol and in-memory streams."""

from __future__ import annotations

import asyncio

import pytest

from rspfed.errors import ProtocolError, StateError, TransportError
from rspfed.transport import Driver, memory_stream_pair

NEED_DATA = object()
CLOSED = "<closed>"


class LineConnection:
    """A tiny sans-IO protocol: newline-terminated lines; the line ``bad`` is refused."""

    def __init__(self) -> None:
        self._in = bytearray()
        self._out = bytearray()
        self._eof = False
        self.eof_seen = False
        self.dead = False

    def receive_data(self, data: bytes) -> None:
        if self.dead:
            raise ProtocolError("dead")
        if not data:
            self._eof = True
            self.eof_seen = True
        self._in += data

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> object:
        if self.dead:
            raise ProtocolError("dead")
        if b"\n" in self._in:
            line, _, rest = bytes(self._in).partition(b"\n")
            self._in[:] = rest
            if line == b"bad":
                self._out += b"refused\n"
                self.dead = True
                raise ProtocolError("bad line")
            return line.decode()
        if self._eof:
            if self._in:
                self.dead = True
                raise ProtocolError("end of stream inside a line")
            return CLOSED
        return NEED_DATA

    def send(self, event: object) -> None:
        assert isinstance(event, str)
        self._out += event.encode() + b"\n"


def _pair(
    *, cut_after: int | None = None, max_chunk: int = 65536
) -> tuple[Driver[object], Driver[object]]:
    a, b = memory_stream_pair(cut_after=cut_after, max_chunk=max_chunk)
    return (
        Driver(LineConnection(), a, need_data=NEED_DATA, timeout=2.0),
        Driver(LineConnection(), b, need_data=NEED_DATA, timeout=2.0),
    )


async def _client(d: Driver[object], n: int) -> object:
    try:
        for i in range(n):
            await d.send(f"ping {i}")
            assert await d.next_event() == f"pong {i}"
        await d.aclose()
        return "done"
    except TransportError as exc:
        return exc


async def _server(d: Driver[object]) -> object:
    try:
        while True:
            event = await d.next_event()
            if event == CLOSED:
                await d.aclose()
                return "done"
            assert isinstance(event, str)
            await d.send(event.replace("ping", "pong"))
    except TransportError as exc:
        return exc


def test_echo_then_orderly_close() -> None:
    async def main() -> tuple[object, object, int]:
        c, s = _pair(max_chunk=3)
        out = await asyncio.gather(_client(c, 5), _server(s))
        return out[0], out[1], c.octets_sent

    client, server, sent = asyncio.run(main())
    assert (client, server) == ("done", "done")
    assert sent == sum(len(f"ping {i}\n") for i in range(5))


def test_cut_at_every_offset_fails_both_ends_cleanly() -> None:
    total = sum(len(f"ping {i}\n") + len(f"pong {i}\n") for i in range(3))

    async def main(offset: int) -> None:
        c, s = _pair(cut_after=offset)
        client, server = await asyncio.wait_for(asyncio.gather(_client(c, 3), _server(s)), 5)
        assert isinstance(client, TransportError), offset
        assert isinstance(server, TransportError), offset
        for d in (c, s):
            assert d.closed
            assert isinstance(d.conn, LineConnection)
            assert d.conn.eof_seen  # told the connection the stream ended

    for offset in range(total):
        asyncio.run(main(offset))


def test_silent_peer_times_out() -> None:
    async def main() -> None:
        c, _s = _pair()
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(TransportError, match=r"within 0\.05 s"):
            await c.next_event(timeout=0.05)
        assert loop.time() - start < 1.0
        assert c.closed
        with pytest.raises(StateError):
            await c.next_event()

    asyncio.run(main())


def test_connection_error_delivers_farewell_then_closes() -> None:
    async def main() -> None:
        a, b = memory_stream_pair()
        d = Driver(LineConnection(), a, need_data=NEED_DATA, timeout=1.0)
        await b.send(b"bad\n")
        with pytest.raises(ProtocolError):
            await d.next_event()
        assert d.closed
        got = b""
        while chunk := await b.receive():
            got += chunk
        assert got == b"refused\n"

    asyncio.run(main())


def test_eof_inside_a_message_is_the_connections_error() -> None:
    async def main() -> None:
        a, b = memory_stream_pair()
        d = Driver(LineConnection(), a, need_data=NEED_DATA)
        await b.send(b"half a li")
        await b.aclose()
        with pytest.raises(ProtocolError):
            await d.next_event()

    asyncio.run(main())


class _Greedy(LineConnection):
    def next_event(self) -> object:
        return NEED_DATA


def test_a_connection_that_wants_data_after_eof_does_not_spin() -> None:
    async def main() -> None:
        a, b = memory_stream_pair()
        d = Driver(_Greedy(), a, need_data=NEED_DATA, timeout=1.0)
        await b.aclose()
        with pytest.raises(TransportError, match="after end of stream"):
            await d.next_event()

    asyncio.run(main())


def test_context_manager_closes_the_stream() -> None:
    async def main() -> None:
        a, b = memory_stream_pair()
        async with Driver(LineConnection(), a, need_data=NEED_DATA) as d:
            await d.send("hi")
        assert await b.receive() == b"hi\n"
        assert await b.receive() == b""

    asyncio.run(main())


class _Abortable(LineConnection):
    def __init__(self) -> None:
        super().__init__()
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


def test_transport_failure_aborts_a_connection_that_can_abort() -> None:
    async def main() -> None:
        a, _b = memory_stream_pair()
        conn = _Abortable()
        d = Driver(conn, a, need_data=NEED_DATA)
        a.link.cut()
        with pytest.raises(TransportError):
            await d.next_event()
        assert conn.aborted
        assert not conn.eof_seen  # abort() instead of an end of stream

    asyncio.run(main())


class _AutoAck(LineConnection):
    """Acknowledges each line inside next_event and asks for more (like a handshake reply)."""

    def next_event(self) -> object:
        event = super().next_event()
        while isinstance(event, str) and event != CLOSED:
            self._out += b"ack " + event.encode() + b"\n"
            event = super().next_event()
        return event


def test_octets_queued_while_returning_need_data_are_sent() -> None:
    async def main() -> bytes:
        a, b = memory_stream_pair()
        d = Driver(_AutoAck(), a, need_data=NEED_DATA, timeout=1.0)
        reader = asyncio.create_task(d.next_event())
        await b.send(b"one\n")
        got = await asyncio.wait_for(b.receive(), 1.0)
        await b.aclose()
        assert await reader == CLOSED
        return got

    assert asyncio.run(main()) == b"ack one\n"


class _Strict(LineConnection):
    def send(self, event: object) -> None:
        if event == "too early":
            raise StateError("not now")
        if event == "poison":
            raise ProtocolError("broken")
        super().send(event)


def test_a_local_error_from_send_leaves_the_driver_open() -> None:
    async def main() -> None:
        a, b = memory_stream_pair()
        d = Driver(_Strict(), a, need_data=NEED_DATA)
        with pytest.raises(StateError):
            await d.send("too early")
        assert a.link.transcript == []  # nothing sent, the stream still open
        await d.send("fine")
        assert await b.receive() == b"fine\n"
        with pytest.raises(ProtocolError):
            await d.send("poison")
        assert d.closed
        assert await b.receive() == b""

    asyncio.run(main())
