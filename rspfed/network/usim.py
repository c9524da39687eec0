"""The client side's USIM over a card's APDUs: its identity and its EAP-AKA' answer.

:func:`read_usim_identity` reads the enabled profile's IMSI and MNC length:

- SELECT ADF.USIM by AID prefix ``A0000000871002`` (TS 31.102 §4.1; as
  :class:`rspfed.network.attach.UsimOverApdus` does), VERIFY PIN1 if a PIN
  is given (EF.IMSI is read-protected by PIN1 in the usual access rules);
- EF.IMSI (``6F07``, TS 31.102 §4.2.2): a length octet, then the IMSI in BCD
  with the parity nibble first (``9`` odd / ``1`` even count of digits) —
  decoded by :func:`rspfed.saip.identifiers.decode_imsi`;
- EF.AD (``6FAD``, TS 31.102 §4.2.18): bits b1–b4 of its 4th octet give the
  MNC length (``2`` or ``3``; other values are reserved).

Each EF is selected by file id (``00 A4 00 04 02 <fid>``, FCP returned), its
size taken from the FCP's tag ``80`` (TS 102 221 §11.1.1.4.1), then READ
BINARY for that many octets.

:func:`eap_usim` adapts :class:`~rspfed.network.attach.UsimOverApdus` to the
``authenticate(rand, autn)`` callable
(:data:`rspfed.eap.machines.UsimAuthenticate`) that
:class:`~rspfed.eap.machines.EapAkaPrimePeer` takes.
"""

from __future__ import annotations

from rspfed.eap.machines import UsimAuthenticate, UsimResult
from rspfed.errors import DecodeError, ProtocolError
from rspfed.euicc.card import Card
from rspfed.network.attach import USIM_AID_PREFIX, UsimOverApdus
from rspfed.saip.identifiers import decode_imsi

__all__ = ["EF_AD", "EF_IMSI", "eap_usim", "read_usim_identity"]

EF_IMSI = 0x6F07
"""EF.IMSI file id under ADF.USIM (TS 31.102 §4.2.2)."""
EF_AD = 0x6FAD
"""EF.AD (administrative data) file id under ADF.USIM (TS 31.102 §4.2.18)."""

_SW_OK = b"\x90\x00"
_SW_SECURITY = b"\x69\x82"


def _send(card: Card, apdu: bytes) -> tuple[bytes, bytes]:
    """Send one APDU; follow ``61xx`` (GET RESPONSE) and ``6Cxx`` (resend with Le); data, SW."""
    resp = card.transmit(apdu)
    if len(resp) == 2 and resp[0] == 0x6C and len(apdu) in (4, 5):
        resp = card.transmit(apdu[:4] + bytes((resp[1],)))
    data = b""
    while len(resp) >= 2 and resp[-2] == 0x61:
        data += resp[:-2]
        resp = card.transmit(bytes([0x00, 0xC0, 0x00, 0x00, resp[-1]]))
    if len(resp) < 2:
        raise ProtocolError("response APDU without status word")
    return data + resp[:-2], resp[-2:]


def _fcp_file_size(fcp: bytes) -> int:
    """File size (tag ``80``) from an FCP template (tag ``62``, TS 102 221 §11.1.1.3)."""

    def tlvs(data: bytes) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        pos = 0
        while pos < len(data):
            if pos + 2 > len(data):
                raise DecodeError("truncated TLV", type_name="FCP", offset=pos)
            tag, n = data[pos], data[pos + 1]
            pos += 2
            if n == 0x81:
                if pos >= len(data):
                    raise DecodeError("truncated length", type_name="FCP", offset=pos)
                n, pos = data[pos], pos + 1
            elif n > 0x7F:
                raise DecodeError("unsupported length form", type_name="FCP", offset=pos - 1)
            if pos + n > len(data):
                raise DecodeError("TLV runs past the end", type_name="FCP", offset=pos)
            out.setdefault(tag, data[pos : pos + n])
            pos += n
        return out

    outer = tlvs(fcp)
    if 0x62 not in outer:
        raise DecodeError("no FCP template", type_name="FCP")
    size = tlvs(outer[0x62]).get(0x80)
    if not size:
        raise DecodeError("no file size", type_name="FCP")
    return int.from_bytes(size, "big")


