"""The peer's USIM as a :data:`~rspfed.eap.machines.UsimAuthenticate` from AUTHENTICATE.

:func:`usim_from_authenticate` wraps a USIM's AUTHENTICATE command (3GPP TS
31.102 §7.1.2, 3G security context: P1 ``00``, P2 ``81``) — any callable
``run(p1, p2, data) -> response data`` such as
:meth:`rspfed.euicc.usim.Usim.authenticate`, or one that sends the APDU to a
card — into the ``authenticate(rand, autn)`` callable that
:class:`~rspfed.eap.machines.EapAkaPrimePeer` takes.

Command data ``10 RAND 10 AUTN``.  Responses: ``DB`` L RES ``10`` CK ``10``
IK [``08`` Kc] → ``(RES, CK, IK)``; ``DC 0E`` AUTS → AUTS.  Status ``9862``
(authentication error, incorrect MAC), raised by ``run`` as a
:class:`~rspfed.errors.ProtocolError` carrying ``sw`` (like
:class:`rspfed.euicc.apdu.StatusError`), becomes
:class:`~rspfed.errors.IntegrityError`, on which the peer answers
Authentication-Reject.  A malformed response is a
:class:`~rspfed.errors.DecodeError`.
"""

from __future__ import annotations

from collections.abc import Callable

from rspfed.eap.machines import UsimAuthenticate, UsimResult
from rspfed.errors import DecodeError, IntegrityError, ProtocolError, UsageError

__all__ = ["SW_AUTH_MAC_FAILURE", "parse_authenticate_response", "usim_from_authenticate"]

SW_AUTH_MAC_FAILURE = 0x9862
"""AUTHENTICATE: authentication error, incorrect MAC (ETSI TS 102 221 §10.2.1.6)."""


def parse_authenticate_response(data: bytes) -> UsimResult:
    """``(RES, CK, IK)`` from a ``DB`` response, AUTS from a ``DC`` one; else DecodeError."""
    data = bytes(data)
    if len(data) == 16 and data[:2] == b"\xdc\x0e":
        return data[2:]
    if not data or data[0] != 0xDB or len(data) < 2:
        raise DecodeError("not an AUTHENTICATE 3G response", type_name="AUTHENTICATE")
    n = data[1]
    if not 4 <= n <= 16:
        raise DecodeError("RES length out of range", type_name="AUTHENTICATE", offset=1)
    pos = 2 + n
    res = data[2:pos]
    if data[pos : pos + 1] != b"\x10" or data[pos + 17 : pos + 18] != b"\x10":
        raise DecodeError("CK/IK not where expected", type_name="AUTHENTICATE", offset=pos)
    ck = data[pos + 1 : pos + 17]
    ik = data[pos + 18 : pos + 34]
    rest = data[pos + 34 :]
    kc_ok = rest == b"" or (len(rest) == 9 and rest[0] == 0x08)
    if len(ik) != 16 or not kc_ok:
        raise DecodeError("AUTHENTICATE response has a wrong length", type_name="AUTHENTICATE")
    return res, ck, ik


def usim_from_authenticate(run: Callable[[int, int, bytes], bytes]) -> UsimAuthenticate:
    """The peer's ``authenticate(rand, autn)`` over AUTHENTICATE ``run(p1, p2, data)``."""

    def authenticate(rand: bytes, autn: bytes) -> UsimResult:
        if len(rand) != 16 or len(autn) != 16:
            raise UsageError("RAND and AUTN must be 16 octets")
        try:
            response = run(0x00, 0x81, b"\x10" + bytes(rand) + b"\x10" + bytes(autn))
        except ProtocolError as e:
            if getattr(e, "sw", None) == SW_AUTH_MAC_FAILURE:
                raise IntegrityError("USIM: AUTN MAC failure") from None
            raise
        return parse_authenticate_response(response)

    return authenticate
