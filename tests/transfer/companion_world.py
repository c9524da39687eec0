"""A phone and its companion watch, two pairing connections shuttled in process (issue H).

The watch is the offerer (hello role ``companion``), the phone the joiner.
:func:`session` runs a scripted companion session: the phone sends
``companionRequest`` on the watch's hello, the watch answers ``companionInfo``,
the phone relays each ES10 request of the script and the watch answers each
with the scripted response (or refusal), then the phone says ``bye``.  Octets
move in the order they were produced; ``cut_at`` stops delivery after that
many octets (both directions together) and ends both streams.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import attrs

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.errors import RspfedError
from rspfed.federation.token import DeviceClass
from rspfed.lpa.download import DeviceInfo
from rspfed.transfer import (
    NEED_DATA,
    Bye,
    Capability,
    CompanionInfo,
    CompanionInfoReceived,
    CompanionRequest,
    CompanionRequested,
    ConnectionClosed,
    DeviceRole,
    Es10Answered,
    Es10Refusal,
    Es10Refused,
    Es10Request,
    Es10Requested,
    Es10Response,
    Event,
    Hello,
    HelloReceived,
    PairedKey,
    PairingConnection,
    Role,
)
from tests.transfer.pairing_world import counter_rand

WATCH_EID = "89001012012341234012345678901224"
PHONE_EID = "89049032123451234512345678901235"
WATCH_HELLO = Hello(
    name="Ana's watch",
    device_class=DeviceClass.WATCH,
    role=DeviceRole.COMPANION,
    eid=WATCH_EID,
    capabilities={Capability.COMPANION},
)
PHONE_HELLO = Hello(
    name="Ana's phone",
    device_class=DeviceClass.PHONE,
    role=DeviceRole.PRIMARY,
    eid=PHONE_EID,
    capabilities={Capability.COMPANION, Capability.JOIN},
)
# GetEuiccChallengeRequest, GetEuiccInfo1Request, GetProfilesInfo (empty)
GET_CHALLENGE = bytes.fromhex("bf2e00")
GET_INFO1 = bytes.fromhex("bf2000")
GET_PROFILES = bytes.fromhex("bf2d00")


@cache
def device_info_der() -> bytes:
    """The DER of the watch's SGP.22 DeviceInfo (the LPA's default values)."""
    return asn1.encode(rsp.DeviceInfo(DeviceInfo().to_asn1()))


def companion_info() -> CompanionInfo:
    """The watch's companion info."""
    return CompanionInfo(name=WATCH_HELLO.name, eid=WATCH_EID, device_info=device_info_der())


def paired_key(seed: int = 1) -> PairedKey:
    """A long-term companion key (deterministic per seed)."""
    return PairedKey.from_psk(counter_rand(100 + seed)(32))


Answer = bytes | Es10Refusal


@attrs.define
class Side:
    """One connection and what happened to it."""

    conn: PairingConnection
    events: list[Event] = attrs.Factory(list)
    error: RspfedError | None = None


@attrs.define
class Session:
    """A finished (or cut) session."""

    watch: Side
    phone: Side
    wire: list[tuple[str, bytes]]
    """Every chunk produced, in order: ("watch" or "phone", octets)."""

    @property
    def total(self) -> int:
        """Octets produced by both sides."""
        return sum(len(d) for _, d in self.wire)


def _watch_react(side: Side, event: Event, answers: list[Answer]) -> None:
    if isinstance(event, CompanionRequested):
        side.conn.send(companion_info())
    elif isinstance(event, Es10Requested):
        answer = answers.pop(0)
        side.conn.send(Es10Response(answer) if isinstance(answer, bytes) else answer)


def _phone_react(side: Side, event: Event, requests: list[bytes]) -> None:
    if isinstance(event, HelloReceived):
        side.conn.send(CompanionRequest())
    elif isinstance(event, CompanionInfoReceived | Es10Answered | Es10Refused):
        if requests:
            side.conn.send(Es10Request(requests.pop(0)))
        else:
            side.conn.send(Bye())


def session(
    requests: Sequence[bytes] = (GET_CHALLENGE,),
    answers: Sequence[Answer] = (bytes.fromhex("bf2e128010") + bytes(16),),
    *,
    watch_key: PairedKey | None = None,
    phone_key: PairedKey | None = None,
    cut_at: int | None = None,
    tamper: Callable[[str, bytes], bytes] | None = None,
) -> Session:
    """A reconnection of the paired watch and a scripted relay (see the module docstring)."""
    watch_key = watch_key or paired_key()
    phone_key = phone_key or watch_key
    watch = Side(
        PairingConnection(Role.OFFERER, local=WATCH_HELLO, rand=counter_rand(7), paired=watch_key)
    )
    phone = Side(
        PairingConnection(Role.JOINER, local=PHONE_HELLO, rand=counter_rand(8), paired=phone_key)
    )
    pending_requests = list(requests)
    pending_answers = list(answers)
    wire: list[tuple[str, bytes]] = []
    budget = cut_at
    ended = False
    peers = {"watch": (watch, phone), "phone": (phone, watch)}
    while True:
        moved = False
        for name in ("phone", "watch"):
            me, other = peers[name]
            data = me.conn.data_to_send()
            if not data:
                continue
            if tamper is not None:
                data = tamper(name, data)
            wire.append((name, data))
            if budget is not None:
                data = data[:budget]
                budget -= len(data)
            if data:
                other.conn.receive_data(data)
                moved = True
        if budget == 0 and not ended:
            ended = True
            moved = True
            watch.conn.receive_data(b"")
            phone.conn.receive_data(b"")
        reactions: tuple[tuple[Side, Callable[[Side, Event], None]], ...] = (
            (watch, lambda s, e: _watch_react(s, e, pending_answers)),
            (phone, lambda s, e: _phone_react(s, e, pending_requests)),
        )
        for side, react in reactions:
            while side.error is None:
                try:
                    event = side.conn.next_event()
                except RspfedError as exc:
                    side.error = exc
                    moved = True
                    break
                if event is NEED_DATA or isinstance(event, ConnectionClosed):
                    break
                side.events.append(event)
                moved = True
                react(side, event)
        if not moved:
            break
    if cut_at is None and not ended:
        # the streams end after everything was delivered
        for side in (watch, phone):
            if side.error is not None:
                continue
            side.conn.receive_data(b"")
            try:
                side.conn.next_event()
            except RspfedError as exc:
                side.error = exc
    return Session(watch, phone, wire)


def names(side: Side) -> list[str]:
    """The class names of a side's events."""
    return [type(e).__name__ for e in side.events]


__all__ = [
    "GET_CHALLENGE",
    "GET_INFO1",
    "GET_PROFILES",
    "PHONE_EID",
    "PHONE_HELLO",
    "WATCH_EID",
    "WATCH_HELLO",
    "Session",
    "Side",
    "companion_info",
    "device_info_der",
    "names",
    "paired_key",
    "session",
]
