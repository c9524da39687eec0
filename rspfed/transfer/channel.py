"""Sans-IO framing and the secure record channel over a pairing's Noise keys.

Framing (everything on a pairing stream, handshake included)
    ``frame = uint16-BE(len(body)) || body`` with ``1 <= len(body) <= 65535``.
    :func:`encode_frame` builds one; :class:`FrameDecoder` cuts a byte
    stream into whole frame bodies.  A zero length, a length above the
    decoder's ``max_frame_size`` or an end of stream inside a frame raises
    :class:`~rspfed.errors.ProtocolError` and the decoder is closed.

Records (after the Noise handshake)
    Each frame body is one Noise transport message:
    ``ChaCha20-Poly1305(k, nonce = n, ad = "", plaintext = flag || chunk)``
    under the CipherState of its direction (:meth:`HandshakeState.transport_ciphers
    <rspfed.crypto.noise.HandshakeState.transport_ciphers>`), whose nonce
    counts records from 0.  ``flag`` is one octet: ``0x01`` "more follows",
    ``0x00`` last record of the message.  An application message of up to
    ``max_message_size`` octets (default 1 MiB) is split into chunks of at
    most ``record_size`` octets (default and maximum 65518, so that a record
    fits a frame: 1 + 65518 + 16 = 65535); an empty message is one record.

Failure
    Because the receiving nonce advances by one per record, a replayed,
    reordered, dropped, truncated or altered record fails authentication:
    :class:`~rspfed.errors.IntegrityError`.  A record with a flag other
    than 0/1, no flag octet, or a message growing past ``max_message_size``
    raises :class:`~rspfed.errors.ProtocolError`.  After *any* such error
    the channel is :attr:`ChannelState.CLOSED`: the partly reassembled
    message is dropped, and no plaintext of that record or any later one is
    ever released (every later call raises :class:`~rspfed.errors.StateError`).
    :meth:`SecureChannel.receive_data` is all-or-nothing per call: when it
    raises, it releases none of the messages of that call.

What the channel does not do: it cannot tell a peer that stopped at a message
boundary from an attacker cutting the stream there.  The application
protocol ends with an explicit ``bye`` for that reason.
"""

from __future__ import annotations

import enum

from rspfed.crypto.noise import TAG_SIZE, CipherState, HandshakeState
from rspfed.errors import IntegrityError, ProtocolError, RspfedError, StateError, UsageError

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "FLAG_LAST",
    "FLAG_MORE",
    "FRAME_HEADER_SIZE",
    "MAX_FRAME_SIZE",
    "MAX_RECORD_SIZE",
    "RECORD_OVERHEAD",
    "ChannelState",
    "FrameDecoder",
    "SecureChannel",
    "encode_frame",
]

FRAME_HEADER_SIZE = 2
"""Octets of the frame length prefix (uint16, big-endian)."""
MAX_FRAME_SIZE = 65535
"""Largest frame body (and largest Noise message)."""
FLAG_LAST = 0x00
"""Record flag: this record ends the message."""
FLAG_MORE = 0x01
"""Record flag: more records of this message follow."""
RECORD_OVERHEAD = 1 + TAG_SIZE
"""Octets a record adds to its chunk: the flag and the AEAD tag."""
MAX_RECORD_SIZE = MAX_FRAME_SIZE - RECORD_OVERHEAD
"""Largest chunk of application data in one record (65518)."""
DEFAULT_MAX_MESSAGE_SIZE = 1 << 20
"""Default largest application message (1 MiB)."""


def encode_frame(body: bytes) -> bytes:
    """``uint16-BE(len(body)) || body``; :class:`~rspfed.errors.UsageError` unless 1..65535."""
    n = len(body)
    if not 1 <= n <= MAX_FRAME_SIZE:
        raise UsageError(f"frame body must be 1 to {MAX_FRAME_SIZE} octets, got {n}")
    return n.to_bytes(2, "big") + bytes(body)


