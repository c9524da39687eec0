"""Two pairing connections shuttled in process, with the applications that drive them.

The *granter* (a primary: approves a join request with a real federation
token) and the *requester* (asks to join, reports the installed ICCID) are
independent of the connection roles: either may be the offerer.  Bytes move
between the two connections in a deterministic order; a cut stops delivery
after a given number of octets (both directions counted together, in the
order they were sent) and ends both streams.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache

import attrs
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import RspfedError
from rspfed.federation.ledger import LedgerState as LedgerReplica
from rspfed.federation.ledger import encode_state
from rspfed.federation.token import DeviceClass, Service, issue_token
from rspfed.transfer.code import ShortCode
from rspfed.transfer.connection import (
    NEED_DATA,
    ByeReceived,
    ConnectionClosed,
    HelloReceived,
    JoinRequested,
    JoinResultReceived,
    PairingConnection,
    Refused,
    Role,
    TokenGranted,
)
from rspfed.transfer.messages import (
    Bye,
    Capability,
    DeviceRole,
    Hello,
    JoinRequest,
    JoinResult,
    LedgerState,
    Refusal,
    RefusalReason,
    TokenGrant,
)
from rspfed.transfer.offer import LanHint, PairingOffer

PRIMARY_EID = "89001012012341234012345678901224"
SECONDARY_EID = "89049032123451234512345678901235"
ICCID = "8949000000000000001"
OPERATOR_URL = "https://operator.example:8443"
PRIMARY_KEY = ec.derive_private_key(
    0xC9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721, ec.SECP256R1()
)
NOW = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


@cache
def token_for(eid: str, device_class: DeviceClass = DeviceClass.LAPTOP) -> bytes:
    """A real federation token for ``eid`` (deterministic)."""
    return issue_token(
        primary_key=PRIMARY_KEY,
        subscription_id="sub-0001",
        eid=eid,
        device_class=device_class,
        services=[Service.DATA, Service.SMS],
        quota=5_000_000_000,
        now=NOW,
        ttl=timedelta(minutes=10),
        rand=lambda n: bytes(range(n)),
        deterministic=True,
    )


LEDGER_DER = encode_state(LedgerReplica("sub-0001"))

PRIMARY_HELLO = Hello(
    name="Ana's phone",
    device_class=DeviceClass.PHONE,
    role=DeviceRole.PRIMARY,
    eid=PRIMARY_EID,
    capabilities={Capability.JOIN, Capability.LEDGER},
)
SECONDARY_HELLO = Hello(
    name="Ana's laptop",
    device_class=DeviceClass.LAPTOP,
    role=DeviceRole.SECONDARY,
    eid=SECONDARY_EID,
    capabilities={Capability.JOIN, Capability.LEDGER},
)
JOIN_REQUEST = JoinRequest(
    device_class=DeviceClass.LAPTOP, services={Service.DATA, Service.SMS}, name="Ana's laptop"
)


def counter_rand(seed: int) -> Callable[[int], bytes]:
    """A deterministic ``rand``: SHA-256-free counter bytes (distinct per seed)."""
    counter = itertools.count()

    def rand(n: int) -> bytes:
        return bytes((seed * 131 + next(counter) * 7 + i) % 256 for i in range(n))

    return rand


def make_offer(
    role: DeviceRole = DeviceRole.PRIMARY, rand: Callable[[int], bytes] | None = None
) -> PairingOffer:
    """An offer with LAN and BLE hints."""
    return PairingOffer.generate(
        rand or counter_rand(1),
        offerer_role=role,
        offerer_name="Ana's phone" if role is DeviceRole.PRIMARY else "Ana's laptop",
        device_class=DeviceClass.PHONE if role is DeviceRole.PRIMARY else DeviceClass.LAPTOP,
        lan=LanHint(),
        ble=True,
    )


CODE = ShortCode(17, ("guitarist", "revenge"))
WRONG_CODE = ShortCode(17, ("guitarist", "reform"))


@attrs.define
class App:
    """One side's application: granter or requester, and what it saw."""

    granter: bool
    approve: bool = True
    events: list[object] = attrs.field(factory=list)
    granted: list[TokenGrant] = attrs.field(factory=list)
    error: RspfedError | None = None

    def on_event(self, conn: PairingConnection, event: object) -> None:
        self.events.append(event)
        if self.granter:
            if isinstance(event, JoinRequested):
                if self.approve:
                    assert conn.peer_hello is not None
                    grant = TokenGrant(token_for(conn.peer_hello.eid), OPERATOR_URL)
                    self.granted.append(grant)
                    conn.send(grant)
                else:
                    conn.send(Refusal(RefusalReason.DENIED))
            elif isinstance(event, JoinResultReceived):
                conn.send(LedgerState(LEDGER_DER))
                conn.send(Bye())
        else:
            if isinstance(event, HelloReceived):
                conn.send(JOIN_REQUEST)
            elif isinstance(event, TokenGranted):
                conn.send(JoinResult.installed(ICCID))
            elif isinstance(event, Refused):
                conn.send(Bye())

    @property
    def token_received(self) -> bool:
        return any(isinstance(e, TokenGranted) for e in self.events)


