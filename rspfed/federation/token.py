"""Federation tokens: the primary device's signed authorisation of one secondary.

A token (ASN.1 ``FederationToken`` of ``rspfed/asn1/modules/federation.asn``,
specified in ``docs/federation-token.md``) names the subscription, the
primary's key (``primaryKeyId``), the secondary's EID, its device class,
services, quota and a short validity window, and carries an ECDSA P-256 /
SHA-256 signature (TR-03111 plain ``r || s``) over the DER of ``tbsToken``.
It is verifiable offline with the primary's public key.

Sans-IO: the time (``now``) and randomness (``rand``, like :func:`os.urandom`)
are given by the caller.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import attrs
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed import asn1
from rspfed.asn1 import federation as schema
from rspfed.crypto import signature as ecdsa
from rspfed.errors import (
    DecodeError,
    EncodeError,
    SignatureError,
    TokenEidMismatchError,
    TokenError,
    TokenExpiredError,
    TokenNotYetValidError,
    UsageError,
)
from rspfed.pki.eid import is_valid_eid

__all__ = [
    "DEFAULT_TTL",
    "MAX_TTL",
    "TOKEN_ID_SIZE",
    "TOKEN_VERSION",
    "DeviceClass",
    "FederationToken",
    "Service",
    "issue_token",
    "parse_token",
    "primary_key_id",
    "verify_signed_window",
    "verify_token",
]

TOKEN_VERSION = 1
"""The ``version`` this implementation writes and accepts (``v1``)."""

TOKEN_ID_SIZE = 16
"""Octets in a ``tokenId`` (random)."""

DEFAULT_TTL = timedelta(minutes=10)
"""Default validity window of an issued token."""

MAX_TTL = timedelta(hours=24)
"""Hard cap on a token's window (``notAfter - notBefore``), at issue and at verification."""

_MAX_QUOTA = (1 << 63) - 1
_MAX_SUBSCRIPTION_ID = 64
_TYPE = "FederationToken"
_TBS_TAG = b"\xa0"


class DeviceClass(enum.Enum):
    """ASN.1 ``DeviceClass``: the kind of secondary device."""

    PHONE = "phone"
    TABLET = "tablet"
    LAPTOP = "laptop"
    WATCH = "watch"
    HOTSPOT = "hotspot"


class Service(enum.Enum):
    """A named bit of ASN.1 ``Services``."""

    DATA = "data"
    VOICE = "voice"
    SMS = "sms"
    TETHERING = "tethering"


@attrs.frozen
class FederationToken:
    """The fields of a federation token (``TBSFederationToken``).

    ``eid`` is the secondary's 32-digit EID, ``quota`` its data allowance in
    octets (0: unlimited), ``not_before``/``not_after`` timezone-aware UTC
    datetimes (valid while ``not_before <= now < not_after``).
    """

    token_id: bytes
    subscription_id: str
    primary_key_id: bytes
    eid: str
    device_class: DeviceClass
    services: frozenset[Service]
    quota: int
    not_before: datetime
    not_after: datetime
    version: int = TOKEN_VERSION


def primary_key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """``primaryKeyId``: SHA-1 of the public key's uncompressed point (20 octets).

    That is the contents of the ``subjectPublicKey`` BIT STRING, hashed as in
    RFC 5280 §4.2.1.2 method (1) for a SubjectKeyIdentifier.
    """
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise UsageError("the primary key must be an EC public key")
    point = public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    digest = hashes.Hash(hashes.SHA1())  # noqa: S303 - a key identifier, not a signature
    digest.update(point)
    return digest.finalize()


