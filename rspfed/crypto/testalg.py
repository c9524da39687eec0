"""The 3GPP AKA "test algorithm" of TS 34.108 §8.1.2 (SAIP ``usim-test-algorithm``).

All outputs are bit selections of ``XDOUT = K ⊕ RAND``:
RES = the first n bits, CK = XDOUT rotated left by 8 bits, IK = rotated left
by 16 bits, AK = AK* = bits 24..71; ``MAC-A = XDOUT[0..63] ⊕ (SQN || AMF)``
and ``MAC-S = XDOUT[0..63] ⊕ (SQN_MS || AMF*)``.  It offers no security (one
run reveals K) and exists for test cards; the GSMA TS.48 test profiles use it
with K = ``000102…0F``.
"""

from __future__ import annotations

from rspfed.crypto.aka import AkaOutputs, xor
from rspfed.errors import UsageError

__all__ = ["TestAlgorithm"]


class TestAlgorithm:
    """The TS 34.108 test algorithm bound to K (not shown in ``repr``).

    ``res_length`` is the RES length in octets (4 to 16; TS 34.108 allows 32
    to 128 bits, the usual test USIM uses 128).  Implements
    :class:`~rspfed.crypto.aka.AkaAlgorithm`.
    """

    __test__ = False  # not a pytest test class
    __slots__ = ("_k", "res_length")

    def __init__(self, k: bytes, *, res_length: int = 16) -> None:
        if len(k) != 16:
            raise UsageError(f"K must be 16 octets, got {len(k)}")
        if not any(k):
            raise UsageError("the test algorithm needs a K with at least one non-zero bit")
        if not 4 <= res_length <= 16:
            raise UsageError("RES length must be 4 to 16 octets")
        self._k = bytes(k)
        self.res_length = res_length

    def __repr__(self) -> str:
        return f"TestAlgorithm(res_length={self.res_length})"

    def xdout(self, rand: bytes) -> bytes:
        """``XDOUT = K ⊕ RAND`` (16 octets)."""
        if len(rand) != 16:
            raise UsageError(f"RAND must be 16 octets, got {len(rand)}")
        return xor(self._k, bytes(rand))

    def _mac(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        if len(sqn) != 6 or len(amf) != 2:
            raise UsageError("SQN must be 6 octets and AMF 2 octets")
        return xor(self.xdout(rand)[:8], bytes(sqn) + bytes(amf))

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-A = XDOUT[0..63] ⊕ (SQN || AMF)."""
        return self._mac(rand, sqn, amf)

    def f1star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-S = XDOUT[0..63] ⊕ (SQN_MS || AMF*)."""
        return self._mac(rand, sqn, amf)

    def f2345(self, rand: bytes) -> AkaOutputs:
        """RES (first ``res_length`` octets of XDOUT), CK, IK and AK."""
        x = self.xdout(rand)
        return AkaOutputs(res=x[: self.res_length], ck=x[1:] + x[:1], ik=x[2:] + x[:2], ak=x[3:9])

    def f5star(self, rand: bytes) -> bytes:
        """AK* = XDOUT[24..71] (the same selection as AK)."""
        return self.xdout(rand)[3:9]
