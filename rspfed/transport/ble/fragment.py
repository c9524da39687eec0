"""Sans-IO fragmentation, reassembly and credit flow control over GATT.

Theory of operation
-------------------
A BLE link carries ATT PDUs, not bytes: one write request (central to
peripheral) or one handle-value notification (peripheral to central) carries
at most ``ATT_MTU - 3`` octets of value, and an attribute value is at most 512
octets.  This module turns the messages of a byte stream into *frames* that
each fit one such PDU, and back, with no I/O, clock or randomness.

Frame layout (one ATT value)::

    octet 0      kind  0x00 DATA (more fragments follow)
                       0x01 DATA_LAST (last fragment of a message)
                       0x02 CREDIT    (body: uint16 credits granted)
                       0x03 CLOSE     (empty body: orderly end of stream)
                       0x04 OPEN      (body: uint16 ATT_MTU, uint16 credits)
    octets 1-2   sequence number, uint16 big-endian
    octets 3..   body

Every frame in one direction takes the next sequence number, starting at 0
and wrapping at 65536.  The receiver accepts only the exact next number: an
older one is a *duplicate*, a newer one a *gap*, and both are a
:class:`~rspfed.errors.ProtocolError` (the link is reliable, so either means a
broken or hostile peer).  A DATA frame's body is never empty and never larger
than :func:`fragment_payload_size` for the negotiated MTU; a message never
exceeds ``max_message_size`` (default :data:`DEFAULT_MAX_MESSAGE_SIZE`).  A
malformed frame (too short, unknown kind, bad control body) is a
:class:`~rspfed.errors.DecodeError`.  After the first error the
:class:`Reassembler` is *broken*: every later frame raises again and nothing
more is released.

Flow control.  Central to peripheral, every frame is a write *with response*
and the central has one write in flight at a time, so the peripheral paces the
central by answering.  Peripheral to central, notifications are not
acknowledged by ATT, so the peripheral sends only against *credits*: the
central's first frame is OPEN (its ATT_MTU and an initial window of
:data:`DEFAULT_WINDOW` credits), each DATA notification costs one credit, and
the central returns credits in CREDIT frames (:class:`CreditReturn`): the
credit of a non-final fragment as soon as it has been appended to the
reassembly buffer, the credit of a final fragment only when the application
has taken that message out.  So at most ``window`` whole messages wait at the
central, and a message of any length still flows (no deadlock).  The central
batches returns (at least half a window, or whenever everything owed can be
returned because the peripheral may be blocked).  :class:`CreditGate` is the
peripheral's counter.
"""

from __future__ import annotations

import enum
import struct

import attrs

from rspfed.errors import DecodeError, ProtocolError, StateError, UsageError

__all__ = [
    "ATT_MAX_MTU",
    "ATT_MAX_VALUE",
    "ATT_MIN_MTU",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_WINDOW",
    "HEADER_SIZE",
    "CreditGate",
    "CreditReturn",
    "Fragmenter",
    "Frame",
    "FrameKind",
    "Reassembler",
    "decode_frame",
    "encode_frame",
    "fragment_payload_size",
]

#: The smallest ATT_MTU (Core spec Vol 3 Part F 3.2.8, LE).
ATT_MIN_MTU = 23
#: The largest ATT_MTU a GATT client asks for (Core spec: 512-octet values + 5).
ATT_MAX_MTU = 517
#: The longest attribute value (Core spec Vol 3 Part F 3.2.9).
ATT_MAX_VALUE = 512
#: Octets of frame header (kind + sequence number).
HEADER_SIZE = 3
#: The default cap on one reassembled message (the transport splits longer sends).
DEFAULT_MAX_MESSAGE_SIZE = 65536
#: The central's default credit window (notifications in flight).
DEFAULT_WINDOW = 16

_SEQ_MOD = 1 << 16


class FrameKind(enum.IntEnum):
    """The frame kinds (octet 0 of every frame)."""

    DATA = 0x00
    DATA_LAST = 0x01
    CREDIT = 0x02
    CLOSE = 0x03
    OPEN = 0x04


@attrs.frozen
class Frame:
    """One decoded frame: ``kind``, sequence number ``seq`` and ``body``."""

    kind: FrameKind
    seq: int
    body: bytes


def fragment_payload_size(mtu: int) -> int:
    """Body octets one frame carries at ATT_MTU ``mtu`` (min(mtu - 3, 512) - header).

    ``mtu`` must lie in 23..517 (:class:`~rspfed.errors.UsageError` otherwise).
    At the minimum MTU 23 a frame carries 17 octets; from MTU 515 up, 509.
    """
    if not ATT_MIN_MTU <= mtu <= ATT_MAX_MTU:
        raise UsageError(f"ATT_MTU {mtu} outside {ATT_MIN_MTU}..{ATT_MAX_MTU}")
    return min(mtu - 3, ATT_MAX_VALUE) - HEADER_SIZE


