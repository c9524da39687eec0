"""The sans-IO pairing connection, two instances shuttled in process.

Whole pairings by QR and by short code with either offerer role (the
primary grants whichever side it is); a refused join; a wrong code refused
and burnt on both sides; a transport cut at every byte offset of a whole
pairing; altered octets; unknown, malformed and out-of-order messages
refused with a ``bye``; local misuse; and a hypothesis state machine that
delivers octets in arbitrary pieces and aborts or cuts at any step.
"""

from __future__ import annotations

import os

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from rspfed.errors import (
    IntegrityError,
    ProtocolError,
    RspfedError,
    StateError,
    TransportError,
    UsageError,
)
from rspfed.federation.token import DeviceClass, parse_token
from rspfed.transfer import (
    NEED_DATA,
    TRANSITIONS,
    Bye,
    ByeReason,
    ByeReceived,
    ConnectionClosed,
    ConnectionState,
    HelloReceived,
    JoinFailure,
    JoinRequested,
    JoinResult,
    JoinResultReceived,
    LedgerState,
    LedgerStateReceived,
    Paired,
    PairingConnection,
    PairingMethod,
    Refusal,
    RefusalReason,
    Refused,
    Role,
    Side,
    TokenGrant,
    TokenGranted,
    encode_message,
)
from rspfed.transfer.messages import DeviceRole, Message, message_kind
from tests.transfer.pairing_world import (
    CODE,
    ICCID,
    JOIN_REQUEST,
    LEDGER_DER,
    OPERATOR_URL,
    PRIMARY_EID,
    PRIMARY_HELLO,
    SECONDARY_EID,
    SECONDARY_HELLO,
    WRONG_CODE,
    App,
    Run,
    counter_rand,
    make_offer,
    pair,
    run,
    token_for,
)

S = ConnectionState
COMBOS = [
    (method, role)
    for method in ("qr", "code")
    for role in (DeviceRole.PRIMARY, DeviceRole.SECONDARY)
]


def _apps(r: Run) -> tuple[App, App]:
    """(granter app, requester app)."""
    if r.offerer_app.granter:
        return r.offerer_app, r.joiner_app
    return r.joiner_app, r.offerer_app


def _names(app: App) -> list[str]:
    return [type(e).__name__ for e in app.events]


# -- whole pairings --------------------------------------------------------------------


@pytest.mark.parametrize(("method", "offerer_role"), COMBOS)
def test_whole_pairing(method: str, offerer_role: DeviceRole) -> None:
    r = pair(method=method, offerer_role=offerer_role)
    granter, requester = _apps(r)
    assert r.offerer_app.error is None
    assert r.joiner_app.error is None
    assert r.offerer.state is S.CLOSED
    assert r.joiner.state is S.CLOSED
    assert r.offerer.burnt
    assert r.joiner.burnt
    assert r.offerer.paired
    assert r.joiner.paired
    expected_method = PairingMethod.QR if method == "qr" else PairingMethod.CODE
    assert r.offerer.method is expected_method
    assert r.joiner.method is expected_method
    assert _names(granter) == ["Paired", "HelloReceived", "JoinRequested", "JoinResultReceived"]
    assert _names(requester) == [
        "Paired",
        "HelloReceived",
        "TokenGranted",
        "LedgerStateReceived",
        "ByeReceived",
    ]
    # both sides agree on the channel binding
    p1 = granter.events[0]
    p2 = requester.events[0]
    assert isinstance(p1, Paired)
    assert isinstance(p2, Paired)
    assert p1.handshake_hash == p2.handshake_hash
    assert p1.method is expected_method
    # the hellos crossed
    h1 = granter.events[1]
    h2 = requester.events[1]
    assert isinstance(h1, HelloReceived)
    assert isinstance(h2, HelloReceived)
    assert h1.message == SECONDARY_HELLO
    assert h2.message == PRIMARY_HELLO
    # the request, the token for the requester's EID, the result, the ledger
    req = granter.events[2]
    assert isinstance(req, JoinRequested)
    assert req.message == JOIN_REQUEST
    grant = requester.events[2]
    assert isinstance(grant, TokenGranted)
    assert grant.message == granter.granted[0]
    assert grant.message.operator_url == OPERATOR_URL
    assert parse_token(grant.message.token).eid == SECONDARY_EID
    result = granter.events[3]
    assert isinstance(result, JoinResultReceived)
    assert result.message == JoinResult.installed(ICCID)
    ledger = requester.events[3]
    assert isinstance(ledger, LedgerStateReceived)
    assert ledger.message.state == LEDGER_DER
    bye = requester.events[4]
    assert isinstance(bye, ByeReceived)
    assert bye.message == Bye(ByeReason.DONE)
    # nothing more after the close
    assert r.offerer.next_event() == ConnectionClosed()
    assert r.joiner.next_event() == ConnectionClosed()


