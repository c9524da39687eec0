"""IMSI-based permanent NAIs for EAP-AKA / EAP-AKA' (3GPP TS 23.003 §19.3.2, §19.3.1).

The permanent identity a peer sends in EAP-Response/Identity (or a TS.43
entitlement request) is the *root NAI* of TS 23.003 §19.3.2::

    <prefix><IMSI>@nai.epc.mnc<MNC>.mcc<MCC>.3gppnetwork.org

- ``prefix`` is one digit naming the EAP method: ``"0"`` EAP-AKA (RFC 4187
  §4.1.1.6), ``"6"`` EAP-AKA' (RFC 9048 §3 / TS 23.003 §19.3.2; also used by
  TS 33.402).  ``"1"`` (EAP-SIM) is not a method rspfed runs.
- The realm is the home network domain of §19.2 with the ``nai.epc``
  labels: MNC always three digits (a two-digit MNC gets a leading ``0``),
  MCC three digits.  Splitting the IMSI into MCC (3), MNC (2 or 3) and MSIN
  needs the MNC length, which the USIM holds in EF.AD (TS 31.102 §4.2.18);
  see :func:`rspfed.network.usim.read_usim_identity`.

Pseudonyms (RFC 9048 leading digit ``7``) and fast re-authentication
identities (``8``) are not permanent identities and are refused by
:func:`imsi_from_identity`.
"""

from __future__ import annotations

import re

from rspfed.errors import DecodeError, UsageError

__all__ = [
    "PREFIX_EAP_AKA",
    "PREFIX_EAP_AKA_PRIME",
    "imsi_from_identity",
    "permanent_identity",
    "realm",
]

PREFIX_EAP_AKA = "0"
"""Leading digit of an EAP-AKA permanent identity (RFC 4187 §4.1.1.6, TS 23.003 §19.3.2)."""
PREFIX_EAP_AKA_PRIME = "6"
"""Leading digit of an EAP-AKA' permanent identity (RFC 9048 §3, TS 23.003 §19.3.2)."""

_PREFIXES = (PREFIX_EAP_AKA, PREFIX_EAP_AKA_PRIME)
_REALM = re.compile(rb"(?:[a-z0-9-]+\.)*mnc([0-9]{3})\.mcc([0-9]{3})\.3gppnetwork\.org")
_LABEL = re.compile(rb"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _check_imsi(imsi: str, mnc_length: int) -> None:
    if not (isinstance(imsi, str) and imsi.isascii() and imsi.isdigit()):
        raise UsageError("IMSI must be decimal digits")
    if not 6 <= len(imsi) <= 15:
        raise UsageError("IMSI must be 6 to 15 digits")
    if mnc_length not in (2, 3):
        raise UsageError("MNC length must be 2 or 3")


def realm(imsi: str, *, mnc_length: int) -> str:
    """The realm ``nai.epc.mnc<MNC>.mcc<MCC>.3gppnetwork.org`` of ``imsi`` (TS 23.003 §19.3.2).

    ``mnc_length`` (2 or 3) is the MNC length from EF.AD; a two-digit MNC is
    written with a leading zero.
    """
    _check_imsi(imsi, mnc_length)
    mcc, mnc = imsi[:3], imsi[3 : 3 + mnc_length]
    return f"nai.epc.mnc{mnc.zfill(3)}.mcc{mcc}.3gppnetwork.org"


def permanent_identity(imsi: str, *, mnc_length: int, prefix: str = PREFIX_EAP_AKA_PRIME) -> bytes:
    """The IMSI-based root NAI (TS 23.003 §19.3.2) as the EAP identity octets.

    ``prefix`` ``"6"`` (EAP-AKA', RFC 9048 §3, the default) or ``"0"``
    (EAP-AKA).  For example IMSI ``001010123456789`` with a 2-digit MNC gives
    ``b"6001010123456789@nai.epc.mnc001.mcc001.3gppnetwork.org"``.
    :class:`~rspfed.errors.UsageError` for a bad IMSI, MNC length or prefix.
    """
    if prefix not in _PREFIXES:
        raise UsageError('prefix must be "6" (EAP-AKA\') or "0" (EAP-AKA)')
    return f"{prefix}{imsi}@{realm(imsi, mnc_length=mnc_length)}".encode("ascii")


def imsi_from_identity(identity: bytes) -> str:
    """The IMSI in a permanent identity ``<0|6><IMSI>[@realm]`` (TS 23.003 §19.3.2).

    Accepts the EAP-AKA' (``6``) and EAP-AKA (``0``) leading digits.  The
    realm is optional (RFC 4187 §4.1.1.6 lets a peer send the bare username);
    when it is a 3GPP realm ``...mnc<MNC>.mcc<MCC>.3gppnetwork.org`` (any
    leading labels, case-insensitive as DNS names are), its MCC must be the
    IMSI's first three digits and its MNC the next two (zero-padded) or three
    digits; any other realm must at least be a syntactically valid domain
    name (RFC 7542 §2.2).

    :class:`~rspfed.errors.DecodeError` for anything else: pseudonyms
    (``7``), fast re-authentication identities (``8``), EAP-SIM (``1``), a
    decorated NAI (``!``), non-digits, an IMSI outside 6..15 digits, or a
    realm that names another PLMN than the IMSI's.
    """
    if not isinstance(identity, bytes | bytearray | memoryview):
        raise DecodeError("identity must be octets", type_name="NAI")
    data = bytes(identity)
    user, at, domain = data.partition(b"@")
    if not user:
        raise DecodeError("empty username", type_name="NAI")
    lead = user[:1]
    if lead in (b"7", b"8"):
        raise DecodeError(
            "a pseudonym or fast re-authentication identity, not a permanent identity",
            type_name="NAI",
        )
    if lead.decode("latin-1") not in _PREFIXES:
        raise DecodeError("not an EAP-AKA/EAP-AKA' permanent identity", type_name="NAI", offset=0)
    digits = user[1:]
    if b"!" in data:
        raise DecodeError("decorated NAIs are not supported", type_name="NAI")
    if not (digits.isascii() and digits.isdigit()):
        raise DecodeError("IMSI must be decimal digits", type_name="NAI", offset=1)
    if not 6 <= len(digits) <= 15:
        raise DecodeError("IMSI must be 6 to 15 digits", type_name="NAI", offset=1)
    imsi = digits.decode("ascii")
    if at:
        _check_realm(domain.lower(), imsi, offset=len(user) + 1)
    return imsi


def _check_realm(domain: bytes, imsi: str, *, offset: int) -> None:
    labels = domain.split(b".")
    if len(domain) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise DecodeError("realm is not a domain name", type_name="NAI", offset=offset)
    m = _REALM.fullmatch(domain)
    if m is None:
        if domain.endswith(b".3gppnetwork.org") and (b".mnc" in domain or b".mcc" in domain):
            raise DecodeError("malformed 3GPP realm", type_name="NAI", offset=offset)
        return  # another operator realm: the PLMN cannot be read from it
    mnc, mcc = m.group(1).decode(), m.group(2).decode()
    if mcc != imsi[:3]:
        raise DecodeError("realm MCC is not the IMSI's", type_name="NAI", offset=offset)
    two = mnc[0] == "0" and imsi[3:5] == mnc[1:]
    three = imsi[3:6] == mnc
    if not (two or three):
        raise DecodeError("realm MNC is not the IMSI's", type_name="NAI", offset=offset)
