"""USIM AUTHENTICATE (3GPP TS 31.102 §7.1.2) with SQN checking (TS 33.102 Annex C).

:class:`AkaSpec` is the persistent part: the algorithm the profile's AKA
parameter names (SAIP ``AlgoParameter``: MILENAGE or the TS 34.108 test
algorithm), K, OPc, the SQN array and its limits.  :class:`Usim` runs
AUTHENTICATE for one ADF and keeps the SQN array up to date;
:meth:`Usim.snapshot` gives the updated :class:`AkaSpec` back.

**SQN checking, the subset implemented** (TS 33.102 Annex C.1–C.2, the
array scheme with ``a = 2**ind_bits`` entries, default 32 as in SAIP
``sqnInit``).  ``SQN = SEQ || IND`` with IND the ``ind_bits`` low bits.
``SEQ_MS`` is the highest SEQ in the array.  A received SQN is accepted iff

1. ``SEQ > array[IND]`` (not replayed for this IND), and
2. ``SEQ_MS - SEQ <= age_limit`` (not too old, C.2.2 "L"), and
3. ``SEQ - SEQ_MS <= delta`` (not too far ahead, C.2.1 "Δ");

on acceptance ``array[IND] = SEQ``.  Otherwise the answer is a
synchronisation failure ``DC 0E AUTS`` with ``SQN_MS`` = the highest accepted
SQN (its SEQ and IND; zero when nothing was accepted yet).  ``sqn_check =
False`` accepts every SQN (SAIP says the SQN parameters are ignored for the
test algorithm; whoever builds the spec decides).  The AMF separation bit is
not checked.

Responses (P2 ``81``, 3G context): ``DB`` L RES, ``10`` CK, ``10`` IK and,
when ``gsm_access`` is set, ``08`` Kc = c3(CK, IK).  P2 ``80`` (GSM context,
only with ``gsm_access``): ``04`` SRES = c2(RES), ``08`` Kc.  A wrong MAC is
``9862``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from rspfed.crypto.aka import AkaAlgorithm, AkaOutputs, build_auts, check_autn
from rspfed.crypto.milenage import Milenage
from rspfed.crypto.testalg import TestAlgorithm
from rspfed.errors import IntegrityError, StorageError, UsageError
from rspfed.euicc.apdu import (
    SW_AUTH_MAC_FAILURE,
    SW_INCORRECT_DATA,
    SW_INCORRECT_P1P2,
    SW_WRONG_LENGTH,
    StatusError,
)
from rspfed.euicc.fs import as_bytes

__all__ = [
    "DEFAULT_SQN_LIMIT",
    "AkaAlgorithmId",
    "AkaSpec",
    "SqnCheck",
    "Usim",
    "c2",
    "c3",
    "check_sqn",
]

DEFAULT_SQN_LIMIT = 0x000010000000
"""SAIP's default ``sqnDelta`` and ``sqnAgeLimit`` (2**28)."""
_SQN_MAX = (1 << 48) - 1


class AkaAlgorithmId(enum.IntEnum):
    """SAIP ``AlgoParameter.algorithmID``."""

    MILENAGE = 1
    TUAK = 2
    USIM_TEST_ALGORITHM = 3


def c2(res: bytes) -> bytes:
    """SRES = c2(RES) (TS 33.102 §6.8.1.2): XOR of the 32-bit words of RES (zero-padded)."""
    padded = bytes(res).ljust(16, b"\x00")
    out = 0
    for i in range(0, 16, 4):
        out ^= int.from_bytes(padded[i : i + 4], "big")
    return out.to_bytes(4, "big")


def c3(ck: bytes, ik: bytes) -> bytes:
    """Kc = c3(CK, IK) = CK1 ⊕ CK2 ⊕ IK1 ⊕ IK2 (64-bit halves)."""
    v = 0
    for half in (ck[:8], ck[8:], ik[:8], ik[8:]):
        v ^= int.from_bytes(half, "big")
    return v.to_bytes(8, "big")


