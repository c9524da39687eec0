"""The elliptic curves of RSP (SGP.22 §2.6.5): NIST P-256 and brainpoolP256r1.

Both curves have 256-bit field elements and a 256-bit group order, so every
coordinate, scalar and signature half is 32 octets.  :class:`Curve` is the one
curve type of rspfed (``rspfed.pki`` re-exports it); its ``value`` is the short
name used in files and on the command line (``nist``, ``brainpool``).
"""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import DecodeError, UsageError

__all__ = [
    "COORDINATE_SIZE",
    "OID_BRAINPOOL_P256R1",
    "OID_ECDSA_WITH_SHA256",
    "OID_EC_PUBLIC_KEY",
    "OID_PRIME256V1",
    "Curve",
]

COORDINATE_SIZE = 32
"""Octets in a coordinate, a scalar and each of ``r`` and ``s`` (both curves)."""

OID_PRIME256V1 = "1.2.840.10045.3.1.7"
"""``prime256v1`` / ``secp256r1`` (NIST P-256), ANSI X9.62."""

OID_BRAINPOOL_P256R1 = "1.3.36.3.3.2.8.1.1.7"
"""``brainpoolP256r1``, RFC 5639."""

OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
"""``id-ecPublicKey`` (the SubjectPublicKeyInfo algorithm of both curves)."""

OID_ECDSA_WITH_SHA256 = "1.2.840.10045.4.3.2"
"""``ecdsa-with-SHA256``, the signature algorithm of the RSP certificates."""

_N_P256 = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_N_BP256 = 0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7


class Curve(enum.Enum):
    """A curve supported for RSP keys (certificates and one-time keys)."""

    NIST = "nist"
    """NIST P-256 (``secp256r1``)."""
    BRAINPOOL = "brainpool"
    """``brainpoolP256r1``."""

    @property
    def ec_curve(self) -> ec.EllipticCurve:
        """A fresh ``cryptography`` curve object."""
        if self is Curve.NIST:
            return ec.SECP256R1()
        return ec.BrainpoolP256R1()

    @property
    def oid(self) -> str:
        """The named-curve OID (dotted form)."""
        return OID_PRIME256V1 if self is Curve.NIST else OID_BRAINPOOL_P256R1

    @property
    def spec_name(self) -> str:
        """The standard name: ``secp256r1`` or ``brainpoolP256r1``."""
        return "secp256r1" if self is Curve.NIST else "brainpoolP256r1"

    @property
    def order(self) -> int:
        """The order ``n`` of the base point."""
        return _N_P256 if self is Curve.NIST else _N_BP256

    @property
    def size(self) -> int:
        """Octets per coordinate / scalar (32)."""
        return COORDINATE_SIZE

    @classmethod
    def from_oid(cls, oid: str) -> Curve:
        """The curve named by ``oid``; :class:`DecodeError` if it is not an RSP curve."""
        for curve in cls:
            if curve.oid == oid:
                return curve
        raise DecodeError(f"unsupported curve OID {oid!r}", type_name="namedCurve")

    @classmethod
    def find_for_key(
        cls, key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey
    ) -> Curve | None:
        """The curve of ``key``, or ``None`` if it is on neither RSP curve."""
        if isinstance(key.curve, ec.SECP256R1):
            return cls.NIST
        if isinstance(key.curve, ec.BrainpoolP256R1):
            return cls.BRAINPOOL
        return None

    @classmethod
    def of_key(cls, key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> Curve:
        """The curve of ``key``; :class:`UsageError` if it is on neither RSP curve."""
        curve = cls.find_for_key(key)
        if curve is None:
            raise UsageError(f"key on unsupported curve {key.curve.name}")
        return curve
