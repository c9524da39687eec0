"""ISO/IEC 7816-4 command and response APDUs, class byte decoding, status words.

Sans-IO value types for the card side:

- :func:`parse_command` turns the bytes a reader sends into a
  :class:`CommandApdu` (cases 1 to 4, short and extended length, ISO/IEC
  7816-3 §12.1.3).  A malformed APDU raises :class:`StatusError` carrying the
  status word the card answers with (``6700`` for a length that does not add
  up); the front end (:mod:`rspfed.euicc.uicc`) turns it into a response, so
  nothing escapes the APDU layer.
- :func:`decode_cla` finds the logical channel, secure messaging and command
  chaining indications in the class byte (ISO/IEC 7816-4 §5.4.1, ETSI TS 102
  221 §10.1.1): first interindustry classes ``0X``/``8X`` carry channels 0–3,
  further interindustry classes ``4X``–``7X``/``CX``–``FX`` carry channels
  4–19.
- :class:`ResponseApdu` is response data followed by SW1 SW2.

Status words are plain ``int`` values (``0x9000``); the named constants below
are the ones the software card uses.
"""

from __future__ import annotations

import attrs

from rspfed.errors import ProtocolError, UsageError

__all__ = [
    "SW_AUTH_MAC_FAILURE",
    "SW_BLOCKED",
    "SW_CHAINING_NOT_SUPPORTED",
    "SW_CHANNEL_NOT_SUPPORTED",
    "SW_CLA_NOT_SUPPORTED",
    "SW_CONDITIONS_NOT_SATISFIED",
    "SW_END_OF_FILE",
    "SW_FILE_INVALIDATED",
    "SW_FILE_NOT_FOUND",
    "SW_FUNCTION_NOT_SUPPORTED",
    "SW_INCOMPATIBLE_FILE_STRUCTURE",
    "SW_INCORRECT_DATA",
    "SW_INCORRECT_P1P2",
    "SW_INS_NOT_SUPPORTED",
    "SW_INTERNAL_ERROR",
    "SW_MEMORY_PROBLEM",
    "SW_NO_CURRENT_EF",
    "SW_OK",
    "SW_RECORD_NOT_FOUND",
    "SW_REFERENCE_NOT_FOUND",
    "SW_SECURE_MESSAGING_NOT_SUPPORTED",
    "SW_SECURITY_STATUS",
    "SW_WRONG_LENGTH",
    "SW_WRONG_P1P2",
    "ClassInfo",
    "CommandApdu",
    "ResponseApdu",
    "StatusError",
    "decode_cla",
    "encode_cla",
    "is_valid_sw",
    "parse_command",
    "sw_more_data",
    "sw_retries",
    "sw_wrong_le",
]

SW_OK = 0x9000
"""Normal ending."""
SW_END_OF_FILE = 0x6282
"""Warning: end of file or record reached before reading Ne bytes."""
SW_FILE_INVALIDATED = 0x6283
"""Warning: the selected file is deactivated (invalidated)."""
SW_MEMORY_PROBLEM = 0x6581
"""Memory problem (update failed)."""
SW_WRONG_LENGTH = 0x6700
"""Wrong length: Lc or Le, or a data field of the wrong size."""
SW_CHANNEL_NOT_SUPPORTED = 0x6881
"""The logical channel in CLA is not open (or not supported)."""
SW_SECURE_MESSAGING_NOT_SUPPORTED = 0x6882
"""Secure messaging indicated in CLA is not supported."""
SW_CHAINING_NOT_SUPPORTED = 0x6884
"""Command chaining (CLA bit b5) is not supported."""
SW_INCOMPATIBLE_FILE_STRUCTURE = 0x6981
"""Command incompatible with the file structure."""
SW_SECURITY_STATUS = 0x6982
"""Security status not satisfied (access condition not fulfilled)."""
SW_BLOCKED = 0x6983
"""Authentication method (PIN or PUK) blocked."""
SW_CONDITIONS_NOT_SATISFIED = 0x6985
"""Conditions of use not satisfied."""
SW_NO_CURRENT_EF = 0x6986
"""Command not allowed: no current EF."""
SW_INCORRECT_DATA = 0x6A80
"""Incorrect parameters in the data field."""
SW_FUNCTION_NOT_SUPPORTED = 0x6A81
"""Function not supported (e.g. no free logical channel)."""
SW_FILE_NOT_FOUND = 0x6A82
"""File or application not found."""
SW_RECORD_NOT_FOUND = 0x6A83
"""Record not found."""
SW_INCORRECT_P1P2 = 0x6A86
"""Incorrect parameters P1-P2."""
SW_REFERENCE_NOT_FOUND = 0x6A88
"""Referenced data (e.g. a PIN key reference) not found."""
SW_WRONG_P1P2 = 0x6B00
"""Wrong parameters P1-P2 (offset outside the EF)."""
SW_INS_NOT_SUPPORTED = 0x6D00
"""Instruction code not supported or invalid."""
SW_CLA_NOT_SUPPORTED = 0x6E00
"""Class not supported."""
SW_INTERNAL_ERROR = 0x6F00
"""No precise diagnosis (the last resort)."""
SW_AUTH_MAC_FAILURE = 0x9862
"""AUTHENTICATE: authentication error, incorrect MAC (ETSI TS 102 221 §10.2.1.6)."""


