"""The companion relay messages (issue H): codec, asn1tools, and the state rules.

asn1tools compiles ``rspfed/asn1/modules/transfer.asn`` independently: it
decodes what rspfed encodes and rspfed decodes what it encodes.  The state
rules: a joiner may send ``companionRequest`` to a companion offerer only,
after the hellos; the watch answers ``companionInfo`` (or refuses); then one
ES10 request at a time, each answered by exactly one ``es10Response`` or
``es10Refused``.  What the caller may not send raises ``StateError`` and
changes nothing; what the peer may not send closes the connection with a
``bye``, never with another exception type.
"""

from __future__ import annotations

import contextlib
from functools import cache
from typing import Any

import asn1tools
import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import DecodeError, ProtocolError, RspfedError, StateError, UsageError
from rspfed.federation.token import DeviceClass, Service
from rspfed.pki.eid import eid_check_digits
from rspfed.transfer import (
    Bye,
    ByeReason,
    ByeReceived,
    CompanionInfo,
    CompanionInfoReceived,
    CompanionRequest,
    CompanionRequested,
    ConnectionState,
    DeviceRole,
    Es10Answered,
    Es10Refusal,
    Es10RefusalReason,
    Es10Refused,
    Es10Request,
    Es10Requested,
    Es10Response,
    HelloReceived,
    JoinRequest,
    JoinRequested,
    LedgerState,
    LedgerStateReceived,
    Paired,
    PairingConnection,
    Refusal,
    RefusalReason,
    Refused,
    Role,
    decode_message,
    encode_message,
)
from rspfed.transfer.messages import MAX_DEVICE_INFO_SIZE, Message
from tests.paths import ASN1_MODULES, REPO
from tests.transfer.companion_world import (
    GET_CHALLENGE,
    GET_INFO1,
    GET_PROFILES,
    PHONE_HELLO,
    WATCH_EID,
    WATCH_HELLO,
    companion_info,
    device_info_der,
    names,
    paired_key,
    session,
)
from tests.transfer.pairing_world import counter_rand, make_offer

S = ConnectionState
MODULE = ASN1_MODULES / "transfer.asn"


@cache
def _spec() -> Any:
    return asn1tools.compile_files(str(MODULE), "der")


# -- strategies ------------------------------------------------------------------------

names_ = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=64)
eids = st.text("0123456789", min_size=30, max_size=30).map(lambda s: s + eid_check_digits(s))
infos = st.builds(CompanionInfo, name=names_, eid=eids, device_info=st.just(device_info_der()))
requests = st.binary(min_size=1, max_size=2000).map(Es10Request)
responses = st.binary(max_size=2000).map(Es10Response)
refusals = st.sampled_from(Es10RefusalReason).map(Es10Refusal)
messages: st.SearchStrategy[Message] = st.one_of(
    st.just(CompanionRequest()), infos, requests, responses, refusals
)


def _expected(m: Message) -> tuple[str, Any]:
    """The asn1tools value of a message's body, built without rspfed."""
    if isinstance(m, CompanionRequest):
        return "companionRequest", {}
    if isinstance(m, CompanionInfo):
        return "companionInfo", {
            "name": m.name,
            "eid": bytes.fromhex(m.eid),
            "deviceInfo": m.device_info,
        }
    if isinstance(m, Es10Request):
        return "es10Request", m.der
    if isinstance(m, Es10Response):
        return "es10Response", m.der
    assert isinstance(m, Es10Refusal)
    return "es10Refused", {"reason": m.reason.value}


@given(messages)
def test_round_trip(m: Message) -> None:
    assert decode_message(encode_message(m)) == m


@given(messages)
def test_asn1tools_decodes_what_rspfed_encodes(m: Message) -> None:
    value = _spec().decode("TransferMessage", encode_message(m))
    assert value == {"version": 1, "body": _expected(m)}


@given(messages)
def test_rspfed_decodes_what_asn1tools_encodes(m: Message) -> None:
    der = _spec().encode("TransferMessage", {"version": 1, "body": _expected(m)})
    assert decode_message(der) == m
    assert encode_message(m) == der


def test_the_alternatives_follow_the_extension_marker() -> None:
    # [7]..[11]: after refusal [6]; a G reader refuses them as unknown (bye unsupported)
    tags = {
        type(m).__name__: encode_message(m)[7]
        for m in (
            CompanionRequest(),
            companion_info(),
            Es10Request(GET_CHALLENGE),
            Es10Response(b""),
            Es10Refusal(Es10RefusalReason.BUSY),
        )
    }
    assert tags == {
        "CompanionRequest": 0xA7,
        "CompanionInfo": 0xA8,
        "Es10Request": 0x89,
        "Es10Response": 0x8A,
        "Es10Refusal": 0xAB,
    }