def _check_p256(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> None:
    if not isinstance(key.curve, ec.SECP256R1):
        raise UsageError("federation tokens are signed with a P-256 key")


def _utc_seconds(when: datetime, name: str) -> datetime:
    if when.tzinfo is None or when.utcoffset() is None:
        raise UsageError(f"{name} must be a timezone-aware datetime")
    return when.astimezone(UTC).replace(microsecond=0)


def issue_token(
    *,
    primary_key: ec.EllipticCurvePrivateKey,
    subscription_id: str,
    eid: str,
    device_class: DeviceClass,
    services: Iterable[Service],
    quota: int,
    now: datetime,
    rand: Callable[[int], bytes],
    ttl: timedelta = DEFAULT_TTL,
    deterministic: bool = False,
) -> bytes:
    """Sign a federation token; its DER (``FederationToken``).

    ``notBefore`` is ``now`` (whole seconds, UTC) and ``notAfter`` that plus
    ``ttl`` (whole seconds; more than 0 and at most :data:`MAX_TTL`).  The
    ``tokenId`` is 16 octets of ``rand``.  ``deterministic`` signs with
    RFC 6979 nonces (reproducible test vectors).  Raises
    :class:`~rspfed.errors.UsageError` for a non-P-256 key, a malformed EID,
    an empty or over-long (64 characters) subscription id, a negative quota or
    a TTL outside the cap.
    """
    if not isinstance(primary_key, ec.EllipticCurvePrivateKey):
        raise UsageError("the primary key must be an EC private key")
    _check_p256(primary_key)
    if not isinstance(subscription_id, str) or not (
        1 <= len(subscription_id) <= _MAX_SUBSCRIPTION_ID
    ):
        raise UsageError(f"subscription id must be 1 to {_MAX_SUBSCRIPTION_ID} characters")
    if not isinstance(eid, str) or not is_valid_eid(eid):
        raise UsageError("eid must be 32 decimal digits with valid check digits")
    if not isinstance(device_class, DeviceClass):
        raise UsageError("device_class must be a DeviceClass")
    service_set = frozenset(services)
    if not all(isinstance(s, Service) for s in service_set):
        raise UsageError("services must be Service members")
    if isinstance(quota, bool) or not isinstance(quota, int) or not 0 <= quota <= _MAX_QUOTA:
        raise UsageError("quota must be an integer number of octets, 0 to 2**63-1")
    ttl = timedelta(seconds=int(ttl.total_seconds()))
    if ttl <= timedelta(0) or ttl > MAX_TTL:
        raise UsageError(f"ttl must be at least 1 s and at most {MAX_TTL}")
    not_before = _utc_seconds(now, "now")
    token_id = bytes(rand(TOKEN_ID_SIZE))
    if len(token_id) != TOKEN_ID_SIZE:
        raise UsageError(f"rand({TOKEN_ID_SIZE}) returned {len(token_id)} octets")
    tbs = schema.TBSFederationToken(
        {
            "version": TOKEN_VERSION,
            "tokenId": token_id,
            "subscriptionId": subscription_id,
            "primaryKeyId": primary_key_id(primary_key.public_key()),
            "eid": bytes.fromhex(eid),
            "deviceClass": device_class.value,
            "services": {s.value for s in service_set},
            "quota": quota,
            "notBefore": not_before,
            "notAfter": not_before + ttl,
        }
    )
    try:
        tbs_der = asn1.encode(tbs)
    except EncodeError as exc:  # pragma: no cover - every field is checked above
        raise UsageError(f"cannot encode the token: {exc}") from None
    # The signature covers tbsToken as it appears in FederationToken: the same
    # DER with the context tag [0] constructed (A0) in place of SEQUENCE (30).
    signed = _TBS_TAG + tbs_der[1:]
    signature = ecdsa.sign(primary_key, signed, deterministic=deterministic)
    # FederationToken ::= SEQUENCE { [0] tbsToken, [1] signature (64 octets) }
    content = signed + b"\x81\x40" + signature
    return b"\x30" + _der_length(len(content)) + content


def _der_length(length: int) -> bytes:
    """A DER length field (X.690 §8.1.3: short form below 128, else minimal long form)."""
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def _decode(der: bytes) -> tuple[FederationToken, bytes, bytes]:
    """Decode (strict DER) and convert; no signature check."""
    if not isinstance(der, (bytes, bytearray, memoryview)):
        raise UsageError("a token is bytes")
    value = asn1.decode(schema.FederationToken, der)
    tbs = value["tbsToken"]
    version = int(tbs["version"])
    if version != TOKEN_VERSION:
        raise DecodeError(f"unsupported token version {version!r}", type_name=_TYPE)
    eid_hex = tbs["eid"].native.hex()
    if not is_valid_eid(eid_hex):
        raise DecodeError("eid is not a valid 32-digit EID in BCD", type_name=_TYPE)
    try:
        device_class = DeviceClass(tbs["deviceClass"].native)
    except ValueError:
        raise DecodeError("unknown deviceClass value", type_name=_TYPE) from None
    names = tbs["services"].native
    try:
        services = frozenset(Service(name) for name in names)
    except ValueError:
        raise DecodeError("unknown bit set in services", type_name=_TYPE) from None
    not_before = tbs["notBefore"].native
    not_after = tbs["notAfter"].native
    token = FederationToken(
        token_id=tbs["tokenId"].native,
        subscription_id=tbs["subscriptionId"].native,
        primary_key_id=tbs["primaryKeyId"].native,
        eid=eid_hex,
        device_class=device_class,
        services=services,
        quota=tbs["quota"].native,
        not_before=not_before.astimezone(UTC),
        not_after=not_after.astimezone(UTC),
        version=version,
    )
    return token, asn1.received_der(tbs), value["signature"].native


def parse_token(der: bytes) -> FederationToken:
    """Decode a token *without* checking its signature or window (display only).

    Raises :class:`~rspfed.errors.DecodeError` for malformed input, a version
    other than 1, an invalid EID, an unknown device class or service bit.
    """
    return _decode(der)[0]


def verify_signed_window(
    subject: str,
    *,
    key_id: bytes,
    public_key: ec.EllipticCurvePublicKey,
    tbs_der: bytes,
    signature: bytes,
    not_before: datetime,
    not_after: datetime,
    now: datetime,
    cap: timedelta,
) -> None:
    """The checks shared by everything the primary signs for a time window
    (federation tokens, dashboard links), in this order: ``key_id`` is
    :func:`primary_key_id` of ``public_key`` and the r||s ``signature`` over
    ``tbs_der`` verifies (:class:`~rspfed.errors.SignatureError`); the window
    is not empty and at most ``cap`` (:class:`~rspfed.errors.TokenError`);
    ``not_before <= now`` (:class:`~rspfed.errors.TokenNotYetValidError`);
    ``now < not_after`` (:class:`~rspfed.errors.TokenExpiredError`).
    ``subject`` names the thing in the messages.
    """
    instant = now.astimezone(UTC)
    if key_id != primary_key_id(public_key):
        raise SignatureError(f"the {subject} names another primary key")
    ecdsa.verify(public_key, tbs_der, signature)
    window = not_after - not_before
    if window <= timedelta(0) or window > cap:
        raise TokenError(f"the {subject}'s validity window is empty or longer than the cap")
    if instant < not_before:
        raise TokenNotYetValidError(f"the {subject} is not valid yet")
    if instant >= not_after:
        raise TokenExpiredError(f"the {subject} has expired")


def verify_token(
    der: bytes,
    *,
    primary_public_key: ec.EllipticCurvePublicKey,
    now: datetime,
    expected_eid: str | None = None,
) -> FederationToken:
    """Check a token against the primary's public key, the time and the EID.

    Order of checks: strict DER decode (:class:`~rspfed.errors.DecodeError`);
    ``primaryKeyId`` equals :func:`primary_key_id` of ``primary_public_key``
    and the signature over the DER of ``tbsToken`` verifies
    (:class:`~rspfed.errors.SignatureError` otherwise); the window is not
    longer than :data:`MAX_TTL` and not empty
    (:class:`~rspfed.errors.TokenError`); ``notBefore <= now``
    (:class:`~rspfed.errors.TokenNotYetValidError`); ``now < notAfter``
    (:class:`~rspfed.errors.TokenExpiredError`); the EID equals
    ``expected_eid`` when given (:class:`~rspfed.errors.TokenEidMismatchError`).
    """
    if not isinstance(primary_public_key, ec.EllipticCurvePublicKey):
        raise UsageError("the primary key must be an EC public key")
    _check_p256(primary_public_key)
    if now.tzinfo is None or now.utcoffset() is None:
        raise UsageError("now must be a timezone-aware datetime")
    token, tbs_der, signature = _decode(der)
    verify_signed_window(
        "federation token",
        key_id=token.primary_key_id,
        public_key=primary_public_key,
        tbs_der=tbs_der,
        signature=signature,
        not_before=token.not_before,
        not_after=token.not_after,
        now=now,
        cap=MAX_TTL,
    )
    if expected_eid is not None and token.eid != expected_eid:
        raise TokenEidMismatchError("the federation token was issued for another EID")
    return token
