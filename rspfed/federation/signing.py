"""Signed management requests (``Authorization: RSPFED-SIG1 ...``), rspfed's own scheme.

The primary device signs its management requests to the operator (list and
approve join requests, list and remove devices, revoke tokens) with its P-256
*federation key*; a secondary signs its own (``status``) with its *device
key*.  The operator looks the key up by ``keyId`` (:func:`primary_key_id` of
the public key), verifies the signature over a canonical string that binds the
method, the request target, the time, a nonce and the body's SHA-256, and
rejects a repeated ``(keyId, nonce)``.  The format is specified in
``docs/federation-requests.md``, with a test vector.

Sans-IO: the time (``now``) and the nonce are given by the caller; the
verifier keeps the nonces it has seen (:func:`verify_request` does not).

Header grammar (exact, case-sensitive, no optional whitespace)::

    RSPFED-SIG1 keyId=<40 hex>, ts=<decimal>, nonce=<22 base64url>, sig=<base64url>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from datetime import UTC, datetime, timedelta

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from rspfed.errors import DecodeError, ProtocolError, SignatureError, UsageError
from rspfed.federation.token import primary_key_id

__all__ = [
    "AUTH_SCHEME",
    "KEY_ID_SIZE",
    "MAX_AUTHORIZATION_LENGTH",
    "MAX_PATH_LENGTH",
    "NONCE_SIZE",
    "SignedRequest",
    "parse_authorization",
    "sign_request",
    "signing_input",
    "verify_request",
]

AUTH_SCHEME = "RSPFED-SIG1"
"""The HTTP authentication scheme name (and the first line of the signed string)."""

KEY_ID_SIZE = 20
"""Octets in a ``keyId`` (SHA-1 of the uncompressed public point, :func:`primary_key_id`)."""

NONCE_SIZE = 16
"""Octets in a request nonce."""

MAX_AUTHORIZATION_LENGTH = 256
"""Longest ``Authorization`` value accepted (a valid one is at most 205 characters)."""

MAX_PATH_LENGTH = 2048
"""Longest request target (path and query) that can be signed."""

_MAX_TS = 9_999_999_999  # 10 digits
_MAX_SIG_DER = 72  # SEQUENCE { INTEGER r, INTEGER s } on P-256, each at most 33 octets
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

_HEADER = re.compile(
    r"RSPFED-SIG1 "
    r"keyId=(?P<key_id>[0-9a-f]{40}), "
    r"ts=(?P<ts>0|[1-9][0-9]{0,9}), "
    r"nonce=(?P<nonce>[A-Za-z0-9_-]{22}), "
    r"sig=(?P<sig>[A-Za-z0-9_-]{11,96})",
    re.ASCII,
)
_METHOD = re.compile(r"[A-Z]{1,16}", re.ASCII)
_PATH = re.compile(r"/[\x21-\x7e]*", re.ASCII)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str, what: str) -> bytes:
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise DecodeError(f"{what} is not base64url", type_name=AUTH_SCHEME) from None
    if _b64url(data) != text:  # non-zero trailing bits: not the canonical encoding
        raise DecodeError(f"{what} is not canonical base64url", type_name=AUTH_SCHEME)
    return data


def _utc(when: datetime, name: str) -> datetime:
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise UsageError(f"{name} must be a timezone-aware datetime")
    return when.astimezone(UTC)


def _check_bytes(value: object, size: int, name: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise UsageError(f"{name} must be {size} octets")


def _key_id_validator(_: object, __: attrs.Attribute[bytes], value: bytes) -> None:
    _check_bytes(value, KEY_ID_SIZE, "key_id")


def _nonce_validator(_: object, __: attrs.Attribute[bytes], value: bytes) -> None:
    _check_bytes(value, NONCE_SIZE, "nonce")


def _timestamp_validator(_: object, __: attrs.Attribute[datetime], value: datetime) -> None:
    when = _utc(value, "timestamp")
    if when.microsecond or not 0 <= when.timestamp() <= _MAX_TS:
        raise UsageError("timestamp must be whole seconds between 1970 and 2286")


def _signature_validator(_: object, __: attrs.Attribute[bytes], value: bytes) -> None:
    if not isinstance(value, bytes) or not 8 <= len(value) <= _MAX_SIG_DER:
        raise UsageError(f"signature must be a DER ECDSA signature of 8..{_MAX_SIG_DER} octets")


@attrs.frozen
class SignedRequest:
    """The parameters of an ``RSPFED-SIG1`` ``Authorization`` header.

    ``key_id`` is the signer's :func:`primary_key_id` (20 octets),
    ``timestamp`` a timezone-aware UTC datetime in whole seconds, ``nonce``
    16 octets, ``signature`` the DER ``ECDSA-Sig-Value`` (not secret, but
    left out of ``repr``).
    """

    key_id: bytes = attrs.field(validator=_key_id_validator)
    timestamp: datetime = attrs.field(validator=_timestamp_validator)
    nonce: bytes = attrs.field(validator=_nonce_validator)
    signature: bytes = attrs.field(validator=_signature_validator, repr=False)

    def header(self) -> str:
        """The ``Authorization`` header value for these parameters."""
        return (
            f"{AUTH_SCHEME} keyId={self.key_id.hex()}, ts={int(self.timestamp.timestamp())}, "
            f"nonce={_b64url(self.nonce)}, sig={_b64url(self.signature)}"
        )


def _check_target(method: str, path: str, error: type[UsageError | DecodeError]) -> None:
    if not isinstance(method, str) or not _METHOD.fullmatch(method):
        raise error("the method must be 1 to 16 upper-case ASCII letters")
    if not isinstance(path, str) or len(path) > MAX_PATH_LENGTH or not _PATH.fullmatch(path):
        raise error(
            f"the request target must start with '/' and be at most {MAX_PATH_LENGTH} "
            "visible ASCII characters"
        )


def signing_input(
    *,
    method: str,
    path: str,
    body: bytes,
    key_id: bytes,
    timestamp: datetime,
    nonce: bytes,
) -> bytes:
    """The octets that are signed (ASCII, seven lines joined by LF, no final LF)::

        RSPFED-SIG1
        <method>
        <request target>
        <keyId, 40 lower-case hex digits>
        <ts, decimal Unix seconds>
        <nonce, 22 base64url characters>
        <SHA-256 of the body, 64 lower-case hex digits>

    :class:`~rspfed.errors.UsageError` for a method or target outside the grammar.
    """
    _check_target(method, path, UsageError)
    _check_bytes(key_id, KEY_ID_SIZE, "key_id")
    _check_bytes(nonce, NONCE_SIZE, "nonce")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise UsageError("body must be bytes")
    when = _utc(timestamp, "timestamp")
    lines = [
        AUTH_SCHEME,
        method,
        path,
        key_id.hex(),
        str(math.floor(when.timestamp())),
        _b64url(nonce),
        hashlib.sha256(bytes(body)).hexdigest(),
    ]
    return "\n".join(lines).encode("ascii")


def _check_p256(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey, what: str) -> None:
    if not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) or not (
        isinstance(key.curve, ec.SECP256R1)
    ):
        raise UsageError(f"{what} must be a P-256 key")


def sign_request(
    key: ec.EllipticCurvePrivateKey,
    *,
    method: str,
    path: str,
    body: bytes,
    now: datetime,
    nonce: bytes,
) -> str:
    """Sign a request; return the ``Authorization`` header value.

    ``key`` is the primary's federation key or a secondary's device key
    (P-256), ``method`` the HTTP method (``"POST"``), ``path`` the request
    target exactly as sent (``"/rspfed/v1/devices"``, with the query if any),
    ``body`` the exact body octets, ``now`` the signer's time (truncated to
    whole seconds) and ``nonce`` 16 fresh random octets (use a new one for
    every request).  The signature is ECDSA/SHA-256, DER-encoded.
    """
    _check_p256(key, "the signing key")
    _check_bytes(nonce, NONCE_SIZE, "nonce")
    when = _utc(now, "now").replace(microsecond=0)
    if not 0 <= when.timestamp() <= _MAX_TS:
        raise UsageError("now must be between 1970 and 2286")
    key_id = primary_key_id(key.public_key())
    message = signing_input(
        method=method, path=path, body=body, key_id=key_id, timestamp=when, nonce=nonce
    )
    signature = key.sign(message, _ECDSA_SHA256)
    return SignedRequest(key_id, when, nonce, signature).header()


def parse_authorization(value: str) -> SignedRequest:
    """Parse an ``Authorization`` header value of the ``RSPFED-SIG1`` scheme.

    The parser is strict: exactly the layout of the module docstring (scheme,
    one space, the four parameters in that order separated by ``", "``, no
    other whitespace, lower-case hex, canonical unpadded base64url, a DER
    signature).  Anything else raises :class:`~rspfed.errors.DecodeError`.
    """
    if not isinstance(value, str):
        raise DecodeError("the Authorization value must be text", type_name=AUTH_SCHEME)
    if len(value) > MAX_AUTHORIZATION_LENGTH:
        raise DecodeError(
            f"Authorization value longer than {MAX_AUTHORIZATION_LENGTH} characters",
            type_name=AUTH_SCHEME,
        )
    if not value.startswith(AUTH_SCHEME + " "):
        raise DecodeError(f"not an {AUTH_SCHEME} Authorization value", type_name=AUTH_SCHEME)
    match = _HEADER.fullmatch(value)
    if match is None:
        raise DecodeError("malformed parameters", type_name=AUTH_SCHEME)
    nonce = _unb64url(match["nonce"], "nonce")
    if len(nonce) != NONCE_SIZE:  # pragma: no cover - 22 characters are always 16 octets
        raise DecodeError(f"nonce must be {NONCE_SIZE} octets", type_name=AUTH_SCHEME)
    signature = _unb64url(match["sig"], "sig")
    if not 8 <= len(signature) <= _MAX_SIG_DER:
        raise DecodeError("sig has an impossible length", type_name=AUTH_SCHEME)
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        raise DecodeError("sig is not a DER ECDSA-Sig-Value", type_name=AUTH_SCHEME) from None
    if r <= 0 or s <= 0 or encode_dss_signature(r, s) != signature:
        raise DecodeError("sig is not a DER ECDSA-Sig-Value", type_name=AUTH_SCHEME)
    return SignedRequest(
        key_id=bytes.fromhex(match["key_id"]),
        timestamp=datetime.fromtimestamp(int(match["ts"]), UTC),
        nonce=nonce,
        signature=signature,
    )


def verify_request(
    req: SignedRequest,
    public_key: ec.EllipticCurvePublicKey,
    *,
    method: str,
    path: str,
    body: bytes,
    now: datetime,
    window: timedelta,
) -> None:
    """Check a parsed request against the key the operator registered for ``req.key_id``.

    Checks, in this order: ``req.key_id`` is ``public_key``'s
    (:class:`~rspfed.errors.SignatureError` otherwise); the signature over
    :func:`signing_input` of ``method``, ``path``, ``body`` and the header's
    parameters (:class:`~rspfed.errors.SignatureError`); the timestamp is
    within ``window`` of ``now``, both ends included
    (:class:`~rspfed.errors.ProtocolError` otherwise).  A ``method`` or
    ``path`` that no signer could have signed is a
    :class:`~rspfed.errors.DecodeError`.

    Replays are the caller's to stop: after this returns, reject with
    :class:`~rspfed.errors.ReplayError` a ``(key_id, nonce)`` already
    accepted, remembering each for at least ``2 * window``.
    """
    if not isinstance(req, SignedRequest):
        raise UsageError("req must be a SignedRequest")
    _check_p256(public_key, "the verification key")
    if not isinstance(window, timedelta) or window < timedelta(0):
        raise UsageError("window must be a non-negative timedelta")
    current = _utc(now, "now")
    _check_target(method, path, DecodeError)
    if not hmac.compare_digest(req.key_id, primary_key_id(public_key)):
        raise SignatureError("the request's keyId is not that of the given key")
    message = signing_input(
        method=method,
        path=path,
        body=body,
        key_id=req.key_id,
        timestamp=req.timestamp,
        nonce=req.nonce,
    )
    try:
        r, s = decode_dss_signature(req.signature)
    except ValueError:
        raise SignatureError("the request signature is not a DER ECDSA-Sig-Value") from None
    if not (0 < r < _P256_ORDER and 0 < s < _P256_ORDER):
        raise SignatureError("ECDSA signature component r or s out of range [1, n-1]")
    try:
        public_key.verify(req.signature, message, _ECDSA_SHA256)
    except InvalidSignature:
        raise SignatureError("the request signature does not verify") from None
    skew = abs(current - req.timestamp)
    if skew > window:
        raise ProtocolError(
            f"request timestamp is {int(skew.total_seconds())} s from the verifier's time "
            f"(window {int(window.total_seconds())} s)"
        )
