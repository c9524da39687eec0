"""JSON bodies of GSMA functions (SGP.22 §6.5): encode and decode, strictly.

Requests are JSON objects whose members are the message fields; responses
add ``header.functionExecutionStatus``.  Decoding is defensive, because
bodies come from the network:

* the body must be UTF-8 JSON whose top level is an object, at most
  ``max_size`` octets and :data:`MAX_DEPTH` levels deep; anything else is a
  :class:`~rspfed.errors.DecodeError` (a server answers it with HTTP 400);
* every mandatory field must be present with the right JSON type; base64
  must be canonical standard base64 (RFC 4648 §4, padding required, no
  whitespace), ``transactionId`` an even number of hex digits (1-16 octets);
* unknown members are ignored (later SGP.22 versions add some).

The field tables come from ``attrs`` metadata (``json`` name and ``kind``:
``b64``, ``hex``, ``str``, ``bool``, ``int``); a field with a default is
optional.  :mod:`rspfed.es9p.messages` defines the ES9+ messages; other GSMA
interfaces (ES2+) declare theirs the same way and reuse this codec.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from typing import Any, Final, TypeVar

import attrs

from rspfed.errors import DecodeError, EncodeError
from rspfed.es9p.codes import (
    EXECUTED_SUCCESS,
    EXPIRED,
    FAILED,
    StatusCodeData,
    function_execution_error,
)

__all__ = [
    "DEFAULT_MAX_SIZE",
    "MAX_DEPTH",
    "decode_fields",
    "decode_request",
    "decode_response",
    "encode_fields",
    "encode_request",
    "encode_response",
    "execution_status_json",
    "parse_body",
    "parse_execution_status",
    "status_body",
]

#: Largest body accepted by default (a Bound Profile Package, base64, fits easily).
DEFAULT_MAX_SIZE: Final = 4 * 1024 * 1024
#: Deepest JSON nesting accepted (SGP.22 bodies need 4).
MAX_DEPTH: Final = 16
_MAX_TRANSACTION_ID: Final = 16

T = TypeVar("T", bound=attrs.AttrsInstance)


def _depth_ok(text: str, limit: int) -> bool:
    """True when brackets outside strings nest at most ``limit`` deep."""
    if text.count("{") + text.count("[") <= limit:
        return True  # fast path (C speed): too few brackets to nest deeper
    depth = 0
    in_string = False
    escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def parse_body(
    body: bytes, *, max_size: int = DEFAULT_MAX_SIZE, what: str = "body"
) -> dict[str, Any]:
    """``body`` as a JSON object, or :class:`DecodeError`."""
    if len(body) > max_size:
        raise DecodeError(f"larger than {max_size} octets", type_name=what)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError("not UTF-8", type_name=what, offset=exc.start) from None
    if not _depth_ok(text, MAX_DEPTH):
        raise DecodeError(f"JSON nested deeper than {MAX_DEPTH}", type_name=what)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        offset = getattr(exc, "pos", None)
        raise DecodeError("not JSON", type_name=what, offset=offset) from None
    if not isinstance(value, dict):
        raise DecodeError("JSON body is not an object", type_name=what)
    return value


def _b64decode(text: str, where: str) -> bytes:
    try:
        raw = binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise DecodeError("not canonical base64", type_name=where) from None
    if binascii.b2a_base64(raw, newline=False) != text.encode("ascii"):
        raise DecodeError("not canonical base64", type_name=where)
    return raw


def _hexdecode(text: str, where: str) -> bytes:
    if not text or len(text) % 2 or len(text) > 2 * _MAX_TRANSACTION_ID:
        raise DecodeError("hex string of 1 to 16 octets expected", type_name=where)
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise DecodeError("not hex digits", type_name=where) from None


def decode_fields(cls: type[T], obj: Mapping[str, Any], *, where: str | None = None) -> T:
    """An instance of the attrs class ``cls`` from the JSON object ``obj``."""
    name = where or cls.__name__
    kwargs: dict[str, Any] = {}
    for field in attrs.fields(cls):
        key = field.metadata.get("json")
        if key is None:
            continue
        kind = field.metadata["kind"]
        at = f"{name}.{key}"
        if key not in obj or obj[key] is None:
            if field.default is attrs.NOTHING:
                raise DecodeError("mandatory member missing", type_name=at)
            continue
        raw = obj[key]
        if kind in ("b64", "hex", "str"):
            if not isinstance(raw, str):
                raise DecodeError("string expected", type_name=at)
            if kind == "b64":
                kwargs[field.name] = _b64decode(raw, at)
            elif kind == "hex":
                kwargs[field.name] = _hexdecode(raw, at)
            else:
                kwargs[field.name] = raw
        elif kind == "bool":
            if not isinstance(raw, bool):
                raise DecodeError("boolean expected", type_name=at)
            kwargs[field.name] = raw
        elif kind == "int":
            if not isinstance(raw, int) or isinstance(raw, bool):
                raise DecodeError("integer expected", type_name=at)
            kwargs[field.name] = raw
        else:  # pragma: no cover - a table error, not input
            raise EncodeError(f"unknown field kind {kind!r}", type_name=at)
    return cls(**kwargs)


def encode_fields(message: attrs.AttrsInstance) -> dict[str, Any]:
    """The JSON members of the attrs instance ``message`` (``None`` fields left out)."""
    out: dict[str, Any] = {}
    for field in attrs.fields(type(message)):
        key = field.metadata.get("json")
        if key is None:
            continue
        value = getattr(message, field.name)
        if value is None:
            continue
        kind = field.metadata["kind"]
        at = f"{type(message).__name__}.{key}"
        if kind == "b64":
            if not isinstance(value, bytes):
                raise EncodeError("bytes expected", type_name=at)
            out[key] = binascii.b2a_base64(value, newline=False).decode("ascii")
        elif kind == "hex":
            if not isinstance(value, bytes) or not 1 <= len(value) <= _MAX_TRANSACTION_ID:
                raise EncodeError("1 to 16 octets expected", type_name=at)
            out[key] = value.hex().upper()
        elif kind == "str":
            if not isinstance(value, str):
                raise EncodeError("str expected", type_name=at)
            out[key] = value
        elif kind == "bool":
            out[key] = bool(value)
        elif kind == "int":
            out[key] = int(value)
        else:  # pragma: no cover
            raise EncodeError(f"unknown field kind {kind!r}", type_name=at)
    return out


def _dump(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def encode_request(
    message: attrs.AttrsInstance, *, header: Mapping[str, Any] | None = None
) -> bytes:
    """The JSON body of a request (``header`` only for interfaces that have one, e.g. ES2+)."""
    body: dict[str, Any] = {}
    if header is not None:
        body["header"] = dict(header)
    body.update(encode_fields(message))
    return _dump(body)


def decode_request(cls: type[T], body: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> T:
    """A request of class ``cls`` from its JSON body (:class:`DecodeError` when malformed)."""
    return decode_fields(cls, parse_body(body, max_size=max_size, what=cls.__name__))


def execution_status_json(status: str, data: StatusCodeData | None = None) -> dict[str, Any]:
    """A ``functionExecutionStatus`` object (ES2+'s ``notificationPointStatus`` has
    the same shape): ``status`` and, on failure, ``statusCodeData``."""
    fes: dict[str, Any] = {"status": status}
    if data is not None:
        scd: dict[str, Any] = {"subjectCode": data.subject_code, "reasonCode": data.reason_code}
        if data.subject_identifier is not None:
            scd["subjectIdentifier"] = data.subject_identifier
        if data.message is not None:
            scd["message"] = data.message
        fes["statusCodeData"] = scd
    return fes


def parse_execution_status(raw: Any, where: str) -> tuple[str, StatusCodeData | None]:
    """``(status, statusCodeData)`` of a ``functionExecutionStatus``-shaped object
    (:class:`DecodeError` naming ``where`` when malformed)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("status"), str):
        raise DecodeError("status missing", type_name=where)
    status: str = raw["status"]
    scd = raw.get("statusCodeData")
    if scd is None:
        return status, None
    if not isinstance(scd, dict):
        raise DecodeError("statusCodeData is not an object", type_name=where)
    subject, reason = scd.get("subjectCode"), scd.get("reasonCode")
    if not isinstance(subject, str) or not isinstance(reason, str):
        raise DecodeError("subjectCode/reasonCode missing", type_name=where)
    ident = scd.get("subjectIdentifier")
    msg = scd.get("message")
    return status, StatusCodeData(
        subject,
        reason,
        ident if isinstance(ident, str) else None,
        msg if isinstance(msg, str) else None,
    )