def _ints(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(values)


@attrs.frozen
class AkaSpec:
    """The AKA parameters and SQN state of one USIM (persisted with the profile).

    ``res_length`` (octets) applies to the test algorithm only (MILENAGE's
    RES is 8 octets); ``None`` means the algorithm's default.  ``sqn_array``
    holds SEQ values (without IND), ``2**ind_bits`` of them.
    """

    adf_aid: bytes = attrs.field(converter=as_bytes)
    algorithm: AkaAlgorithmId
    k: bytes = attrs.field(repr=False, converter=as_bytes)
    opc: bytes = attrs.field(default=bytes(16), repr=False, converter=as_bytes)
    res_length: int | None = None
    sqn_check: bool = True
    ind_bits: int = 5
    sqn_delta: int = DEFAULT_SQN_LIMIT
    sqn_age_limit: int = DEFAULT_SQN_LIMIT
    sqn_array: tuple[int, ...] = attrs.field(default=(0,) * 32, converter=_ints)
    gsm_access: bool = True

    def __attrs_post_init__(self) -> None:
        if len(self.k) != 16 or len(self.opc) != 16:
            raise UsageError("K and OPc must be 16 octets")
        if not 0 <= self.ind_bits <= 10:
            raise UsageError("ind_bits must be 0 to 10")
        if len(self.sqn_array) != 1 << self.ind_bits:
            raise UsageError("sqn_array must have 2**ind_bits entries")
        limit = _SQN_MAX >> self.ind_bits
        if any(not 0 <= s <= limit for s in self.sqn_array):
            raise UsageError("SEQ values out of range")
        if not 0 <= self.sqn_delta <= _SQN_MAX or not 0 <= self.sqn_age_limit <= _SQN_MAX:
            raise UsageError("SQN limits out of range")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (keys in hex: the store holds secrets, protect it accordingly)."""
        return {
            "adf_aid": self.adf_aid.hex(),
            "algorithm": int(self.algorithm),
            "k": self.k.hex(),
            "opc": self.opc.hex(),
            "res_length": self.res_length,
            "sqn_check": self.sqn_check,
            "ind_bits": self.ind_bits,
            "sqn_delta": self.sqn_delta,
            "sqn_age_limit": self.sqn_age_limit,
            "sqn_array": list(self.sqn_array),
            "gsm_access": self.gsm_access,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AkaSpec:
        """Inverse of :meth:`to_dict`; :class:`~rspfed.errors.StorageError` on bad input."""
        try:
            res_length = data.get("res_length")
            return cls(
                adf_aid=bytes.fromhex(data["adf_aid"]),
                algorithm=AkaAlgorithmId(data["algorithm"]),
                k=bytes.fromhex(data["k"]),
                opc=bytes.fromhex(data["opc"]),
                res_length=None if res_length is None else int(res_length),
                sqn_check=bool(data["sqn_check"]),
                ind_bits=int(data["ind_bits"]),
                sqn_delta=int(data["sqn_delta"]),
                sqn_age_limit=int(data["sqn_age_limit"]),
                sqn_array=tuple(int(s) for s in data["sqn_array"]),
                gsm_access=bool(data.get("gsm_access", True)),
            )
        except (KeyError, ValueError, TypeError, AttributeError, UsageError) as exc:
            raise StorageError("malformed AKA parameters") from exc


@attrs.frozen
class SqnCheck:
    """The outcome of :func:`check_sqn`: accepted or not, and the new array."""

    accepted: bool
    sqn_array: tuple[int, ...]
    sqn_ms: int


def _sqn_ms(array: tuple[int, ...], ind_bits: int) -> int:
    best = 0
    for ind, seq in enumerate(array):
        if seq:
            best = max(best, (seq << ind_bits) | ind)
    return best


def check_sqn(
    sqn: int, array: tuple[int, ...], *, ind_bits: int, delta: int, age_limit: int
) -> SqnCheck:
    """Check a received SQN against the array (the subset in the module docstring).

    ``sqn_ms`` in the result is the highest accepted SQN *before* this check
    (what AUTS carries on failure).
    """
    seq, ind = sqn >> ind_bits, sqn & ((1 << ind_bits) - 1)
    seq_ms = max(array)
    sqn_ms = _sqn_ms(array, ind_bits)
    fresh = seq > array[ind] and seq_ms - seq <= age_limit and seq - seq_ms <= delta
    if not fresh:
        return SqnCheck(False, array, sqn_ms)
    new = list(array)
    new[ind] = seq
    return SqnCheck(True, tuple(new), sqn_ms)


class Usim:
    """AUTHENTICATE for one USIM ADF; the SQN array is updated in place."""

    __slots__ = ("_algorithm", "_spec")

    def __init__(self, spec: AkaSpec) -> None:
        self._spec = spec
        self._algorithm: AkaAlgorithm
        if spec.algorithm is AkaAlgorithmId.MILENAGE:
            self._algorithm = Milenage(spec.k, spec.opc)
        elif spec.algorithm is AkaAlgorithmId.USIM_TEST_ALGORITHM:
            self._algorithm = TestAlgorithm(spec.k, res_length=spec.res_length or 16)
        else:
            raise UsageError(f"AKA algorithm {spec.algorithm.name} is not implemented")

    @property
    def adf_aid(self) -> bytes:
        """The AID of the ADF this USIM answers for."""
        return self._spec.adf_aid

    def snapshot(self) -> AkaSpec:
        """The current parameters and SQN array."""
        return self._spec

    def __repr__(self) -> str:
        return f"Usim({self._spec.adf_aid.hex().upper()}, {self._spec.algorithm.name})"

    def authenticate(self, p1: int, p2: int, data: bytes) -> bytes:
        """Run AUTHENTICATE; the response data or :class:`~rspfed.euicc.apdu.StatusError`."""
        if p1 != 0x00:
            raise StatusError(SW_INCORRECT_P1P2, "P1 must be 00")
        if p2 == 0x81:
            return self._auth_3g(data)
        if p2 == 0x80 and self._spec.gsm_access:
            return self._auth_gsm(data)
        raise StatusError(SW_INCORRECT_P1P2, "authentication context not supported")

    def _auth_gsm(self, data: bytes) -> bytes:
        if len(data) != 17:
            raise StatusError(SW_WRONG_LENGTH)
        if data[0] != 16:
            raise StatusError(SW_INCORRECT_DATA)
        out = self._algorithm.f2345(data[1:])
        return b"\x04" + c2(out.res) + b"\x08" + c3(out.ck, out.ik)

    def _auth_3g(self, data: bytes) -> bytes:
        if len(data) != 34:
            raise StatusError(SW_WRONG_LENGTH)
        if data[0] != 16 or data[17] != 16:
            raise StatusError(SW_INCORRECT_DATA)
        rand, autn = data[1:17], data[18:34]
        try:
            sqn, out = check_autn(self._algorithm, rand, autn)
        except IntegrityError:
            raise StatusError(SW_AUTH_MAC_FAILURE, "MAC failure") from None
        spec = self._spec
        if spec.sqn_check:
            result = check_sqn(
                int.from_bytes(sqn, "big"),
                spec.sqn_array,
                ind_bits=spec.ind_bits,
                delta=spec.sqn_delta,
                age_limit=spec.sqn_age_limit,
            )
            if not result.accepted:
                auts = build_auts(self._algorithm, rand, result.sqn_ms.to_bytes(6, "big"))
                return b"\xdc\x0e" + auts
            self._spec = attrs.evolve(spec, sqn_array=result.sqn_array)
        return self._success(out)

    def _success(self, out: AkaOutputs) -> bytes:
        body = bytes((len(out.res),)) + out.res + b"\x10" + out.ck + b"\x10" + out.ik
        if self._spec.gsm_access:
            body += b"\x08" + c3(out.ck, out.ik)
        return b"\xdb" + body