def test_secrets_and_payloads_stay_out_of_repr() -> None:
    assert "bf2e" not in repr(Es10Request(GET_CHALLENGE))
    assert repr(Es10Response(b"\x01\x02")) == "Es10Response()"


@pytest.mark.parametrize(
    "build",
    [
        lambda: Es10Request(b""),
        lambda: Es10Request("bf2e00"),  # type: ignore[arg-type]
        lambda: Es10Response(None),  # type: ignore[arg-type]
        lambda: Es10Refusal("busy"),  # type: ignore[arg-type]
        lambda: CompanionInfo(name="w", eid=WATCH_EID, device_info=b""),
        lambda: CompanionInfo(name="w", eid=WATCH_EID, device_info=b"\x30\x00"),
        lambda: CompanionInfo(name="w", eid="8900", device_info=device_info_der()),
        lambda: CompanionInfo(name="", eid=WATCH_EID, device_info=device_info_der()),
        lambda: CompanionInfo(
            name="w", eid=WATCH_EID, device_info=b"\x04" * (MAX_DEVICE_INFO_SIZE + 1)
        ),
    ],
)
def test_bad_values_are_usage_errors(build: Any) -> None:
    with pytest.raises(UsageError):
        build()


def _info_der(device_info: bytes, eid: bytes = bytes.fromhex(WATCH_EID)) -> bytes:
    body = {"name": "w", "eid": eid, "deviceInfo": device_info}
    return bytes(_spec().encode("TransferMessage", {"version": 1, "body": ("companionInfo", body)}))


