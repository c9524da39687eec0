"""The companion ES10 relay (issue H): both ends of it.

* The watch's side, :class:`CompanionResponder`: which relayed requests reach
  its eUICC (below).
* The phone's side, :class:`RemoteEs10`: the watch's eUICC as an
  :class:`~rspfed.lpa.es10.Es10` behind the paired channel, so the unchanged
  LPA (:class:`~rspfed.lpa.lpa.Lpa`, :func:`~rspfed.lpa.download.download`)
  downloads into and manages the watch's eUICC.  The LPA's ``transceive`` is
  synchronous and the channel asynchronous: the channel stays on the event
  loop that owns its stream (the *channel loop*), the LPA runs in a worker
  thread (with its own event loop for its ES9+ HTTP), and each
  :meth:`RemoteEs10.transceive` there is one ``es10Request`` /
  ``es10Response`` exchange scheduled on the channel loop
  (``asyncio.run_coroutine_threadsafe(...).result(timeout)``).  One request
  is outstanding at a time.  ``es10Refused`` becomes a
  :class:`~rspfed.errors.PolicyError`, anything else out of order a
  :class:`~rspfed.errors.ProtocolError`, no answer in time a
  :class:`~rspfed.errors.TransportError`.

::

    remote = RemoteEs10(link, asyncio.get_running_loop(), timeout=60)

    def work() -> DownloadResult:              # in a worker thread
        lpa = Lpa(remote, settings=settings)
        return asyncio.run(lpa.download(code, device_info=watch_device_info))

    result = await asyncio.to_thread(work)     # the channel loop stays free

The watch's side.

A companion watch answers its phone's relayed ES10 requests
(:class:`~rspfed.transfer.messages.Es10Request`) with its own eUICC.  The
phone is the watch's LPA and SGP.22 trusts an LPA for local profile
management, so the relay carries what an LPA sends for a download and for
managing profiles; what only the device's own user should do stays local.
:class:`CompanionResponder` checks each request's outer tag against
:data:`ES10_RELAY_TAGS` before the eUICC sees it:

======================  ===============================================
allowed                 ES10 functions (SGP.22 v2 §5.6, §5.7)
======================  ===============================================
download                GetEUICCInfo1/2 (``BF20``/``BF22``), GetEUICCChallenge
                        (``BF2E``), AuthenticateServer (``BF38``), PrepareDownload
                        (``BF21``), CancelSession (``BF41``),
                        LoadBoundProfilePackage (``BF36`` and the segments
                        ``A0``-``A3``, ``86``-``88``), GetRAT (``BF43``)
profiles                GetProfilesInfo (``BF2D``), Enable/Disable/DeleteProfile
                        (``BF31``-``BF33``), SetNickname (``BF29``), GetEuiccData
                        (``BF3E``), GetEuiccConfiguredAddresses (``BF3C``)
notifications           ListNotification (``BF28``), RetrieveNotificationsList
                        (``BF2B``), RemoveNotificationFromList (``BF30``)
======================  ===============================================

Refused with ``notAllowed``: eUICCMemoryReset (``BF34``), SetDefaultDpAddress
(``BF3F``) and LoadCRL (``BF35``) — a reset or a changed default SM-DP+ is the
watch owner's decision, made on the watch — and anything else.  The eUICC's own
checks (signatures, MACs, profile state, PPRs) still apply to what passes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

from rspfed.errors import PolicyError, ProtocolError, RspfedError, TransportError, UsageError
from rspfed.transfer.connection import Es10Answered, Es10Refused, Event
from rspfed.transfer.messages import Es10Refusal, Es10RefusalReason, Es10Request, Es10Response

if TYPE_CHECKING:
    from rspfed.lpa.es10 import Es10

__all__ = [
    "ES10_RELAY_TAGS",
    "CompanionResponder",
    "Es10Channel",
    "RemoteEs10",
    "request_tag",
]

ES10_RELAY_TAGS: Mapping[bytes, str] = MappingProxyType(
    {
        bytes.fromhex("BF20"): "GetEUICCInfo1",
        bytes.fromhex("BF22"): "GetEUICCInfo2",
        bytes.fromhex("BF2E"): "GetEUICCChallenge",
        bytes.fromhex("BF38"): "AuthenticateServer",
        bytes.fromhex("BF21"): "PrepareDownload",
        bytes.fromhex("BF41"): "CancelSession",
        bytes.fromhex("BF36"): "LoadBoundProfilePackage",
        bytes.fromhex("A0"): "LoadBoundProfilePackage (ConfigureISDP)",
        bytes.fromhex("A1"): "LoadBoundProfilePackage (StoreMetadata)",
        bytes.fromhex("A2"): "LoadBoundProfilePackage (ReplaceSessionKeys)",
        bytes.fromhex("A3"): "LoadBoundProfilePackage (profile elements)",
        bytes.fromhex("86"): "LoadBoundProfilePackage (segment)",
        bytes.fromhex("87"): "LoadBoundProfilePackage (segment)",
        bytes.fromhex("88"): "LoadBoundProfilePackage (segment)",
        bytes.fromhex("BF43"): "GetRAT",
        bytes.fromhex("BF2D"): "GetProfilesInfo",
        bytes.fromhex("BF31"): "EnableProfile",
        bytes.fromhex("BF32"): "DisableProfile",
        bytes.fromhex("BF33"): "DeleteProfile",
        bytes.fromhex("BF29"): "SetNickname",
        bytes.fromhex("BF3E"): "GetEuiccData",
        bytes.fromhex("BF3C"): "GetEuiccConfiguredAddresses",
        bytes.fromhex("BF28"): "ListNotification",
        bytes.fromhex("BF2B"): "RetrieveNotificationsList",
        bytes.fromhex("BF30"): "RemoveNotificationFromList",
    }
)
"""Outer tags of the ES10 requests a phone may relay to its watch, with their names."""


def request_tag(der: bytes) -> bytes:
    """The outer tag of a request (one octet, or two for a ``xF`` high-tag-number first octet).

    ``b""`` for an empty or truncated request.
    """
    if not der:
        return b""
    if der[0] & 0x1F == 0x1F:
        return der[:2] if len(der) >= 2 else b""
    return der[:1]


class CompanionResponder:
    """Answers the phone's relayed ES10 requests with the watch's eUICC (module doc).

    ``answer`` returns the eUICC's :class:`~rspfed.transfer.messages.Es10Response`,
    or an :class:`~rspfed.transfer.messages.Es10Refusal`: ``notAllowed`` for a
    request outside :data:`ES10_RELAY_TAGS` (the eUICC never sees it),
    ``error`` when the eUICC link fails with an :class:`~rspfed.errors.RspfedError`
    (a malformed request, a card that cannot answer).  It never raises.
    ``refused`` counts the refusals.
    """

    def __init__(self, es10: Es10) -> None:
        self._es10 = es10
        self.refused = 0

    def allowed(self, request: Es10Request) -> bool:
        """Whether ``request`` may reach the eUICC."""
        return request_tag(request.der) in ES10_RELAY_TAGS

    def answer(self, request: Es10Request) -> Es10Response | Es10Refusal:
        """The eUICC's answer to ``request``, or the refusal (see the class doc)."""
        if not self.allowed(request):
            self.refused += 1
            return Es10Refusal(Es10RefusalReason.NOT_ALLOWED)
        try:
            return Es10Response(self._es10.transceive(request.der))
        except RspfedError:
            self.refused += 1
            return Es10Refusal(Es10RefusalReason.ERROR)


