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
from rspfed.network._apdu import read_transparent, select_usim
from rspfed.network.attach import UsimOverApdus
from rspfed.saip.identifiers import decode_imsi

__all__ = ["EF_AD", "EF_IMSI", "eap_usim", "read_usim_identity"]

EF_IMSI = 0x6F07
"""EF.IMSI file id under ADF.USIM (TS 31.102 §4.2.2)."""
EF_AD = 0x6FAD
"""EF.AD (administrative data) file id under ADF.USIM (TS 31.102 §4.2.18)."""


def _read_ef(card: Card, fid: int, name: str) -> bytes:
    data = read_transparent(card, fid, name)
    if data is None:
        raise ProtocolError(f"{name} cannot be selected: status 6A82")
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
    select_usim(card, pin)
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
