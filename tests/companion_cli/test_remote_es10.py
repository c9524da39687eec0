"""The phone's :class:`rspfed.transfer.RemoteEs10` over a real paired connection
(Noise ``PAIRED``, two :class:`~rspfed.transport.drive.Driver` s over a memory
stream pair): requests cross intact from a worker thread, the watch's refusal is a
PolicyError, a watch that does not answer is a TransportError, and a call on the
channel's own loop is refused instead of dead-locking.

The watch's "card" here is a recorder that answers each request with its own
SHA-256 digest, so what the phone gets back is checked against what was sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rspfed.errors import PolicyError, TransportError, UsageError
from rspfed.federation import DeviceClass
from rspfed.lpa.download import DeviceInfo
from rspfed.transfer import (
    NEED_DATA,
    Capability,
    CompanionInfo,
    CompanionInfoReceived,
    CompanionRequest,
    CompanionRequested,
    CompanionResponder,
    DeviceRole,
    Es10Requested,
    Hello,
    Paired,
    PairedKey,
    PairingConnection,
    RemoteEs10,
    Role,
)
from rspfed.transfer.companion import device_info_der
from rspfed.transfer.connection import HelloReceived
from rspfed.transport.drive import Driver
from rspfed.transport.stream import memory_stream_pair


def _eid(first30: str) -> str:
    """An EID with its ISO 7064 MOD 97-10 check digits (computed here, independently)."""
    return first30 + f"{98 - int(first30 + '00') % 97:02d}"


EID_W = _eid("890490320000000000000000000001")
EID_P = _eid("890490320000000000000000000002")


class DigestCard:
    """An Es10 that answers each request with SHA-256(request) and records it."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def transceive(self, request_der: bytes) -> bytes:
        self.seen.append(bytes(request_der))
        return hashlib.sha256(request_der).digest()


def _hello(name: str, role: DeviceRole, eid: str, cls: DeviceClass) -> Hello:
    return Hello(
        name=name, device_class=cls, role=role, eid=eid, capabilities={Capability.COMPANION}
    )


async def _session(requests: list[bytes], *, answer: bool = True) -> tuple[list[Any], DigestCard]:
    key = PairedKey(psk=os.urandom(32), discovery_id=os.urandom(16))
    watch_end, phone_end = memory_stream_pair(names=("watch", "phone"))
    watch = Driver(
        PairingConnection(
            Role.OFFERER,
            local=_hello("watch", DeviceRole.COMPANION, EID_W, DeviceClass.WATCH),
            rand=os.urandom,
            paired=key,
        ),
        watch_end,
        need_data=NEED_DATA,
        timeout=5.0,
    )
    phone = Driver(
        PairingConnection(
            Role.JOINER,
            local=_hello("phone", DeviceRole.PRIMARY, EID_P, DeviceClass.PHONE),
            rand=os.urandom,
            paired=key,
        ),
        phone_end,
        need_data=NEED_DATA,
        timeout=5.0,
    )
    card = DigestCard()
    responder = CompanionResponder(card)

    async def serve() -> None:
        while True:
            event = await watch.next_event(timeout=None)
            if isinstance(event, Paired | HelloReceived):
                continue
            if isinstance(event, CompanionRequested):
                await watch.send(CompanionInfo("watch", EID_W, device_info_der(DeviceInfo())))
                continue
            if isinstance(event, Es10Requested):
                if answer:
                    await watch.send(responder.answer(event.message))
                continue
            return

    server = asyncio.create_task(serve())
    for _ in range(2):
        assert isinstance(await phone.next_event(), Paired | HelloReceived)
    await phone.send(CompanionRequest())
    assert isinstance(await phone.next_event(), CompanionInfoReceived)
    remote = RemoteEs10(phone, asyncio.get_running_loop(), timeout=1.0 if not answer else 10.0)

    def work() -> list[Any]:
        out: list[Any] = []
        for der in requests:
            try:
                out.append(remote.transceive(der))
            except (PolicyError, TransportError) as exc:
                out.append(exc)
        return out

    try:
        results = await asyncio.to_thread(work)
        with pytest.raises(UsageError):
            remote.transceive(b"\xbf\x2d\x00")  # on the channel loop itself
        assert remote.count == len(requests) - (0 if answer else len(requests))
    finally:
        server.cancel()
        await phone.aclose()
        await watch.aclose()
    return results, card


@settings(max_examples=10, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_requests_cross_intact_from_a_worker_thread(bodies: list[bytes]) -> None:
    requests = [b"\xbf\x2d" + bytes([len(b) % 128]) + b for b in bodies]  # GetProfilesInfo tag
    results, card = asyncio.run(_session(requests))
    assert card.seen == requests
    assert results == [hashlib.sha256(r).digest() for r in requests]


def test_a_refused_request_is_a_policy_error_and_never_reaches_the_card() -> None:
    reset = bytes.fromhex("BF340403020100")  # eUICCMemoryReset: not on the relay's list
    listing = bytes.fromhex("BF2D00")
    results, card = asyncio.run(_session([reset, listing]))
    assert isinstance(results[0], PolicyError)
    assert "BF34" in str(results[0])
    assert results[1] == hashlib.sha256(listing).digest()
    assert card.seen == [listing]


def test_a_watch_that_does_not_answer_is_a_transport_error() -> None:
    results, card = asyncio.run(_session([bytes.fromhex("BF2D00")], answer=False))
    assert isinstance(results[0], TransportError)
    assert card.seen == []


def test_bad_timeout_is_refused() -> None:
    async def make() -> None:
        RemoteEs10(Any, asyncio.get_running_loop(), timeout=0)  # type: ignore[arg-type]

    with pytest.raises(UsageError):
        asyncio.run(make())
