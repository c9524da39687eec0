"""The AKA function set shared by MILENAGE and the 3GPP test algorithm (TS 33.102 §6.3).

:class:`AkaAlgorithm` is what a USIM or an AuC needs from an algorithm: f1,
f1*, f2 to f5 (as :meth:`~AkaAlgorithm.f2345`) and f5*.  The helpers build
and check AUTN (TS 33.102 §6.3.2/§6.3.3) and AUTS (§6.3.5):

``AUTN = (SQN ⊕ AK) || AMF || MAC-A``  (16 octets)

``AUTS = (SQN_MS ⊕ AK*) || MAC-S``     (14 octets), with ``MAC-S = f1*(SQN_MS, RAND, AMF*)``
and the dummy ``AMF* = '0000'``.

:func:`c2` and :func:`c3` are the GSM conversion functions of TS 33.102
§6.8.1.2 (SRES from RES, Kc from CK and IK) that a USIM applies in a GSM
security context.
"""

from __future__ import annotations

import hmac
from typing import Protocol, runtime_checkable

import attrs

from rspfed.errors import DecodeError, IntegrityError, UsageError

__all__ = [
    "AMF_RESYNC",
    "AUTN_SIZE",
    "AUTS_SIZE",
    "AkaAlgorithm",
    "AkaOutputs",
    "Autn",
    "build_autn",
    "build_auts",
    "c2",
    "c3",
    "check_autn",
    "check_auts",
    "xor",
]

AUTN_SIZE = 16
AUTS_SIZE = 14
AMF_RESYNC = b"\x00\x00"
"""The dummy AMF* used for MAC-S in resynchronisation (TS 33.102 §6.3.3)."""


def xor(a: bytes, b: bytes) -> bytes:
    """Octet-wise XOR of two equal-length strings."""
    if len(a) != len(b):
        raise UsageError("xor of strings of different lengths")
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _need(name: str, value: bytes, size: int) -> bytes:
    if len(value) != size:
        raise UsageError(f"{name} must be {size} octets, got {len(value)}")
    return bytes(value)


@attrs.frozen
class AkaOutputs:
    """f2 to f5 for one RAND: RES, CK, IK and AK (none of them is shown in ``repr``)."""

    res: bytes = attrs.field(repr=False)
    ck: bytes = attrs.field(repr=False)
    ik: bytes = attrs.field(repr=False)
    ak: bytes = attrs.field(repr=False)


@runtime_checkable
class AkaAlgorithm(Protocol):
    """An AKA algorithm bound to one subscriber key (MILENAGE, the test algorithm)."""

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-A (or XMAC-A), 8 octets, from RAND (16), SQN (6) and AMF (2)."""
        ...

    def f1star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-S (or XMAC-S), 8 octets, for resynchronisation."""
        ...

    def f2345(self, rand: bytes) -> AkaOutputs:
        """RES, CK, IK and AK for RAND."""
        ...

    def f5star(self, rand: bytes) -> bytes:
        """AK*, 6 octets, the anonymity key of AUTS."""
        ...


@attrs.frozen
class Autn:
    """The authentication token: ``SQN ⊕ AK`` (6), AMF (2) and MAC-A (8)."""

    sqn_xor_ak: bytes
    amf: bytes
    mac_a: bytes

    def __attrs_post_init__(self) -> None:
        _need("SQN ⊕ AK", self.sqn_xor_ak, 6)
        _need("AMF", self.amf, 2)
        _need("MAC-A", self.mac_a, 8)

    def to_bytes(self) -> bytes:
        """The 16 octets of AUTN."""
        return self.sqn_xor_ak + self.amf + self.mac_a

    @classmethod
    def from_bytes(cls, data: bytes) -> Autn:
        """Split 16 octets of AUTN; :class:`~rspfed.errors.DecodeError` for another length."""
        if len(data) != AUTN_SIZE:
            raise DecodeError(f"AUTN must be {AUTN_SIZE} octets, got {len(data)}", type_name="AUTN")
        data = bytes(data)
        return cls(data[:6], data[6:8], data[8:])


