"""Activation codes (SGP.22 §4.1): parse, validate, print, QR code.

An activation code is ``1$<SM-DP+ address>$<matchingId>[$[<SM-DP+ OID>][$1]]``;
printed as a QR code it carries the ``LPA:`` prefix (SGP.22 §4.1.2).  Fields:

``1``
    AC_Format: only format 1 exists.
``address``
    the SM-DP+ address, ``FQDN[:port]`` (labels of letters, digits and ``-``,
    at most 253 characters, port 1-65535).
``matchingId``
    the AC_Token: ``0-9``, ``A-Z`` and ``-`` only (SGP.22 §4.1.1); it may be
    empty (then the SM-DP+ uses the EID to find the order).
``oid``
    the SM-DP+ OID (dotted decimal); the field may be present and empty.
``1``
    Confirmation Code Required Flag: present (as ``1``) only when the user
    must type a confirmation code.

Fields after the fifth are ignored (later versions may add some).  The whole
code (without ``LPA:``) is at most 255 characters.  Malformed text raises
:class:`~rspfed.errors.DecodeError`; constructing an :class:`ActivationCode`
with bad values raises :class:`~rspfed.errors.UsageError`.
"""

from __future__ import annotations

import io
import os
import re
from typing import Final

import attrs
import segno

from rspfed.errors import DecodeError, StorageError, UsageError

__all__ = ["AC_PREFIX", "MAX_LENGTH", "ActivationCode", "validate_address", "validate_matching_id"]

#: The QR-code payload prefix (SGP.22 §4.1.2).
AC_PREFIX: Final = "LPA:"
#: Longest activation code (without the prefix) SGP.22 allows.
MAX_LENGTH: Final = 255

_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_MATCHING_ID = re.compile(r"[0-9A-Z-]*\Z")
_OID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+\Z")
_PORT = re.compile(r"[1-9][0-9]{0,4}\Z")


def _address_problem(address: str) -> str | None:
    host, sep, port = address.partition(":")
    if sep and (not _PORT.match(port) or int(port) > 65535):
        return "port must be 1 to 65535"
    if not host or len(host) > 253:
        return "host must be 1 to 253 characters"
    labels = host.split(".")
    if labels[-1] == "":
        labels = labels[:-1]  # a trailing dot (absolute FQDN) is allowed
    if not labels or not all(label.isascii() and _LABEL.match(label) for label in labels):
        return "host must be an FQDN (letters, digits, '-' and '.')"
    return None


def validate_address(address: str) -> str:
    """``address`` if it is ``FQDN[:port]``, else :class:`UsageError`."""
    problem = _address_problem(address) if isinstance(address, str) else "not a string"
    if problem is not None:
        raise UsageError(f"SM-DP+ address: {problem}")
    return address


def validate_matching_id(matching_id: str) -> str:
    """``matching_id`` if it uses SGP.22's charset (``0-9 A-Z -``), else :class:`UsageError`."""
    if not isinstance(matching_id, str) or not _MATCHING_ID.match(matching_id):
        raise UsageError("matchingId: only 0-9, A-Z and '-' are allowed")
    return matching_id


def _check_address(_: object, __: attrs.Attribute[str], value: str) -> None:
    validate_address(value)


def _check_matching_id(_: object, __: attrs.Attribute[str], value: str) -> None:
    validate_matching_id(value)


def _check_oid(_: object, __: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and not (isinstance(value, str) and _OID.match(value)):
        raise UsageError("SM-DP+ OID must be a dotted decimal object identifier")


@attrs.frozen
class ActivationCode:
    """One activation code: where to download (``address``) and what (``matching_id``).

    ``oid`` is the SM-DP+ OID when the code names one (``None``: absent or
    empty); ``confirmation_code_required`` is the trailing ``$1`` flag.
    """

    address: str = attrs.field(validator=_check_address)
    matching_id: str = attrs.field(default="", validator=_check_matching_id)
    oid: str | None = attrs.field(default=None, validator=_check_oid)
    confirmation_code_required: bool = False

    @property
    def host(self) -> str:
        """The host part of the address (no port, no trailing dot)."""
        return self.address.partition(":")[0].rstrip(".")

    @property
    def port(self) -> int:
        """The TCP port (443 unless the address names one)."""
        _, sep, port = self.address.partition(":")
        return int(port) if sep else 443

    @classmethod
    def parse(cls, text: str) -> ActivationCode:
        """Parse ``text`` (with or without the ``LPA:`` prefix; surrounding blanks ignored).

        Raises :class:`~rspfed.errors.DecodeError` naming the bad field.
        """
        if not isinstance(text, str):
            raise DecodeError("not text", type_name="ActivationCode")
        body = text.strip()
        if body[: len(AC_PREFIX)].upper() == AC_PREFIX:
            body = body[len(AC_PREFIX) :]
        if len(body) > MAX_LENGTH:
            raise DecodeError(f"longer than {MAX_LENGTH} characters", type_name="ActivationCode")
        fields = body.split("$")
        if fields[0] != "1":
            raise DecodeError("AC_Format must be 1", type_name="ActivationCode", offset=0)
        if len(fields) < 3:
            raise DecodeError("needs at least 1$address$matchingId", type_name="ActivationCode")
        address, matching_id = fields[1], fields[2]
        problem = _address_problem(address)
        if problem is not None:
            raise DecodeError(problem, type_name="ActivationCode.address")
        if not _MATCHING_ID.match(matching_id):
            raise DecodeError(
                "only 0-9, A-Z and '-' are allowed", type_name="ActivationCode.matchingId"
            )
        oid_text = fields[3] if len(fields) > 3 else ""
        if oid_text and not _OID.match(oid_text):
            raise DecodeError("not a dotted decimal OID", type_name="ActivationCode.oid")
        flag = fields[4] if len(fields) > 4 else ""
        if flag not in ("", "1"):
            raise DecodeError(
                "Confirmation Code Required Flag must be 1 or absent",
                type_name="ActivationCode.ccRequiredFlag",
            )
        return cls(address, matching_id, oid_text or None, flag == "1")

    def to_text(self, *, prefix: bool = True) -> str:
        """The activation code as text (with the ``LPA:`` QR prefix unless ``prefix=False``)."""
        parts = ["1", self.address, self.matching_id]
        if self.oid is not None or self.confirmation_code_required:
            parts.append(self.oid or "")
        if self.confirmation_code_required:
            parts.append("1")
        text = "$".join(parts)
        if len(text) > MAX_LENGTH:
            raise UsageError(f"activation code longer than {MAX_LENGTH} characters")
        return (AC_PREFIX if prefix else "") + text

    def __str__(self) -> str:
        return self.to_text()

    def _qr(self) -> segno.QRCode:
        try:
            return segno.make(self.to_text(), error="m", micro=False)
        except segno.DataOverflowError:  # pragma: no cover - 259 chars always fit
            raise UsageError("activation code too long for a QR code") from None

    def qr_png(self, path: str | os.PathLike[str], *, scale: int = 8) -> None:
        """Write the QR code (payload ``LPA:1$...``) as a PNG file."""
        qr = self._qr()
        try:
            qr.save(os.fspath(path), kind="png", scale=scale, border=4)
        except OSError as exc:
            raise StorageError(f"cannot write {os.fspath(path)}: {exc.strerror}") from None

    def qr_terminal(self, *, compact: bool = True) -> str:
        """The QR code as text for a terminal (half-block characters when ``compact``)."""
        qr = self._qr()
        out = io.StringIO()
        qr.terminal(out=out, compact=compact, border=2)
        return out.getvalue()