@pytest.mark.parametrize("offerer_role", [DeviceRole.PRIMARY, DeviceRole.SECONDARY])
def test_refused_join(offerer_role: DeviceRole) -> None:
    r = pair(offerer_role=offerer_role, approve=False)
    granter, requester = _apps(r)
    assert granter.granted == []
    assert not requester.token_received
    assert isinstance(requester.events[2], Refused)
    assert r.offerer_app.error is None
    assert r.joiner_app.error is None
    assert _names(granter)[-1] == "ByeReceived"


def test_large_ledger_state_spans_records() -> None:
    o, j = _paired_pair()
    big = bytes(range(256)) * 800  # 200 kB: four records
    o.send(LedgerState(big))
    wire = o.data_to_send()
    assert len(wire) > len(big)
    for i in range(0, len(wire), 7000):  # in pieces
        j.receive_data(wire[i : i + 7000])
    event = j.next_event()
    assert isinstance(event, LedgerStateReceived)
    assert event.message.state == big
    assert j.state is S.READY


# -- wrong secrets ---------------------------------------------------------------------


@pytest.mark.parametrize("offerer_role", [DeviceRole.PRIMARY, DeviceRole.SECONDARY])
def test_wrong_code_is_refused_and_burnt_on_both_sides(offerer_role: DeviceRole) -> None:
    r = pair(method="code", offerer_role=offerer_role, joiner_code=WRONG_CODE)
    for conn, app in ((r.offerer, r.offerer_app), (r.joiner, r.joiner_app)):
        assert isinstance(app.error, IntegrityError)
        assert "guitarist" not in str(app.error)
        assert conn.state is S.CLOSED
        assert conn.burnt
        assert not conn.paired
        assert app.events == []
        assert conn.error is app.error


def test_qr_with_another_offers_secret_is_refused() -> None:
    offer = make_offer(rand=counter_rand(1))
    other = make_offer(rand=counter_rand(2))
    o = PairingConnection(Role.OFFERER, local=PRIMARY_HELLO, offer=offer, rand=counter_rand(3))
    j = PairingConnection(Role.JOINER, local=SECONDARY_HELLO, offer=other, rand=counter_rand(4))
    oa, ja = App(granter=True), App(granter=False)
    run(o, j, oa, ja)
    assert isinstance(oa.error, IntegrityError)
    assert isinstance(ja.error, TransportError)
    assert o.burnt
    assert o.state is S.CLOSED
    assert j.state is S.CLOSED


def test_code_attempt_on_an_offer_without_code() -> None:
    offer = make_offer()
    o = PairingConnection(Role.OFFERER, local=PRIMARY_HELLO, offer=offer, rand=counter_rand(3))
    j = PairingConnection(Role.JOINER, local=SECONDARY_HELLO, code=CODE, rand=counter_rand(4))
    oa, ja = App(granter=True), App(granter=False)
    run(o, j, oa, ja)
    assert isinstance(oa.error, ProtocolError)
    assert isinstance(ja.error, TransportError)
    assert o.burnt


@pytest.mark.parametrize(
    "opening",
    [b"\x00\x01\x07", b"\x00\x02\x01\x00", b"\x00\x05\x02abcd", b"\x00\x00", b"\xff\xff" + b"x"],
)
def test_bad_opening_frames_burn_the_offer(opening: bytes) -> None:
    o = PairingConnection(
        Role.OFFERER, local=PRIMARY_HELLO, offer=make_offer(), code=CODE, rand=counter_rand(3)
    )
    o.receive_data(opening)
    o.receive_data(b"")
    with pytest.raises(RspfedError):
        o.next_event()
    assert o.state is S.CLOSED
    assert o.burnt
    assert o.data_to_send() == b""
    assert o.next_event() == ConnectionClosed()