def sw_more_data(available: int) -> int:
    """``61xx``: response bytes still available (``xx = 00`` for 256 or more)."""
    return 0x6100 | (min(available, 256) & 0xFF)


def sw_wrong_le(exact: int) -> int:
    """``6Cxx``: wrong Le, ``xx`` is the exact length available (``00`` for 256)."""
    return 0x6C00 | (min(exact, 256) & 0xFF)


def sw_retries(left: int) -> int:
    """``63Cx``: verification failed or status query, ``x`` tries left (0 to 15)."""
    return 0x63C0 | min(left, 15)


def is_valid_sw(sw: int) -> bool:
    """True when ``sw`` is a status word a card may send (SW1 ``6X`` or ``9X``, not ``60``)."""
    sw1 = sw >> 8
    return 0 <= sw <= 0xFFFF and (0x61 <= sw1 <= 0x6F or 0x90 <= sw1 <= 0x9F)


class StatusError(ProtocolError):
    """A command ends with the status word ``sw`` instead of normal processing.

    Raised inside the card (parser, file system, applets) and turned into a
    response by the front end; the text names the status word only.
    """

    def __init__(self, sw: int, reason: str = "") -> None:
        if not is_valid_sw(sw):
            raise UsageError(f"{sw:#06x} is not a status word")
        self.sw = sw
        super().__init__(f"status {sw:04X}" + (f": {reason}" if reason else ""))


@attrs.frozen
class ClassInfo:
    """What the class byte says: logical channel, secure messaging, chaining.

    ``proprietary`` is true for ``8X``-``FX`` classes (ETSI/GlobalPlatform
    commands), false for the ISO interindustry classes ``0X``-``7X``.
    """

    channel: int
    secure_messaging: bool
    chaining: bool
    proprietary: bool


def decode_cla(cla: int) -> ClassInfo:
    """Decode CLA; :class:`StatusError` ``6E00`` for a class the card does not know.

    ``0X``/``8X``/``9X``: b5 chaining, b4-b3 secure messaging, b2-b1 channel 0–3.
    ``4X``-``7X``/``CX``-``FE``: b6 secure messaging, b5 chaining, b4-b1
    channel minus 4 (channels 4–19).  ``2X``, ``3X``, ``AX``/``BX`` (the GSM
    class ``A0`` included) and ``FF`` are refused.
    """
    if not 0 <= cla <= 0xFF:
        raise UsageError("CLA is one octet")
    proprietary = bool(cla & 0x80)
    if cla == 0xFF or 0x20 <= cla <= 0x3F or 0xA0 <= cla <= 0xBF:
        raise StatusError(SW_CLA_NOT_SUPPORTED, "class not supported")
    if cla & 0x40:
        return ClassInfo(4 + (cla & 0x0F), bool(cla & 0x20), bool(cla & 0x10), proprietary)
    return ClassInfo(cla & 0x03, bool(cla & 0x0C), bool(cla & 0x10), proprietary)


def encode_cla(channel: int, *, proprietary: bool = False) -> int:
    """The class byte for ``channel`` (0–19), ISO (``0X``/``4X``) or proprietary (``8X``/``CX``)."""
    if not 0 <= channel <= 19:
        raise UsageError("logical channel must be 0 to 19")
    base = 0x80 if proprietary else 0x00
    if channel < 4:
        return base | channel
    return base | 0x40 | (channel - 4)


