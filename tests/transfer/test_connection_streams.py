"""Pairing connections over in-memory byte streams (``memory_stream_pair``) through the driver.

The same applications as the sans-IO tests, now with real asyncio tasks on
each side, a stream that may hand over one octet at a time, and a link cut
after N octets (TCP-reset semantics: the cut raises ``TransportError``, the
driver aborts the connection).  Both sides end with an ``RspfedError`` or a
clean bye; a token arrives only whole; the offerer is closed and burnt.
"""

from __future__ import annotations

import asyncio

import pytest

from rspfed.errors import RspfedError
from rspfed.transfer import (
    ByeReceived,
    ConnectionClosed,
    ConnectionState,
    PairingConnection,
    Role,
    TokenGranted,
)
from rspfed.transfer.connection import NEED_DATA, Event, NeedData
from rspfed.transport.drive import Driver
from rspfed.transport.stream import MemoryStream, memory_stream_pair
from tests.transfer.pairing_world import (
    CODE,
    PRIMARY_HELLO,
    SECONDARY_HELLO,
    App,
    counter_rand,
    make_offer,
)


async def _side(conn: PairingConnection, app: App, stream: MemoryStream) -> None:
    driver: Driver[Event | NeedData] = Driver(conn, stream, need_data=NEED_DATA, timeout=5)
    async with driver:
        try:
            while True:
                event = await driver.next_event()
                if isinstance(event, ConnectionClosed):
                    break
                app.on_event(conn, event)
                await driver.flush()
                if isinstance(event, ByeReceived) or conn.state is ConnectionState.CLOSED:
                    break
        except RspfedError as exc:
            app.error = exc


def _run(
    method: str, *, cut_after: int | None = None, max_chunk: int = 65536
) -> tuple[PairingConnection, PairingConnection, App, App, int]:
    offer = make_offer()
    o = PairingConnection(
        Role.OFFERER, local=PRIMARY_HELLO, offer=offer, code=CODE, rand=counter_rand(31)
    )
    j = PairingConnection(
        Role.JOINER,
        local=SECONDARY_HELLO,
        offer=offer if method == "qr" else None,
        code=CODE if method == "code" else None,
        rand=counter_rand(32),
    )
    oa, ja = App(granter=True), App(granter=False)

    async def main() -> int:
        a, b = memory_stream_pair(cut_after=cut_after, max_chunk=max_chunk)
        await asyncio.gather(_side(o, oa, a), _side(j, ja, b))
        return sum(len(chunk) for _, chunk in a.link.transcript)

    total = asyncio.run(main())
    return o, j, oa, ja, total


@pytest.mark.parametrize(("method", "max_chunk"), [("qr", 65536), ("qr", 1), ("code", 7)])
def test_whole_pairing_over_streams(method: str, max_chunk: int) -> None:
    o, j, oa, ja, _ = _run(method, max_chunk=max_chunk)
    assert oa.error is None
    assert ja.error is None
    assert ja.token_received
    assert o.state is ConnectionState.CLOSED
    assert j.state is ConnectionState.CLOSED
    assert [type(e).__name__ for e in ja.events][-1] == "ByeReceived"


def test_link_cut_at_sampled_offsets() -> None:
    *_, total = _run("qr")
    assert total > 0
    for n in [*range(0, total, 23), total - 1]:
        o, j, oa, ja, _ = _run("qr", cut_after=n)
        assert isinstance(ja.error, RspfedError), n
        assert o.state is ConnectionState.CLOSED
        assert o.burnt
        assert j.state is ConnectionState.CLOSED
        if oa.error is None:  # the offerer had said bye before the cut
            assert ja.token_received
        got = [e for e in ja.events if isinstance(e, TokenGranted)]
        assert len(got) <= 1
        if got:
            assert oa.granted == [got[0].message]