class FrameDecoder:
    """Cuts a byte stream into frame bodies (h11 style: feed bytes, get whole frames).

    ``max_frame_size`` (1..65535, default 65535) bounds a body; a larger or
    zero length raises :class:`~rspfed.errors.ProtocolError` before any of the
    body is buffered.  After an error the decoder is closed (every later call
    raises :class:`~rspfed.errors.StateError`).
    """

    __slots__ = ("_buf", "_closed", "_max")

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE) -> None:
        if not 1 <= max_frame_size <= MAX_FRAME_SIZE:
            raise UsageError(f"max_frame_size must be 1 to {MAX_FRAME_SIZE}")
        self._max = max_frame_size
        self._buf = bytearray()
        self._closed = False

    def __repr__(self) -> str:
        return f"FrameDecoder(buffered={len(self._buf)}, closed={self._closed})"

    @property
    def closed(self) -> bool:
        """True after an error or :meth:`feed_eof`."""
        return self._closed

    @property
    def buffered(self) -> int:
        """Octets received but not yet part of a returned frame."""
        return len(self._buf)

    @property
    def max_frame_size(self) -> int:
        """The largest accepted frame body."""
        return self._max

    def feed(self, data: bytes) -> list[bytes]:
        """Add received octets; return the frame bodies completed by them, in order.

        :class:`~rspfed.errors.ProtocolError` on a zero or oversized length
        (then closed; frames completed earlier in the same call are dropped).
        """
        if self._closed:
            raise StateError("frame decoder is closed")
        self._buf += data
        frames: list[bytes] = []
        buf = self._buf
        pos = 0
        end = len(buf)
        while end - pos >= FRAME_HEADER_SIZE:
            n = (buf[pos] << 8) | buf[pos + 1]
            if n == 0 or n > self._max:
                self._closed = True
                self._buf = bytearray()
                raise ProtocolError(
                    "empty frame" if n == 0 else f"frame length {n} exceeds {self._max}"
                )
            if end - pos - FRAME_HEADER_SIZE < n:
                break
            start = pos + FRAME_HEADER_SIZE
            frames.append(bytes(buf[start : start + n]))
            pos = start + n
        if pos:
            del buf[:pos]
        return frames

    def feed_eof(self) -> None:
        """The stream ended; :class:`~rspfed.errors.ProtocolError` if inside a frame.

        The decoder is closed either way.
        """
        if self._closed:
            raise StateError("frame decoder is closed")
        self._closed = True
        if self._buf:
            self._buf = bytearray()
            raise ProtocolError("end of stream inside a frame")


class ChannelState(enum.Enum):
    """:class:`SecureChannel` state."""

    OPEN = "open"
    """Records can be sealed and opened."""
    CLOSED = "closed"
    """After an error, :meth:`SecureChannel.close` or the end of the stream; nothing more."""