@pytest.mark.parametrize(
    "der",
    [
        _info_der(b"\x30\x00"),  # not a DeviceInfo
        _info_der(b"\x04\x01\x00"),
        _info_der(device_info_der(), eid=bytes.fromhex(WATCH_EID[:-1] + "0")),  # check digits
        bytes.fromhex("300a800101a105ab03800109"),  # es10Refused reason 9
        bytes.fromhex("3009800101a104a702ffff"),  # companionRequest that is no SEQUENCE
    ],
)
def test_malformed_companion_messages_are_decode_errors(der: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(der)


@given(st.binary(max_size=200))
def test_arbitrary_octets_raise_only_rspfed_errors(data: bytes) -> None:
    with contextlib.suppress(RspfedError):
        decode_message(bytes.fromhex("3000") + data)


def test_the_documented_module_is_the_module() -> None:
    doc = (REPO / "docs" / "pairing.md").read_text(encoding="utf-8")
    block = doc.split("### The whole module\n\n```asn1\n", 1)[1].split("```", 1)[0]
    assert block.strip() == MODULE.read_text(encoding="utf-8").strip()


def test_a_later_alternative_is_still_refused() -> None:
    der = bytes.fromhex("3009800101a104900200ff")  # body [16], after device change's
    with pytest.raises(ProtocolError, match="unknown"):
        decode_message(der)


# -- the state rules, over a reconnection ------------------------------------------------


def _connected(
    watch_hello: Any = WATCH_HELLO,
) -> tuple[PairingConnection, PairingConnection]:
    """(watch, phone) after the hellos, over a paired reconnection."""
    key = paired_key()
    w = PairingConnection(Role.OFFERER, local=watch_hello, rand=counter_rand(3), paired=key)
    p = PairingConnection(Role.JOINER, local=PHONE_HELLO, rand=counter_rand(4), paired=key)
    w.receive_data(p.data_to_send())
    assert isinstance(w.next_event(), Paired)
    p.receive_data(w.data_to_send())
    assert isinstance(p.next_event(), Paired)
    assert isinstance(p.next_event(), HelloReceived)
    w.receive_data(p.data_to_send())
    assert isinstance(w.next_event(), HelloReceived)
    assert (w.state, p.state) == (S.READY, S.READY)
    return w, p


def _deliver(sender: PairingConnection, receiver: PairingConnection) -> Any:
    receiver.receive_data(sender.data_to_send())
    return receiver.next_event()


def _relay_open() -> tuple[PairingConnection, PairingConnection]:
    w, p = _connected()
    p.send(CompanionRequest())
    assert p.state is S.COMPANION_REQUESTED
    assert _deliver(p, w) == CompanionRequested(CompanionRequest())
    assert w.state is S.COMPANION_INFO_DUE
    w.send(companion_info())
    assert _deliver(w, p) == CompanionInfoReceived(companion_info())
    assert (w.state, p.state) == (S.RELAY_SERVING, S.RELAY_READY)
    return w, p


def _inject(sender: PairingConnection, der: bytes) -> bytes:
    """A well-sealed record the public API refuses to send (a misbehaving peer)."""
    channel = sender._channel  # white box
    assert channel is not None
    return channel.seal(der)


def _expect_bye(receiver: PairingConnection, sender: PairingConnection, reason: ByeReason) -> None:
    assert receiver.state is S.CLOSED
    sender.receive_data(receiver.data_to_send())
    assert sender.next_event() == ByeReceived(Bye(reason))
    assert sender.state is S.CLOSED


def _unchanged_after(conn: PairingConnection, message: Message, error: type[Exception]) -> None:
    state = conn.state
    with pytest.raises(error):
        conn.send(message)
    assert conn.state is state
    assert conn.data_to_send() == b""


def test_a_relay_exchange() -> None:
    w, p = _relay_open()
    for request, answer in (
        (GET_CHALLENGE, Es10Response(b"\xbf\x2e\x00")),
        (GET_INFO1, Es10Refusal(Es10RefusalReason.NOT_ALLOWED)),
        (GET_PROFILES, Es10Response(b"")),
    ):
        p.send(Es10Request(request))
        assert p.state is S.ES10_SENT
        assert _deliver(p, w) == Es10Requested(Es10Request(request))
        assert w.state is S.ES10_RECEIVED
        w.send(answer)
        event = _deliver(w, p)
        expected = Es10Answered if isinstance(answer, Es10Response) else Es10Refused
        assert event == expected(answer)  # type: ignore[arg-type]
        assert (w.state, p.state) == (S.RELAY_SERVING, S.RELAY_READY)
    # the ledger state may pass in a companion session too
    w.send(LedgerState(b"\x30\x00"))
    assert _deliver(w, p) == LedgerStateReceived(LedgerState(b"\x30\x00"))
    p.send(Bye())
    assert _deliver(p, w) == ByeReceived(Bye())
    assert (w.state, p.state) == (S.CLOSED, S.CLOSED)


def test_the_caller_may_not_break_the_order() -> None:
    w, p = _connected()
    # before the companion request: no ES10, no companion info
    _unchanged_after(p, Es10Request(GET_CHALLENGE), StateError)
    _unchanged_after(w, companion_info(), StateError)
    _unchanged_after(w, Es10Response(b""), StateError)
    # the watch (offerer) may not ask the phone
    _unchanged_after(w, CompanionRequest(), StateError)
    p.send(CompanionRequest())
    _deliver(p, w)
    _unchanged_after(p, CompanionRequest(), StateError)  # once
    _unchanged_after(p, Es10Request(GET_CHALLENGE), StateError)  # info first
    _unchanged_after(w, Es10Response(b""), StateError)
    # the companion info carries the watch's own EID
    other = CompanionInfo(name="w", eid=PHONE_HELLO.eid, device_info=device_info_der())
    _unchanged_after(w, other, UsageError)
    w.send(companion_info())
    _deliver(w, p)
    p.send(Es10Request(GET_CHALLENGE))
    _deliver(p, w)
    _unchanged_after(p, Es10Request(GET_INFO1), StateError)  # one outstanding
    _unchanged_after(p, CompanionRequest(), StateError)
    _unchanged_after(w, Es10Request(GET_INFO1), StateError)  # the watch never asks
    w.send(Es10Response(b""))
    _deliver(w, p)
    _unchanged_after(w, Es10Response(b""), StateError)  # exactly one answer
    _unchanged_after(w, Es10Refusal(Es10RefusalReason.BUSY), StateError)


def test_a_second_outstanding_request_is_refused_by_the_watch() -> None:
    w, p = _relay_open()
    p.send(Es10Request(GET_CHALLENGE))
    w.receive_data(p.data_to_send() + _inject(p, encode_message(Es10Request(GET_INFO1))))
    assert w.next_event() == Es10Requested(Es10Request(GET_CHALLENGE))
    with pytest.raises(ProtocolError):
        w.next_event()
    _expect_bye(w, p, ByeReason.PROTOCOL_ERROR)
    assert (w.burnt, p.burnt) == (False, False)


@pytest.mark.parametrize(
    "message",
    [Es10Request(GET_CHALLENGE), companion_info(), Es10Response(b"")],
)
def test_relay_messages_before_the_companion_request_are_refused(message: Message) -> None:
    w, p = _connected()
    sender, receiver = (w, p) if isinstance(message, CompanionInfo | Es10Response) else (p, w)
    receiver.receive_data(_inject(sender, encode_message(message)))
    with pytest.raises(ProtocolError):
        receiver.next_event()
    _expect_bye(receiver, sender, ByeReason.PROTOCOL_ERROR)


def test_an_unsolicited_response_is_refused_by_the_phone() -> None:
    w, p = _relay_open()
    p.receive_data(_inject(w, encode_message(Es10Response(b"\x90\x00"))))
    with pytest.raises(ProtocolError):
        p.next_event()
    _expect_bye(p, w, ByeReason.PROTOCOL_ERROR)


def test_companion_info_for_another_eid_is_refused_by_the_phone() -> None:
    w, p = _connected()
    p.send(CompanionRequest())
    _deliver(p, w)
    other = CompanionInfo(name="w", eid=PHONE_HELLO.eid, device_info=device_info_der())
    p.receive_data(_inject(w, encode_message(other)))
    with pytest.raises(ProtocolError, match="EID"):
        p.next_event()
    _expect_bye(p, w, ByeReason.PROTOCOL_ERROR)


def _offer_pair(role: DeviceRole) -> tuple[PairingConnection, PairingConnection]:
    """(offerer, joiner) of a first pairing by QR, offerer of ``role``, after the hellos."""
    offer = make_offer(role)
    hello = attrs.evolve(WATCH_HELLO, role=role)
    o = PairingConnection(Role.OFFERER, local=hello, offer=offer, rand=counter_rand(5))
    j = PairingConnection(Role.JOINER, local=PHONE_HELLO, offer=offer, rand=counter_rand(6))
    o.receive_data(j.data_to_send())
    assert isinstance(o.next_event(), Paired)
    j.receive_data(o.data_to_send())
    assert isinstance(j.next_event(), Paired)
    assert isinstance(j.next_event(), HelloReceived)
    o.receive_data(j.data_to_send())
    assert isinstance(o.next_event(), HelloReceived)
    return o, j


@pytest.mark.parametrize("role", [DeviceRole.PRIMARY, DeviceRole.SECONDARY])
def test_a_companion_request_to_a_non_companion_is_refused_cleanly(role: DeviceRole) -> None:
    o, j = _offer_pair(role)
    # locally: the phone's connection refuses to send it; nothing changes
    _unchanged_after(j, CompanionRequest(), StateError)
    assert (j.state, o.state) == (S.READY, S.READY)
    # the session goes on: a join exchange and a bye
    j.send(JoinRequest(DeviceClass.PHONE, {Service.DATA}, "Ana's phone"))
    assert isinstance(_deliver(j, o), JoinRequested)
    o.send(Refusal(RefusalReason.DENIED))
    assert _deliver(o, j) == Refused(Refusal(RefusalReason.DENIED))
    # a peer that sends one anyway is told "unsupported" and the connection closes
    o.receive_data(_inject(j, encode_message(CompanionRequest())))
    with pytest.raises(ProtocolError, match="not a companion"):
        o.next_event()
    _expect_bye(o, j, ByeReason.UNSUPPORTED)


def test_a_companion_may_refuse_the_request_and_the_join_exchange_still_works() -> None:
    w, p = _connected()
    p.send(CompanionRequest())
    _deliver(p, w)
    w.send(Refusal(RefusalReason.BUSY))
    assert _deliver(w, p) == Refused(Refusal(RefusalReason.BUSY))
    assert (w.state, p.state) == (S.READY, S.READY)
    # the watch asks to join (it wants a token); the phone refuses cleanly
    w.send(JoinRequest(DeviceClass.WATCH, {Service.DATA}, "Ana's watch"))
    assert isinstance(_deliver(w, p), JoinRequested)
    p.send(Refusal(RefusalReason.DENIED))
    assert _deliver(p, w) == Refused(Refusal(RefusalReason.DENIED))
    # and the companion request may follow
    p.send(CompanionRequest())
    assert _deliver(p, w) == CompanionRequested(CompanionRequest())


def test_first_pairing_with_a_companion_offer_then_the_relay() -> None:
    w, p = _offer_pair(DeviceRole.COMPANION)
    p.send(CompanionRequest())
    assert isinstance(_deliver(p, w), CompanionRequested)
    w.send(companion_info())
    assert isinstance(_deliver(w, p), CompanionInfoReceived)
    p.send(Es10Request(GET_CHALLENGE))
    assert isinstance(_deliver(p, w), Es10Requested)


@given(
    st.lists(
        st.tuples(
            st.binary(min_size=1, max_size=600),
            st.one_of(st.binary(max_size=600), st.sampled_from(Es10RefusalReason)),
        ),
        max_size=6,
    )
)
def test_scripted_relays_deliver_each_answer_in_order(
    script: list[tuple[bytes, bytes | Es10RefusalReason]],
) -> None:
    answers = [a if isinstance(a, bytes) else Es10Refusal(a) for _, a in script]
    s = session([r for r, _ in script], answers)
    assert (s.watch.error, s.phone.error) == (None, None)
    got_requests = [e.message.der for e in s.watch.events if isinstance(e, Es10Requested)]
    assert got_requests == [r for r, _ in script]
    got = [
        e.message.der if isinstance(e, Es10Answered) else e.message
        for e in s.phone.events
        if isinstance(e, Es10Answered | Es10Refused)
    ]
    assert got == answers
    assert names(s.watch)[-1] == "ByeReceived"
    assert (s.watch.conn.state, s.phone.conn.state) == (S.CLOSED, S.CLOSED)
