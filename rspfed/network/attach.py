"""The attach check: 3G AKA between the AuC and a device's USIM (TS 33.102 §6.3).

:class:`Usim` is anything answering AUTHENTICATE (RAND, AUTN) with RES/CK/IK
or AUTS; :class:`UsimOverApdus` does it over a
:class:`~rspfed.euicc.card.Card` (SELECT the USIM ADF by AID prefix
``A0000000871002``, optionally VERIFY PIN1, AUTHENTICATE P2 ``81``).
:func:`attach` runs one authentication with at most one resynchronisation
round.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Protocol

import attrs

from rspfed.errors import DecodeError, IntegrityError, ProtocolError
from rspfed.euicc.card import Card
from rspfed.network._apdu import USIM_AID_PREFIX, select_usim, send
from rspfed.network.auc import Auc
from rspfed.network.errors import NetworkRefusedError, RefusalReason

__all__ = [
    "USIM_AID_PREFIX",
    "Attachment",
    "AuthenticateResult",
    "Usim",
    "UsimOverApdus",
    "attach",
]


@attrs.frozen
class AuthenticateResult:
    """A USIM's answer: RES, CK, IK (success) or AUTS (synchronisation failure)."""

    res: bytes | None = attrs.field(default=None, repr=False)
    ck: bytes | None = attrs.field(default=None, repr=False)
    ik: bytes | None = attrs.field(default=None, repr=False)
    auts: bytes | None = attrs.field(default=None, repr=False)


class Usim(Protocol):
    """AUTHENTICATE (3G context).  A MAC failure raises :class:`~rspfed.errors.IntegrityError`."""

    def __call__(self, rand: bytes, autn: bytes) -> AuthenticateResult:
        """Answer the challenge."""
        ...


def _tlv_values(data: bytes, count: int) -> list[bytes]:
    out: list[bytes] = []
    pos = 0
    for _ in range(count):
        if pos >= len(data):
            raise ProtocolError("AUTHENTICATE response too short")
        n = data[pos]
        if pos + 1 + n > len(data):
            raise ProtocolError("AUTHENTICATE response truncated")
        out.append(data[pos + 1 : pos + 1 + n])
        pos += 1 + n
    return out


class UsimOverApdus:
    """A :class:`Usim` over a card's APDUs (the enabled profile's USIM)."""

    __slots__ = ("_card", "_pin")

    def __init__(self, card: Card, *, pin: bytes | None = None) -> None:
        self._card = card
        self._pin = pin

    def __repr__(self) -> str:
        return "UsimOverApdus()"

    def _send(self, apdu: bytes) -> bytes:
        resp = self._card.transmit(apdu)
        data = b""
        while len(resp) >= 2 and resp[-2] == 0x61:
            data += resp[:-2]
            resp = self._card.transmit(bytes([0x00, 0xC0, 0x00, 0x00, resp[-1]]))
        if len(resp) < 2:
            raise ProtocolError("response APDU without status word")
        return data + resp

    def __call__(self, rand: bytes, autn: bytes) -> AuthenticateResult:
        """SELECT the USIM, VERIFY PIN1 if given, AUTHENTICATE; the parsed answer."""
        if len(rand) != 16 or len(autn) != 16:
            raise ProtocolError("RAND and AUTN must be 16 octets")
        select_usim(self._card, self._pin)
        authenticate = bytes.fromhex("0088008122") + b"\x10" + rand + b"\x10" + autn + b"\x00"
        data, sw = send(self._card, authenticate)
        if sw == b"\x98\x62":
            raise IntegrityError("the USIM rejected AUTN (MAC failure)")
        if sw != b"\x90\x00" or not data:
            raise ProtocolError(f"AUTHENTICATE failed: status {sw.hex().upper()}")
        if data[0] == 0xDB:
            res, ck, ik = _tlv_values(data[1:], 3)
            return AuthenticateResult(res=res, ck=ck, ik=ik)
        if data[0] == 0xDC:
            (auts,) = _tlv_values(data[1:], 1)
            return AuthenticateResult(auts=auts)
        raise ProtocolError("AUTHENTICATE answer neither DB nor DC")


@attrs.frozen
class Attachment:
    """A successful attach: the IMSI, the agreed CK and IK, and when."""

    imsi: str
    ck: bytes = attrs.field(repr=False)
    ik: bytes = attrs.field(repr=False)
    when: datetime


def attach(auc: Auc, imsi: str, usim: Usim, *, now: datetime) -> Attachment:
    """Authenticate ``imsi``'s USIM: one vector, at most one resynchronisation.

    Raises :class:`~rspfed.network.errors.NetworkRefusedError` with reason
    unknown-subscriber, barred, removed (before any challenge),
    authentication-failed (RES ≠ XRES, USIM MAC failure or a bad AUTS) or
    synch-failure (a second AUTS).
    """
    for round_ in range(2):
        vector = auc.generate_vector(imsi)
        try:
            answer = usim(vector.rand, vector.autn)
        except IntegrityError as exc:
            raise NetworkRefusedError(RefusalReason.AUTHENTICATION_FAILED) from exc
        if answer.auts is not None:
            if round_:
                raise NetworkRefusedError(RefusalReason.SYNCH_FAILURE)
            try:
                auc.resynchronise(imsi, vector.rand, answer.auts)
            except (IntegrityError, DecodeError) as exc:
                raise NetworkRefusedError(RefusalReason.AUTHENTICATION_FAILED) from exc
            continue
        if (
            answer.res is None
            or answer.ck is None
            or answer.ik is None
            or not hmac.compare_digest(answer.res, vector.xres)
        ):
            raise NetworkRefusedError(RefusalReason.AUTHENTICATION_FAILED)
        return Attachment(imsi, vector.ck, vector.ik, now)
    raise NetworkRefusedError(RefusalReason.SYNCH_FAILURE)  # pragma: no cover
