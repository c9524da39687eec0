"""JSON bodies of ES2+ (SGP.22 §6.5.1, §6.5.2) on top of :mod:`rspfed.es9p.codec`.

ES2+ differs from ES9+ in two ways that this module covers:

* every request has a ``header`` with ``functionRequesterIdentifier`` and
  ``functionCallIdentifier`` (both mandatory, non-empty, at most
  :data:`MAX_IDENTIFIER` characters);
* HandleDownloadProgressInfo carries ``notificationPointStatus``, a JSON
  object shaped like ``functionExecutionStatus``.

Identifiers are checked on decoding: an ICCID is 19 or 20 digits (a 20th
``F``/``f`` pad allowed), an EID 32 digits, ``finalProfileStatusIndicator``
``Available`` or ``Unavailable``; anything else is a
:class:`~rspfed.errors.DecodeError` naming the member.  Responses use
:func:`rspfed.es9p.encode_response` / :func:`decode_es2_response` (``Failed``
raises the :class:`~rspfed.errors.FunctionExecutionError` subclass).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import attrs

from rspfed.errors import DecodeError, EncodeError
from rspfed.es2p.messages import (
    FINAL_PROFILE_STATUS_INDICATORS,
    Es2Message,
    HandleDownloadProgressInfoRequest,
    NotificationPointStatus,
    RequestHeader,
)
from rspfed.es9p.codec import (
    DEFAULT_MAX_SIZE,
    decode_fields,
    decode_response,
    encode_fields,
    encode_request,
    execution_status_json,
    parse_body,
    parse_execution_status,
)
from rspfed.es9p.codes import StatusCodeData

__all__ = [
    "MAX_IDENTIFIER",
    "decode_es2_request",
    "decode_es2_response",
    "encode_es2_request",
    "format_timestamp",
    "parse_timestamp",
]

#: Longest identifier string accepted in a request (header ids, matchingId, profile type, ...).
MAX_IDENTIFIER: Final = 256
_ICCID = re.compile(r"[0-9]{19}[0-9Ff]?\Z")
_EID = re.compile(r"[0-9]{32}\Z")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})\Z"
)

M = TypeVar("M", bound=Es2Message)


def format_timestamp(when: datetime) -> str:
    """W3C ``YYYY-MM-DDThh:mm:ssZ`` (UTC) for ``when`` (an aware datetime)."""
    if when.tzinfo is None:
        raise EncodeError("timestamp must be timezone-aware", type_name="timestamp")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    """An aware datetime from a W3C ``YYYY-MM-DDThh:mm:ssTZD`` string (:class:`DecodeError`)."""
    if not _TIMESTAMP.match(text):
        raise DecodeError("not a W3C date-time YYYY-MM-DDThh:mm:ssTZD", type_name="timestamp")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DecodeError("not a valid date-time", type_name="timestamp") from None


def _check_identifiers(message: attrs.AttrsInstance, where: str) -> None:
    for field in attrs.fields(type(message)):
        key = field.metadata.get("json")
        value = getattr(message, field.name)
        if key is None or not isinstance(value, str):
            continue
        at = f"{where}.{key}"
        if len(value) > MAX_IDENTIFIER:
            raise DecodeError(f"longer than {MAX_IDENTIFIER} characters", type_name=at)
        if key == "iccid" and not _ICCID.match(value):
            raise DecodeError("ICCID of 19 or 20 digits expected", type_name=at)
        if key == "eid" and not _EID.match(value):
            raise DecodeError("EID of 32 digits expected", type_name=at)
        if key == "finalProfileStatusIndicator" and value not in FINAL_PROFILE_STATUS_INDICATORS:
            raise DecodeError("Available or Unavailable expected", type_name=at)
        if key == "timestamp":
            parse_timestamp(value)


def _status_json(status: NotificationPointStatus) -> dict[str, Any]:
    data = None
    if status.subject_code is not None and status.reason_code is not None:
        data = StatusCodeData(
            status.subject_code, status.reason_code, status.subject_identifier, status.message
        )
    return execution_status_json(status.status, data)


def _status_from_json(raw: Any, where: str) -> NotificationPointStatus:
    status, data = parse_execution_status(raw, where)
    if not status or len(status) > MAX_IDENTIFIER:
        raise DecodeError("status missing", type_name=f"{where}.status")
    if data is None:
        return NotificationPointStatus(status)
    return NotificationPointStatus(
        status, data.subject_code, data.reason_code, data.subject_identifier, data.message
    )


def encode_es2_request(message: Es2Message, header: RequestHeader) -> bytes:
    """The JSON body of an ES2+ request: ``header`` then the message members."""
    if not header.function_requester_identifier or not header.function_call_identifier:
        raise EncodeError("header identifiers must not be empty", type_name="header")
    if not attrs.has(type(message)):
        raise EncodeError("not an ES2+ message", type_name=type(message).__name__)
    head = encode_fields(header)
    if isinstance(message, HandleDownloadProgressInfoRequest):
        body: dict[str, Any] = {"header": head}
        body.update(encode_fields(message))
        body["notificationPointStatus"] = _status_json(message.notification_point_status)
        return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    return encode_request(message, header=head)


def decode_es2_request(
    cls: type[M], body: bytes, *, max_size: int = DEFAULT_MAX_SIZE
) -> tuple[RequestHeader, M]:
    """``(header, request)`` from an ES2+ request body (:class:`DecodeError` when malformed)."""
    name = cls.__name__
    obj = parse_body(body, max_size=max_size, what=name)
    raw_header = obj.get("header")
    if not isinstance(raw_header, dict):
        raise DecodeError("mandatory member missing", type_name=f"{name}.header")
    header = decode_fields(RequestHeader, raw_header, where=f"{name}.header")
    if not header.function_requester_identifier or not header.function_call_identifier:
        raise DecodeError("empty identifier", type_name=f"{name}.header")
    _check_identifiers(header, f"{name}.header")
    if cls is HandleDownloadProgressInfoRequest:
        status = _status_from_json(
            obj.get("notificationPointStatus"), f"{name}.notificationPointStatus"
        )
        fields = {k: v for k, v in obj.items() if k != "notificationPointStatus"}
        partial = decode_fields(_ProgressFields, fields, where=name)
        message: Any = HandleDownloadProgressInfoRequest(
            iccid=partial.iccid,
            profile_type=partial.profile_type,
            timestamp=partial.timestamp,
            notification_point_id=partial.notification_point_id,
            notification_point_status=status,
            eid=partial.eid,
            result_data=partial.result_data,
        )
    else:
        message = decode_fields(cls, obj, where=name)
    _check_identifiers(message, name)
    return header, message


def decode_es2_response(cls: type[M], body: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> M:
    """An ES2+ response of class ``cls``; ``Failed`` raises the
    :class:`~rspfed.errors.FunctionExecutionError` subclass for its subject code."""
    return decode_response(cls, body, function=cls.FUNCTION or None, max_size=max_size)


@attrs.frozen
class _ProgressFields:
    """The plain members of HandleDownloadProgressInfo (the status object apart)."""

    iccid: str = attrs.field(metadata={"json": "iccid", "kind": "str"})
    profile_type: str = attrs.field(metadata={"json": "profileType", "kind": "str"})
    timestamp: str = attrs.field(metadata={"json": "timestamp", "kind": "str"})
    notification_point_id: int = attrs.field(
        metadata={"json": "notificationPointId", "kind": "int"}
    )
    eid: str | None = attrs.field(default=None, metadata={"json": "eid", "kind": "str"})
    result_data: bytes | None = attrs.field(
        default=None, metadata={"json": "resultData", "kind": "b64"}
    )
