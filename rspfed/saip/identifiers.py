"""ICCID and IMSI as stored on a UICC.

- ICCID (ITU-T E.118): in EF_ICCID (ETSI TS 102 221 §13.2) and SGP.22's
  ``Iccid`` 10 octets of BCD with the nibbles of each octet swapped, padded
  with ``F``; the SAIP ProfileHeader's ``iccid`` holds the same digits in
  plain nibble order (as the GSMA TS.48 packages show: header
  ``89000123456789012341``, EF_ICCID ``98001032547698103214``), so
  :func:`decode_iccid` and :func:`encode_iccid` take ``swapped``.
- IMSI (EF_IMSI of 3GPP TS 31.102 §4.2.2): a length octet, then the digits
  as swapped BCD; the low nibble of the first digit octet holds the parity
  (``1`` odd number of digits, ``9`` when combined with the identity type) —
  precisely, the first octet is ``digit1 << 4 | 0b1001`` for an odd count and
  ``digit1 << 4 | 0b0001`` for an even count.
"""

from __future__ import annotations

from rspfed.errors import DecodeError, EncodeError

__all__ = ["decode_iccid", "decode_imsi", "encode_iccid", "encode_imsi"]

ICCID_SIZE = 10
IMSI_FILE_SIZE = 9


def _swapped_digits(data: bytes) -> str:
    return "".join(f"{octet & 0x0F:x}{octet >> 4:x}" for octet in data)


def decode_iccid(data: bytes, *, swapped: bool = True) -> str:
    """The ICCID digits of a 10-octet BCD ICCID (trailing ``F`` padding removed).

    ``swapped=True`` for EF_ICCID and SGP.22 ``Iccid``; ``False`` for the SAIP
    ProfileHeader.
    """
    if len(data) != ICCID_SIZE:
        raise DecodeError(f"an ICCID is {ICCID_SIZE} octets, not {len(data)}", type_name="Iccid")
    digits = (_swapped_digits(data) if swapped else data.hex()).rstrip("f")
    if not digits.isdigit():
        raise DecodeError("an ICCID holds decimal digits only", type_name="Iccid")
    return digits


def encode_iccid(iccid: str, *, swapped: bool = True) -> bytes:
    """Encode 18 to 20 ICCID digits as 10 octets of BCD (see :func:`decode_iccid`)."""
    if not (iccid.isascii() and iccid.isdigit() and 18 <= len(iccid) <= 20):
        raise EncodeError("an ICCID is 18 to 20 decimal digits", type_name="Iccid")
    padded = iccid.ljust(2 * ICCID_SIZE, "f")
    if not swapped:
        return bytes.fromhex(padded)
    return bytes(int(padded[i + 1] + padded[i], 16) for i in range(0, len(padded), 2))


def decode_imsi(data: bytes) -> str:
    """The IMSI digits in the contents of EF_IMSI (9 octets; unused octets ``FF``)."""
    if len(data) != IMSI_FILE_SIZE or not 1 <= data[0] <= IMSI_FILE_SIZE - 1:
        raise DecodeError("malformed EF_IMSI contents", type_name="EF_IMSI")
    body = data[1 : 1 + data[0]]
    nibbles = _swapped_digits(body)
    parity = int(nibbles[0], 16)
    digits = nibbles[1:]
    if parity & 0x08 == 0:  # even number of digits: the last nibble is filler
        digits = digits[:-1] if digits.endswith("f") else digits
    if not digits.isdigit() or not 6 <= len(digits) <= 15:
        raise DecodeError("malformed EF_IMSI contents", type_name="EF_IMSI")
    return digits


def encode_imsi(imsi: str) -> bytes:
    """EF_IMSI contents (9 octets) for an IMSI of 6 to 15 digits."""
    if not (imsi.isascii() and imsi.isdigit() and 6 <= len(imsi) <= 15):
        raise EncodeError("an IMSI is 6 to 15 decimal digits", type_name="EF_IMSI")
    odd = len(imsi) % 2 == 1
    nibbles = ("9" if odd else "1") + imsi + ("" if odd else "f")
    body = bytes(int(nibbles[i + 1] + nibbles[i], 16) for i in range(0, len(nibbles), 2))
    return (bytes((len(body),)) + body).ljust(IMSI_FILE_SIZE, b"\xff")