# --------------------------------------------------------------------------
# The phone's side


class Es10Channel(Protocol):
    """What :class:`RemoteEs10` needs of the paired channel (after the companion
    info): send a message, and the next event of the connection.

    The companion flows' link (a :class:`~rspfed.transfer.connection.PairingConnection`
    driven over a :class:`~rspfed.transport.stream.ByteStream`) is one.
    """

    async def send(self, message: Es10Request) -> None:
        """Encrypt and send ``message``."""

    async def next_event(self) -> Event:
        """The connection's next event (reading the stream as needed)."""


class RemoteEs10:
    """The watch's eUICC behind the paired channel, as an :class:`~rspfed.lpa.es10.Es10`.

    ``channel`` is the phone's side of a companion session (the companion
    info exchanged); ``loop`` the event loop it runs on; ``timeout`` bounds
    each exchange (None: no bound).  :meth:`transceive` is for the LPA in
    another thread; on the channel loop itself await :meth:`exchange`.
    :attr:`count` counts the exchanges.  See the module doc.
    """

    def __init__(
        self,
        channel: Es10Channel,
        loop: asyncio.AbstractEventLoop,
        *,
        timeout: float | None = None,
    ) -> None:
        if timeout is not None and timeout <= 0:
            raise UsageError("timeout must be > 0 (or None)")
        self._channel = channel
        self._loop = loop
        self._timeout = timeout
        self._lock: asyncio.Lock | None = None
        self.count = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The channel loop."""
        return self._loop

    async def exchange(self, request_der: bytes) -> bytes:
        """One relayed request and the watch eUICC's response (on the channel loop).

        :class:`~rspfed.errors.PolicyError` when the watch refuses it,
        :class:`~rspfed.errors.ProtocolError` for any other answer; the
        channel's own errors (:class:`~rspfed.errors.TransportError`,
        :class:`~rspfed.errors.IntegrityError`) pass through.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            await self._channel.send(Es10Request(bytes(request_der)))
            event = await self._channel.next_event()
            self.count += 1
        if isinstance(event, Es10Answered):
            return event.message.der
        if isinstance(event, Es10Refused):
            tag = request_tag(request_der).hex().upper() or "(empty)"
            reason = event.message.reason.value
            raise PolicyError(f"the watch refused the ES10 request {tag} ({reason})")
        raise ProtocolError(f"expected an ES10 response, got {type(event).__name__}")

    def transceive(self, request_der: bytes) -> bytes:
        """One ES10 request to the watch's eUICC (the :class:`~rspfed.lpa.es10.Es10`
        protocol), from a thread other than the channel loop's.

        :class:`~rspfed.errors.UsageError` when called on the channel loop
        (it would wait on itself); :class:`~rspfed.errors.TransportError`
        when the watch does not answer within the timeout or the exchange
        is cancelled.
        """
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise UsageError("RemoteEs10.transceive on the channel loop: await exchange() there")
        if self._loop.is_closed():
            raise TransportError("the companion channel's event loop is closed")
        future = asyncio.run_coroutine_threadsafe(self.exchange(bytes(request_der)), self._loop)
        try:
            return future.result(self._timeout)
        except TimeoutError:
            future.cancel()
            raise TransportError("the watch did not answer the ES10 request in time") from None
        except concurrent.futures.CancelledError:
            raise TransportError("the ES10 exchange with the watch was cancelled") from None