def _read_ef(card: Card, fid: int, name: str) -> bytes:
    fcp, sw = _send(card, bytes([0x00, 0xA4, 0x00, 0x04, 0x02]) + fid.to_bytes(2, "big") + b"\x00")
    if sw != _SW_OK:
        raise ProtocolError(f"{name} cannot be selected: status {sw.hex().upper()}")
    size = _fcp_file_size(fcp)
    if not 1 <= size <= 256:
        raise DecodeError(f"{name} size out of range", type_name=name)
    data, sw = _send(card, bytes([0x00, 0xB0, 0x00, 0x00, size % 256]))
    if sw == _SW_SECURITY:
        raise ProtocolError(f"{name} cannot be read: security status not satisfied (PIN1?)")
    if sw != _SW_OK:
        raise ProtocolError(f"{name} cannot be read: status {sw.hex().upper()}")
    if len(data) != size:
        raise DecodeError(f"{name}: READ BINARY returned a wrong length", type_name=name)
    return data


def _mnc_length(ad: bytes) -> int:
    if len(ad) < 4:
        raise DecodeError("EF.AD holds no MNC length (fewer than 4 octets)", type_name="EF.AD")
    n = ad[3] & 0x0F
    if n not in (2, 3):
        raise DecodeError("EF.AD MNC length is neither 2 nor 3", type_name="EF.AD", offset=3)
    return n


def read_usim_identity(card: Card, *, pin: bytes | None = None) -> tuple[str, int]:
    """``(IMSI, MNC length)`` of the enabled profile's USIM (TS 31.102 §4.2.2, §4.2.18).

    ``pin``: PIN1 (ASCII digits), verified after selecting the USIM; needed
    when EF.IMSI is PIN1-protected and PIN1 is enabled.  Card refusals raise
    :class:`~rspfed.errors.ProtocolError` (no USIM, PIN wrong, access denied),
    malformed file contents :class:`~rspfed.errors.DecodeError`.
    """
    aid = USIM_AID_PREFIX
    _, sw = _send(card, bytes([0x00, 0xA4, 0x04, 0x0C, len(aid)]) + aid)
    if sw != _SW_OK:
        raise ProtocolError("the USIM cannot be selected")
    if pin is not None:
        _, sw = _send(card, bytes([0x00, 0x20, 0x00, 0x01, 8]) + bytes(pin).ljust(8, b"\xff"))
        if sw != _SW_OK:
            raise ProtocolError("PIN1 verification failed")
    imsi = decode_imsi(_read_ef(card, EF_IMSI, "EF.IMSI"))
    mnc_length = _mnc_length(_read_ef(card, EF_AD, "EF.AD"))
    return imsi, mnc_length


def eap_usim(card: Card, *, pin: bytes | None = None) -> UsimAuthenticate:
    """The card's USIM as an EAP-AKA' peer's ``authenticate(rand, autn)``.

    Each call selects the USIM, verifies PIN1 when given and sends
    AUTHENTICATE (3G context) through
    :class:`~rspfed.network.attach.UsimOverApdus`: ``(RES, CK, IK)`` or AUTS;
    a MAC failure on AUTN raises :class:`~rspfed.errors.IntegrityError`
    (the peer answers Authentication-Reject).
    """
    usim = UsimOverApdus(card, pin=pin)

    def authenticate(rand: bytes, autn: bytes) -> UsimResult:
        answer = usim(rand, autn)
        if answer.auts is not None:
            return answer.auts
        if answer.res is None or answer.ck is None or answer.ik is None:
            raise ProtocolError("AUTHENTICATE answer without RES, CK and IK")
        return answer.res, answer.ck, answer.ik

    return authenticate
