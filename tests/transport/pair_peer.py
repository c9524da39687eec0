"""A whole pairing over LAN for the network-namespace tests (run as a child process).

``python -m tests.transport.pair_peer offer|join SESSIONS_JSON IFACE`` runs one
or more pairings concurrently: :class:`~rspfed.transfer.connection.PairingConnection`
through :class:`~rspfed.transport.drive.Driver` over a
:class:`~rspfed.transport.lan.TcpStream`, the applications being G-proto's
test granter (the offerer, a primary) and requester (the joiner), from
``tests/transfer/pairing_world.py``.  JSON lines on stdout::

    {"event": "offer", "s": i, "uri": ..., "code": ...}           offerer ready
    {"event": "connected", "s": i, "ms": t}                       joiner connected
    {"event": "result", "s": i, "outcome": ..., "burnt": b, "state": ...,
     "granted": n, "token_received": b, "iccid": ..., "ms": t}

A session: ``{"method": "qr"|"code", "hint": bool, "cut": N|null, "timeout": s}``
for the offerer; the joiner's also has ``"uri"`` or ``"code"`` (what the user
scanned or typed).  ``cut`` makes this side reset the connection after ``N``
octets (both directions), see :class:`tests.transport.lan_peer.CutStream`.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from rspfed.errors import RspfedError
from rspfed.federation.token import DeviceClass
from rspfed.transfer.code import ShortCode, discovery_id_from_secret
from rspfed.transfer.connection import (
    NEED_DATA,
    ByeReceived,
    ConnectionClosed,
    JoinResultReceived,
    PairingConnection,
    Role,
)
from rspfed.transfer.messages import DeviceRole
from rspfed.transfer.offer import LanHint, PairingOffer
from rspfed.transport import Driver
from rspfed.transport.lan import LanOffer, TcpStream, lan_connect
from tests.transfer.pairing_world import PRIMARY_HELLO, SECONDARY_HELLO, App
from tests.transport.lan_peer import CutStream, emit


async def converse(driver: Driver[Any], conn: PairingConnection, app: App) -> None:
    """Deliver events to the application until the connection ends."""
    while True:
        event = await driver.next_event()
        if event is NEED_DATA:
            raise AssertionError("the driver returned NEED_DATA (wrong need_data sentinel)")
        if isinstance(event, ConnectionClosed):
            return
        app.on_event(conn, event)
        await driver.flush()
        if isinstance(event, ByeReceived):
            return


def _result(i: int, t0: float, conn: PairingConnection | None, app: App, outcome: str) -> None:
    iccid = None
    for event in app.events:
        if isinstance(event, JoinResultReceived):
            iccid = event.message.iccid
    emit(
        event="result",
        s=i,
        outcome=outcome,
        burnt=conn.burnt if conn else None,
        state=conn.state.value if conn else None,
        granted=len(app.granted),
        token_received=app.token_received,
        iccid=iccid,
        ms=(time.monotonic() - t0) * 1000,
    )


async def offer_session(i: int, s: dict[str, Any], iface: str) -> None:
    t0 = time.monotonic()
    secret = os.urandom(32)
    code = ShortCode.generate(os.urandom)
    did = discovery_id_from_secret(secret) if s["method"] == "qr" else code.discovery_id
    app = App(granter=True)
    conn: PairingConnection | None = None
    outcome = "done"
    async with LanOffer(did, interfaces=[iface], advertise=not s.get("hint")) as lan:
        offer = PairingOffer(
            secret=secret,
            offerer_role=DeviceRole.PRIMARY,
            offerer_name="Ana's phone",
            device_class=DeviceClass.PHONE,
            lan=LanHint(*lan.hint) if s.get("hint") else LanHint(),
        )
        if not s.get("hint"):
            await lan.registered()
        emit(event="offer", s=i, uri=offer.to_uri(), code=str(code))
        try:
            tcp = await lan.accept(timeout=s["timeout"] * 4)
            stream: TcpStream | CutStream = (
                tcp if s.get("cut") is None else CutStream(tcp, s["cut"])
            )
            conn = PairingConnection(
                Role.OFFERER, local=PRIMARY_HELLO, rand=os.urandom, offer=offer, code=code
            )
            async with Driver(conn, stream, need_data=NEED_DATA, timeout=s["timeout"]) as driver:
                await converse(driver, conn, app)
        except RspfedError as exc:
            outcome = type(exc).__name__
            emit(event="error", s=i, error=str(exc))
    _result(i, t0, conn, app, outcome)


async def join_session(i: int, s: dict[str, Any], iface: str) -> None:
    t0 = time.monotonic()
    app = App(granter=False)
    conn: PairingConnection | None = None
    outcome = "done"
    try:
        offer: PairingOffer | None = None
        code: ShortCode | None = None
        if s["method"] == "qr":
            offer = PairingOffer.from_uri(s["uri"])
            did = offer.discovery_id
            hint = offer.lan
            direct = (hint.host, hint.port) if hint and hint.host and hint.port else None
        else:
            code = ShortCode.parse(s["code"])
            did, direct = code.discovery_id, None
        tcp = await lan_connect(did, timeout=s["timeout"] * 4, interfaces=[iface], direct=direct)
        emit(event="connected", s=i, ms=(time.monotonic() - t0) * 1000, peer=tcp.peer)
        stream: TcpStream | CutStream = tcp if s.get("cut") is None else CutStream(tcp, s["cut"])
        conn = PairingConnection(
            Role.JOINER, local=SECONDARY_HELLO, rand=os.urandom, offer=offer, code=code
        )
        async with Driver(conn, stream, need_data=NEED_DATA, timeout=s["timeout"]) as driver:
            await converse(driver, conn, app)
    except RspfedError as exc:
        outcome = type(exc).__name__
        emit(event="error", s=i, error=str(exc))
    _result(i, t0, conn, app, outcome)


async def main(role: str, sessions: list[dict[str, Any]], iface: str) -> None:
    run = offer_session if role == "offer" else join_session
    await asyncio.gather(*(run(i, s, iface) for i, s in enumerate(sessions)))
    emit(event="exit")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]))