def encode_frame(kind: FrameKind, seq: int, body: bytes = b"") -> bytes:
    """The octets of one frame (no size check; see :class:`Fragmenter`)."""
    if not 0 <= seq < _SEQ_MOD:
        raise UsageError("sequence number outside 0..65535")
    return struct.pack(">BH", kind, seq) + body


def decode_frame(data: bytes) -> Frame:
    """Parse one frame; :class:`~rspfed.errors.DecodeError` when malformed.

    Checks the header, the kind and the control bodies (CREDIT: two octets, at
    least one credit; OPEN: four octets, MTU 23..517, at least one credit;
    CLOSE: empty).  Sequence and size rules are the :class:`Reassembler`'s.
    """
    if len(data) < HEADER_SIZE:
        raise DecodeError("BLE frame shorter than its header", type_name="BleFrame", offset=0)
    kind_octet, seq = struct.unpack_from(">BH", data)
    try:
        kind = FrameKind(kind_octet)
    except ValueError:
        raise DecodeError(
            f"unknown BLE frame kind 0x{kind_octet:02x}", type_name="BleFrame", offset=0
        ) from None
    body = bytes(data[HEADER_SIZE:])
    if kind is FrameKind.CREDIT:
        if len(body) != 2 or int.from_bytes(body, "big") == 0:
            raise DecodeError("bad CREDIT body", type_name="BleFrame", offset=HEADER_SIZE)
    elif kind is FrameKind.OPEN:
        if len(body) != 4:
            raise DecodeError("bad OPEN body", type_name="BleFrame", offset=HEADER_SIZE)
        mtu, credits = struct.unpack(">HH", body)
        if not ATT_MIN_MTU <= mtu <= ATT_MAX_MTU or credits == 0:
            raise DecodeError("bad OPEN values", type_name="BleFrame", offset=HEADER_SIZE)
    elif kind is FrameKind.CLOSE and body:
        raise DecodeError("CLOSE with a body", type_name="BleFrame", offset=HEADER_SIZE)
    return Frame(kind, seq, body)


class Fragmenter:
    """The sending half of one direction: numbers frames and splits messages.

    ``fragment(message, mtu)`` returns the frames of one message; ``credit``,
    ``open`` and ``close`` return control frames.  Every frame takes the next
    sequence number.
    """

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if max_message_size < 1:
            raise UsageError("max_message_size must be >= 1")
        self.max_message_size = max_message_size
        self._seq = 0

    @property
    def next_seq(self) -> int:
        """The sequence number the next frame takes."""
        return self._seq

    def _take(self) -> int:
        seq = self._seq
        self._seq = (seq + 1) % _SEQ_MOD
        return seq

    def fragment(self, message: bytes, mtu: int) -> list[bytes]:
        """Split ``message`` (1..max_message_size octets) into DATA frames for ``mtu``."""
        if not message:
            raise UsageError("an empty message has no fragments")
        if len(message) > self.max_message_size:
            raise UsageError(f"message of {len(message)} octets exceeds the cap")
        size = fragment_payload_size(mtu)
        chunks = [message[i : i + size] for i in range(0, len(message), size)]
        last = len(chunks) - 1
        return [
            encode_frame(FrameKind.DATA_LAST if i == last else FrameKind.DATA, self._take(), c)
            for i, c in enumerate(chunks)
        ]

    def credit(self, credits: int) -> bytes:
        """A CREDIT frame granting ``credits`` (1..65535)."""
        if not 1 <= credits < _SEQ_MOD:
            raise UsageError("credits outside 1..65535")
        return encode_frame(FrameKind.CREDIT, self._take(), struct.pack(">H", credits))

    def open(self, mtu: int, credits: int) -> bytes:
        """The OPEN frame (the central's first): its ATT_MTU and initial credits."""
        fragment_payload_size(mtu)
        if not 1 <= credits < _SEQ_MOD:
            raise UsageError("credits outside 1..65535")
        return encode_frame(FrameKind.OPEN, self._take(), struct.pack(">HH", mtu, credits))

    def close(self) -> bytes:
        """A CLOSE frame (orderly end of stream)."""
        return encode_frame(FrameKind.CLOSE, self._take())