def test_an_empty_connection_burns_the_offer() -> None:
    o = PairingConnection(Role.OFFERER, local=PRIMARY_HELLO, offer=make_offer(), rand=os.urandom)
    assert not o.burnt
    assert o.next_event() is NEED_DATA
    o.receive_data(b"")
    with pytest.raises(TransportError):
        o.next_event()
    assert o.burnt


# -- cuts and tampering ----------------------------------------------------------------


def _grant_end(clean: Run) -> int:
    """Offset just after the chunk holding the token grant (the granter's 2nd-to-last)."""
    granter_name = "offerer" if clean.offerer_app.granter else "joiner"
    offsets = []
    pos = 0
    for name, chunk in clean.transcript:
        pos += len(chunk)
        if name == granter_name:
            offsets.append(pos)
    return offsets[-2]


def _check_cut(r: Run, n: int, grant_end: int) -> None:
    granter, requester = _apps(r)
    assert r.offerer.state is S.CLOSED
    assert r.joiner.state is S.CLOSED
    assert r.offerer.burnt
    assert r.joiner.burnt
    # the requester never completes: the last message (bye) is cut
    assert isinstance(requester.error, RspfedError)
    # the granter fails unless it had already said bye
    if granter.error is None:
        assert isinstance(granter.events[-1], JoinResultReceived)
    # a token arrives only if its record was delivered whole
    assert requester.token_received == (n >= grant_end), n
    # no event after an error: errors are raised once, ConnectionClosed afterwards
    for conn in (r.offerer, r.joiner):
        assert conn.next_event() == ConnectionClosed()


def _sampled_offsets(clean: Run, stride: int) -> list[int]:
    """Every frame boundary (and its neighbours) plus every ``stride``-th offset."""
    boundaries = set()
    pos = 0
    for _, chunk in clean.transcript:
        for frame_start in _frame_starts(chunk):
            q = pos + frame_start
            boundaries.update({q - 1, q, q + 2})
        pos += len(chunk)
    return sorted({n for n in boundaries if 0 <= n < clean.total} | set(range(0, pos, stride)))


def _frame_starts(chunk: bytes) -> list[int]:
    starts = []
    i = 0
    while i < len(chunk):
        starts.append(i)
        i += 2 + int.from_bytes(chunk[i : i + 2], "big")
    return starts


def test_cut_at_every_offset_qr() -> None:
    clean = pair()
    grant_end = _grant_end(clean)
    for n in range(clean.total):
        r = pair(cut_at=n)
        assert r.total == n
        _check_cut(r, n, grant_end)


@pytest.mark.parametrize(
    ("method", "offerer_role", "stride"),
    [("qr", DeviceRole.SECONDARY, 5), ("code", DeviceRole.PRIMARY, 40)],
)
def test_cut_at_sampled_offsets(method: str, offerer_role: DeviceRole, stride: int) -> None:
    clean = pair(method=method, offerer_role=offerer_role)
    grant_end = _grant_end(clean)
    for n in _sampled_offsets(clean, stride):
        r = pair(method=method, offerer_role=offerer_role, cut_at=n)
        _check_cut(r, n, grant_end)


def test_flipped_bit_anywhere_fails_the_receiver() -> None:
    clean = pair()
    grant_end = _grant_end(clean)
    for n in range(0, clean.total, 3):
        seen = [0]

        def tamper(_name: str, data: bytes, n: int = n, seen: list[int] = seen) -> bytes:
            start = seen[0]
            seen[0] += len(data)
            if start <= n < start + len(data):
                i = n - start
                return data[:i] + bytes([data[i] ^ 0x20]) + data[i + 1 :]
            return data

        r = pair(tamper=tamper)
        granter, requester = _apps(r)
        # the side that received the altered octet failed (or both did)
        assert granter.error is not None or requester.error is not None, n
        if n < grant_end:
            assert not requester.token_received, n
        assert r.offerer.state is S.CLOSED
        assert r.joiner.state is S.CLOSED


# -- refused messages ------------------------------------------------------------------


