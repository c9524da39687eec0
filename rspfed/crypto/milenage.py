"""MILENAGE (3GPP TS 35.205/35.206): f1, f1*, f2, f3, f4, f5, f5* and OPc on AES-128.

With ``E_K`` AES-128 under the subscriber key K and ``OPc = E_K(OP) ⊕ OP``::

    TEMP = E_K(RAND ⊕ OPc)
    OUT1 = E_K(TEMP ⊕ rot(IN1 ⊕ OPc, r1) ⊕ c1) ⊕ OPc,  IN1 = SQN || AMF || SQN || AMF
    OUTi = E_K(rot(TEMP ⊕ OPc, ri) ⊕ ci) ⊕ OPc,        i = 2..5

with r1..r5 = 64, 0, 32, 64, 96 bits and c1..c5 = 0, 1, 2, 4, 8 (in the last
bit positions).  f1 = OUT1[0..63], f1* = OUT1[64..127], f5 = OUT2[0..47],
f2 = OUT2[64..127], f3 = OUT3, f4 = OUT4, f5* = OUT5[0..47].
"""

from __future__ import annotations

import attrs
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from rspfed.crypto.aka import AkaOutputs, xor
from rspfed.errors import UsageError

__all__ = ["Milenage", "MilenageF1", "compute_opc"]

_C = tuple(bytes(15) + bytes((c,)) for c in (0, 1, 2, 4, 8))
_R = (8, 0, 4, 8, 12)  # rotations in octets


def _aes_ecb(k: bytes) -> CipherContext:
    if len(k) != 16:
        raise UsageError(f"K must be 16 octets, got {len(k)}")
    # Single-block AES is the MILENAGE kernel function E_K.
    ecb = modes.ECB()  # noqa: S305 - E_K on single 128-bit blocks, as TS 35.206 defines
    return Cipher(algorithms.AES(bytes(k)), ecb).encryptor()


def _rot(x: bytes, octets: int) -> bytes:
    return x[octets:] + x[:octets]


def compute_opc(k: bytes, op: bytes) -> bytes:
    """``OPc = E_K(OP) ⊕ OP`` (16 octets)."""
    if len(op) != 16:
        raise UsageError(f"OP must be 16 octets, got {len(op)}")
    return xor(_aes_ecb(k).update(bytes(op)), bytes(op))


@attrs.frozen
class MilenageF1:
    """The two halves of OUT1: MAC-A (f1) and MAC-S (f1*)."""

    mac_a: bytes
    mac_s: bytes


class Milenage:
    """MILENAGE bound to one subscriber: K and OPc (neither appears in ``repr``).

    Implements :class:`~rspfed.crypto.aka.AkaAlgorithm`.  RES is 8 octets.
    """

    __slots__ = ("_ek", "_opc")

    def __init__(self, k: bytes, opc: bytes) -> None:
        if len(opc) != 16:
            raise UsageError(f"OPc must be 16 octets, got {len(opc)}")
        self._ek = _aes_ecb(k)
        self._opc = bytes(opc)

    @classmethod
    def from_op(cls, k: bytes, op: bytes) -> Milenage:
        """MILENAGE from K and the operator variant OP (OPc is computed)."""
        return cls(k, compute_opc(k, op))

    def __repr__(self) -> str:
        return "Milenage()"

    def _e(self, block: bytes) -> bytes:
        return self._ek.update(block)

    def _temp(self, rand: bytes) -> bytes:
        if len(rand) != 16:
            raise UsageError(f"RAND must be 16 octets, got {len(rand)}")
        return self._e(xor(bytes(rand), self._opc))

    def f1_both(self, rand: bytes, sqn: bytes, amf: bytes) -> MilenageF1:
        """OUT1 for (RAND, SQN, AMF): MAC-A and MAC-S together (one AES call)."""
        if len(sqn) != 6 or len(amf) != 2:
            raise UsageError("SQN must be 6 octets and AMF 2 octets")
        temp = self._temp(rand)
        in1 = bytes(sqn) + bytes(amf) + bytes(sqn) + bytes(amf)
        x = xor(xor(temp, _rot(xor(in1, self._opc), _R[0])), _C[0])
        out1 = xor(self._e(x), self._opc)
        return MilenageF1(out1[:8], out1[8:])

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """f1: MAC-A (8 octets)."""
        return self.f1_both(rand, sqn, amf).mac_a

    def f1star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """f1*: MAC-S (8 octets)."""
        return self.f1_both(rand, sqn, amf).mac_s

    def _out(self, temp: bytes, i: int) -> bytes:
        return xor(self._e(xor(_rot(xor(temp, self._opc), _R[i]), _C[i])), self._opc)

    def f2345(self, rand: bytes) -> AkaOutputs:
        """f2 (RES, 8 octets), f3 (CK), f4 (IK) and f5 (AK, 6 octets)."""
        temp = self._temp(rand)
        out2 = self._out(temp, 1)
        return AkaOutputs(
            res=out2[8:], ck=self._out(temp, 2), ik=self._out(temp, 3), ak=out2[:6]
        )

    def f5star(self, rand: bytes) -> bytes:
        """f5*: AK* (6 octets)."""
        return self._out(self._temp(rand), 4)[:6]
