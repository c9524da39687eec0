"""SGP.22 signatures: ECDSA with SHA-256 on P-256 or brainpoolP256r1.

SGP.22 messages (``euiccSignature1``, ``serverSignature1``, ``smdpSignature2``
…) carry the signature in the *plain* format of BSI TR-03111 §5.2.1:
``r || s``, each a 32-octet big-endian integer (64 octets).  X.509
certificates and CRLs carry the DER ``ECDSA-Sig-Value ::= SEQUENCE { r
INTEGER, s INTEGER }`` instead.  :func:`der_to_raw` and :func:`raw_to_der`
convert between the two.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from rspfed.crypto.curves import COORDINATE_SIZE, Curve
from rspfed.errors import DecodeError, SignatureError, UsageError

__all__ = ["SIGNATURE_SIZE", "der_to_raw", "raw_to_der", "sign", "verify"]

SIGNATURE_SIZE = 2 * COORDINATE_SIZE
"""Octets in a TR-03111 plain signature ``r || s`` (64)."""

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def sign(
    private_key: ec.EllipticCurvePrivateKey, data: bytes, *, deterministic: bool = False
) -> bytes:
    """Sign ``data`` with ECDSA/SHA-256; the TR-03111 plain signature ``r || s`` (64 octets).

    The nonce comes from OpenSSL's random generator, or, with
    ``deterministic=True``, from RFC 6979 (same key and data give the same
    signature; useful for reproducible test fixtures).  Raises
    :class:`~rspfed.errors.UsageError` for a key on a non-RSP curve or when
    the OpenSSL in use cannot sign deterministically.
    """
    Curve.of_key(private_key)
    if deterministic:
        try:
            algorithm = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
        except UnsupportedAlgorithm as exc:
            raise UsageError("deterministic ECDSA needs OpenSSL 3.2 or later") from exc
    else:
        algorithm = _ECDSA_SHA256
    der = private_key.sign(bytes(data), algorithm)
    r, s = decode_dss_signature(der)
    return r.to_bytes(COORDINATE_SIZE, "big") + s.to_bytes(COORDINATE_SIZE, "big")


def verify(public_key: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> None:
    """Check a TR-03111 plain signature ``r || s`` over ``data`` (ECDSA/SHA-256).

    Returns ``None`` when the signature is valid.  Raises
    :class:`~rspfed.errors.SignatureError` when it is not 64 octets, when ``r``
    or ``s`` is outside ``[1, n-1]``, or when it does not verify under
    ``public_key`` (wrong key, wrong data, altered signature).
    """
    curve = Curve.of_key(public_key)
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureError(
            f"plain ECDSA signature must be {SIGNATURE_SIZE} octets, got {len(signature)}"
        )
    r = int.from_bytes(signature[:COORDINATE_SIZE], "big")
    s = int.from_bytes(signature[COORDINATE_SIZE:], "big")
    n = curve.order
    if not (0 < r < n and 0 < s < n):
        raise SignatureError("ECDSA signature component r or s out of range [1, n-1]")
    try:
        public_key.verify(encode_dss_signature(r, s), bytes(data), _ECDSA_SHA256)
    except InvalidSignature:
        raise SignatureError("ECDSA signature does not verify") from None


def der_to_raw(der: bytes) -> bytes:
    """Convert a DER ``ECDSA-Sig-Value`` to the TR-03111 plain form ``r || s``.

    The input must be strict DER (it is re-encoded and compared).  Raises
    :class:`~rspfed.errors.DecodeError` for malformed or non-DER input and
    :class:`~rspfed.errors.SignatureError` when ``r`` or ``s`` is not positive
    or does not fit in 32 octets.
    """
    der = bytes(der)
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        raise DecodeError("malformed ECDSA-Sig-Value", type_name="ECDSA-Sig-Value") from None
    if encode_dss_signature(r, s) != der:
        raise DecodeError("ECDSA-Sig-Value is not DER", type_name="ECDSA-Sig-Value")
    limit = 1 << (8 * COORDINATE_SIZE)
    if not (0 < r < limit and 0 < s < limit):
        raise SignatureError("ECDSA signature component r or s out of range for a 256-bit curve")
    return r.to_bytes(COORDINATE_SIZE, "big") + s.to_bytes(COORDINATE_SIZE, "big")


def raw_to_der(raw: bytes) -> bytes:
    """Convert a TR-03111 plain signature ``r || s`` (64 octets) to a DER ``ECDSA-Sig-Value``.

    Raises :class:`~rspfed.errors.SignatureError` when ``raw`` is not 64 octets
    or ``r`` or ``s`` is zero.
    """
    if len(raw) != SIGNATURE_SIZE:
        raise SignatureError(
            f"plain ECDSA signature must be {SIGNATURE_SIZE} octets, got {len(raw)}"
        )
    r = int.from_bytes(raw[:COORDINATE_SIZE], "big")
    s = int.from_bytes(raw[COORDINATE_SIZE:], "big")
    if r == 0 or s == 0:
        raise SignatureError("ECDSA signature component r or s is zero")
    return encode_dss_signature(r, s)