def _paired_pair() -> tuple[PairingConnection, PairingConnection]:
    offer = make_offer()
    o = PairingConnection(Role.OFFERER, local=PRIMARY_HELLO, offer=offer, rand=counter_rand(3))
    j = PairingConnection(Role.JOINER, local=SECONDARY_HELLO, offer=offer, rand=counter_rand(4))
    o.receive_data(j.data_to_send())
    assert isinstance(o.next_event(), Paired)
    j.receive_data(o.data_to_send())
    assert isinstance(j.next_event(), Paired)
    assert isinstance(j.next_event(), HelloReceived)
    o.receive_data(j.data_to_send())
    assert isinstance(o.next_event(), HelloReceived)
    assert o.state is S.READY
    assert j.state is S.READY
    return o, j


def _inject(sender: PairingConnection, der: bytes) -> bytes:
    """A well-sealed record of arbitrary DER, as a peer of another version would send."""
    channel = sender._channel  # white box: seal what the public API refuses to send
    assert channel is not None
    return channel.seal(der)


def _expect_bye(receiver: PairingConnection, sender: PairingConnection, reason: ByeReason) -> None:
    assert receiver.state is S.CLOSED
    assert receiver.burnt
    sender.receive_data(receiver.data_to_send())
    event = sender.next_event()
    assert event == ByeReceived(Bye(reason))
    assert sender.state is S.CLOSED


def test_unknown_alternative_is_refused_with_bye_unsupported() -> None:
    o, j = _paired_pair()
    # TransferMessage { version 1, body [16] OCTET STRING } (an alternative added later)
    der = bytes.fromhex("3009800101a104900200ff")
    j.receive_data(_inject(o, der))
    with pytest.raises(ProtocolError, match="unknown"):
        j.next_event()
    _expect_bye(j, o, ByeReason.UNSUPPORTED)


def test_other_version_is_refused_with_bye_unsupported() -> None:
    o, j = _paired_pair()
    der = bytearray(encode_message(Bye()))
    assert der[2:5] == b"\x80\x01\x01"
    der[4] = 2
    o.receive_data(_inject(j, bytes(der)))
    with pytest.raises(ProtocolError, match="version"):
        o.next_event()
    _expect_bye(o, j, ByeReason.UNSUPPORTED)


def test_malformed_message_is_refused_with_bye_protocol_error() -> None:
    o, j = _paired_pair()
    j.receive_data(_inject(o, b"\x30\x03\x80\x01"))
    with pytest.raises(RspfedError):
        j.next_event()
    _expect_bye(j, o, ByeReason.PROTOCOL_ERROR)


def test_out_of_order_message_is_refused_with_bye_protocol_error() -> None:
    o, j = _paired_pair()
    # a token nobody asked for
    j.receive_data(_inject(o, encode_message(TokenGrant(token_for(SECONDARY_EID), OPERATOR_URL))))
    with pytest.raises(ProtocolError, match="tokenGrant"):
        j.next_event()
    _expect_bye(j, o, ByeReason.PROTOCOL_ERROR)


def test_token_for_another_eid_is_refused() -> None:
    o, j = _paired_pair()
    j.send(JOIN_REQUEST)
    o.receive_data(j.data_to_send())
    assert isinstance(o.next_event(), JoinRequested)
    wrong = TokenGrant(token_for(PRIMARY_EID, DeviceClass.PHONE), OPERATOR_URL)
    with pytest.raises(UsageError):
        o.send(wrong)  # checked locally: nothing changes
    assert o.state is S.JOIN_RECEIVED
    assert o.data_to_send() == b""
    j.receive_data(_inject(o, encode_message(wrong)))
    with pytest.raises(ProtocolError, match="EID"):
        j.next_event()
    _expect_bye(j, o, ByeReason.PROTOCOL_ERROR)


def test_local_misuse_changes_nothing() -> None:
    o, _j = _paired_pair()
    with pytest.raises(StateError):
        o.send(JoinResult.installed(ICCID))
    with pytest.raises(StateError):
        o.send(TokenGrant(token_for(SECONDARY_EID), OPERATOR_URL))
    with pytest.raises(StateError):
        o.send(PRIMARY_HELLO)
    assert o.state is S.READY
    assert o.data_to_send() == b""
    # during pairing nothing can be sent
    fresh = PairingConnection(
        Role.OFFERER, local=PRIMARY_HELLO, offer=make_offer(), rand=counter_rand(9)
    )
    with pytest.raises(StateError):
        fresh.send(JOIN_REQUEST)
    assert fresh.state is S.AWAIT_OPEN
    with pytest.raises(UsageError):
        PairingConnection(Role.JOINER, local=SECONDARY_HELLO, rand=counter_rand(1))
    with pytest.raises(UsageError):
        PairingConnection(
            Role.JOINER, local=SECONDARY_HELLO, offer=make_offer(), code=CODE, rand=counter_rand(1)
        )
    with pytest.raises(UsageError):  # the offerer's hello must match its offer's role
        PairingConnection(
            Role.OFFERER, local=SECONDARY_HELLO, offer=make_offer(), rand=counter_rand(1)
        )


