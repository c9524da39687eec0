"""Run an h11-style sans-IO connection over a :class:`~rspfed.transport.stream.ByteStream`.

Theory of operation
-------------------
The pairing protocol (:class:`rspfed.transfer.connection.PairingConnection`)
is sans-IO, h11 style: it is fed octets (``receive_data``, ``b""`` for end of
stream), hands out octets to write (``data_to_send``), yields events
(``next_event``, returning a *need data* sentinel when it must read more) and
accepts events to send (``send``).  :class:`Driver` is the only I/O loop
around it, written against the :class:`SansIOConnection` protocol so that it
works with any such object (this module imports nothing from
:mod:`rspfed.transfer`)::

    driver = Driver(conn, stream, need_data=NEED_DATA, timeout=30)
    async with driver:
        event = await driver.next_event()          # flushes, reads as needed
        await driver.send(JoinRequest(...))        # conn.send + flush

Rules:

* Before each read and before returning an event, the driver writes whatever
  ``data_to_send`` holds (also what ``next_event`` queued while answering a
  handshake message and returning *need data*), so replies go out in the
  order the connection made them.
* ``timeout`` (or the per-call ``timeout=``, which overrides it) bounds the
  wait for one event (every read and write inside it); it ends in
  :class:`~rspfed.errors.TransportError`.  ``None`` waits for ever (use it
  only where a human decides, and bound that elsewhere).
* When the transport fails (cut, reset, time-out) the driver tells the
  connection: its ``abort()`` when it has one (as
  :class:`~rspfed.transfer.connection.PairingConnection` does: closed, offer
  burnt, nothing sent), else ``receive_data(b"")`` (what h11 asks after a
  reset); then it closes the stream and raises the
  :class:`~rspfed.errors.TransportError`.
* When the connection raises (a bad record, a refused message), the driver
  still writes what the connection queued before failing (a refusal or bye
  for the peer, best effort within a short bound), closes the stream and
  re-raises.  Exception: a :class:`~rspfed.errors.LocalError` from
  ``send`` (a message the state does not allow: nothing was queued) leaves
  everything open.
* After the connection reported end of stream the driver never reads again:
  a connection that keeps asking for data after ``b""`` makes the driver
  raise :class:`~rspfed.errors.TransportError` instead of looping.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, Generic, Literal, Protocol, TypeVar

from rspfed.errors import LocalError, RspfedError, StateError, TransportError
from rspfed.transport.stream import ByteStream

__all__ = ["Driver", "SansIOConnection"]

E_co = TypeVar("E_co", covariant=True)
E = TypeVar("E")
T = TypeVar("T")


class _Default(enum.Enum):
    DEFAULT = "default"


#: Per-call ``timeout`` default: use the driver's ``timeout``.
_DEFAULT: Final = _Default.DEFAULT
_Timeout = float | None | Literal[_Default.DEFAULT]

#: How long the driver tries to deliver a connection's last words after a failure.
_FAREWELL_TIMEOUT = 1.0


class SansIOConnection(Protocol[E_co]):
    """What :class:`Driver` needs from a sans-IO connection (h11 style)."""

    def receive_data(self, data: bytes) -> None:
        """Feed octets read from the peer; ``b""`` means end of stream."""
        ...

    def data_to_send(self) -> bytes:
        """Take the octets queued for the peer (``b""`` when none)."""
        ...

    def next_event(self) -> E_co:
        """The next event, or the connection's *need data* sentinel."""
        ...

    def send(self, event: Any) -> object:
        """Queue an event for the peer (its octets come out of ``data_to_send``)."""
        ...


class Driver(Generic[E]):
    """Drive one :class:`SansIOConnection` over one :class:`ByteStream`.

    ``need_data`` is the connection's sentinel for "feed me more";
    ``timeout`` the default bound, in seconds, on one :meth:`next_event`
    or :meth:`send` (``None``: unbounded).  The driver owns the stream: it
    closes it on failure and in :meth:`aclose` (also on leaving ``async with``).
    """

    def __init__(
        self,
        conn: SansIOConnection[E],
        stream: ByteStream,
        *,
        need_data: object,
        timeout: float | None = 30.0,
    ) -> None:
        self.conn = conn
        self.stream = stream
        self.need_data = need_data
        self.timeout = timeout
        self._eof = False
        self._closed = False
        #: Octets written to / read from the stream (for figures and tests).
        self.octets_sent = 0
        self.octets_received = 0

    async def __aenter__(self) -> Driver[E]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True once the stream was closed (after a failure or :meth:`aclose`)."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise StateError("driver is closed")

    async def _write_pending(self) -> None:
        data = self.conn.data_to_send()
        if data:
            await self.stream.send(data)
            self.octets_sent += len(data)

    async def _fail_transport(self, exc: TransportError) -> TransportError:
        if not self._eof:
            self._eof = True
            abort = getattr(self.conn, "abort", None)
            with contextlib.suppress(RspfedError):
                if callable(abort):
                    abort()
                else:
                    self.conn.receive_data(b"")
        await self.aclose()
        return exc

    async def _fail_connection(self) -> None:
        with contextlib.suppress(RspfedError, TimeoutError):
            async with asyncio.timeout(_FAREWELL_TIMEOUT):
                await self._write_pending()
        await self.aclose()

    async def _guarded(self, step: Callable[[], Awaitable[T]], timeout: _Timeout) -> T:
        """Run ``step()`` under the time-out and the failure rules."""
        self._check_open()
        limit = self.timeout if timeout is _DEFAULT else timeout
        try:
            async with asyncio.timeout(limit):
                return await step()
        except TimeoutError:
            raise await self._fail_transport(
                TransportError(f"no progress within {limit} s")
            ) from None
        except TransportError as exc:
            raise await self._fail_transport(exc) from exc
        except RspfedError:
            await self._fail_connection()
            raise

    async def flush(self, *, timeout: _Timeout = _DEFAULT) -> None:
        """Write whatever the connection has queued."""

        async def step() -> None:
            await self._write_pending()

        await self._guarded(step, timeout)

    async def next_event(self, *, timeout: _Timeout = _DEFAULT) -> E:
        """Flush, then read until the connection yields an event (never ``need_data``)."""

        async def step() -> E:
            while True:
                await self._write_pending()
                event = self.conn.next_event()
                # next_event may queue octets (a handshake reply) and still need data.
                await self._write_pending()
                if event is not self.need_data:
                    return event
                if self._eof:
                    raise TransportError("connection wants data after end of stream")
                data = await self.stream.receive()
                self.octets_received += len(data)
                if not data:
                    self._eof = True
                self.conn.receive_data(data)

        return await self._guarded(step, timeout)

    async def send(self, event: object, *, timeout: _Timeout = _DEFAULT) -> None:
        """``conn.send(event)``, then write its octets.

        A :class:`~rspfed.errors.LocalError` from ``conn.send`` (the caller's
        mistake, e.g. a message the state does not allow) propagates and leaves
        the driver and the stream open; any other error follows the failure
        rules.
        """
        self._check_open()
        try:
            self.conn.send(event)
        except LocalError:
            raise
        except RspfedError:
            await self._fail_connection()
            raise
        await self.flush(timeout=timeout)

    async def aclose(self) -> None:
        """Close the stream (idempotent; never raises)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RspfedError, OSError):
            await self.stream.aclose()
