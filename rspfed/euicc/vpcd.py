"""Expose a software :class:`~rspfed.euicc.card.Card` to PC/SC through vsmartcard's ``vpcd``.

vsmartcard's ``vpcd`` is a ``pcscd`` reader driver (Debian package
``vsmartcard-vpcd``).  With ``pcscd`` running, the driver listens on TCP
port 35963 for slot 0 (reader ``Virtual PCD 00 00``) and 35964 for slot 1
(``Virtual PCD 00 01``); a *virtual card* connects to it as a TCP client and
the reader then reports a card present.  Every PC/SC application (pyscard,
``pcsc_scan``, ``scriptor``, lpac's PC/SC driver, pySim-shell) can then talk
to the card.

The wire protocol is symmetric framing: each message is a 2-byte big-endian
length followed by that many payload bytes.

==================  ==============================  =====================
from vpcd           meaning                         card answers
==================  ==============================  =====================
``00 01 00``        power off                       nothing
``00 01 01``        power on (cold reset)           nothing
``00 01 02``        reset (warm reset)              nothing
``00 01 04``        get ATR                         the ATR, framed
``LL LL <apdu>``    command APDU (2+ bytes)         the response APDU, framed
==================  ==============================  =====================

``pcscd`` polls for card presence with *get ATR* several times a second, also
while the card is powered off, and treats an empty answer (or a closed
connection) as "card removed".

This module has two layers:

- :class:`VpcdFraming`, a sans-IO framer: bytes from ``vpcd`` go in, events
  (:class:`PowerOff`, :class:`PowerOn`, :class:`Reset`, :class:`GetAtr`,
  :class:`Apdu`) come out; answers are framed with
  :meth:`VpcdFraming.frame_response`.
- :func:`serve_vpcd`, a thin asyncio shell that connects to ``vpcd``, drives
  a :class:`~rspfed.euicc.card.Card` with the events and reconnects with
  back-off when ``pcscd`` restarts.

Logs never carry APDU or ATR contents (they may hold PINs or keys): only
lengths and the instruction byte INS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Final, NoReturn

import attrs

from rspfed.errors import EncodeError, ProtocolError, TransportError, UsageError
from rspfed.euicc.card import Card

__all__ = [
    "VPCD_DEFAULT_PORT",
    "Apdu",
    "GetAtr",
    "PowerOff",
    "PowerOn",
    "Reset",
    "VpcdEvent",
    "VpcdFraming",
    "parse_vpcd_address",
    "serve_vpcd",
]

_log = logging.getLogger(__name__)

VPCD_DEFAULT_PORT: Final = 35963
"""TCP port of ``vpcd`` slot 0 (``CHANNELID 0x8C7B`` in ``/etc/reader.conf.d/vpcd``)."""

_VPCD_CTRL_OFF: Final = 0x00
_VPCD_CTRL_ON: Final = 0x01
_VPCD_CTRL_RESET: Final = 0x02
_VPCD_CTRL_ATR: Final = 0x04
_MAX_PAYLOAD: Final = 0xFFFF
# Answer to a command the card failed on internally (ISO/IEC 7816-4:
# "no precise diagnosis").
_SW_NO_PRECISE_DIAGNOSIS: Final = b"\x6f\x00"


@attrs.frozen
class PowerOff:
    """``vpcd`` removes power from the card (no answer expected)."""


@attrs.frozen
class PowerOn:
    """``vpcd`` powers the card up: a cold reset (no answer expected)."""


@attrs.frozen
class Reset:
    """``vpcd`` asks for a warm reset (no answer expected)."""


@attrs.frozen
class GetAtr:
    """``vpcd`` asks for the ATR; answer with :meth:`VpcdFraming.frame_response`."""


@attrs.frozen
class Apdu:
    """A command APDU; answer with the response APDU (data + SW1 SW2)."""

    apdu: bytes = attrs.field(repr=lambda value: f"<{len(value)} bytes>")
    """The command APDU as ``vpcd`` sent it (at least 2 bytes)."""


VpcdEvent = PowerOff | PowerOn | Reset | GetAtr | Apdu
"""One message from ``vpcd``."""

_CONTROL_EVENTS: Final[dict[int, VpcdEvent]] = {
    _VPCD_CTRL_OFF: PowerOff(),
    _VPCD_CTRL_ON: PowerOn(),
    _VPCD_CTRL_RESET: Reset(),
    _VPCD_CTRL_ATR: GetAtr(),
}


class VpcdFraming:
    """Sans-IO framer for the card side of the ``vpcd`` protocol.

    Feed whatever the socket returned to :meth:`receive_data` (any split of
    the stream, a half frame included) and take complete messages with
    :meth:`next_event` until it returns ``None``.  A malformed frame (length
    0, or a 1-byte control message with an unknown code) makes
    :meth:`next_event` raise :class:`~rspfed.errors.ProtocolError`; the
    framer is then broken and keeps raising, because the stream cannot be
    resynchronised: close the connection.

    Memory is bounded: at most one frame (2 + 65535 bytes) is assembled at a
    time, and unconsumed bytes are only what the caller fed.
    """

    __slots__ = ("_buffer", "_error", "_offset")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._offset = 0  # stream offset of _buffer[0], for error messages
        self._error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Number of bytes received but not yet returned as an event.

        Non-zero at end of stream means the peer closed mid-frame.
        """
        return len(self._buffer)

    def receive_data(self, data: bytes) -> None:
        """Append bytes received from ``vpcd``."""
        self._buffer += data

    def next_event(self) -> VpcdEvent | None:
        """Return the next complete message, or ``None`` if more bytes are needed.

        Raises :class:`~rspfed.errors.ProtocolError` on a malformed frame.
        """
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        length = int.from_bytes(buffer[:2], "big")
        if length == 0:
            self._fail("empty vpcd frame")
        if len(buffer) < 2 + length:
            return None
        payload = bytes(buffer[2 : 2 + length])
        event: VpcdEvent
        if length == 1:
            control = _CONTROL_EVENTS.get(payload[0])
            if control is None:
                self._fail(f"unknown vpcd control code 0x{payload[0]:02X}")
            event = control
        else:
            event = Apdu(payload)
        del buffer[: 2 + length]
        self._offset += 2 + length
        return event

    def _fail(self, reason: str) -> NoReturn:
        self._error = ProtocolError(f"{reason} at stream offset {self._offset}")
        raise self._error

    @staticmethod
    def frame_response(payload: bytes) -> bytes:
        """Frame an answer (ATR or response APDU) for ``vpcd``.

        An empty payload is allowed: as the answer to :class:`GetAtr` it
        tells ``vpcd`` that no card is present.  Raises
        :class:`~rspfed.errors.EncodeError` if the payload exceeds 65535 bytes.
        """
        if len(payload) > _MAX_PAYLOAD:
            raise EncodeError(
                f"{len(payload)} bytes do not fit a vpcd frame (at most {_MAX_PAYLOAD})",
                type_name="vpcd frame",
            )
        return len(payload).to_bytes(2, "big") + payload