def test_abort_burns_and_the_peer_sees_the_end() -> None:
    o, j = _paired_pair()
    j.abort()
    assert j.state is S.CLOSED
    assert j.burnt
    assert j.data_to_send() == b""
    o.receive_data(b"")
    with pytest.raises(TransportError, match="bye"):
        o.next_event()
    assert o.state is S.CLOSED


# -- the state machine under arbitrary delivery, aborts and cuts -------------------------


class PairingMachine(RuleBasedStateMachine):
    """Two connections, octets delivered in arbitrary pieces; abort or cut at any step.

    Invariants: every state move is a table row; a token reaches the
    requester only as the granter sent it and only for the requester's EID;
    a closed side stays closed, is burnt and raises no more; the offerer of a
    failed attempt is closed and burnt.
    """

    @initialize(
        method=st.sampled_from(["qr", "qr", "qr", "code"]),
        primary_offers=st.booleans(),
        approve=st.booleans(),
    )
    def setup(self, method: str, primary_offers: bool, approve: bool) -> None:
        role = DeviceRole.PRIMARY if primary_offers else DeviceRole.SECONDARY
        offer = make_offer(role)
        self.o = PairingConnection(
            Role.OFFERER,
            local=PRIMARY_HELLO if primary_offers else SECONDARY_HELLO,
            offer=offer,
            code=CODE,
            rand=counter_rand(11),
        )
        self.j = PairingConnection(
            Role.JOINER,
            local=SECONDARY_HELLO if primary_offers else PRIMARY_HELLO,
            offer=offer if method == "qr" else None,
            code=CODE if method == "code" else None,
            rand=counter_rand(12),
        )
        self.oa = App(granter=primary_offers, approve=approve)
        self.ja = App(granter=not primary_offers, approve=approve)
        self.wire = {"o": bytearray(), "j": bytearray()}
        self.states = {"o": self.o.state, "j": self.j.state}
        self.closed = {"o": False, "j": False}
        self.dead = False

    def _side(self, name: str) -> tuple[PairingConnection, App]:
        return (self.o, self.oa) if name == "o" else (self.j, self.ja)

    def _pump(self, name: str) -> None:
        """Events one at a time; each received message moves the state by its table row."""
        conn, app = self._side(name)
        n_events = len(app.events)
        while True:
            before = conn.state
            try:
                event = conn.next_event()
            except RspfedError as exc:
                assert app.error is None, "an error is raised once"
                app.error = exc
                assert conn.state is S.CLOSED
                continue
            if event is NEED_DATA or isinstance(event, ConnectionClosed):
                break
            if isinstance(event, Paired):
                assert conn.state is S.AWAIT_HELLO
            else:
                kind = message_kind(event.message)
                assert conn.state is TRANSITIONS[(before, Side.THEM, kind)]
            app.on_event(conn, event)
        self.wire[name] += conn.data_to_send()
        if self.closed[name]:
            assert len(app.events) == n_events

    @rule(sender=st.sampled_from(["o", "j"]), size=st.integers(1, 400))
    def deliver(self, sender: str, size: int) -> None:
        if self.dead:
            return
        self._pump(sender)
        data = bytes(self.wire[sender][:size])
        del self.wire[sender][:size]
        receiver = "j" if sender == "o" else "o"
        conn, _ = self._side(receiver)
        conn.receive_data(data)
        self._pump(receiver)

    @rule(who=st.sampled_from(["o", "j"]), which=st.integers(0, 5))
    def send_anything(self, who: str, which: int) -> None:
        """Send a message the application may or may not be allowed to send now."""
        conn, app = self._side(who)
        peer = conn.peer_hello
        messages: list[Message] = [
            JOIN_REQUEST,
            TokenGrant(token_for(peer.eid if peer else SECONDARY_EID), OPERATOR_URL),
            Refusal(RefusalReason.BUSY),
            JoinResult.failed(JoinFailure.CANCELLED),
            LedgerState(LEDGER_DER),
            Bye(ByeReason.CANCELLED),
        ]
        message = messages[which]
        kind = message_kind(message)
        before = conn.state
        allowed = (before, Side.US, kind) in TRANSITIONS
        if isinstance(message, TokenGrant) and not app.granter:
            return  # only the granting application hands out tokens
        if allowed:
            conn.send(message)
            if isinstance(message, TokenGrant):
                app.granted.append(message)
            assert conn.state is TRANSITIONS[(before, Side.US, kind)]
        else:
            with pytest.raises(StateError):
                conn.send(message)
            assert conn.state is before
        self.wire[who] += conn.data_to_send()

    @rule(who=st.sampled_from(["o", "j"]))
    def abort(self, who: str) -> None:
        conn, _ = self._side(who)
        conn.abort()
        self.wire[who] += conn.data_to_send()
        assert conn.state is S.CLOSED
        assert conn.burnt

    @rule()
    def cut(self) -> None:
        self.dead = True
        for name in ("o", "j"):
            conn, _ = self._side(name)
            conn.receive_data(b"")
            self._pump(name)
            assert conn.state is S.CLOSED
            assert conn.burnt

    @invariant()
    def token_only_as_granted(self) -> None:
        if not hasattr(self, "o"):
            return
        for requester, granter, conn in ((self.ja, self.oa, self.j), (self.oa, self.ja, self.o)):
            got = [e for e in requester.events if isinstance(e, TokenGranted)]
            assert len(got) <= 1
            if got:
                assert granter.granted == [got[0].message]
                assert parse_token(got[0].message.token).eid == conn.local_hello.eid

    @invariant()
    def closed_stays_closed(self) -> None:
        if not hasattr(self, "o"):
            return
        for name in ("o", "j"):
            conn, app = self._side(name)
            if self.closed[name]:
                assert conn.state is S.CLOSED
            if conn.state is S.CLOSED:
                self.closed[name] = True
                assert conn.burnt
                if app.error is not None:
                    assert conn.error is app.error


