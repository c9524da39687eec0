"""The byte stream every pairing transport produces, and an in-memory pair.

Theory of operation
-------------------
A :class:`ByteStream` is the smallest thing the pairing layers need from a
transport: an ordered, reliable, bidirectional byte pipe with an orderly end
(:meth:`~ByteStream.receive` returns ``b""``) and a loud failure
(:class:`~rspfed.errors.TransportError` when the link is cut, reset or times
out).  LAN (:mod:`rspfed.transport.lan`) and BLE (:mod:`rspfed.transport.ble`)
both produce one; the sans-IO cores above (the secure channel, the pairing
connection) never see which.

:func:`memory_stream_pair` joins two in-memory ends, for tests of every layer.
It injects faults the way a real link fails:

* ``cut_after=N``: the link dies once ``N`` octets have crossed it, counting
  both directions together in the order they were sent (the offset into the
  whole conversation).  The send that crosses the limit delivers the octets
  before it and raises :class:`~rspfed.errors.TransportError`; afterwards
  every ``send`` and ``receive`` on either end raises it too, except that a
  receiver first reads the octets that were delivered before the cut (as with
  a TCP reset after data).  ``cut_after=0`` is a link dead from the start.
* ``tamper``: a callback that sees every chunk in flight (the sender's name and
  the octets) and returns the octets to deliver instead: the same ones to
  observe, altered ones to flip bits, ``b""`` to drop, or more to inject.  The
  cut counts the octets the *sender* sent, before tampering.
* :meth:`MemoryLink.cut` cuts the link on demand.
* ``max_chunk`` caps what one :meth:`~ByteStream.receive` returns, to exercise
  reassembly in the layers above (``max_chunk=1`` returns one octet a time).

Closing one end (:meth:`~ByteStream.aclose`) is an orderly end: the peer reads
what was sent and then ``b""``.  Sending to a peer that has closed drops the
octets silently, as a TCP socket accepts a first write after the peer's FIN;
sending on or receiving from an end that was itself closed raises
:class:`~rspfed.errors.TransportError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from rspfed.errors import TransportError, UsageError

__all__ = [
    "DEFAULT_MAX_RECEIVE",
    "ByteStream",
    "MemoryLink",
    "MemoryStream",
    "Tamper",
    "memory_stream_pair",
]

#: The most octets one ``receive()`` returns unless a transport says otherwise.
DEFAULT_MAX_RECEIVE = 65536

#: ``tamper(sender_name, octets) -> octets to deliver`` (see :func:`memory_stream_pair`).
Tamper = Callable[[str, bytes], bytes]


@runtime_checkable
class ByteStream(Protocol):
    """An ordered, reliable, bidirectional byte stream (one pairing attempt).

    ``send`` and ``receive`` raise :class:`~rspfed.errors.TransportError` when
    the link is cut, reset or times out; ``receive`` returns ``b""`` at an
    orderly end of stream and otherwise at least one octet.  ``aclose`` never
    raises and may be called more than once.  One task may send while another
    receives; two concurrent receives (or sends) are not supported.
    """

    async def send(self, data: bytes) -> None:
        """Send all of ``data`` (returns when the transport has accepted it)."""
        ...

    async def receive(self) -> bytes:
        """Return the next octets (at least one), or ``b""`` at end of stream."""
        ...

    async def aclose(self) -> None:
        """Close this end (an orderly end of stream for the peer)."""
        ...

    @property
    def peer(self) -> str:
        """A human-readable name of the other end, for display only."""
        ...


class MemoryLink:
    """The shared state of two :class:`MemoryStream` ends (one per pair).

    ``transcript`` lists every chunk in flight as ``(sender_name, octets
    delivered)``, in order; ``sent`` counts the octets sent over the link (both
    directions, before tampering); ``is_cut`` tells whether the link is dead.
    """

    def __init__(self, *, cut_after: int | None, tamper: Tamper | None) -> None:
        if cut_after is not None and cut_after < 0:
            raise UsageError("cut_after must be >= 0")
        self.cut_after = cut_after
        self.tamper = tamper
        self.sent = 0
        self.transcript: list[tuple[str, bytes]] = []
        self.is_cut = cut_after == 0
        self._ends: list[MemoryStream] = []

    def cut(self) -> None:
        """Cut the link now: both ends fail (after draining delivered octets)."""
        self.is_cut = True
        for end in self._ends:
            end._wake()

    def _error(self) -> TransportError:
        if self.cut_after is not None and self.sent >= self.cut_after:
            return TransportError(f"memory link cut after {self.cut_after} octets")
        return TransportError("memory link cut")


class MemoryStream:
    """One end of an in-memory :class:`ByteStream` (see :func:`memory_stream_pair`)."""

    def __init__(self, link: MemoryLink, name: str, max_chunk: int) -> None:
        self.link = link
        self.name = name
        self._max_chunk = max_chunk
        self._inbox = bytearray()
        self._event = asyncio.Event()
        self._closed = False
        self._peer_closed = False
        self._other: MemoryStream | None = None

    @property
    def peer(self) -> str:
        """``memory:<peer name>``."""
        return f"memory:{self._other.name if self._other else '?'}"

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called on this end."""
        return self._closed

    def _wake(self) -> None:
        self._event.set()

    async def send(self, data: bytes) -> None:
        """Deliver ``data`` to the peer (through ``tamper``, up to a cut)."""
        if self._closed:
            raise TransportError("memory stream is closed")
        link = self.link
        if link.is_cut:
            raise link._error()
        data = bytes(data)
        budget = None if link.cut_after is None else link.cut_after - link.sent
        passed = data if budget is None or budget >= len(data) else data[:budget]
        link.sent += len(passed)
        other = self._other
        assert other is not None
        if passed:
            delivered = link.tamper(self.name, passed) if link.tamper else passed
            link.transcript.append((self.name, delivered))
            if not other._closed:
                other._inbox += delivered
                other._wake()
        if link.cut_after is not None and link.sent >= link.cut_after:
            link.cut()
        if len(passed) < len(data):
            raise link._error()
        # Let the peer run, as a real transport would between writes.
        await asyncio.sleep(0)

    async def receive(self) -> bytes:
        """Return up to ``max_chunk`` delivered octets, ``b""`` at end of stream."""
        while True:
            if self._closed:
                raise TransportError("memory stream is closed")
            if self._inbox:
                chunk = bytes(self._inbox[: self._max_chunk])
                del self._inbox[: self._max_chunk]
                return chunk
            if self.link.is_cut:
                raise self.link._error()
            if self._peer_closed:
                return b""
            self._event.clear()
            await self._event.wait()

    async def aclose(self) -> None:
        """Close this end; the peer reads the rest and then ``b""``."""
        if self._closed:
            return
        self._closed = True
        self._inbox.clear()
        self._wake()
        other = self._other
        if other is not None:
            other._peer_closed = True
            other._wake()


def memory_stream_pair(
    *,
    cut_after: int | None = None,
    tamper: Tamper | None = None,
    max_chunk: int = DEFAULT_MAX_RECEIVE,
    names: tuple[str, str] = ("a", "b"),
) -> tuple[MemoryStream, MemoryStream]:
    """Two joined in-memory :class:`ByteStream` ends, with optional faults.

    ``cut_after``: the link dies after that many octets (both directions
    counted together); ``tamper(sender_name, octets) -> octets``: observe or
    alter each chunk in flight; ``max_chunk``: the most one ``receive()``
    returns; ``names``: the ends' names (``peer`` shows the other's).  Both
    ends share one :class:`MemoryLink` (``end.link``) with the transcript and
    :meth:`MemoryLink.cut`.  See the module documentation for the exact rules.
    """
    if max_chunk < 1:
        raise UsageError("max_chunk must be >= 1")
    link = MemoryLink(cut_after=cut_after, tamper=tamper)
    a = MemoryStream(link, names[0], max_chunk)
    b = MemoryStream(link, names[1], max_chunk)
    a._other, b._other = b, a
    link._ends = [a, b]
    return a, b