def pump(conn: PairingConnection, app: App) -> None:
    """Process events until NEED_DATA or closed; an error is recorded on the app."""
    while True:
        try:
            event = conn.next_event()
        except RspfedError as exc:
            assert app.error is None, "an error is raised once"
            app.error = exc
            continue
        if event is NEED_DATA:
            return
        if isinstance(event, ConnectionClosed):
            return
        app.on_event(conn, event)
        if isinstance(event, ByeReceived):
            continue


@attrs.define
class Run:
    """The result of :func:`run`: both connections, both apps, the transcript."""

    offerer: PairingConnection
    joiner: PairingConnection
    offerer_app: App
    joiner_app: App
    transcript: list[tuple[str, bytes]]

    @property
    def total(self) -> int:
        return sum(len(c) for _, c in self.transcript)


def run(
    offerer: PairingConnection,
    joiner: PairingConnection,
    offerer_app: App,
    joiner_app: App,
    *,
    cut_at: int | None = None,
    tamper: Callable[[str, bytes], bytes] | None = None,
) -> Run:
    """Shuttle bytes until both sides are quiet; cut after ``cut_at`` octets if given."""
    transcript: list[tuple[str, bytes]] = []
    sent = 0
    cut = False
    sides = (("joiner", joiner, joiner_app, offerer), ("offerer", offerer, offerer_app, joiner))
    for _ in range(1000):
        progress = False
        for name, conn, app, peer in sides:
            pump(conn, app)
            data = conn.data_to_send()
            if not data or cut:
                continue
            if cut_at is not None and sent + len(data) > cut_at:
                data = data[: cut_at - sent]
                cut = True
            sent += len(data)
            if data:
                transcript.append((name, data))
                peer.receive_data(tamper(name, data) if tamper else data)
            progress = True
            if cut:
                break
        if cut:
            break
        if not progress:
            break
    # the streams end (orderly close after bye, or the cut)
    for _, conn, app, _peer in sides:
        conn.receive_data(b"")
        pump(conn, app)
    return Run(offerer, joiner, offerer_app, joiner_app, transcript)


def pair(
    *,
    method: str = "qr",
    offerer_role: DeviceRole = DeviceRole.PRIMARY,
    joiner_code: ShortCode = CODE,
    approve: bool = True,
    cut_at: int | None = None,
    tamper: Callable[[str, bytes], bytes] | None = None,
    offer_seed: int = 1,
) -> Run:
    """A whole pairing + join: the primary grants whichever side it is."""
    offer = make_offer(offerer_role, counter_rand(offer_seed))
    primary_offers = offerer_role is DeviceRole.PRIMARY
    offerer = PairingConnection(
        Role.OFFERER,
        local=PRIMARY_HELLO if primary_offers else SECONDARY_HELLO,
        offer=offer,
        code=CODE,
        rand=counter_rand(offer_seed + 10),
    )
    joiner = PairingConnection(
        Role.JOINER,
        local=SECONDARY_HELLO if primary_offers else PRIMARY_HELLO,
        offer=offer if method == "qr" else None,
        code=joiner_code if method == "code" else None,
        rand=counter_rand(offer_seed + 20),
    )
    offerer_app = App(granter=primary_offers, approve=approve)
    joiner_app = App(granter=not primary_offers, approve=approve)
    return run(offerer, joiner, offerer_app, joiner_app, cut_at=cut_at, tamper=tamper)