class _Session:
    """Drives one :class:`Card` with the events of one ``vpcd`` connection."""

    def __init__(self, card: Card) -> None:
        self.card = card
        self.atr: bytes | None = None
        self.powered = False

    def handle(self, event: VpcdEvent) -> bytes | None:
        """Apply ``event`` to the card; return the unframed answer, if any."""
        card = self.card
        if isinstance(event, Apdu):
            return self._transmit(event.apdu)
        if isinstance(event, GetAtr):
            if self.atr is None:
                # vpcd polls for the ATR before it ever powers the card up.
                # Learn it with a power cycle, which leaves the card as the
                # reader sees it: unpowered.
                self.atr = card.power_on()
                card.power_off()
            _log.debug("vpcd: get ATR (%d bytes)", len(self.atr))
            return self.atr
        if isinstance(event, PowerOn):
            _log.debug("vpcd: power on")
            self.atr = card.power_on()
            self.powered = True
        elif isinstance(event, Reset):
            _log.debug("vpcd: reset")
            self.atr = card.reset()
            self.powered = True
        else:
            _log.debug("vpcd: power off")
            card.power_off()
            self.powered = False
        return None

    def _transmit(self, apdu: bytes) -> bytes:
        ins = f"{apdu[1]:02X}"  # Apdu always holds at least 2 bytes
        try:
            rapdu = self.card.transmit(apdu)
        except Exception as exc:
            # Card.transmit must answer with a status word, never raise.  Do
            # not take pcscd down with us; the message is not logged, as it
            # might quote the command.
            _log.error(
                "vpcd: card raised %s on INS %s (%d bytes); answering 6F00",
                type(exc).__name__,
                ins,
                len(apdu),
            )
            return _SW_NO_PRECISE_DIAGNOSIS
        if len(rapdu) > _MAX_PAYLOAD:
            _log.error(
                "vpcd: response to INS %s is %d bytes, over the vpcd limit; answering 6F00",
                ins,
                len(rapdu),
            )
            return _SW_NO_PRECISE_DIAGNOSIS
        _log.debug("vpcd: APDU INS %s (%d bytes) -> %d bytes", ins, len(apdu), len(rapdu))
        return rapdu

    def disconnected(self) -> None:
        """The connection ended: to the card, that is removal from the reader."""
        if self.powered:
            self.card.power_off()
            self.powered = False


def _quickack(writer: asyncio.StreamWriter) -> Callable[[], None]:
    """Return a function that turns off delayed ACKs on the socket until its next read.

    vpcd releases from Debian 12 and earlier send a frame's length and its
    payload in two ``send`` calls without ``TCP_NODELAY``: Nagle holds the
    payload back until the length is acknowledged, and a delayed ACK (40 ms
    on Linux) would add that to every message.  ``TCP_QUICKACK`` (Linux
    only) is cleared by the kernel after use, so it is set again before each
    read.  Elsewhere this is a no-op.
    """
    sock = writer.get_extra_info("socket")
    option = getattr(socket, "TCP_QUICKACK", None)
    if sock is None or option is None:
        return lambda: None

    def quickack() -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, 1)

    return quickack


