"""Framing and the secure record channel.

The record format is checked against an independent Noise implementation (the
``noiseprotocol`` package as the peer); the adversarial properties
(reordering, truncation at every offset, bit flips, replay, oversize) by
hypothesis and exhaustive loops: an error, no plaintext out, CLOSED after.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from noise.connection import Keypair, NoiseConnection

from rspfed.crypto.noise import PROTOCOL_NAME, HandshakeState
from rspfed.errors import IntegrityError, ProtocolError, RspfedError, StateError, UsageError
from rspfed.transfer.channel import (
    MAX_FRAME_SIZE,
    MAX_RECORD_SIZE,
    ChannelState,
    FrameDecoder,
    SecureChannel,
    encode_frame,
)

pytestmark = pytest.mark.filterwarnings("ignore:One of ephemeral keypairs:UserWarning")

_PSK = bytes(range(32))
_E_I = b"\x11" * 32
_E_R = b"\x22" * 32


def _handshake() -> tuple[HandshakeState, HandshakeState]:
    init = HandshakeState(initiator=True, psk=_PSK, prologue=b"t", rand=lambda n: _E_I)
    resp = HandshakeState(initiator=False, psk=_PSK, prologue=b"t", rand=lambda n: _E_R)
    resp.read_message(init.write_message())
    init.read_message(resp.write_message())
    return init, resp


def _channels(
    *, record_size: int = MAX_RECORD_SIZE, max_message_size: int = 1 << 20
) -> tuple[SecureChannel, SecureChannel]:
    init, resp = _handshake()
    return (
        SecureChannel.from_handshake(
            init, record_size=record_size, max_message_size=max_message_size
        ),
        SecureChannel.from_handshake(
            resp, record_size=record_size, max_message_size=max_message_size
        ),
    )


def _frames(wire: bytes) -> list[bytes]:
    """Cut a wire into frame bodies (written out independently of FrameDecoder)."""
    out, pos = [], 0
    while pos < len(wire):
        n = int.from_bytes(wire[pos : pos + 2], "big")
        out.append(wire[pos + 2 : pos + 2 + n])
        pos += 2 + n
    assert pos == len(wire)
    return out


def _noise_peer() -> tuple[SecureChannel, NoiseConnection]:
    """Our initiator's channel and a noiseprotocol responder (the independent peer)."""
    init = HandshakeState(initiator=True, psk=_PSK, prologue=b"t", rand=lambda n: _E_I)
    peer = NoiseConnection.from_name(PROTOCOL_NAME.encode())
    peer.set_as_responder()
    peer.set_psks(psk=_PSK)
    peer.set_prologue(b"t")
    peer.set_keypair_from_private_bytes(Keypair.EPHEMERAL, _E_R)
    peer.start_handshake()
    peer.read_message(init.write_message())
    init.read_message(bytes(peer.write_message()))
    return SecureChannel.from_handshake(init, record_size=10), peer


# ---------------------------------------------------------------------------
# Framing


def test_encode_frame_bounds() -> None:
    assert encode_frame(b"ab") == b"\x00\x02ab"
    assert encode_frame(b"x" * MAX_FRAME_SIZE)[:2] == b"\xff\xff"
    with pytest.raises(UsageError):
        encode_frame(b"")
    with pytest.raises(UsageError):
        encode_frame(b"x" * (MAX_FRAME_SIZE + 1))