TestPairingMachine = PairingMachine.TestCase
TestPairingMachine.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)


def test_offerer_hello_must_match_the_scanned_offer() -> None:
    offer = make_offer(DeviceRole.PRIMARY)
    # the joiner scanned a copy whose role was altered (same secret): the channel
    # comes up, but the offerer's hello contradicts the offer
    altered = attrs.evolve(offer, offerer_role=DeviceRole.SECONDARY)
    o = PairingConnection(Role.OFFERER, local=PRIMARY_HELLO, offer=offer, rand=counter_rand(3))
    j = PairingConnection(Role.JOINER, local=SECONDARY_HELLO, offer=altered, rand=counter_rand(4))
    o.receive_data(j.data_to_send())
    assert isinstance(o.next_event(), Paired)
    j.receive_data(o.data_to_send())
    assert isinstance(j.next_event(), Paired)
    with pytest.raises(ProtocolError, match="role"):
        j.next_event()
    assert j.state is S.CLOSED
    o.receive_data(j.data_to_send())  # the joiner's hello went out with its Noise reply
    assert o.next_event() == HelloReceived(SECONDARY_HELLO)
    assert o.next_event() == ByeReceived(Bye(ByeReason.PROTOCOL_ERROR))
    assert o.state is S.CLOSED


def test_burnt_and_repr() -> None:
    offer = make_offer()
    j = PairingConnection(Role.JOINER, local=SECONDARY_HELLO, offer=offer, rand=counter_rand(4))
    assert j.burnt  # the opening frame is out: this offer has had its attempt
    assert j.state is S.AWAIT_HANDSHAKE
    assert j.local_hello == SECONDARY_HELLO
    assert j.peer_hello is None
    assert offer.secret.hex() not in repr(j)
    jc = PairingConnection(Role.JOINER, local=SECONDARY_HELLO, code=CODE, rand=counter_rand(4))
    assert jc.state is S.AWAIT_PAKE
    assert "guitarist" not in repr(jc)
