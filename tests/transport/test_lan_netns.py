"""LAN pairing transport between two processes in two network namespaces (root).

Each test builds a fresh namespace pair joined by a veth (``tests/transport/netns.py``)
and runs ``tests/transport/lan_peer.py`` in each: the offerer advertises with
zeroconf on its veth address, the joiner discovers it over multicast across the
veth, both run a Noise NNpsk0 handshake and encrypted records through the
driver.  Every wait is bounded; nothing sleeps longer than a poll.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest

from rspfed.transport import Driver, memory_stream_pair
from tests.transport.netns import Child, NetnsPair
from tests.transport.secure_echo import CLOSED, NEED_DATA, PAIRED, SecureEcho

pytestmark = pytest.mark.root

PEER = ["-m", "tests.transport.lan_peer"]
MESSAGES = [1, 700, 5000]
TIMEOUT = 2.0


def _session(**extra: Any) -> dict[str, Any]:
    return {
        "id": os.urandom(16).hex(),
        "psk": os.urandom(32).hex(),
        "timeout": TIMEOUT,
        "messages": MESSAGES,
    } | extra


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


def _conversation_octets() -> int:
    """Octets of one whole echo session, from an in-memory run of the same code."""

    async def main() -> int:
        a, b = memory_stream_pair()
        psk = os.urandom(32)
        joiner = Driver(SecureEcho(initiator=True, psk=psk), a, need_data=NEED_DATA)
        offerer = Driver(SecureEcho(initiator=False, psk=psk), b, need_data=NEED_DATA)

        async def offer() -> None:
            assert await offerer.next_event() == PAIRED
            while (event := await offerer.next_event()) != CLOSED:
                await offerer.send(event)

        async def join() -> None:
            assert await joiner.next_event() == PAIRED
            for n, size in enumerate(MESSAGES):
                await joiner.send(bytes([n]) * size)
                assert await joiner.next_event() == bytes([n]) * size
            await joiner.aclose()

        await asyncio.gather(offer(), join())
        return a.link.sent

    return asyncio.run(main())


def test_zeroconf_discovery_and_secure_echo_across_namespaces(netns: NetnsPair) -> None:
    session = _session()
    offerer = _spawn(netns, "offer", [session])
    offerer.read_until("listening", 10)
    registered = offerer.read_until("registered", 10)
    joiner = _spawn(netns, "join", [session])  # no hint: zeroconf only
    connected = joiner.read_until("connected", 10)
    assert connected["peer"].startswith(f"tcp:{netns.a.address}:")
    j = _results(joiner, 1, 10)[0]
    o = _results(offerer, 1, 10)[0]
    assert (o["outcome"], j["outcome"]) == ("done", "done")
    assert o["octets"] == j["octets"] == _conversation_octets()
    print(
        f"netns: registration {registered['ms']:.0f} ms, "
        f"joiner resolve+connect {connected['ms']:.0f} ms, session {j['ms']:.0f} ms"
    )


def test_cut_at_sampled_offsets_fails_cleanly_on_both_sides(netns: NetnsPair) -> None:
    total = _conversation_octets()
    handshake = 100  # two frames of 2 + 48 octets (Noise NNpsk0: e + tag, e + tag)
    offsets = sorted(
        {0, 1, 49, 50, 51, handshake - 1, handshake, handshake + 1, total // 2, total - 1}
    )
    sessions = []
    for n, cut in enumerate(offsets):
        cutter = "offer" if n % 2 else "join"
        sessions.append(_session(advertise=False, cut=cut, cutter=cutter))
    offer_sessions = [s | {"cut": s["cut"] if s["cutter"] == "offer" else None} for s in sessions]
    offerer = _spawn(netns, "offer", offer_sessions)
    ports: dict[int, int] = {}
    while len(ports) < len(sessions):
        line = offerer.read_until("listening", 10)
        ports[line["s"]] = line["port"]
    join_sessions = [
        s
        | {
            "cut": s["cut"] if s["cutter"] == "join" else None,
            "direct": [netns.a.address, ports[i]],
        }
        for i, s in enumerate(sessions)
    ]
    joiner = _spawn(netns, "join", join_sessions)
    j = _results(joiner, len(sessions), 4 * TIMEOUT + 5)
    o = _results(offerer, len(sessions), 4 * TIMEOUT + 5)
    for i, cut in enumerate(offsets):
        assert o[i]["outcome"] == "TransportError", (cut, o[i], j[i])
        assert j[i]["outcome"] == "TransportError", (cut, o[i], j[i])
        # A cut turns into a reset, not a wait for the time-out.
        assert max(o[i]["ms"], j[i]["ms"]) < TIMEOUT * 1000 + 1500, (cut, o[i], j[i])


def test_link_down_mid_session_times_out_on_both_sides(netns: NetnsPair) -> None:
    session = _session(advertise=False, pause=0.3, timeout=1.0)
    offerer = _spawn(netns, "offer", [session])
    port = offerer.read_until("listening", 10)["port"]
    joiner = _spawn(netns, "join", [session | {"direct": [netns.a.address, port]}])
    offerer.read_until("paired", 10)
    netns.ip(netns.a, "link", "set", netns.a.ifname, "down")
    j = _results(joiner, 1, 10)[0]
    o = _results(offerer, 1, 10)[0]
    assert (o["outcome"], j["outcome"]) == ("TransportError", "TransportError")
