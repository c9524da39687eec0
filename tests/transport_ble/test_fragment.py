"""BLE framing: round trips at every MTU, strict rejection, credit liveness, UUIDs."""

from __future__ import annotations

import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rspfed.errors import DecodeError, ProtocolError, RspfedError, StateError, UsageError
from rspfed.transport.ble.fragment import (
    ATT_MAX_VALUE,
    HEADER_SIZE,
    CreditGate,
    CreditReturn,
    Fragmenter,
    FrameKind,
    Reassembler,
    decode_frame,
    encode_frame,
    fragment_payload_size,
)
from rspfed.transport.ble.uuids import (
    notify_characteristic_uuid,
    service_uuid,
    write_characteristic_uuid,
)

mtus = st.integers(min_value=23, max_value=517)
messages = st.binary(min_size=1, max_size=3000)


def _feed_all(rx: Reassembler, frames: list[bytes], mtu: int, out: list[bytes]) -> None:
    for frame in frames:
        _, done = rx.feed(frame, mtu)
        if done is not None:
            out.append(done)


def test_payload_sizes_follow_the_att_rules() -> None:
    # ATT value = MTU - 3, and never more than 512 octets (Core Vol 3 Part F 3.2.9).
    assert fragment_payload_size(23) == 20 - HEADER_SIZE
    assert fragment_payload_size(247) == 244 - HEADER_SIZE
    assert fragment_payload_size(515) == 512 - HEADER_SIZE
    assert fragment_payload_size(517) == 512 - HEADER_SIZE
    for bad in (0, 22, 518):
        with pytest.raises(UsageError):
            fragment_payload_size(bad)


@given(st.lists(messages, min_size=1, max_size=5), mtus)
def test_any_messages_round_trip_at_any_mtu(batch: list[bytes], mtu: int) -> None:
    tx, rx = Fragmenter(), Reassembler()
    out: list[bytes] = []
    for message in batch:
        frames = tx.fragment(message, mtu)
        assert len(frames) == -(-len(message) // fragment_payload_size(mtu))
        for frame in frames:
            # Every frame fits one ATT value at this MTU.
            assert len(frame) <= min(mtu - 3, ATT_MAX_VALUE)
            _, done = rx.feed(frame, mtu)
            if done is not None:
                out.append(done)
    assert out == batch
    assert rx.pending == 0


@given(messages, mtus, st.data())
def test_a_dropped_frame_is_a_gap(message: bytes, mtu: int, data: st.DataObject) -> None:
    tx, rx = Fragmenter(), Reassembler()
    frames = tx.fragment(message, mtu) + tx.fragment(b"next", mtu)
    drop = data.draw(st.integers(min_value=0, max_value=len(frames) - 2))
    released: list[bytes] = []
    kept = frames[:drop] + frames[drop + 1 :]
    with pytest.raises(ProtocolError, match="gap"):
        _feed_all(rx, kept, mtu, released)
    # The dropped frame was part of the first message: nothing was released.
    assert released == []
    assert rx.broken
    with pytest.raises(ProtocolError):
        rx.feed(frames[-1], mtu)


@given(messages, mtus, st.data())
def test_a_repeated_frame_is_a_duplicate(message: bytes, mtu: int, data: st.DataObject) -> None:
    tx, rx = Fragmenter(), Reassembler()
    frames = tx.fragment(message, mtu)
    repeat = data.draw(st.integers(min_value=0, max_value=len(frames) - 1))
    for frame in frames[: repeat + 1]:
        rx.feed(frame, mtu)
    with pytest.raises(ProtocolError, match="duplicate"):
        rx.feed(frames[repeat], mtu)
    assert rx.broken


@given(mtus, st.integers(min_value=1, max_value=50))
def test_an_oversized_fragment_is_refused(mtu: int, extra: int) -> None:
    limit = fragment_payload_size(mtu)
    rx = Reassembler()
    with pytest.raises(ProtocolError, match="exceeds"):
        rx.feed(encode_frame(FrameKind.DATA, 0, b"x" * (limit + extra)), mtu)


def test_the_message_cap_holds_on_both_sides() -> None:
    tx = Fragmenter(max_message_size=100)
    with pytest.raises(UsageError):
        tx.fragment(b"x" * 101, 23)
    with pytest.raises(UsageError):
        tx.fragment(b"", 23)
    big = Fragmenter(max_message_size=1000).fragment(b"x" * 101, 23)
    rx = Reassembler(max_message_size=100)
    with pytest.raises(ProtocolError, match="cap"):
        _feed_all(rx, big, 23, [])


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"", DecodeError),
        (b"\x01\x00", DecodeError),
        (b"\x09\x00\x00", DecodeError),  # unknown kind
        (b"\x02\x00\x00\x00", DecodeError),  # CREDIT body too short
        (b"\x02\x00\x00\x00\x00", DecodeError),  # zero credits
        (b"\x03\x00\x00x", DecodeError),  # CLOSE with a body
        (b"\x04\x00\x00" + struct.pack(">HH", 22, 4), DecodeError),  # OPEN MTU too small
        (b"\x04\x00\x00" + struct.pack(">HH", 23, 0), DecodeError),  # OPEN no credit
        (b"\x00\x00\x00", ProtocolError),  # empty DATA
        (b"\x01\x00\x00", ProtocolError),  # empty DATA_LAST
    ],
)
def test_malformed_frames_are_refused(frame: bytes, error: type[RspfedError]) -> None:
    rx = Reassembler()
    with pytest.raises(error):
        rx.feed(frame, 23)
    assert rx.broken