class Reassembler:
    """The receiving half of one direction: checks frames, rebuilds messages.

    ``feed(frame_octets, mtu)`` returns the decoded :class:`Frame` (for control
    frames, which the caller handles) and, for the DATA_LAST frame that ends a
    message, the whole message.  Errors break it for good (see the
    module documentation).
    """

    def __init__(self, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if max_message_size < 1:
            raise UsageError("max_message_size must be >= 1")
        self.max_message_size = max_message_size
        self._expected = 0
        self._buffer = bytearray()
        self._broken: ProtocolError | DecodeError | None = None
        self._closed = False

    @property
    def broken(self) -> bool:
        """True after an error: nothing more is accepted."""
        return self._broken is not None

    @property
    def closed(self) -> bool:
        """True after a CLOSE frame: the peer will send nothing more."""
        return self._closed

    @property
    def pending(self) -> int:
        """Octets of an incomplete message held so far."""
        return len(self._buffer)

    def _fail(self, error: ProtocolError | DecodeError) -> ProtocolError | DecodeError:
        self._broken = error
        self._buffer.clear()
        return error

    def feed(self, data: bytes, mtu: int) -> tuple[Frame, bytes | None]:
        """Take one frame (as received at ATT_MTU ``mtu``): ``(frame, message or None)``.

        The message is returned with the DATA_LAST frame that completes it.
        Raises :class:`~rspfed.errors.DecodeError` (malformed frame) or
        :class:`~rspfed.errors.ProtocolError` (gap, duplicate, oversized
        fragment or message, empty fragment, a frame after CLOSE, a control
        frame inside a message); after that, every call raises
        :class:`~rspfed.errors.ProtocolError`.
        """
        if self._broken is not None:
            raise ProtocolError("BLE reassembler is broken by an earlier error")
        limit = fragment_payload_size(mtu)
        try:
            frame = decode_frame(data)
        except DecodeError as exc:
            raise self._fail(exc) from None
        if frame.seq != self._expected:
            behind = (self._expected - frame.seq) % _SEQ_MOD
            what = "duplicate" if behind < _SEQ_MOD // 2 else "gap"
            raise self._fail(
                ProtocolError(f"BLE frame {what}: sequence {frame.seq}, expected {self._expected}")
            )
        if self._closed:
            raise self._fail(ProtocolError("BLE frame after CLOSE"))
        self._expected = (self._expected + 1) % _SEQ_MOD
        if frame.kind in (FrameKind.DATA, FrameKind.DATA_LAST):
            if not frame.body:
                raise self._fail(ProtocolError("empty BLE fragment"))
            if len(frame.body) > limit:
                raise self._fail(
                    ProtocolError(f"BLE fragment of {len(frame.body)} octets exceeds {limit}")
                )
            if len(self._buffer) + len(frame.body) > self.max_message_size:
                raise self._fail(ProtocolError("BLE message exceeds the size cap"))
            self._buffer += frame.body
            if frame.kind is FrameKind.DATA:
                return frame, None
            message = bytes(self._buffer)
            self._buffer.clear()
            return frame, message
        if self._buffer:
            raise self._fail(ProtocolError("BLE control frame inside a message"))
        if frame.kind is FrameKind.CLOSE:
            self._closed = True
        return frame, None


class CreditGate:
    """The peripheral's send credits (notifications it may still send)."""

    def __init__(self) -> None:
        self._credits = 0

    @property
    def credits(self) -> int:
        """Notifications that may be sent now."""
        return self._credits

    def grant(self, credits: int) -> None:
        """Add credits from an OPEN or CREDIT frame (ProtocolError past 2**16 outstanding)."""
        if credits < 1:
            raise UsageError("credits must be >= 1")
        if self._credits + credits > 0xFFFF:
            raise ProtocolError("BLE peer granted more than 65535 outstanding credits")
        self._credits += credits

    def take(self) -> None:
        """Spend one credit (StateError when none is left: check :attr:`credits`)."""
        if self._credits == 0:
            raise StateError("no BLE send credit")
        self._credits -= 1


class CreditReturn:
    """The central's credit book-keeping (see the module documentation).

    Call :meth:`fragment_buffered` for each non-final DATA frame received,
    :meth:`message_consumed` when the application takes a message, and send a
    CREDIT frame for :meth:`due` (which then counts as returned) when it is
    non-zero.
    """

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if not 1 <= window < _SEQ_MOD:
            raise UsageError("window outside 1..65535")
        self.window = window
        self._owed = 0
        self._held = 0

    def fragment_buffered(self) -> None:
        """A non-final fragment joined the reassembly buffer: its credit is owed."""
        self._owed += 1

    def message_completed(self) -> None:
        """A final fragment completed a message: its credit is held until consumed."""
        self._held += 1

    def message_consumed(self) -> None:
        """The application took one completed message: release its held credit."""
        if self._held == 0:
            raise StateError("no completed message to consume")
        self._held -= 1
        self._owed += 1

    def due(self) -> int:
        """Credits to return now (0: not yet worth a CREDIT frame); resets the count."""
        owed = self._owed
        if owed == 0:
            return 0
        # Return in batches of half a window; return everything once nothing
        # else is outstanding (the peripheral may be waiting on these).
        if owed * 2 >= self.window or owed + self._held >= self.window:
            self._owed = 0
            return owed
        return 0
