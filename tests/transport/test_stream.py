"""In-memory byte streams: delivery, orderly end, cuts at every offset, tampering."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import TransportError, UsageError
from rspfed.transport import ByteStream, memory_stream_pair


async def _read_all(stream: ByteStream) -> bytes:
    out = bytearray()
    while chunk := await stream.receive():
        out += chunk
    return bytes(out)


def test_is_a_byte_stream() -> None:
    a, b = memory_stream_pair()
    assert isinstance(a, ByteStream)
    assert a.peer == "memory:b"
    assert b.peer == "memory:a"


@given(
    st.lists(st.binary(min_size=1, max_size=50), max_size=10),
    st.integers(min_value=1, max_value=64),
)
def test_delivers_in_order_then_eof(chunks: list[bytes], max_chunk: int) -> None:
    async def main() -> bytes:
        a, b = memory_stream_pair(max_chunk=max_chunk)

        async def writer() -> None:
            for c in chunks:
                await a.send(c)
            await a.aclose()

        got, _ = await asyncio.gather(_read_all(b), writer())
        return got

    assert asyncio.run(main()) == b"".join(chunks)


def test_max_chunk_bounds_each_receive() -> None:
    async def main() -> list[bytes]:
        a, b = memory_stream_pair(max_chunk=3)
        await a.send(b"abcdefgh")
        await a.aclose()
        out = []
        while chunk := await b.receive():
            out.append(chunk)
        return out

    assert asyncio.run(main()) == [b"abc", b"def", b"gh"]


def test_receive_waits_for_data() -> None:
    async def main() -> bytes:
        a, b = memory_stream_pair()
        task = asyncio.create_task(b.receive())
        await asyncio.sleep(0)
        assert not task.done()
        await a.send(b"x")
        return await task

    assert asyncio.run(main()) == b"x"


def test_send_to_closed_peer_is_dropped_and_own_close_fails() -> None:
    async def main() -> None:
        a, b = memory_stream_pair()
        await b.aclose()
        await b.aclose()  # idempotent
        await a.send(b"dropped")
        assert a.link.transcript == [("a", b"dropped")]
        with pytest.raises(TransportError):
            await b.send(b"x")
        with pytest.raises(TransportError):
            await b.receive()
        assert await a.receive() == b""

    asyncio.run(main())


def test_bad_arguments() -> None:
    with pytest.raises(UsageError):
        memory_stream_pair(cut_after=-1)
    with pytest.raises(UsageError):
        memory_stream_pair(max_chunk=0)


def _conversation() -> list[tuple[int, bytes]]:
    """A ping-pong of messages: (sender index, octets)."""
    return [(0, b"hello"), (1, b"hi there"), (0, b"x" * 20), (1, b"ok"), (0, b"bye")]


async def _run_conversation(cut_after: int | None) -> tuple[object, object, int]:
    """Run the conversation; each side's outcome is its bytes read or the error."""
    ends = memory_stream_pair(cut_after=cut_after)
    convo = _conversation()

    async def side(me: int) -> object:
        stream = ends[me]
        try:
            for sender, msg in convo:
                if sender == me:
                    await stream.send(msg)
                else:
                    got = b""
                    while len(got) < len(msg):
                        chunk = await stream.receive()
                        if not chunk:
                            return "eof"
                        got += chunk
                    assert got == msg
            await stream.aclose()
            return "done"
        except TransportError as exc:
            await stream.aclose()
            return exc

    outcome = await asyncio.wait_for(asyncio.gather(side(0), side(1)), timeout=5)
    return outcome[0], outcome[1], ends[0].link.sent


def test_cut_at_every_offset_fails_both_sides() -> None:
    total = sum(len(m) for _, m in _conversation())
    first, second, sent = asyncio.run(_run_conversation(None))
    assert (first, second, sent) == ("done", "done", total)
    for offset in range(total):
        first, second, sent = asyncio.run(_run_conversation(offset))
        assert isinstance(first, TransportError), offset
        assert isinstance(second, TransportError), offset
        assert sent == offset
        assert str(offset) in str(first)


def test_cut_on_demand_wakes_a_waiting_receiver() -> None:
    async def main() -> None:
        a, b = memory_stream_pair()
        task = asyncio.create_task(b.receive())
        await asyncio.sleep(0)
        await a.send(b"before")
        assert await task == b"before"
        task = asyncio.create_task(b.receive())
        await asyncio.sleep(0)
        a.link.cut()
        with pytest.raises(TransportError):
            await task
        with pytest.raises(TransportError):
            await a.send(b"after")
        with pytest.raises(TransportError):
            await a.receive()

    asyncio.run(main())


def test_delivered_octets_are_read_before_the_cut_error() -> None:
    async def main() -> None:
        a, b = memory_stream_pair(cut_after=4)
        with pytest.raises(TransportError):
            await a.send(b"abcdef")
        assert await b.receive() == b"abcd"
        with pytest.raises(TransportError):
            await b.receive()

    asyncio.run(main())


def test_tamper_observes_and_alters() -> None:
    seen: list[tuple[str, bytes]] = []

    def flip(sender: str, data: bytes) -> bytes:
        seen.append((sender, data))
        return bytes([data[0] ^ 1]) + data[1:] if sender == "a" else b""

    async def main() -> list[tuple[str, bytes]]:
        a, b = memory_stream_pair(tamper=flip)
        await a.send(b"abc")
        assert await b.receive() == b"`bc"
        await b.send(b"dropped")
        await b.aclose()
        assert await a.receive() == b""
        return a.link.transcript

    transcript = asyncio.run(main())
    assert seen == [("a", b"abc"), ("b", b"dropped")]
    assert transcript == [("a", b"`bc"), ("b", b"")]


def test_tampered_octets_reach_the_receiver() -> None:
    async def main() -> bytes:
        a, b = memory_stream_pair(tamper=lambda _s, d: d + b"!")
        await a.send(b"abc")
        return await b.receive()

    assert asyncio.run(main()) == b"abc!"