def test_control_frames_and_close() -> None:
    tx, rx = Fragmenter(), Reassembler()
    frame, done = rx.feed(tx.open(247, 16), 23)
    assert (frame.kind, done) == (FrameKind.OPEN, None)
    assert decode_frame(tx.credit(5)).body == b"\x00\x05"
    rx.feed(encode_frame(FrameKind.CREDIT, 1, b"\x00\x05"), 23)
    tx2 = Fragmenter()
    tx2._seq = 2  # continue the same direction's numbering
    frames = tx2.fragment(b"a" * 40, 23)
    rx.feed(frames[0], 23)
    # A control frame inside a message is refused.
    with pytest.raises(ProtocolError, match="inside"):
        rx.feed(encode_frame(FrameKind.CLOSE, 3), 23)
    rx2 = Reassembler()
    rx2.feed(encode_frame(FrameKind.CLOSE, 0), 23)
    assert rx2.closed
    with pytest.raises(ProtocolError, match="after CLOSE"):
        rx2.feed(encode_frame(FrameKind.DATA_LAST, 1, b"x"), 23)


def test_sequence_numbers_wrap() -> None:
    tx, rx = Fragmenter(), Reassembler()
    out = []
    for _ in range(70_000 // 17 + 1):
        for frame in tx.fragment(b"y" * 17, 23):
            _, done = rx.feed(frame, 23)
            out.append(done)
    assert tx.next_seq == len(out) % 65536
    assert all(m == b"y" * 17 for m in out)


@settings(max_examples=40)
@given(
    st.integers(min_value=1, max_value=16),
    st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=12),
    st.data(),
)
def test_credits_never_deadlock_and_bound_waiting_messages(
    window: int, sizes: list[int], data: st.DataObject
) -> None:
    """Simulate the peripheral (gate) and central (returns) with a lazy reader."""
    gate, book = CreditGate(), CreditReturn(window)
    gate.grant(window)
    queue: list[int] = list(sizes)  # fragments per message, to send
    in_flight: list[bool] = []  # fragments on the air: True = last of a message
    waiting = 0  # completed messages the application has not read
    delivered = 0
    steps = 0
    while delivered < len(sizes):
        steps += 1
        assert steps < 10_000, "deadlock"
        choice = data.draw(st.sampled_from(["send", "arrive", "read"]))
        if choice == "send" and queue and gate.credits:
            gate.take()
            queue[0] -= 1
            in_flight.append(queue[0] == 0)
            if queue[0] == 0:
                queue.pop(0)
        elif choice == "arrive" and in_flight:
            if in_flight.pop(0):
                book.message_completed()
                waiting += 1
            else:
                book.fragment_buffered()
        elif choice == "read" and waiting:
            book.message_consumed()
            waiting -= 1
            delivered += 1
        else:
            # Nothing chosen could run: run whatever can, in order.
            if in_flight:
                if in_flight.pop(0):
                    book.message_completed()
                    waiting += 1
                else:
                    book.fragment_buffered()
            elif waiting:
                book.message_consumed()
                waiting -= 1
                delivered += 1
            elif queue and gate.credits:
                continue
            else:
                pytest.fail("deadlock: nothing can move")
        due = book.due()
        if due:
            gate.grant(due)
        assert waiting <= window
        assert gate.credits + len(in_flight) <= window


def test_credit_gate_rules() -> None:
    gate = CreditGate()
    with pytest.raises(StateError):
        gate.take()
    with pytest.raises(ProtocolError):
        gate.grant(70_000)
    with pytest.raises(StateError):
        CreditReturn(4).message_consumed()


def test_service_uuid_is_the_id_with_version_4_bits() -> None:
    did = bytes(range(16))
    svc = service_uuid(did)
    assert svc.version == 4
    assert svc.variant == uuid.RFC_4122
    raw = bytearray(did)
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    assert svc.bytes == bytes(raw)
    write, notify = write_characteristic_uuid(did), notify_characteristic_uuid(did)
    assert len({svc, write, notify}) == 3
    assert write.version == notify.version == 4
    assert service_uuid(bytes(16)) != svc
    assert write_characteristic_uuid(bytes(16)) != write
    with pytest.raises(UsageError):
        service_uuid(b"short")


@given(st.lists(st.binary(max_size=40), max_size=20), mtus)
def test_arbitrary_input_raises_only_rspfed_errors(frames: list[bytes], mtu: int) -> None:
    rx = Reassembler(max_message_size=200)
    for frame in frames:
        try:
            rx.feed(frame, mtu)
        except (DecodeError, ProtocolError):
            assert rx.broken