@given(
    bodies=st.lists(st.binary(min_size=1, max_size=300), max_size=8),
    cuts=st.lists(st.integers(0, 3000), max_size=10),
)
def test_frame_decoder_any_chunking(bodies: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(encode_frame(b) for b in bodies)
    points = sorted({c for c in cuts if c <= len(wire)} | {0, len(wire)})
    dec = FrameDecoder()
    out: list[bytes] = []
    for a, b in itertools.pairwise(points):
        out += dec.feed(wire[a:b])
    assert out == bodies
    assert dec.buffered == 0
    dec.feed_eof()
    assert dec.closed


@pytest.mark.parametrize("header", [b"\x00\x00", b"\x00\x65"])
def test_frame_decoder_refuses_empty_and_oversize(header: bytes) -> None:
    dec = FrameDecoder(max_frame_size=100)
    first = encode_frame(b"ok")
    with pytest.raises(ProtocolError):
        dec.feed(first + header + b"x" * 200)
    assert dec.closed
    with pytest.raises(StateError):
        dec.feed(first)


def test_frame_decoder_eof_mid_frame() -> None:
    for partial in (b"\x00", b"\x00\x05abc"):
        dec = FrameDecoder()
        assert dec.feed(partial) == []
        with pytest.raises(ProtocolError):
            dec.feed_eof()
        assert dec.closed
    with pytest.raises(UsageError):
        FrameDecoder(max_frame_size=0)
    with pytest.raises(UsageError):
        FrameDecoder(max_frame_size=MAX_FRAME_SIZE + 1)


# ---------------------------------------------------------------------------
# Records


def test_record_format_against_noiseprotocol() -> None:
    ours, peer = _noise_peer()
    message = bytes(range(25))
    frames = _frames(ours.seal(message))
    plains = [peer.decrypt(f) for f in frames]
    assert [p[0] for p in plains] == [1, 1, 0]
    assert b"".join(p[1:] for p in plains) == message
    assert [len(p) - 1 for p in plains] == [10, 10, 5]
    empty = [peer.decrypt(f) for f in _frames(ours.seal(b""))]
    assert empty == [b"\x00"]
    # And the other direction: records written by noiseprotocol.
    assert ours.open(peer.encrypt(b"\x01abc")) is None
    assert ours.open(peer.encrypt(b"\x00def")) == b"abcdef"


@pytest.mark.parametrize(
    ("plaintext", "error"),
    [(b"", IntegrityError), (b"\x02data", ProtocolError), (b"\xff", ProtocolError)],
)
def test_bad_record_plaintext_from_peer(plaintext: bytes, error: type[RspfedError]) -> None:
    ours, peer = _noise_peer()
    assert ours.open(peer.encrypt(b"\x01partial")) is None
    with pytest.raises(error):
        ours.open(peer.encrypt(plaintext))
    assert ours.state is ChannelState.CLOSED
    with pytest.raises(StateError):
        ours.open(peer.encrypt(b"\x00later"))


@given(
    messages=st.lists(st.binary(max_size=200), min_size=1, max_size=6),
    record_size=st.integers(1, 64),
    cuts=st.lists(st.integers(0, 5000), max_size=12),
    reverse=st.booleans(),
)
def test_round_trip_any_chunking(
    messages: list[bytes], record_size: int, cuts: list[int], reverse: bool
) -> None:
    a, b = _channels(record_size=record_size)
    sender, receiver = (b, a) if reverse else (a, b)
    wire = b"".join(sender.seal(m) for m in messages)
    points = sorted({c for c in cuts if c <= len(wire)} | {0, len(wire)})
    out: list[bytes] = []
    for lo, hi in itertools.pairwise(points):
        out += receiver.receive_data(wire[lo:hi])
    assert out == messages
    receiver.receive_eof()
    assert receiver.state is ChannelState.CLOSED


def test_directions_are_independent() -> None:
    a, b = _channels()
    wa = a.seal(b"from a")
    wb = b.seal(b"from b")
    assert b.receive_data(wa) == [b"from a"]
    assert a.receive_data(wb) == [b"from b"]
    a2, _ = _channels()
    with pytest.raises(IntegrityError):
        a2.receive_data(a2.seal(b"loop"))  # our own record reflected back


def _assert_dead(ch: SecureChannel) -> None:
    assert ch.state is ChannelState.CLOSED
    with pytest.raises(StateError):
        ch.receive_data(b"\x00\x01x")
    with pytest.raises(StateError):
        ch.open(b"x" * 40)
    with pytest.raises(StateError):
        ch.seal(b"x")


def test_reordered_records() -> None:
    a, b = _channels(record_size=4)
    frames = _frames(a.seal(b"0123456789ab"))  # three records
    assert len(frames) == 3
    assert b.open(frames[0]) is None
    with pytest.raises(IntegrityError):
        b.open(frames[2])
    _assert_dead(b)


@given(perm=st.permutations(range(4)))
def test_any_reordering_of_messages_fails(perm: list[int]) -> None:
    a, b = _channels()
    wires = [a.seal(bytes([i]) * 5) for i in range(4)]
    out: list[bytes] = []
    try:
        for i in perm:
            out += b.receive_data(wires[i])
    except IntegrityError:
        _assert_dead(b)
    # Whatever came out is exactly the in-order prefix that arrived in order.
    expected = []
    for pos, i in enumerate(perm):
        if i != pos:
            break
        expected.append(bytes([i]) * 5)
    assert out == expected


def test_replayed_record() -> None:
    a, b = _channels()
    w = a.seal(b"pay 10")
    assert b.receive_data(w) == [b"pay 10"]
    with pytest.raises(IntegrityError):
        b.receive_data(w)
    _assert_dead(b)


def test_dropped_record() -> None:
    a, b = _channels()
    a.seal(b"first")
    with pytest.raises(IntegrityError):
        b.receive_data(a.seal(b"second"))
    _assert_dead(b)


def test_truncation_at_every_offset() -> None:
    a, _ = _channels(record_size=8)
    messages = [b"alpha", b"a longer second message spanning records", b"", b"end"]
    wires = [a.seal(m) for m in messages]
    whole = b"".join(wires)
    bounds = [sum(len(w) for w in wires[: i + 1]) for i in range(len(wires))]
    for cut in range(len(whole) + 1):
        _, b = _channels(record_size=8)
        out = b.receive_data(whole[:cut])
        complete = [m for m, end in zip(messages, bounds, strict=True) if end <= cut]
        assert out == complete, cut
        if cut in (0, *bounds):
            b.receive_eof()
        else:
            with pytest.raises(ProtocolError):
                b.receive_eof()
        assert b.state is ChannelState.CLOSED


def test_truncated_record_body() -> None:
    a, b = _channels()
    (body,) = _frames(a.seal(b"some message"))
    with pytest.raises(IntegrityError):
        b.receive_data(encode_frame(body[:-1]))
    _assert_dead(b)


@given(data=st.data())
def test_bit_flip_anywhere_releases_nothing(data: st.DataObject) -> None:
    a, b = _channels(record_size=data.draw(st.sampled_from([4, 16, MAX_RECORD_SIZE])))
    message = data.draw(st.binary(min_size=1, max_size=60))
    wire = bytearray(a.seal(message))
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    wire[bit // 8] ^= 1 << (bit % 8)
    try:
        out = b.receive_data(bytes(wire))
    except (IntegrityError, ProtocolError):
        _assert_dead(b)
        return
    # A flip in a length field can make a frame longer: nothing yet, then EOF fails.
    assert out == []
    with pytest.raises(ProtocolError):
        b.receive_eof()


def test_all_or_nothing_per_call() -> None:
    a, b = _channels()
    good = a.seal(b"good")
    bad = bytearray(a.seal(b"bad"))
    bad[-1] ^= 1
    with pytest.raises(IntegrityError):
        b.receive_data(good + bytes(bad))
    _assert_dead(b)


def test_oversized_message_from_peer() -> None:
    a, _ = _channels(record_size=100, max_message_size=10_000)
    _, b = _channels(max_message_size=250)
    frames = _frames(a.seal(b"x" * 300))
    assert b.open(frames[0]) is None
    assert b.open(frames[1]) is None
    with pytest.raises(ProtocolError):
        b.open(frames[2])  # would reach 300 > 250
    _assert_dead(b)


def test_oversize_length_field() -> None:
    _, b = _channels()
    with pytest.raises(ProtocolError):
        b.receive_data(b"\x00\x00")
    _assert_dead(b)


def test_short_record() -> None:
    _, b = _channels()
    with pytest.raises(IntegrityError):
        b.open(b"x" * 16)
    _assert_dead(b)


def test_seal_limits() -> None:
    a, b = _channels(max_message_size=1000)
    with pytest.raises(UsageError):
        a.seal(b"x" * 1001)
    assert a.state is ChannelState.OPEN  # a local refusal consumes nothing
    assert b.receive_data(a.seal(b"x" * 1000)) == [b"x" * 1000]
    big_a, big_b = _channels()
    message = bytes(range(256)) * 1024  # 256 KiB: five records
    assert big_b.receive_data(big_a.seal(message)) == [message]


def test_constructor_checks() -> None:
    init, resp = _handshake()
    send, recv = init.transport_ciphers()
    with pytest.raises(UsageError):
        SecureChannel(send, send)
    with pytest.raises(UsageError):
        SecureChannel(send, recv, record_size=0)
    with pytest.raises(UsageError):
        SecureChannel(send, recv, record_size=MAX_RECORD_SIZE + 1)
    with pytest.raises(UsageError):
        SecureChannel(send, recv, max_message_size=-1)
    with pytest.raises(StateError):
        SecureChannel.from_handshake(HandshakeState(initiator=True, psk=_PSK))
    del resp


def test_local_close_drops_partial_message() -> None:
    a, b = _channels(record_size=3)
    frames = _frames(a.seal(b"abcdefg"))
    assert b.open(frames[0]) is None
    b.close()
    _assert_dead(b)
    assert "abc" not in repr(b)
