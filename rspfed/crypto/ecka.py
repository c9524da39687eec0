"""ECKA-DH (BSI TR-03111 §4.3.1) and the one-time key pairs of a profile download.

In SGP.22 the eUICC generates ``otPK.EUICC.ECKA`` / ``otSK.EUICC.ECKA`` and the
SM-DP+ ``otPK.DP.ECKA`` / ``otSK.DP.ECKA``; both sides compute the shared
secret ``ShS`` (the x-coordinate of the product point) with ECKA-DH.  The
public keys travel as uncompressed points ``04 || X || Y`` (65 octets) in
``euiccOtpk`` / ``smdpOtpk`` (tag ``5F49``).
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.crypto.curves import COORDINATE_SIZE, Curve
from rspfed.errors import DecodeError, UsageError

__all__ = [
    "POINT_SIZE",
    "decode_public_key",
    "ecka_dh",
    "encode_public_key",
    "generate_key_pair",
]

POINT_SIZE = 1 + 2 * COORDINATE_SIZE
"""Octets in an uncompressed point ``04 || X || Y`` (65)."""

_MAX_DRAWS = 128


def generate_key_pair(curve: Curve, rand: Callable[[int], bytes]) -> ec.EllipticCurvePrivateKey:
    """A key pair on ``curve`` whose private scalar is drawn from ``rand``.

    ``rand(n)`` must return ``n`` random octets (``os.urandom`` will do).  The
    scalar is drawn by rejection sampling: 32 octets are taken as a big-endian
    integer ``d`` and accepted if ``1 <= d < n`` (no modulo bias; about one
    draw in three is rejected on brainpoolP256r1).  Raises
    :class:`~rspfed.errors.UsageError` if ``rand`` returns the wrong length
    or keeps returning out-of-range values.
    """
    n = curve.order
    for _ in range(_MAX_DRAWS):
        octets = rand(COORDINATE_SIZE)
        if len(octets) != COORDINATE_SIZE:
            raise UsageError(f"rand({COORDINATE_SIZE}) returned {len(octets)} octets")
        d = int.from_bytes(octets, "big")
        if 0 < d < n:
            return ec.derive_private_key(d, curve.ec_curve)
    raise UsageError("rand keeps returning scalars outside [1, n-1]; it is not random")


def ecka_dh(
    private_key: ec.EllipticCurvePrivateKey, public_key: ec.EllipticCurvePublicKey
) -> bytes:
    """ECKA-DH: the shared secret ``ShS``, the x-coordinate of ``d·Q`` (32 octets).

    Both keys must be on the same RSP curve (:class:`~rspfed.errors.UsageError`
    otherwise).
    """
    if Curve.of_key(private_key) is not Curve.of_key(public_key):
        raise UsageError("ECKA-DH keys are on different curves")
    return private_key.exchange(ec.ECDH(), public_key)


def encode_public_key(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The uncompressed point ``04 || X || Y`` (65 octets), as in ``euiccOtpk`` / ``smdpOtpk``."""
    Curve.of_key(public_key)
    return public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def decode_public_key(curve: Curve, data: bytes) -> ec.EllipticCurvePublicKey:
    """Decode an uncompressed point on ``curve`` (the content of tag ``5F49``).

    Raises :class:`~rspfed.errors.DecodeError` unless ``data`` is 65 octets,
    starts with ``04`` and is a point on ``curve``.
    """
    data = bytes(data)
    if len(data) != POINT_SIZE or data[0] != 0x04:
        raise DecodeError(
            f"expected an uncompressed point of {POINT_SIZE} octets starting with 04",
            type_name="ECPoint",
        )
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(curve.ec_curve, data)
    except ValueError:
        raise DecodeError(f"not a point on {curve.spec_name}", type_name="ECPoint") from None