async def _serve_connection(
    card: Card, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Serve one connection until EOF; raise ProtocolError on a malformed frame."""
    framing = VpcdFraming()
    session = _Session(card)
    quickack = _quickack(writer)
    try:
        while True:
            quickack()
            data = await reader.read(65536)
            if not data:
                if framing.buffered:
                    _log.warning(
                        "vpcd: connection closed inside a frame (%d bytes pending)",
                        framing.buffered,
                    )
                return
            framing.receive_data(data)
            while (event := framing.next_event()) is not None:
                answer = session.handle(event)
                if answer is not None:
                    writer.write(VpcdFraming.frame_response(answer))
            await writer.drain()
    finally:
        session.disconnected()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _sleep_or_stop(stop: asyncio.Event, delay: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)


_BACKOFF_FIRST: Final = 0.1
_BACKOFF_MAX: Final = 5.0
# pcscd polls card presence every 400 ms (PCSCLITE_STATUS_POLL_RATE).  A card
# re-inserted before a poll has seen the slot empty is taken for the old one;
# if an application had a command fail on the old one, pcscd then keeps the
# slot "mute" and refuses connections until the next removal.
_REINSERT_DELAY: Final = 0.5


async def _serve_forever(
    card: Card, host: str, port: int, reconnect: bool, stop: asyncio.Event
) -> None:
    backoff = _BACKOFF_FIRST
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            if not reconnect:
                raise TransportError(f"cannot connect to vpcd at {host}:{port}: {exc}") from exc
            _log.info(
                "vpcd: %s:%d not reachable (%s); retrying in %.1f s", host, port, exc, backoff
            )
            await _sleep_or_stop(stop, backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)
            continue
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _log.info("vpcd: card connected to %s:%d", host, port)
        try:
            await _serve_connection(card, reader, writer)
        except ProtocolError as exc:
            _log.warning("vpcd: closing connection: %s", exc)
            if not reconnect:
                raise
        except OSError as exc:
            _log.warning("vpcd: connection lost: %s", exc)
            if not reconnect:
                raise TransportError(f"vpcd connection to {host}:{port} lost: {exc}") from exc
        else:
            _log.info("vpcd: %s:%d closed the connection", host, port)
            if not reconnect:
                return
            # A clean close after a good session: pcscd is probably
            # restarting; come back quickly.
            backoff = _BACKOFF_FIRST
        finally:
            await _close(writer)
        await _sleep_or_stop(stop, max(backoff, _REINSERT_DELAY))
        backoff = min(backoff * 2, _BACKOFF_MAX)


def parse_vpcd_address(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """Parse ``[HOST:]PORT`` (as given to ``--vpcd``) into ``(host, port)``.

    ``35963`` -> ``("127.0.0.1", 35963)``; ``pcscd-host:35964``; an IPv6
    literal in brackets, ``[::1]:35963``.  Raises
    :class:`~rspfed.errors.UsageError` for anything else.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host = default_host
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise UsageError(f"vpcd address {text!r}: write an IPv6 host in brackets")
    if not host:
        raise UsageError(f"vpcd address {text!r} is not [HOST:]PORT")
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise UsageError(f"vpcd address {text!r}: port must be 1 to 65535")
    return host, int(port_text)


async def serve_vpcd(
    card: Card,
    host: str = "127.0.0.1",
    port: int = VPCD_DEFAULT_PORT,
    *,
    reconnect: bool = True,
    stop: asyncio.Event | None = None,
) -> None:
    """Insert ``card`` into the ``vpcd`` reader at ``host:port`` and serve it.

    Connects to the ``vpcd`` driver of a running ``pcscd`` and answers its
    messages with ``card`` until ``stop`` is set (or the task is cancelled).
    The card's methods run on the event loop thread, one at a time.

    Closing the connection is, to the card, removal from the reader: a card
    that ``vpcd`` had powered is powered off.

    With ``reconnect`` (the default), a refused or lost connection (``pcscd``
    not yet started, or restarting) and a malformed frame are logged and the
    connection is tried again with exponential back-off (0.1 s doubling up to
    5 s); after a connection that was up, at least 0.5 s pass first, so that
    ``pcscd``, which polls for the card every 400 ms, sees the slot empty
    before the card comes back.  Without it, the first failure raises
    :class:`~rspfed.errors.TransportError` (connection refused or cut) or
    :class:`~rspfed.errors.ProtocolError` (malformed frame), and a clean close
    by ``vpcd`` returns.

    ``port`` is 35963 for slot 0 of the default configuration and 35964 for
    slot 1.
    """
    if not 0 < port < 65536:
        raise UsageError(f"vpcd port {port} is not a TCP port")
    if stop is None:
        stop = asyncio.Event()
    server = asyncio.ensure_future(_serve_forever(card, host, port, reconnect, stop))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({server, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (server, stopped):
            task.cancel()
        await asyncio.gather(server, stopped, return_exceptions=True)
    if server.done() and not server.cancelled():
        server.result()
