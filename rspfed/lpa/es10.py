"""The LPA's link to the eUICC: one ES10 function = one DER request in, one DER response out.

:class:`Es10` is the interface the LPA drives (SGP.22 §5.7: ES10a, ES10b,
ES10c all travel as STORE DATA to the ISD-R).  Three implementations:

:class:`InProcessEs10`
    calls an in-process ISD-R (``rspfed.euicc.isdr.IsdR.handle``) directly.
:class:`ApduEs10`
    speaks APDUs to a card object with ``transmit(apdu) -> response``
    (``rspfed.euicc.card.Card``): MANAGE CHANNEL opens a logical channel,
    SELECT by AID picks the ISD-R on it (``A0000005591010FFFFFFFF8900000100``),
    each request goes as STORE DATA blocks of at most 255 octets (P1 ``11``
    for all blocks but the last, ``91`` for the last, P2 the block number;
    SGP.22 §5.7.2, GlobalPlatform Card Specification §11.11), the answer is
    collected with GET RESPONSE while the card says ``61xx`` and a command is
    repeated with ``Le = xx`` on ``6Cxx`` (ISO/IEC 7816-4 §5.1.3, needed over
    T=0).  :meth:`ApduEs10.close` closes the channel.  After EnableProfile and
    DisableProfile (a profile switch resets the card, as a REFRESH would) the
    channel is closed and opened again for the next request; a first block
    answered ``6881``/``6D00``/``6E00`` (channel or selection lost) is sent
    once more on a fresh channel.
:class:`PcscEs10`
    the same APDU logic through a PC/SC reader (pyscard).

Failures: a status word other than ``9000`` / ``91xx`` on STORE DATA is a
:class:`~rspfed.errors.ProtocolError` naming the SW (``6A80``: the eUICC
refused the request as malformed); a reader or card that stops answering is a
:class:`~rspfed.errors.TransportError`.  The in-process link maps the ISD-R's
``DecodeError`` to the same ``ProtocolError`` so that callers see one
behaviour whatever the link.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Final, Protocol, runtime_checkable

from rspfed.errors import DecodeError, ProtocolError, TransportError, UsageError

__all__ = [
    "ISD_R_AID",
    "STORE_DATA_BLOCK",
    "ApduEs10",
    "Es10",
    "InProcessEs10",
    "PcscEs10",
    "SupportsHandle",
    "SupportsTransmit",
]

#: The ISD-R's AID (SGP.22 §2.2.3).
ISD_R_AID: Final = bytes.fromhex("A0000005591010FFFFFFFF8900000100")
#: Largest data field of one STORE DATA block (short APDUs).
STORE_DATA_BLOCK: Final = 255
_MAX_BLOCKS: Final = 256
_MAX_GET_RESPONSE: Final = 4096  # guard against a card that answers 61xx forever


@runtime_checkable
class Es10(Protocol):
    """The eUICC as the LPA sees it: ES10x functions, DER in, DER out."""

    def transceive(self, request_der: bytes) -> bytes:
        """Send one ES10 request (complete DER) and return the eUICC's response DER.

        An empty answer is legal for intermediate LoadBoundProfilePackage blocks.
        """
        ...


class SupportsHandle(Protocol):
    """An in-process ISD-R (``rspfed.euicc.isdr.IsdR``)."""

    def handle(self, request: bytes) -> bytes:
        """Answer one ES10 request."""
        ...


class SupportsTransmit(Protocol):
    """A card: one command APDU in, the response APDU (data + SW1 SW2) out."""

    def transmit(self, apdu: bytes) -> bytes:
        """Exchange one APDU."""
        ...


class InProcessEs10:
    """ES10 straight into an in-process ISD-R (no APDUs)."""

    def __init__(self, isdr: SupportsHandle) -> None:
        self._isdr = isdr

    def transceive(self, request_der: bytes) -> bytes:
        """One ES10 function; a request the ISD-R cannot decode is a :class:`ProtocolError`."""
        try:
            return self._isdr.handle(bytes(request_der))
        except DecodeError as exc:
            raise ProtocolError(f"the eUICC refused the request as malformed ({exc})") from None


def _cla(channel: int, proprietary: bool) -> int:
    """Class byte for ``channel`` (ISO/IEC 7816-4 §5.4.1; ETSI TS 102 221 §10.1.1)."""
    if channel < 4:
        return (0x80 if proprietary else 0x00) | channel
    return (0xC0 if proprietary else 0x40) | (channel - 4)


#: Status words meaning "this channel has no ISD-R selected any more" (the request was
#: not processed): logical channel not open, instruction or class not supported.
_LOST: Final = frozenset({0x6881, 0x6D00, 0x6E00})
#: ES10c EnableProfile / DisableProfile: the eUICC resets after a switch.
_SWITCHING: Final = frozenset({b"\xbf\x31", b"\xbf\x32"})


class _Lost(Exception):
    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


class _ApduLink:
    """The APDU logic shared by :class:`ApduEs10` and :class:`PcscEs10`."""

    def __init__(self, transmit: Callable[[bytes], bytes], *, use_channel: bool = True) -> None:
        self._transmit = transmit
        self._use_channel = use_channel
        self._channel: int | None = None

    def _raw(self, apdu: bytes) -> tuple[bytes, int]:
        response = self._transmit(apdu)
        if len(response) < 2:
            raise TransportError("the card answered fewer than 2 octets")
        return response[:-2], int.from_bytes(response[-2:], "big")

    def _exchange(self, apdu: bytes, channel: int) -> tuple[bytes, int]:
        """Send ``apdu``; follow ``6Cxx`` and ``61xx``; the whole data and the final SW."""
        data, sw = self._raw(apdu)
        if sw >> 8 == 0x6C:  # wrong Le: repeat with Le = xx
            header = apdu[:4]
            body = apdu[4:]
            if len(apdu) == 5:  # case 2: replace Le
                apdu = header + bytes([sw & 0xFF])
            elif len(apdu) > 5 and len(body) == 1 + body[0] + 1:  # case 4: replace Le
                apdu = apdu[:-1] + bytes([sw & 0xFF])
            else:  # case 3: add Le
                apdu = apdu + bytes([sw & 0xFF])
            data, sw = self._raw(apdu)
        out = bytearray(data)
        rounds = 0
        while sw >> 8 == 0x61:
            rounds += 1
            if rounds > _MAX_GET_RESPONSE:
                raise ProtocolError("the card never stops answering 61xx")
            data, sw = self._raw(bytes([_cla(channel, False), 0xC0, 0x00, 0x00, sw & 0xFF]))
            out += data
        return bytes(out), sw

    def open(self) -> int:
        """Open a logical channel (or use the basic one) and SELECT the ISD-R on it."""
        if self._channel is not None:
            return self._channel
        channel = 0
        if self._use_channel:
            data, sw = self._exchange(bytes.fromhex("0070000001"), 0)
            if sw == 0x9000 and len(data) == 1:
                channel = data[0]
            # no free channel (6A81) or no channel support: the basic channel
        select = bytes([_cla(channel, False), 0xA4, 0x04, 0x00, len(ISD_R_AID)])
        select += ISD_R_AID + b"\x00"
        _, sw = self._exchange(select, channel)
        if sw != 0x9000 and sw >> 8 != 0x91:
            if channel:
                self._close_channel(channel)
            raise ProtocolError(f"SELECT ISD-R answered {sw:04X}")
        self._channel = channel
        return channel

    def _close_channel(self, channel: int) -> None:
        with contextlib.suppress(TransportError):
            self._raw(bytes([0x00, 0x70, 0x80, channel]))

    def close(self) -> None:
        """Close the logical channel (nothing to do on the basic channel)."""
        channel, self._channel = self._channel, None
        if channel:
            self._close_channel(channel)

    def transceive(self, request_der: bytes) -> bytes:
        request = bytes(request_der)
        if not request:
            raise UsageError("an ES10 request cannot be empty")
        blocks = [
            request[i : i + STORE_DATA_BLOCK] for i in range(0, len(request), STORE_DATA_BLOCK)
        ]
        if len(blocks) > _MAX_BLOCKS:
            raise UsageError(f"an ES10 request is at most {STORE_DATA_BLOCK * _MAX_BLOCKS} octets")
        try:
            return self._send(blocks)
        except _Lost:
            # the card was reset (e.g. a profile switch): channel and selection are gone
            self._channel = None
            try:
                return self._send(blocks)
            except _Lost as lost:
                raise ProtocolError(f"STORE DATA block 0 answered {lost.sw:04X}") from None
        finally:
            if request[:2] in _SWITCHING:
                # a profile switch resets the card: the channel will be gone
                self.close()

    def _send(self, blocks: list[bytes]) -> bytes:
        channel = self.open()
        cla = _cla(channel, True)
        for number, block in enumerate(blocks):
            last = number == len(blocks) - 1
            apdu = bytes([cla, 0xE2, 0x91 if last else 0x11, number, len(block)]) + block
            if last:
                apdu += b"\x00"
            data, sw = self._exchange(apdu, channel)
            if number == 0 and sw in _LOST:
                raise _Lost(sw)
            if sw != 0x9000 and sw >> 8 != 0x91:
                raise ProtocolError(f"STORE DATA block {number} answered {sw:04X}")
            if last:
                return data
            if data:
                raise ProtocolError(f"STORE DATA block {number} answered data before the end")
        raise AssertionError("unreachable")  # pragma: no cover


class ApduEs10:
    """ES10 over APDUs to a card (``rspfed.euicc.card.Card`` or anything with ``transmit``).

    ``use_channel=False`` stays on the basic channel instead of opening a
    logical one.  The channel is opened on the first request; :meth:`close`
    (or the context manager) closes it.
    """

    def __init__(self, card: SupportsTransmit, *, use_channel: bool = True) -> None:
        self._card = card
        self._link = _ApduLink(self._transmit, use_channel=use_channel)

    def _transmit(self, apdu: bytes) -> bytes:
        return bytes(self._card.transmit(apdu))

    def transceive(self, request_der: bytes) -> bytes:
        """One ES10 function as STORE DATA to the ISD-R."""
        return self._link.transceive(request_der)

    def close(self) -> None:
        """Close the logical channel."""
        self._link.close()

    def __enter__(self) -> ApduEs10:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PcscEs10:
    """ES10 over a PC/SC reader (pyscard), e.g. ``"Virtual PCD 00 00"`` for vpcd slot 0.

    ``reader`` is the reader's full name or a unique prefix of it.  Raises
    :class:`~rspfed.errors.TransportError` when pyscard is missing, the reader
    is not there or the card does not answer.
    """

    def __init__(self, reader: str, *, use_channel: bool = True) -> None:
        try:
            from smartcard.Exceptions import SmartcardException
            from smartcard.System import readers
        except ImportError:
            raise TransportError("pyscard is not installed (pip install pyscard)") from None
        self._errors: tuple[type[BaseException], ...] = (SmartcardException,)
        try:
            found = [r for r in readers() if str(r) == reader] or [
                r for r in readers() if str(r).startswith(reader)
            ]
        except Exception as exc:  # pyscard raises its own types for a missing pcscd
            raise TransportError(f"PC/SC is not available ({type(exc).__name__})") from None
        if len(found) != 1:
            raise TransportError(f"no single PC/SC reader named {reader!r}")
        self.reader_name = str(found[0])
        connection: Any = found[0].createConnection()
        try:
            connection.connect()
        except self._errors as exc:
            raise TransportError(f"{self.reader_name}: {type(exc).__name__}") from None
        self._connection = connection
        self._link = _ApduLink(self._transmit, use_channel=use_channel)

    def _transmit(self, apdu: bytes) -> bytes:
        try:
            data, sw1, sw2 = self._connection.transmit(list(apdu))
        except self._errors as exc:
            raise TransportError(f"{self.reader_name}: {type(exc).__name__}") from None
        return bytes(data) + bytes([sw1, sw2])

    def transceive(self, request_der: bytes) -> bytes:
        """One ES10 function as STORE DATA to the ISD-R."""
        return self._link.transceive(request_der)

    def close(self) -> None:
        """Close the logical channel and disconnect from the reader."""
        try:
            self._link.close()
        finally:
            with contextlib.suppress(*self._errors):
                self._connection.disconnect()

    def __enter__(self) -> PcscEs10:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
