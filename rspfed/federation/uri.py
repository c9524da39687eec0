"""The versioned ``rspfed:`` URI: one grammar for rspfed's typed payloads.

Grammar (ABNF, RFC 5234; see ``docs/federation-token.md``)::

    rspfed-uri = scheme ":" version ":" type ":" payload
    scheme     = "rspfed"                  ; case-insensitive
    version    = "1"
    type       = 1*( %x61-7A / DIGIT / "-" ) ; lower case, e.g. "token"
    payload    = 1*( ALPHA / DIGIT / "-" / "_" ) ; base64url, no padding

Known types (:data:`URI_TYPES`): ``token`` (a DER ``FederationToken``) and
``pair`` (a DER ``PairingOffer``, :mod:`rspfed.transfer.offer`).  The whole URI is at
most :data:`MAX_URI_LENGTH` characters, so it always fits a QR code.  SGP.22
activation codes keep their own ``LPA:1$`` form (:mod:`rspfed.lpa`).
"""

from __future__ import annotations

import base64
import io
import os
import re

import attrs
import segno

from rspfed.errors import DecodeError, StorageError, UsageError

__all__ = [
    "MAX_URI_LENGTH",
    "URI_SCHEME",
    "URI_TYPES",
    "URI_VERSION",
    "RspfedUri",
    "token_from_uri",
    "token_uri",
]

URI_SCHEME = "rspfed"
"""The URI scheme (compared case-insensitively)."""

URI_VERSION = 1
"""The grammar version this implementation writes and reads."""

URI_TYPES = frozenset({"token", "pair"})
"""Payload types this version knows."""

MAX_URI_LENGTH = 1024
"""Longest accepted URI, in characters."""

_TYPE_RE = re.compile(r"[a-z0-9-]+")
_PAYLOAD_RE = re.compile(r"[A-Za-z0-9_-]+")
_NAME = "rspfed URI"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@attrs.frozen
class RspfedUri:
    """A parsed ``rspfed:`` URI: its payload ``type`` and the decoded ``payload`` octets."""

    type: str
    payload: bytes
    version: int = URI_VERSION

    def __attrs_post_init__(self) -> None:
        if self.version != URI_VERSION:
            raise UsageError(f"rspfed URI version must be {URI_VERSION}")
        if self.type not in URI_TYPES:
            raise UsageError(f"unknown rspfed URI type {self.type!r}")
        if not self.payload:
            raise UsageError("rspfed URI payload is empty")

    @classmethod
    def parse(cls, text: str) -> RspfedUri:
        """Parse ``rspfed:1:<type>:<base64url>`` (surrounding whitespace ignored).

        Raises :class:`~rspfed.errors.DecodeError` for another scheme, a
        version other than 1, an unknown type (named in the message), a
        payload that is not canonical unpadded base64url, or a URI longer than
        :data:`MAX_URI_LENGTH`.
        """
        if not isinstance(text, str):
            raise UsageError("an rspfed URI is text")
        text = text.strip()
        if len(text) > MAX_URI_LENGTH:
            raise DecodeError(f"longer than {MAX_URI_LENGTH} characters", type_name=_NAME)
        parts = text.split(":")
        if len(parts) != 4 or parts[0].lower() != URI_SCHEME:
            raise DecodeError("not of the form rspfed:<version>:<type>:<payload>", type_name=_NAME)
        _, version, kind, payload = parts
        if version != str(URI_VERSION):
            raise DecodeError("unsupported version (this reader knows 1)", type_name=_NAME)
        if not _TYPE_RE.fullmatch(kind):
            raise DecodeError("malformed type", type_name=_NAME)
        if kind not in URI_TYPES:
            raise DecodeError(f"unknown type {kind!r}", type_name=_NAME)
        if not _PAYLOAD_RE.fullmatch(payload) or len(payload) % 4 == 1:
            raise DecodeError("payload is not unpadded base64url", type_name=_NAME)
        data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        if _b64url(data) != payload:
            raise DecodeError("payload is not canonical base64url", type_name=_NAME)
        return cls(type=kind, payload=data)

    def to_text(self) -> str:
        """The URI text; :class:`~rspfed.errors.UsageError` if over :data:`MAX_URI_LENGTH`."""
        text = f"{URI_SCHEME}:{self.version}:{self.type}:{_b64url(self.payload)}"
        if len(text) > MAX_URI_LENGTH:
            raise UsageError(f"rspfed URI longer than {MAX_URI_LENGTH} characters")
        return text

    def __str__(self) -> str:
        return self.to_text()

    def _qr(self) -> segno.QRCode:
        try:
            return segno.make(self.to_text(), error="m", micro=False)
        except segno.DataOverflowError:  # pragma: no cover - 1024 chars always fit
            raise UsageError("rspfed URI too long for a QR code") from None

    def qr_png(self, path: str | os.PathLike[str], *, scale: int = 8) -> None:
        """Write the URI as a QR code PNG file.

        Raises :class:`~rspfed.errors.StorageError` when the file cannot be written.
        """
        qr = self._qr()
        try:
            qr.save(os.fspath(path), kind="png", scale=scale, border=4)
        except OSError as exc:
            raise StorageError(f"cannot write {os.fspath(path)}: {exc.strerror}") from None

    def qr_terminal(self, *, compact: bool = True) -> str:
        """The QR code as text for a terminal (half-block characters when ``compact``)."""
        out = io.StringIO()
        self._qr().terminal(out=out, compact=compact, border=2)
        return out.getvalue()


def token_uri(token_der: bytes) -> str:
    """``rspfed:1:token:<base64url of the token DER>``."""
    return RspfedUri(type="token", payload=bytes(token_der)).to_text()


def token_from_uri(text: str) -> bytes:
    """The token DER carried by an ``rspfed:1:token:`` URI (not yet verified).

    Raises :class:`~rspfed.errors.DecodeError` for a malformed URI or one of
    another type.
    """
    uri = RspfedUri.parse(text)
    if uri.type != "token":
        raise DecodeError(f"expected type 'token', got {uri.type!r}", type_name=_NAME)
    return uri.payload