class SecureChannel:
    """Records over the two transport CipherStates of a completed Noise handshake.

    ``send_cipher`` protects what we send, ``recv_cipher`` what we receive
    (see :meth:`from_handshake`).  ``max_message_size`` (default 1 MiB)
    bounds an application message in both directions; ``record_size``
    (1..65518) is the largest chunk per record we send.

    Sending: :meth:`seal` returns the framed records of one message, ready for
    the stream.  Receiving: either :meth:`receive_data` with raw stream bytes
    (the channel keeps its own :class:`FrameDecoder`), or :meth:`open` with one
    frame body from an external decoder (e.g. one shared with the handshake)
    — use one or the other, not both.
    """

    __slots__ = (
        "_decoder",
        "_max_message",
        "_parts",
        "_parts_size",
        "_record_size",
        "_recv",
        "_send",
        "_state",
    )

    def __init__(
        self,
        send_cipher: CipherState,
        recv_cipher: CipherState,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        record_size: int = MAX_RECORD_SIZE,
    ) -> None:
        if not send_cipher.has_key() or not recv_cipher.has_key():
            raise UsageError("SecureChannel needs keyed CipherStates")
        if send_cipher is recv_cipher:
            raise UsageError("SecureChannel needs one CipherState per direction")
        if max_message_size < 0:
            raise UsageError("max_message_size must not be negative")
        if not 1 <= record_size <= MAX_RECORD_SIZE:
            raise UsageError(f"record_size must be 1 to {MAX_RECORD_SIZE}")
        self._send = send_cipher
        self._recv = recv_cipher
        self._max_message = max_message_size
        self._record_size = record_size
        self._parts: list[bytes] = []
        self._parts_size = 0
        self._decoder = FrameDecoder()
        self._state = ChannelState.OPEN

    @classmethod
    def from_handshake(
        cls,
        handshake: HandshakeState,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        record_size: int = MAX_RECORD_SIZE,
    ) -> SecureChannel:
        """The channel of a completed handshake, with this side's (send, receive) ciphers."""
        send, recv = handshake.transport_ciphers()
        return cls(send, recv, max_message_size=max_message_size, record_size=record_size)

    def __repr__(self) -> str:
        return f"SecureChannel(state={self._state.value}, pending={self._parts_size})"

    @property
    def state(self) -> ChannelState:
        """:attr:`ChannelState.OPEN` or :attr:`ChannelState.CLOSED`."""
        return self._state

    @property
    def max_message_size(self) -> int:
        """The largest application message accepted or sent."""
        return self._max_message

    @property
    def record_size(self) -> int:
        """The largest chunk per sent record."""
        return self._record_size

    def close(self) -> None:
        """Close the channel locally; drops any partly received message."""
        self._state = ChannelState.CLOSED
        self._parts = []
        self._parts_size = 0

    def _check_open(self) -> None:
        if self._state is not ChannelState.OPEN:
            raise StateError("secure channel is closed")

    def _fail(self, exc: RspfedError) -> RspfedError:
        self.close()
        return exc

    def seal(self, message: bytes) -> bytes:
        """The framed records of one application message (its whole wire form).

        :class:`~rspfed.errors.UsageError` if longer than ``max_message_size``
        (nothing is consumed); :class:`~rspfed.errors.StateError` when closed.
        """
        self._check_open()
        view = memoryview(bytes(message))
        n = len(view)
        if n > self._max_message:
            raise UsageError(f"message of {n} octets exceeds {self._max_message}")
        size = self._record_size
        out: list[bytes] = []
        pos = 0
        while True:
            chunk = view[pos : pos + size]
            pos += len(chunk)
            flag = b"\x01" if pos < n else b"\x00"
            body = self._send.encrypt_with_ad(b"", flag + chunk)
            out.append(len(body).to_bytes(2, "big"))
            out.append(body)
            if pos >= n:
                break
        return b"".join(out)

    def open(self, frame: bytes) -> bytes | None:
        """Open one record (a frame body); return a whole message, or None if more follow.

        :class:`~rspfed.errors.IntegrityError` if it does not authenticate
        (replayed, reordered, dropped, truncated, altered),
        :class:`~rspfed.errors.ProtocolError` for a bad flag or an oversized
        message; the channel is then closed and releases nothing more.
        """
        self._check_open()
        if len(frame) < RECORD_OVERHEAD:
            raise self._fail(IntegrityError("record shorter than its flag and tag"))
        try:
            plain = self._recv.decrypt_with_ad(b"", frame)
        except IntegrityError as exc:
            raise self._fail(exc) from None
        flag = plain[0]
        if flag > FLAG_MORE:
            raise self._fail(ProtocolError("record flag is neither 0 nor 1"))
        chunk = plain[1:]
        size = self._parts_size + len(chunk)
        if size > self._max_message:
            raise self._fail(ProtocolError(f"message exceeds {self._max_message} octets"))
        if flag == FLAG_MORE:
            self._parts.append(chunk)
            self._parts_size = size
            return None
        if not self._parts:
            return chunk
        self._parts.append(chunk)
        message = b"".join(self._parts)
        self._parts = []
        self._parts_size = 0
        return message

    def receive_data(self, data: bytes) -> list[bytes]:
        """Feed raw stream octets; return the whole messages they complete, in order.

        All or nothing: when a frame or record in ``data`` is bad, this raises
        (the channel closes) and returns none of the messages of this call.
        """
        self._check_open()
        try:
            frames = self._decoder.feed(data)
        except ProtocolError as exc:
            raise self._fail(exc) from None
        messages: list[bytes] = []
        for frame in frames:
            message = self.open(frame)
            if message is not None:
                messages.append(message)
        return messages

    def receive_eof(self) -> None:
        """The stream ended: close; :class:`~rspfed.errors.ProtocolError` if inside a message."""
        self._check_open()
        partial = bool(self._parts) or self._decoder.buffered > 0
        self.close()
        if partial:
            raise ProtocolError("end of stream inside a message")
