"""Reconnection of an already paired companion (``PairingMethod.PAIRED``, issue H).

The long-term key derivations against RFC 5869 HKDF written out with
``hmac``; a first pairing by QR whose handshake hash both sides turn into
the same key; a reconnection checked against the ``noiseprotocol`` package
(an independent Noise implementation); a wrong psk or discovery id refused
with ``IntegrityError`` on both sides and nothing burnt; replayed
reconnections refused; and a transport cut at every byte offset of a
reconnection plus one relayed ES10 request and response (and a flipped bit
at every other offset): a clean
``RspfedError`` on each side that did not finish.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, cast

import pytest
from noise.connection import Keypair, NoiseConnection

from rspfed.errors import IntegrityError, ProtocolError, RspfedError, TransportError, UsageError
from rspfed.transfer import (
    ConnectionClosed,
    ConnectionState,
    DeviceRole,
    Es10Answered,
    Es10Requested,
    HelloReceived,
    Paired,
    PairedKey,
    PairingConnection,
    PairingMethod,
    Role,
    companion_discovery_id,
    companion_psk,
)
from rspfed.transfer.code import pairing_prologue
from tests.transfer.companion_world import (
    PHONE_HELLO,
    WATCH_HELLO,
    names,
    paired_key,
    session,
)
from tests.transfer.pairing_world import CODE, counter_rand, make_offer

S = ConnectionState


def _hkdf(ikm: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-SHA256 with no salt, written out."""
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes((i,)), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def test_the_derivations() -> None:
    h = bytes(range(32))
    psk = companion_psk(h)
    assert psk == _hkdf(h, b"rspfed companion psk v1", 32)
    assert companion_discovery_id(psk) == _hkdf(psk, b"rspfed companion discovery v1", 16)
    key = PairedKey.from_handshake_hash(h)
    assert key == PairedKey(psk=psk, discovery_id=companion_discovery_id(psk))
    assert psk.hex() not in repr(key)
    assert int(PairingMethod.PAIRED) == 3
    prologue = pairing_prologue(PairingMethod.PAIRED, key.discovery_id)
    assert prologue == b"rspfed-pair-v1\x03" + key.discovery_id


@pytest.mark.parametrize(
    "call",
    [
        lambda: companion_psk(b"\x00" * 31),
        lambda: companion_discovery_id(b"\x00" * 16),
        lambda: PairedKey(psk=b"\x00" * 31, discovery_id=b"\x00" * 16),
        lambda: PairedKey(psk=b"\x00" * 32, discovery_id=b"\x00" * 15),
        lambda: PairingConnection(
            Role.JOINER, local=PHONE_HELLO, rand=counter_rand(1), paired=cast(Any, b"\x00" * 32)
        ),
        lambda: PairingConnection(
            Role.JOINER, local=PHONE_HELLO, rand=counter_rand(1), paired=paired_key(), code=CODE
        ),
        lambda: PairingConnection(
            Role.OFFERER,
            local=WATCH_HELLO,
            rand=counter_rand(1),
            paired=paired_key(),
            offer=make_offer(DeviceRole.COMPANION),
        ),
    ],
)
def test_misuse_is_a_usage_error(call: object) -> None:
    with pytest.raises(UsageError):
        call()  # type: ignore[operator]


def _handshake(
    o: PairingConnection, j: PairingConnection
) -> tuple[list[object], list[object], RspfedError | None, RspfedError | None]:
    """Shuttle until both are quiet; (offerer events, joiner events, errors)."""
    events: dict[str, list[object]] = {"o": [], "j": []}
    errors: dict[str, RspfedError | None] = {"o": None, "j": None}
    conns = {"o": o, "j": j}
    other = {"o": "j", "j": "o"}
    for _ in range(10):
        for name, conn in conns.items():
            data = conn.data_to_send()
            if data:  # b"" would be the end of the stream
                conns[other[name]].receive_data(data)
        for name, conn in conns.items():
            while errors[name] is None:
                try:
                    event = conn.next_event()
                except RspfedError as exc:
                    errors[name] = exc
                    break
                if not isinstance(event, Paired | HelloReceived):
                    break
                events[name].append(event)
    return events["o"], events["j"], errors["o"], errors["j"]


def _reconnect(
    watch_key: PairedKey, phone_key: PairedKey, seed: int = 0
) -> tuple[PairingConnection, PairingConnection]:
    w = PairingConnection(
        Role.OFFERER, local=WATCH_HELLO, rand=counter_rand(20 + seed), paired=watch_key
    )
    p = PairingConnection(
        Role.JOINER, local=PHONE_HELLO, rand=counter_rand(30 + seed), paired=phone_key
    )
    return w, p


