"""A whole pairing (QR and short code) over LAN between two network namespaces (root).

The offerer (a primary, in namespace a) and the joiner (in namespace b) run
G-proto's :class:`~rspfed.transfer.connection.PairingConnection` through the
transport driver over TCP, found by zeroconf across the veth, with G-proto's
test applications (hello, join request, a real federation token, join result,
ledger state, bye).  Then resets at sampled offsets of a whole pairing (in the
handshake, in the token grant, the last octet): both sides fail cleanly and
burn the offer.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest

from rspfed.transfer.code import ShortCode
from rspfed.transfer.connection import NEED_DATA, PairingConnection, Role
from rspfed.transfer.offer import PairingOffer
from rspfed.transport import Driver, memory_stream_pair
from tests.transfer.pairing_world import ICCID, PRIMARY_HELLO, SECONDARY_HELLO, App, make_offer
from tests.transport.netns import Child, NetnsPair
from tests.transport.pair_peer import converse

pytestmark = pytest.mark.root

PEER = ["-m", "tests.transport.pair_peer"]
TIMEOUT = 3.0


def _spawn(net: NetnsPair, role: str, sessions: list[dict[str, Any]]) -> Child:
    ns = net.a if role == "offer" else net.b
    return net.spawn(ns, [*PEER, role, json.dumps(sessions), ns.address], label=role)


def _results(child: Child, n: int, timeout: float) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    while len(out) < n:
        line = child.read_until("result", timeout)
        out[line["s"]] = line
    child.read_until("exit", timeout)
    assert child.wait(timeout) == 0
    return out


def _pairing_chunks() -> list[int]:
    """Sizes of the octet chunks of a whole QR pairing, from an in-memory run."""

    async def main() -> list[int]:
        a, b = memory_stream_pair()
        offer = make_offer(rand=os.urandom)
        off = PairingConnection(Role.OFFERER, local=PRIMARY_HELLO, rand=os.urandom, offer=offer)
        join = PairingConnection(Role.JOINER, local=SECONDARY_HELLO, rand=os.urandom, offer=offer)
        async with (
            Driver(off, b, need_data=NEED_DATA) as d_off,
            Driver(join, a, need_data=NEED_DATA) as d_join,
        ):
            await asyncio.gather(
                converse(d_off, off, App(granter=True)), converse(d_join, join, App(granter=False))
            )
        return [len(chunk) for _, chunk in a.link.transcript]

    return asyncio.run(main())


def test_whole_pairing_by_qr_and_by_code_across_namespaces(netns: NetnsPair) -> None:
    sessions = [
        {"method": "qr", "timeout": TIMEOUT},  # zeroconf (no hint in the QR)
        {"method": "qr", "hint": True, "timeout": TIMEOUT},  # the QR's host:port
        {"method": "code", "timeout": TIMEOUT},  # short code: nameplate id, SPAKE2
    ]
    offerer = _spawn(netns, "offer", sessions)
    offers: dict[int, dict[str, Any]] = {}
    while len(offers) < len(sessions):
        line = offerer.read_until("offer", 10)
        offers[line["s"]] = line
    # What the user scanned or typed.
    assert PairingOffer.from_uri(offers[1]["uri"]).lan is not None
    ShortCode.parse(offers[2]["code"])
    joins = [
        s | ({"uri": offers[i]["uri"]} if s["method"] == "qr" else {"code": offers[i]["code"]})
        for i, s in enumerate(sessions)
    ]
    joiner = _spawn(netns, "join", joins)
    j = _results(joiner, len(sessions), 20)
    o = _results(offerer, len(sessions), 20)
    for i in range(len(sessions)):
        assert (o[i]["outcome"], j[i]["outcome"]) == ("done", "done"), (o[i], j[i])
        assert o[i]["granted"] == 1
        assert j[i]["token_received"]
        assert o[i]["iccid"] == ICCID
        assert o[i]["state"] == j[i]["state"] == "closed"
    connected = [line for line in joiner.lines if line["event"] == "connected"]
    print(
        "netns pairing: "
        + ", ".join(
            f"{sessions[line['s']]['method']}{'+hint' if sessions[line['s']].get('hint') else ''}"
            f" connected {line['ms']:.0f} ms, done {j[line['s']]['ms']:.0f} ms"
            for line in connected
        )
    )


def test_reset_at_sampled_offsets_of_a_pairing(netns: NetnsPair) -> None:
    chunks = _pairing_chunks()
    total = sum(chunks)
    ends = [sum(chunks[: k + 1]) for k in range(len(chunks))]
    grant = max(range(len(chunks)), key=lambda k: chunks[k])  # the token grant is the largest
    offsets = sorted(
        {
            0,
            chunks[0] // 2,  # inside the opening Noise message
            ends[1],  # right after the handshake
            ends[grant] - chunks[grant] // 2,  # inside the token grant
            total - 1,  # the last octet (inside the final bye)
        }
    )
    sessions = [
        {
            "method": "qr",
            "hint": True,
            "timeout": TIMEOUT,
            "cut": cut,
            "cutter": "offer" if n % 2 else "join",
        }
        for n, cut in enumerate(offsets)
    ]
    offerer = _spawn(
        netns,
        "offer",
        [s | {"cut": s["cut"] if s["cutter"] == "offer" else None} for s in sessions],
    )
    offers: dict[int, dict[str, Any]] = {}
    while len(offers) < len(sessions):
        line = offerer.read_until("offer", 10)
        offers[line["s"]] = line
    joiner = _spawn(
        netns,
        "join",
        [
            s | {"uri": offers[i]["uri"], "cut": s["cut"] if s["cutter"] == "join" else None}
            for i, s in enumerate(sessions)
        ],
    )
    j = _results(joiner, len(sessions), 4 * TIMEOUT + 5)
    o = _results(offerer, len(sessions), 4 * TIMEOUT + 5)
    for i, cut in enumerate(offsets):
        for side in (o[i], j[i]):
            assert side["burnt"] is True
            assert side["state"] == "closed"
            assert side["ms"] < TIMEOUT * 1000 + 1500, (cut, side)  # a reset, not a time-out
        assert j[i]["outcome"] == "TransportError", (cut, o[i], j[i])
        if cut < total - 1 or sessions[i]["cutter"] == "offer":
            assert o[i]["outcome"] == "TransportError", (cut, o[i], j[i])
        else:
            # The joiner reset the link on the last octet of the offerer's final
            # bye: the offerer had sent everything and finished, the joiner fails.
            assert o[i]["outcome"] in ("done", "TransportError"), (cut, o[i], j[i])
        if cut < ends[grant] - 1:
            assert not j[i]["token_received"], cut
        assert o[i]["iccid"] is None or cut >= ends[grant]
