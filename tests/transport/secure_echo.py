"""A small h11-style connection for transport tests: Noise NNpsk0 then records.

It composes G-crypto's sans-IO pieces (:class:`~rspfed.crypto.noise.HandshakeState`,
:func:`~rspfed.transfer.channel.encode_frame`, :class:`~rspfed.transfer.channel.FrameDecoder`,
:class:`~rspfed.transfer.channel.SecureChannel`) into what the driver runs, so
the LAN tests carry real encrypted records before the pairing connection
exists.  Events: :data:`PAIRED` once the handshake is done, then each message
received (``bytes``), then :data:`CLOSED` at an orderly end of stream.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from rspfed.crypto.noise import HandshakeState
from rspfed.errors import ProtocolError
from rspfed.transfer.channel import FrameDecoder, SecureChannel, encode_frame

__all__ = ["CLOSED", "NEED_DATA", "PAIRED", "PROLOGUE", "SecureEcho"]

NEED_DATA = "<need data>"
PAIRED = "<paired>"
CLOSED = "<closed>"
PROLOGUE = b"rspfed-transport-test"


class SecureEcho:
    """Initiator (joiner) or responder (offerer) of an NNpsk0 handshake, then messages."""

    def __init__(
        self, *, initiator: bool, psk: bytes, rand: Callable[[int], bytes] = os.urandom
    ) -> None:
        self._hs: HandshakeState | None = HandshakeState(
            initiator=initiator, prologue=PROLOGUE, psk=psk, rand=rand
        )
        self._frames = FrameDecoder()
        self._channel: SecureChannel | None = None
        self._out = bytearray()
        self._events: list[object] = []
        self._eof = False
        if initiator:
            self._out += encode_frame(self._hs.write_message())

    @property
    def paired(self) -> bool:
        return self._channel is not None

    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
            self._frames.feed_eof()  # ProtocolError inside a frame
            if self._channel is not None:
                self._channel.receive_eof()  # ProtocolError inside a message
            elif self._hs is not None:
                raise ProtocolError("end of stream during the handshake")
            self._events.append(CLOSED)
            return
        for frame in self._frames.feed(data):
            if self._channel is not None:
                message = self._channel.open(frame)
                if message is not None:
                    self._events.append(message)
            else:
                self._handshake_frame(frame)

    def _handshake_frame(self, frame: bytes) -> None:
        hs = self._hs
        assert hs is not None
        hs.read_message(frame)
        if not hs.complete:
            self._out += encode_frame(hs.write_message())
        if hs.complete:
            self._channel = SecureChannel.from_handshake(hs)
            self._hs = None
            self._events.append(PAIRED)

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> object:
        if self._events:
            return self._events.pop(0)
        return CLOSED if self._eof else NEED_DATA

    def send(self, event: object) -> None:
        if not isinstance(event, bytes) or self._channel is None:
            raise ProtocolError("send a message after pairing")
        self._out += self._channel.seal(event)