def status_body(
    status: str = EXECUTED_SUCCESS, data: StatusCodeData | None = None
) -> dict[str, Any]:
    """The ``header`` member of a response."""
    return {"functionExecutionStatus": execution_status_json(status, data)}


def encode_response(
    message: attrs.AttrsInstance | None,
    *,
    failure: StatusCodeData | None = None,
    status: str | None = None,
) -> bytes:
    """The JSON body of a response: ``message`` on success, or the ``failure`` header.

    ``status`` defaults to ``Executed-Success`` (``Failed`` with a failure).
    """
    if failure is not None:
        return _dump({"header": status_body(status or FAILED, failure)})
    body: dict[str, Any] = {"header": status_body(status or EXECUTED_SUCCESS)}
    if message is not None:
        body.update(encode_fields(message))
    return _dump(body)


def _status_of(obj: Mapping[str, Any], what: str) -> tuple[str, StatusCodeData | None]:
    header = obj.get("header")
    if not isinstance(header, dict):
        raise DecodeError("header missing", type_name=f"{what}.header")
    return parse_execution_status(
        header.get("functionExecutionStatus"), f"{what}.header.functionExecutionStatus"
    )


def decode_response(
    cls: type[T], body: bytes, *, function: str | None = None, max_size: int = DEFAULT_MAX_SIZE
) -> T:
    """A response of class ``cls`` from its JSON body.

    ``Failed`` or ``Expired`` raises the matching
    :class:`~rspfed.errors.FunctionExecutionError` subclass; a malformed body
    raises :class:`DecodeError`.
    """
    obj = parse_body(body, max_size=max_size, what=cls.__name__)
    status, data = _status_of(obj, cls.__name__)
    if status in (FAILED, EXPIRED):
        raise function_execution_error(
            data or StatusCodeData("1.2", "4.2"), function=function, status=status
        )
    if status not in (EXECUTED_SUCCESS, "Executed-WithWarning"):
        raise DecodeError(
            f"unknown functionExecutionStatus {status[:40]!r}", type_name=cls.__name__
        )
    return decode_fields(cls, obj)
