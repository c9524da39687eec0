"""The ByteStream both BLE roles share: frames in and out, credits, EOF, link loss.

:class:`GattStream` is the asyncio half of :mod:`rspfed.transport.ble.fragment`.
A role supplies two coroutines, :meth:`GattStream._transmit` (one frame: a
write with response for the central, a notification for the peripheral) and
:meth:`GattStream._disconnect`, and calls :meth:`GattStream.frame_received`
from its ATT callback and :meth:`GattStream.link_lost` when the connection
drops.

Semantics (the :class:`~rspfed.transport.stream.ByteStream` contract):

* ``send(data)`` splits ``data`` into messages of at most ``max_message_size``
  octets and each message into frames; it returns when every frame was written
  (central: the peripheral answered each write) or notified (peripheral:
  within its credits).  ``send(b"")`` does nothing.
* ``receive()`` returns one whole message (so at least one octet), ``b""``
  after the peer's CLOSE frame (once every earlier message was read), and
  raises :class:`~rspfed.errors.TransportError` when the link was lost or the
  peer broke the framing rules (the cause is chained; the link is then torn
  down).  A link loss after the peer's CLOSE is not an error.
* ``aclose()`` sends CLOSE (CLOSE costs no credit), waits at most
  ``close_grace`` seconds for the peer's CLOSE or the link to drop, then
  disconnects.  It never raises and may be called again.
* Every wait (a write, a notification, a credit) also ends when the link is
  lost, so nothing hangs on a dead link.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import enum
from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from rspfed.errors import DecodeError, ProtocolError, RspfedError, TransportError
from rspfed.transport.ble.fragment import (
    ATT_MIN_MTU,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_WINDOW,
    CreditGate,
    CreditReturn,
    Fragmenter,
    FrameKind,
    Reassembler,
)

__all__ = ["GattRole", "GattStream"]

_T = TypeVar("_T")


class GattRole(enum.Enum):
    """Which end of the GATT link a :class:`GattStream` is."""

    CENTRAL = "central"
    PERIPHERAL = "peripheral"


class GattStream(abc.ABC):
    """A :class:`~rspfed.transport.stream.ByteStream` over two GATT characteristics."""

    def __init__(
        self,
        role: GattRole,
        *,
        peer: str,
        mtu: int = ATT_MIN_MTU,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        window: int = DEFAULT_WINDOW,
        close_grace: float = 2.0,
    ) -> None:
        self.role = role
        #: The discovery identifier whose service carries this stream.
        self.discovery_id: bytes | None = None
        self.mtu = mtu
        self.max_message_size = max_message_size
        self.close_grace = close_grace
        self._peer = peer
        self._tx = Fragmenter(max_message_size=max_message_size)
        self._rx = Reassembler(max_message_size=max_message_size)
        self._inbox: collections.deque[bytes] = collections.deque()
        self._wakeup = asyncio.Event()
        self._lost = asyncio.Event()
        self._error: TransportError | None = None
        self._send_lock = asyncio.Lock()
        self._closed = False
        # Peripheral: credits from the central, OPEN seen.
        self._gate = CreditGate()
        self._opened = asyncio.Event()
        # Central: credits to return.
        self._returns = CreditReturn(window)
        self._tasks: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- hooks
    @abc.abstractmethod
    async def _transmit(self, frame: bytes) -> None:
        """Put one frame on the air (write with response / notification)."""

    @abc.abstractmethod
    async def _disconnect(self) -> None:
        """Drop the connection (must not raise)."""

    # ------------------------------------------------------------ properties
    @property
    def peer(self) -> str:
        """``ble:<peer address>``, for display only."""
        return self._peer

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called."""
        return self._closed

    @property
    def is_lost(self) -> bool:
        """True once the link dropped or the framing failed."""
        return self._lost.is_set()

    @property
    def opened(self) -> asyncio.Event:
        """Set when the central's OPEN frame arrived (peripheral) or was sent (central)."""
        return self._opened

    # ------------------------------------------------------------- inbound
    def link_lost(self, reason: str) -> None:
        """The connection dropped (call from the disconnection callback)."""
        if self._error is None:
            self._error = TransportError(f"BLE link lost: {reason}")
        self._lost.set()
        self._wakeup.set()

    def _framing_failed(self, exc: RspfedError) -> None:
        error = TransportError(f"BLE framing error from the peer: {exc}")
        error.__cause__ = exc
        if self._error is None:
            self._error = error
        self._lost.set()
        self._wakeup.set()
        self._spawn(self._disconnect())

    def frame_received(self, data: bytes) -> None:
        """One frame arrived (written by the central / notified by the peripheral)."""
        if self._lost.is_set():
            return
        try:
            frame, message = self._rx.feed(bytes(data), self.mtu)
            self._dispatch(frame.kind, frame.body, message)
        except (DecodeError, ProtocolError) as exc:
            self._framing_failed(exc)

    def _dispatch(self, kind: FrameKind, body: bytes, message: bytes | None) -> None:
        central = self.role is GattRole.CENTRAL
        if kind is FrameKind.OPEN:
            if central or self._opened.is_set():
                raise ProtocolError("unexpected BLE OPEN frame")
            mtu = int.from_bytes(body[:2], "big")
            self.mtu = min(self.mtu, mtu) if self._local_mtu_known() else mtu
            self._gate.grant(int.from_bytes(body[2:], "big"))
            self._opened.set()
        elif not central and not self._opened.is_set():
            raise ProtocolError("BLE frame before OPEN")
        elif kind is FrameKind.CREDIT:
            if central:
                raise ProtocolError("unexpected BLE CREDIT frame")
            self._gate.grant(int.from_bytes(body, "big"))
        elif kind is FrameKind.DATA:
            if central:
                self._returns.fragment_buffered()
                self._flush_credits()
        elif kind is FrameKind.DATA_LAST:
            assert message is not None
            self._inbox.append(message)
            if central:
                self._returns.message_completed()
        # CLOSE: the reassembler remembers it.
        self._wakeup.set()

    def _local_mtu_known(self) -> bool:
        """Whether :attr:`mtu` already holds this side's negotiated ATT_MTU."""
        return True

    # ------------------------------------------------------------ outbound
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _flush_credits(self) -> None:
        due = self._returns.due()
        if due:
            self._spawn(self._send_credit(due))

    async def _send_credit(self, credits: int) -> None:
        try:
            async with self._send_lock:
                await self._guarded(self._transmit(self._tx.credit(credits)))
        except TransportError:
            pass  # the link is gone; receive() reports it

    async def _guarded(self, awaitable: Awaitable[_T]) -> _T:
        """Await ``awaitable`` unless the link is lost first (TransportError)."""
        if self._lost.is_set():
            if isinstance(awaitable, Coroutine):
                awaitable.close()  # never started: do not leave it un-awaited
            raise self._current_error()
        task: asyncio.Future[_T] = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            waiters: set[asyncio.Future[Any]] = {task, lost}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise self._current_error()
        try:
            return task.result()
        except RspfedError as exc:
            if isinstance(exc, TransportError):
                raise
            raise TransportError(f"BLE {self.role.value} write failed: {exc}") from exc
        except Exception as exc:  # the BLE stack's own errors, at the I/O boundary
            self.link_lost(f"{type(exc).__name__}: {exc}")
            raise TransportError(f"BLE {self.role.value} I/O failed: {exc}") from exc

    def _current_error(self) -> TransportError:
        return self._error or TransportError("BLE link lost")

    async def _wait_credit(self) -> None:
        while self._gate.credits == 0:
            if self._lost.is_set():
                raise self._current_error()
            self._wakeup.clear()
            await self._wakeup.wait()

    async def send(self, data: bytes) -> None:
        """Send ``data`` (TransportError when the link is lost or was closed)."""
        if self._closed:
            raise TransportError("BLE stream is closed")
        if self._lost.is_set():
            raise self._current_error()
        data = bytes(data)
        async with self._send_lock:
            if self.role is GattRole.PERIPHERAL:
                await self._guarded(self._opened.wait())
            for start in range(0, len(data), self.max_message_size):
                message = data[start : start + self.max_message_size]
                for frame in self._tx.fragment(message, self.mtu):
                    if self.role is GattRole.PERIPHERAL:
                        await self._wait_credit()
                        self._gate.take()
                    await self._guarded(self._transmit(frame))

    async def receive(self) -> bytes:
        """The next whole message, ``b""`` after the peer's CLOSE, TransportError if lost."""
        if self._closed:
            raise TransportError("BLE stream is closed")
        while True:
            if self._inbox:
                message = self._inbox.popleft()
                if self.role is GattRole.CENTRAL:
                    self._returns.message_consumed()
                    self._flush_credits()
                return message
            if self._rx.closed:
                return b""
            if self._lost.is_set():
                raise self._current_error()
            self._wakeup.clear()
            await self._wakeup.wait()

    async def aclose(self) -> None:
        """Send CLOSE, wait briefly for the peer's, disconnect (never raises)."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self._lost.is_set() and (self.role is GattRole.CENTRAL or self._opened.is_set()):
                async with asyncio.timeout(self.close_grace):
                    async with self._send_lock:
                        await self._guarded(self._transmit(self._tx.close()))
                    while not (self._rx.closed or self._lost.is_set()):
                        self._wakeup.clear()
                        await self._wakeup.wait()
        except (TimeoutError, RspfedError):
            pass
        finally:
            if self._error is None:
                self._error = TransportError("BLE stream is closed")
            self._lost.set()
            self._wakeup.set()
            await self._disconnect()
            for task in list(self._tasks):
                task.cancel()