def build_autn(
    algorithm: AkaAlgorithm, rand: bytes, sqn: bytes, amf: bytes
) -> tuple[Autn, AkaOutputs]:
    """The network side: AUTN for (RAND, SQN, AMF) and the f2–f5 outputs (XRES, CK, IK, AK)."""
    rand = _need("RAND", rand, 16)
    sqn = _need("SQN", sqn, 6)
    amf = _need("AMF", amf, 2)
    out = algorithm.f2345(rand)
    mac_a = algorithm.f1(rand, sqn, amf)
    return Autn(xor(sqn, out.ak), amf, mac_a), out


def check_autn(algorithm: AkaAlgorithm, rand: bytes, autn: bytes) -> tuple[bytes, AkaOutputs]:
    """The USIM side: recover SQN from AUTN and check MAC-A; ``(SQN, outputs)``.

    Raises :class:`~rspfed.errors.IntegrityError` when XMAC-A differs from
    MAC-A (constant-time comparison).  Checking SQN freshness is left to the
    caller.
    """
    rand = _need("RAND", rand, 16)
    token = Autn.from_bytes(autn)
    out = algorithm.f2345(rand)
    sqn = xor(token.sqn_xor_ak, out.ak)
    xmac = algorithm.f1(rand, sqn, token.amf)
    if not hmac.compare_digest(xmac, token.mac_a):
        raise IntegrityError("AUTN MAC-A does not verify")
    return sqn, out


def build_auts(algorithm: AkaAlgorithm, rand: bytes, sqn_ms: bytes) -> bytes:
    """The USIM side of a resynchronisation: ``AUTS = (SQN_MS ⊕ AK*) || MAC-S`` (14 octets)."""
    rand = _need("RAND", rand, 16)
    sqn_ms = _need("SQN_MS", sqn_ms, 6)
    mac_s = algorithm.f1star(rand, sqn_ms, AMF_RESYNC)
    return xor(sqn_ms, algorithm.f5star(rand)) + mac_s


def check_auts(algorithm: AkaAlgorithm, rand: bytes, auts: bytes) -> bytes:
    """The AuC side: recover SQN_MS from AUTS and check MAC-S; SQN_MS.

    Raises :class:`~rspfed.errors.DecodeError` for a wrong length and
    :class:`~rspfed.errors.IntegrityError` when MAC-S does not verify.
    """
    rand = _need("RAND", rand, 16)
    if len(auts) != AUTS_SIZE:
        raise DecodeError(f"AUTS must be {AUTS_SIZE} octets, got {len(auts)}", type_name="AUTS")
    auts = bytes(auts)
    sqn_ms = xor(auts[:6], algorithm.f5star(rand))
    xmac_s = algorithm.f1star(rand, sqn_ms, AMF_RESYNC)
    if not hmac.compare_digest(xmac_s, auts[6:]):
        raise IntegrityError("AUTS MAC-S does not verify")
    return sqn_ms


def c2(res: bytes) -> bytes:
    """SRES from RES (TS 33.102 §6.8.1.2): the XOR of RES's 32-bit words (4 octets).

    A RES shorter than 16 octets is first padded with zero octets to 16.
    """
    if not 4 <= len(res) <= 16:
        raise UsageError(f"RES must be 4 to 16 octets, got {len(res)}")
    padded = bytes(res) + bytes(16 - len(res))
    out = 0
    for i in range(0, 16, 4):
        out ^= int.from_bytes(padded[i : i + 4], "big")
    return out.to_bytes(4, "big")


def c3(ck: bytes, ik: bytes) -> bytes:
    """Kc from CK and IK (TS 33.102 §6.8.1.2): ``CK1 ⊕ CK2 ⊕ IK1 ⊕ IK2`` (8 octets)."""
    ck = _need("CK", ck, 16)
    ik = _need("IK", ik, 16)
    return xor(xor(ck[:8], ck[8:]), xor(ik[:8], ik[8:]))