def test_first_pairing_then_reconnect_with_the_derived_key() -> None:
    offer = make_offer(DeviceRole.COMPANION)
    w = PairingConnection(Role.OFFERER, local=WATCH_HELLO, offer=offer, rand=counter_rand(1))
    p = PairingConnection(Role.JOINER, local=PHONE_HELLO, offer=offer, rand=counter_rand(2))
    assert [w.handshake_hash, p.handshake_hash] == [None, None]
    _, _, we, pe = _handshake(w, p)
    assert (we, pe) == (None, None)
    assert w.handshake_hash is not None
    assert w.handshake_hash == p.handshake_hash
    watch_key = PairedKey.from_handshake_hash(w.handshake_hash)
    phone_key = PairedKey.from_handshake_hash(p.handshake_hash)
    assert watch_key == phone_key
    w2, p2 = _reconnect(watch_key, phone_key)
    wev, pev, we, pe = _handshake(w2, p2)
    assert (we, pe) == (None, None)
    assert [type(e) for e in wev] == [Paired, HelloReceived]
    assert [type(e) for e in pev] == [Paired, HelloReceived]
    assert wev[0] == Paired(PairingMethod.PAIRED, w2.handshake_hash or b"")
    assert (w2.method, p2.method) == (PairingMethod.PAIRED, PairingMethod.PAIRED)
    assert (w2.state, p2.state) == (S.READY, S.READY)
    assert w2.handshake_hash == p2.handshake_hash
    assert w2.handshake_hash != w.handshake_hash
    assert (w2.burnt, p2.burnt) == (False, False)


def _noise(*, initiator: bool, key: PairedKey, ephemeral: bytes) -> NoiseConnection:
    conn = NoiseConnection.from_name(b"Noise_NNpsk0_25519_ChaChaPoly_SHA256")
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.set_psks(psk=key.psk)
    conn.set_prologue(b"rspfed-pair-v1\x03" + key.discovery_id)
    conn.set_keypair_from_private_bytes(Keypair.EPHEMERAL, ephemeral)
    conn.start_handshake()
    return conn


@pytest.mark.filterwarnings("ignore:One of ephemeral keypairs:UserWarning")
def test_reconnection_against_noiseprotocol() -> None:
    key = paired_key()
    # our joiner against their responder
    p = PairingConnection(Role.JOINER, local=PHONE_HELLO, rand=counter_rand(9), paired=key)
    frame = p.data_to_send()
    assert frame[:3] == (len(frame) - 2).to_bytes(2, "big") + b"\x03"
    theirs = _noise(initiator=False, key=key, ephemeral=bytes(range(64, 96)))
    assert theirs.read_message(frame[3:]) == b""
    message2 = theirs.write_message()
    p.receive_data(len(message2).to_bytes(2, "big") + message2)
    event = p.next_event()
    assert event == Paired(PairingMethod.PAIRED, theirs.get_handshake_hash())
    # our offerer against their initiator
    w = PairingConnection(Role.OFFERER, local=WATCH_HELLO, rand=counter_rand(10), paired=key)
    mine = _noise(initiator=True, key=key, ephemeral=bytes(range(96, 128)))
    message1 = b"\x03" + mine.write_message()
    w.receive_data(len(message1).to_bytes(2, "big") + message1)
    event = w.next_event()
    out = w.data_to_send()
    n = int.from_bytes(out[:2], "big")
    assert mine.read_message(out[2 : 2 + n]) == b""
    assert event == Paired(PairingMethod.PAIRED, mine.get_handshake_hash())
    assert w.handshake_hash == mine.get_handshake_hash()


@pytest.mark.parametrize("which", ["psk", "discovery-id", "both"])
def test_a_wrong_key_is_refused_on_both_sides_and_burns_nothing(which: str) -> None:
    right = paired_key(1)
    other = paired_key(2)
    wrong = {
        "psk": PairedKey(psk=other.psk, discovery_id=right.discovery_id),
        "discovery-id": PairedKey(psk=right.psk, discovery_id=other.discovery_id),
        "both": other,
    }[which]
    w, p = _reconnect(right, wrong)
    wev, pev, we, pe = _handshake(w, p)
    assert isinstance(we, IntegrityError)
    assert isinstance(pe, IntegrityError)
    assert (wev, pev) == ([], [])
    assert (w.state, p.state) == (S.CLOSED, S.CLOSED)
    assert (w.burnt, p.burnt) == (False, False)
    assert (w.handshake_hash, p.handshake_hash) == (None, None)
    assert right.psk.hex() not in str(we) + str(pe)
    # afterwards: closed, quiet
    assert isinstance(w.next_event(), ConnectionClosed)
    # the stored key still works
    w2, p2 = _reconnect(right, right, seed=1)
    _, _, we2, pe2 = _handshake(w2, p2)
    assert (we2, pe2) == (None, None)
    assert (w2.state, p2.state) == (S.READY, S.READY)