@attrs.frozen
class CommandApdu:
    """One command APDU (ISO/IEC 7816-4 §5.1).

    ``ne`` is the maximum number of response bytes expected, ``None`` when the
    command has no Le field (cases 1 and 3); a short Le of ``00`` is 256, an
    extended Le of ``0000`` is 65536.  ``extended`` tells whether Lc/Le used
    the extended (three/two octet) form.
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    ne: int | None = None
    extended: bool = False

    def __attrs_post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise UsageError(f"{name} must be one octet")
        limit = 65535 if self.extended else 255
        if len(self.data) > limit:
            raise UsageError("data field too long for the length form")
        if self.ne is not None and not 1 <= self.ne <= (65536 if self.extended else 256):
            raise UsageError("Ne out of range for the length form")

    @property
    def case(self) -> int:
        """ISO/IEC 7816-3 case: 1 (no data, no Le), 2 (Le), 3 (data), 4 (data and Le)."""
        if self.data:
            return 4 if self.ne is not None else 3
        return 2 if self.ne is not None else 1

    @property
    def p1p2(self) -> int:
        """P1 and P2 as one 16-bit value."""
        return (self.p1 << 8) | self.p2

    def encode(self) -> bytes:
        """The APDU bytes (the inverse of :func:`parse_command`)."""
        out = bytearray((self.cla, self.ins, self.p1, self.p2))
        if self.extended:
            if self.data:
                out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.ne is not None:
                le = (self.ne & 0xFFFF).to_bytes(2, "big")
                out += le if self.data else b"\x00" + le
        else:
            if self.data:
                out += bytes((len(self.data),)) + self.data
            if self.ne is not None:
                out.append(self.ne & 0xFF)
        return bytes(out)


def parse_command(apdu: bytes) -> CommandApdu:
    """Parse a command APDU; :class:`StatusError` ``6700`` when the lengths do not add up.

    Cases per ISO/IEC 7816-3 §12.1.3: 4 octets (case 1); 5 (case 2S); body
    ``Lc data`` (3S) or ``Lc data Le`` (4S) with ``Lc`` ≠ 0; ``00 Le1 Le2``
    (2E); ``00 Lc1 Lc2 data`` (3E) or ``... Le1 Le2`` (4E).  Fewer than four
    octets is also ``6700``.
    """
    apdu = bytes(apdu)
    n = len(apdu)
    if n < 4:
        raise StatusError(SW_WRONG_LENGTH, "APDU shorter than a header")
    cla, ins, p1, p2 = apdu[0], apdu[1], apdu[2], apdu[3]
    if n == 4:
        return CommandApdu(cla, ins, p1, p2)
    b1 = apdu[4]
    if n == 5:
        return CommandApdu(cla, ins, p1, p2, ne=b1 or 256)
    if b1 != 0:
        if n == 5 + b1:
            return CommandApdu(cla, ins, p1, p2, apdu[5:])
        if n == 6 + b1:
            return CommandApdu(cla, ins, p1, p2, apdu[5:-1], ne=apdu[-1] or 256)
        raise StatusError(SW_WRONG_LENGTH, "short Lc does not match the APDU length")
    if n == 7:
        le = int.from_bytes(apdu[5:7], "big")
        return CommandApdu(cla, ins, p1, p2, ne=le or 65536, extended=True)
    if n < 8:
        raise StatusError(SW_WRONG_LENGTH, "truncated extended length")
    lc = int.from_bytes(apdu[5:7], "big")
    if lc == 0:
        raise StatusError(SW_WRONG_LENGTH, "extended Lc of zero")
    if n == 7 + lc:
        return CommandApdu(cla, ins, p1, p2, apdu[7:], extended=True)
    if n == 9 + lc:
        le = int.from_bytes(apdu[-2:], "big")
        return CommandApdu(cla, ins, p1, p2, apdu[7:-2], ne=le or 65536, extended=True)
    raise StatusError(SW_WRONG_LENGTH, "extended Lc does not match the APDU length")


@attrs.frozen
class ResponseApdu:
    """A response APDU: data field and status word."""

    data: bytes = b""
    sw: int = SW_OK

    def __attrs_post_init__(self) -> None:
        if not is_valid_sw(self.sw):
            raise UsageError(f"{self.sw:#06x} is not a status word")

    @property
    def sw1(self) -> int:
        """The first status octet."""
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        """The second status octet."""
        return self.sw & 0xFF

    def encode(self) -> bytes:
        """Data followed by SW1 SW2."""
        return bytes(self.data) + self.sw.to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResponseApdu:
        """Split a response; :class:`~rspfed.errors.ProtocolError` when there is no valid SW."""
        raw = bytes(raw)
        if len(raw) < 2:
            raise ProtocolError("response APDU shorter than a status word")
        sw = int.from_bytes(raw[-2:], "big")
        if not is_valid_sw(sw):
            raise ProtocolError(f"invalid status word {sw:04X}")
        return cls(raw[:-2], sw)
