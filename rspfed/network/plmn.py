"""PLMN and USIM PLMN-list EF codecs (TS 24.008 §10.5.1.3, TS 31.102 §4.2).

- A PLMN on the card is 3 octets of BCD (TS 24.008 §10.5.1.3, the "PLMN
  identity" as TS 31.102 stores it): octet 1 ``MCC2 MCC1``, octet 2
  ``MNC3 MCC3``, octet 3 ``MNC2 MNC1`` (high nibble first in each pair); a
  2-digit MNC has ``F`` as MNC digit 3.  ``FFFFFF`` is an unused entry.
  E.g. MCC 246, MNC 81 is ``42 F6 18``; MCC 001, MNC 01 is ``00 F1 10``.
- The access technology identifier (TS 31.102 §4.2.5) is a 2-octet bitmap.
  Octet 1: b8 UTRAN, b7 E-UTRAN, b6 E-UTRAN in WB-S1 mode, b5 E-UTRAN in
  NB-S1 mode (b6/b5 refine b7, Rel-13 on), b4 NG-RAN, b3-b1 the satellite
  variants (Rel-17); octet 2: b8 GSM, b7 GSM COMPACT, b6/b5 cdma2000.
  :func:`encode_act` sets octet 1 b8 (UTRAN), b7 (E-UTRAN: WB-S1 and NB-S1),
  b4 (NG-RAN) and octet 2 b8 (GSM); :func:`decode_act` also reads b6/b5 as
  E-UTRAN and GSM COMPACT as GSM, and ignores the satellite, cdma2000 and
  reserved bits.
- EF.PLMNwAcT (``6F60``), EF.OPLMNwAcT (``6F61``) and EF.HPLMNwAcT
  (``6F62``): entries of 5 octets, a PLMN then its access technologies,
  in priority order (TS 31.102 §4.2.5, §4.2.53, §4.2.54).
- EF.FPLMN (``6F7B``, §4.2.16) and EF.EHPLMN (``6FD9``, §4.2.84): entries of
  3 octets (PLMN only).
- EF.HPPLMN (``6F31``, §4.2.6): one octet, the higher priority PLMN search
  period in units of ``n`` minutes; ``00`` means no periodic search.  See
  :func:`decode_hpplmn`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import timedelta

from rspfed.errors import DecodeError, EncodeError
from rspfed.network.radio import Rat, check_plmn

__all__ = [
    "ACT_BITS",
    "EF_EHPLMN",
    "EF_FPLMN",
    "EF_HPLMNWACT",
    "EF_HPPLMN",
    "EF_OPLMNWACT",
    "EF_PLMNWACT",
    "HPPLMN_DEFAULT",
    "HPPLMN_UNIT",
    "decode_act",
    "decode_hpplmn",
    "decode_plmn",
    "decode_plmn_list",
    "decode_plmn_wact_list",
    "encode_act",
    "encode_hpplmn",
    "encode_plmn",
    "encode_plmn_list",
    "encode_plmn_wact_list",
]

EF_PLMNWACT = 0x6F60
"""EF.PLMNwAcT: user controlled PLMN selector with access technology (TS 31.102 §4.2.5)."""
EF_OPLMNWACT = 0x6F61
"""EF.OPLMNwAcT: operator controlled PLMN selector with access technology (§4.2.53)."""
EF_HPLMNWACT = 0x6F62
"""EF.HPLMNwAcT: HPLMN selector with access technology (§4.2.54)."""
EF_FPLMN = 0x6F7B
"""EF.FPLMN: forbidden PLMNs (§4.2.16)."""
EF_HPPLMN = 0x6F31
"""EF.HPPLMN: higher priority PLMN search period (§4.2.6)."""
EF_EHPLMN = 0x6FD9
"""EF.EHPLMN: equivalent HPLMN list (§4.2.84)."""

HPPLMN_UNIT = timedelta(minutes=6)
"""``n`` of TS 31.102 §4.2.6, as TS 23.122 §4.4.3.3 sets it in the releases modelled: 6 min."""
HPPLMN_DEFAULT = timedelta(minutes=60)
"""The period when EF.HPPLMN is absent (TS 23.122 §4.4.3.3: a default of 60 minutes)."""

ACT_BITS: dict[Rat, int] = {
    Rat.UTRAN: 0x8000,
    Rat.EUTRAN: 0x4000,
    Rat.NGRAN: 0x0800,
    Rat.GSM: 0x0080,
}
"""The access technology bit :func:`encode_act` sets for each RAT (octet 1 in the high byte)."""
_EUTRAN_MODES = 0x2000 | 0x1000  # E-UTRAN in WB-S1 mode, in NB-S1 mode
_GSM_COMPACT = 0x0040

_UNUSED = b"\xff\xff\xff"


def encode_plmn(plmn: str) -> bytes:
    """The 3-octet BCD coding of ``plmn`` (``MCC || MNC``, 5 or 6 digits)."""
    try:
        check_plmn(plmn)
    except Exception as exc:  # UsageError: re-raise as the codec's error type
        raise EncodeError("a PLMN is MCC || MNC: 5 or 6 decimal digits") from exc
    d = [int(c) for c in plmn]
    mnc3 = d[5] if len(d) == 6 else 0xF
    return bytes(((d[1] << 4) | d[0], (mnc3 << 4) | d[2], (d[4] << 4) | d[3]))


def decode_plmn(data: bytes) -> str | None:
    """Inverse of :func:`encode_plmn`; ``None`` for an unused entry (``FFFFFF``).

    :class:`~rspfed.errors.DecodeError` for a wrong length or a non-decimal
    digit (other than ``F`` as MNC digit 3).
    """
    data = bytes(data)
    if len(data) != 3:
        raise DecodeError("a PLMN is 3 octets", type_name="PLMN")
    if data == _UNUSED:
        return None
    h = data.hex()  # "21" "F3" "54" for MCC 123, MNC 45: each octet low nibble first
    digits = h[1] + h[0] + h[3] + h[5] + h[4]
    if not digits.isdigit():
        raise DecodeError("a PLMN digit is not decimal", type_name="PLMN")
    mnc3 = h[2]
    if mnc3 == "f":
        return digits
    if not mnc3.isdigit():
        raise DecodeError("MNC digit 3 is neither decimal nor F", type_name="PLMN", offset=1)
    return digits + mnc3


def encode_act(rats: Iterable[Rat]) -> bytes:
    """The 2-octet access technology identifier for ``rats`` (TS 31.102 §4.2.5)."""
    value = 0
    for rat in rats:
        if not isinstance(rat, Rat):
            raise EncodeError("access technologies are Rat members")
        value |= ACT_BITS[rat]
    return value.to_bytes(2, "big")


def decode_act(data: bytes) -> frozenset[Rat]:
    """The RATs an access technology identifier names (see the module notes)."""
    data = bytes(data)
    if len(data) != 2:
        raise DecodeError("an access technology identifier is 2 octets", type_name="AcT")
    return _act(int.from_bytes(data, "big"))


@functools.lru_cache(maxsize=256)
def _act(value: int) -> frozenset[Rat]:
    rats = {rat for rat, bit in ACT_BITS.items() if value & bit}
    if value & _EUTRAN_MODES:
        rats.add(Rat.EUTRAN)
    if value & _GSM_COMPACT:
        rats.add(Rat.GSM)
    return frozenset(rats)


def _entries(data: bytes, size: int, name: str) -> list[bytes]:
    data = bytes(data)
    if len(data) % size:
        raise DecodeError(f"length is not a multiple of {size}", type_name=name)
    return [data[i : i + size] for i in range(0, len(data), size)]


def decode_plmn_list(data: bytes, *, name: str = "EF.FPLMN") -> tuple[str, ...]:
    """The PLMNs of an EF of 3-octet entries (EF.FPLMN, EF.EHPLMN), unused entries skipped."""
    out: list[str] = []
    for i, entry in enumerate(_entries(data, 3, name)):
        try:
            plmn = decode_plmn(entry)
        except DecodeError as exc:
            raise DecodeError(f"entry {i}: {exc.args[0]}", type_name=name, offset=3 * i) from exc
        if plmn is not None:
            out.append(plmn)
    return tuple(out)


def encode_plmn_list(plmns: Sequence[str], size: int) -> bytes:
    """``plmns`` as 3-octet entries padded with unused entries to ``size`` octets.

    ``size`` must be a multiple of 3 large enough for every entry
    (:class:`~rspfed.errors.EncodeError` otherwise).
    """
    if size < 0 or size % 3 or 3 * len(plmns) > size:
        raise EncodeError("the file size must be a multiple of 3 holding every entry")
    body = b"".join(encode_plmn(p) for p in plmns)
    return body + b"\xff" * (size - len(body))


def decode_plmn_wact_list(
    data: bytes, *, name: str = "EF.PLMNwAcT"
) -> tuple[tuple[str, frozenset[Rat]], ...]:
    """The ``(PLMN, RATs)`` entries of EF.PLMNwAcT/OPLMNwAcT/HPLMNwAcT, unused ones skipped."""
    out: list[tuple[str, frozenset[Rat]]] = []
    for i, entry in enumerate(_entries(data, 5, name)):
        try:
            plmn = decode_plmn(entry[:3])
        except DecodeError as exc:
            raise DecodeError(f"entry {i}: {exc.args[0]}", type_name=name, offset=5 * i) from exc
        if plmn is not None:
            out.append((plmn, decode_act(entry[3:])))
    return tuple(out)


def encode_plmn_wact_list(entries: Sequence[tuple[str, Iterable[Rat]]], size: int) -> bytes:
    """``(PLMN, RATs)`` entries as 5-octet records padded with ``FFFFFF0000`` to ``size``."""
    if size < 0 or size % 5 or 5 * len(entries) > size:
        raise EncodeError("the file size must be a multiple of 5 holding every entry")
    body = b"".join(encode_plmn(p) + encode_act(r) for p, r in entries)
    pad = (size - len(body)) // 5
    return body + (_UNUSED + b"\x00\x00") * pad


def decode_hpplmn(
    data: bytes | None, *, unit: timedelta = HPPLMN_UNIT, default: timedelta = HPPLMN_DEFAULT
) -> timedelta | None:
    """The higher priority PLMN search period of EF.HPPLMN (TS 31.102 §4.2.6).

    ``None`` data (the EF is absent) gives ``default``; ``00`` gives ``None``
    (no periodic search); a value ``v`` gives ``v × unit`` (``unit`` = ``n``
    minutes, 6 in the releases modelled here, so ``01`` = 6 min and ``50``
    (80) = 8 h, the TS 23.122 maximum).  Values above 80 are "interpreted by
    the ME as a default period" (TS 31.102): ``default``.
    """
    if data is None:
        return default
    data = bytes(data)
    if len(data) < 1:
        raise DecodeError("EF.HPPLMN is one octet", type_name="EF.HPPLMN")
    value = data[0]
    if value == 0:
        return None
    if value > 80:
        return default
    return value * unit


def encode_hpplmn(period: timedelta | None, *, unit: timedelta = HPPLMN_UNIT) -> bytes:
    """EF.HPPLMN for ``period``: 1 to 80 whole ``unit`` s, or ``None`` (``00``)."""
    if period is None:
        return b"\x00"
    if period <= timedelta(0) or period % unit:
        raise EncodeError("the search period is a positive multiple of the unit")
    value = period // unit
    if value > 80:
        raise EncodeError("the search period is at most 80 units")
    return bytes((value,))
