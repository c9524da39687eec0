"""The elliptic curves of the RSP PKI (SGP.22 §2.6.5: NIST P-256 and brainpoolP256r1)."""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["Curve"]


class Curve(enum.Enum):
    """A curve an RSP certificate key may use; ``value`` is the short name used in files and CLI."""

    NIST = "nist"
    BRAINPOOL = "brainpool"

    @property
    def ec_curve(self) -> ec.EllipticCurve:
        """A fresh ``cryptography`` curve object (``SECP256R1`` or ``BrainpoolP256R1``)."""
        if self is Curve.NIST:
            return ec.SECP256R1()
        return ec.BrainpoolP256R1()

    @property
    def spec_name(self) -> str:
        """The curve's standard name (``secp256r1`` / ``brainpoolP256r1``)."""
        return "secp256r1" if self is Curve.NIST else "brainpoolP256r1"

    @property
    def order(self) -> int:
        """The order ``n`` of the curve's base point."""
        if self is Curve.NIST:
            return 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
        return 0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7

    @classmethod
    def of_key(cls, key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> Curve | None:
        """The curve of ``key``, or ``None`` if it is on neither RSP curve."""
        if isinstance(key.curve, ec.SECP256R1):
            return cls.NIST
        if isinstance(key.curve, ec.BrainpoolP256R1):
            return cls.BRAINPOOL
        return None