def test_replayed_reconnections_are_refused() -> None:
    key = paired_key()
    w, p = _reconnect(key, key)
    j1 = p.data_to_send()  # opening: 0x03 || Noise message 1
    w.receive_data(j1)
    _drain(w)
    o1 = w.data_to_send()  # Noise message 2, the watch's hello
    p.receive_data(o1)
    _drain(p)
    j2 = p.data_to_send()  # the phone's hello
    w.receive_data(j2)
    _drain(w)
    joiner_frames, offerer_frames = [j1, j2], [o1]
    assert (w.state, p.state) == (S.READY, S.READY)
    # the phone's octets played to a fresh watch: message 1 passes, the hello does not
    w2 = PairingConnection(Role.OFFERER, local=WATCH_HELLO, rand=counter_rand(40), paired=key)
    w2.receive_data(b"".join(joiner_frames))
    assert isinstance(w2.next_event(), Paired)
    with pytest.raises(IntegrityError):
        w2.next_event()
    assert (w2.state, w2.burnt, w2.peer_hello) == (S.CLOSED, False, None)
    # the watch's octets played to a fresh phone: message 2 does not authenticate
    p2 = PairingConnection(Role.JOINER, local=PHONE_HELLO, rand=counter_rand(41), paired=key)
    p2.receive_data(b"".join(offerer_frames))
    with pytest.raises(IntegrityError):
        p2.next_event()
    assert (p2.state, p2.burnt) == (S.CLOSED, False)


def _drain(conn: PairingConnection) -> None:
    while True:
        event = conn.next_event()
        if not isinstance(event, Paired | HelloReceived):
            return


@pytest.mark.parametrize("opening", [b"\x01", b"\x02", b"\x07"])
def test_a_paired_offerer_takes_only_a_paired_opening(opening: bytes) -> None:
    w = PairingConnection(
        Role.OFFERER, local=WATCH_HELLO, rand=counter_rand(1), paired=paired_key()
    )
    body = opening + bytes(48)
    w.receive_data(len(body).to_bytes(2, "big") + body)
    with pytest.raises(ProtocolError):
        w.next_event()
    assert (w.state, w.burnt) == (S.CLOSED, False)


def test_an_offer_does_not_take_a_paired_opening() -> None:
    offer = make_offer(DeviceRole.COMPANION)
    w = PairingConnection(Role.OFFERER, local=WATCH_HELLO, offer=offer, rand=counter_rand(1))
    p = PairingConnection(Role.JOINER, local=PHONE_HELLO, rand=counter_rand(2), paired=paired_key())
    w.receive_data(p.data_to_send())
    with pytest.raises(ProtocolError, match="paired"):
        w.next_event()
    assert w.burnt  # the one-time offer is spent, as by any attempt


def test_a_paired_joiner_alone_fails_cleanly_at_end_of_stream() -> None:
    p = PairingConnection(Role.JOINER, local=PHONE_HELLO, rand=counter_rand(2), paired=paired_key())
    p.receive_data(b"")
    with pytest.raises(TransportError):
        p.next_event()
    assert (p.state, p.burnt) == (S.CLOSED, False)


def test_reconnect_and_relay_uncut() -> None:
    s = session()
    assert (s.watch.error, s.phone.error) == (None, None)
    assert names(s.watch) == [
        "Paired",
        "HelloReceived",
        "CompanionRequested",
        "Es10Requested",
        "ByeReceived",
    ]
    assert names(s.phone) == ["Paired", "HelloReceived", "CompanionInfoReceived", "Es10Answered"]


def test_cut_at_every_offset_of_a_reconnect_and_one_relay() -> None:
    clean = session()
    total = clean.total
    assert total > 300
    for n in range(total):
        s = session(cut_at=n)
        for side in (s.watch, s.phone):
            assert side.conn.state is S.CLOSED, n
            assert not side.conn.burnt, n
            finished = side.error is None
            if not finished:
                assert isinstance(side.error, RspfedError), n
        # the watch finishes only with the phone's bye, which is the last octet
        assert s.watch.error is not None, n
        answered = any(isinstance(e, Es10Answered) for e in s.phone.events)
        requested = any(isinstance(e, Es10Requested) for e in s.watch.events)
        assert requested or not answered, n
        # the phone finishes cleanly only after the answer and its own bye
        if s.phone.error is None:
            assert answered, n


def test_a_flipped_bit_anywhere_fails_cleanly() -> None:
    answer = bytes.fromhex("bf2e128010") + bytes(16)
    total = session(answers=(answer,)).total
    for n in range(0, total, 2):
        seen = [0]

        def tamper(_name: str, data: bytes, n: int = n, seen: list[int] = seen) -> bytes:
            start = seen[0]
            seen[0] += len(data)
            if start <= n < start + len(data):
                i = n - start
                return data[:i] + bytes((data[i] ^ 0x10,)) + data[i + 1 :]
            return data

        s = session(answers=(answer,), tamper=tamper)
        assert s.watch.error is not None or s.phone.error is not None, n
        assert (s.watch.conn.burnt, s.phone.conn.burnt) == (False, False)
        got = [e.message.der for e in s.phone.events if isinstance(e, Es10Answered)]
        assert got in ([], [answer]), n
