"""JSON forms of the operator service's values, shared by the server and the client.

The operator's HTTP API (:mod:`rspfed.federation.http`, ``docs/operator.md``)
speaks JSON objects with kebab-case members (TS.43 style, e.g.
``eap-relay-packet``).  Binary values are written as:

* identifiers (``token-id``, ``key-id``): lowercase hex;
* blobs (a federation token's DER, a device key): base64url without padding
  (RFC 4648 §5, as in the ``rspfed:`` URI);
* EAP packets (``eap-relay-packet``): standard base64 with padding, as
  TS.43's entitlement servers carry them;
* instants: RFC 3339 in UTC with a ``Z`` (``2026-11-28T15:14:26.123456Z``).

Decoding is strict: a member of the wrong JSON type, a non-canonical
base64/hex, a naive or malformed time, an unknown enum value each raise
:class:`~rspfed.errors.DecodeError` naming the member; unknown members are
ignored.  Errors travel as ``{"error": {"type": NAME, "message": TEXT}}``
(:func:`error_to_json`, :func:`error_from_json`), where ``NAME`` is the
:class:`~rspfed.errors.RspfedError` subclass raised and the client raises
the same class again.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from rspfed import errors
from rspfed.errors import (
    DecodeError,
    FunctionExecutionError,
    ProtocolError,
    RspfedError,
    UsageError,
)
from rspfed.federation.ledger import AlertKey
from rspfed.federation.pool import FiredAlert, UsageResult, UsageView
from rspfed.federation.token import DeviceClass, Service
from rspfed.federation.types import (
    Device,
    DeviceRole,
    DeviceState,
    Enrolment,
    JoinRequest,
    JoinState,
    JoinTicket,
)
from rspfed.network.errors import NetworkRefusedError, RefusalReason

__all__ = [
    "MAX_BODY",
    "Reader",
    "b64",
    "b64url",
    "device_from_json",
    "device_to_json",
    "dump",
    "enrolment_from_json",
    "enrolment_to_json",
    "error_from_json",
    "error_to_json",
    "fired_alert_from_json",
    "fired_alert_to_json",
    "join_request_from_json",
    "join_request_to_json",
    "join_ticket_from_json",
    "join_ticket_to_json",
    "parse_body",
    "services_to_json",
    "time_to_json",
    "usage_result_from_json",
    "usage_result_to_json",
    "usage_view_to_json",
]

#: Largest request or answer body accepted (operator messages are small).
MAX_BODY: Final = 64 * 1024
_MAX_DEPTH: Final = 8
_E = TypeVar("_E", bound=enum.Enum)
_T = TypeVar("_T")


# --------------------------------------------------------------------------
# Scalars


def b64url(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64(data: bytes) -> str:
    """Standard base64 with padding (EAP packets)."""
    return base64.b64encode(data).decode("ascii")


def time_to_json(when: datetime) -> str:
    """RFC 3339 in UTC with ``Z`` (microseconds kept)."""
    if when.tzinfo is None:
        raise errors.EncodeError("a naive datetime cannot be sent")
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def services_to_json(services: Iterable[Service]) -> list[str]:
    """Service names, sorted."""
    return sorted(s.value for s in services)


def dump(obj: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _depth(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return False
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return True


def parse_body(body: bytes, *, what: str = "body", max_size: int = MAX_BODY) -> dict[str, Any]:
    """A JSON object from ``body`` (UTF-8, at most ``max_size`` octets); DecodeError otherwise."""
    if len(body) > max_size:
        raise DecodeError(f"{what} larger than {max_size} octets")
    try:
        obj = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DecodeError(f"{what} is not UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise DecodeError(f"{what} is not a JSON object")
    if not _depth(obj, _MAX_DEPTH):
        raise DecodeError(f"{what} nests too deeply")
    return obj


class Reader:
    """Typed, strict access to the members of one JSON object (``where`` names it in errors)."""

    def __init__(self, obj: Any, where: str) -> None:
        if not isinstance(obj, dict):
            raise DecodeError("not a JSON object", type_name=where)
        self.obj: dict[str, Any] = obj
        self.where = where

    def _error(self, key: str, message: str) -> DecodeError:
        return DecodeError(f"{key}: {message}", type_name=self.where)

    def has(self, key: str) -> bool:
        """Whether ``key`` is present and not null."""
        return self.obj.get(key) is not None

    def _get(self, key: str, kind: type | tuple[type, ...], label: str) -> Any:
        if key not in self.obj or self.obj[key] is None:
            raise self._error(key, "missing")
        value = self.obj[key]
        if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
            raise self._error(key, f"must be {label}")
        return value

    def text(self, key: str, *, max_length: int = 256, empty: bool = False) -> str:
        """A string member (non-empty unless ``empty``, at most ``max_length`` characters)."""
        value: str = self._get(key, str, "a string")
        if (not value and not empty) or len(value) > max_length:
            raise self._error(key, f"must have 1 to {max_length} characters")
        return value

    def opt_text(self, key: str, *, max_length: int = 256) -> str | None:
        """An optional string member."""
        return self.text(key, max_length=max_length) if self.has(key) else None

    def flag(self, key: str) -> bool:
        """A boolean member."""
        value: bool = self._get(key, bool, "true or false")
        return value

    def number(self, key: str) -> int:
        """A non-negative integer member."""
        value: int = self._get(key, int, "an integer")
        if value < 0 or value >= 1 << 63:
            raise self._error(key, "out of range")
        return value

    def opt_number(self, key: str) -> int | None:
        """An optional non-negative integer member."""
        return self.number(key) if self.has(key) else None

    def hex(self, key: str) -> bytes:
        """Lowercase hex."""
        text = self.text(key, max_length=1024)
        if len(text) % 2 or text != text.lower():
            raise self._error(key, "must be lowercase hex")
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise self._error(key, "must be lowercase hex") from None

    def opt_hex(self, key: str) -> bytes | None:
        """Optional lowercase hex."""
        return self.hex(key) if self.has(key) else None

    def b64url(self, key: str) -> bytes:
        """Canonical unpadded base64url."""
        text = self.text(key, max_length=MAX_BODY)
        if not all(c.isascii() and (c.isalnum() or c in "-_") for c in text):
            raise self._error(key, "must be unpadded base64url")
        try:
            data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise self._error(key, "must be unpadded base64url") from None
        if b64url(data) != text:
            raise self._error(key, "must be canonical base64url")
        return data

    def opt_b64url(self, key: str) -> bytes | None:
        """Optional unpadded base64url."""
        return self.b64url(key) if self.has(key) else None

    def b64(self, key: str) -> bytes:
        """Canonical standard base64 with padding."""
        text = self.text(key, max_length=MAX_BODY)
        try:
            data = base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise self._error(key, "must be base64") from None
        if b64(data) != text:
            raise self._error(key, "must be canonical base64")
        return data

    def time(self, key: str) -> datetime:
        """An RFC 3339 instant with a time zone, as UTC."""
        text = self.text(key, max_length=64)
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            raise self._error(key, "must be an RFC 3339 time") from None
        if when.tzinfo is None:
            raise self._error(key, "must carry a time zone")
        return when.astimezone(UTC)

    def opt_time(self, key: str) -> datetime | None:
        """An optional instant."""
        return self.time(key) if self.has(key) else None

    def enum(self, key: str, kind: type[_E]) -> _E:
        """An enum member by value."""
        text = self.text(key, max_length=64)
        try:
            return kind(text)
        except ValueError:
            raise self._error(key, f"unknown value {text[:32]!r}") from None

    def opt_enum(self, key: str, kind: type[_E]) -> _E | None:
        """An optional enum member."""
        return self.enum(key, kind) if self.has(key) else None

    def services(self, key: str) -> frozenset[Service]:
        """A list of service names."""
        value = self._get(key, list, "a list")
        if len(value) > 16 or not all(isinstance(v, str) for v in value):
            raise self._error(key, "must be a list of service names")
        try:
            return frozenset(Service(v) for v in value)
        except ValueError:
            raise self._error(key, "unknown service") from None

    def member(self, key: str) -> Reader:
        """A nested object."""
        return Reader(self._get(key, dict, "an object"), f"{self.where}.{key}")

    def items(self, key: str, decode: Callable[[Any], _T], *, max_items: int = 256) -> list[_T]:
        """A list of values, each decoded by ``decode``."""
        value = self._get(key, list, "a list")
        if len(value) > max_items:
            raise self._error(key, "too many items")
        return [decode(v) for v in value]


def _opt(value: Any, encode: Callable[[Any], Any]) -> Any:
    return None if value is None else encode(value)


def _drop_none(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v is not None}


# --------------------------------------------------------------------------
# Values


def device_to_json(device: Device) -> dict[str, Any]:
    """A :class:`Device` as JSON (its activation code is not included: see :class:`Enrolment`)."""
    return _drop_none(
        {
            "device-id": device.id,
            "subscription-id": device.subscription_id,
            "role": device.role.value,
            "device-class": device.device_class.value,
            "name": device.name,
            "state": device.state.value,
            "eid": device.eid,
            "iccid": device.iccid,
            "imsi": device.imsi,
            "services": services_to_json(device.services),
            "quota-bytes": device.quota_bytes,
            "token-id": _opt(device.token_id, bytes.hex),
            "token-consumed": device.token_consumed,
            "device-key": _opt(device.device_key, b64url),
            "device-key-id": _opt(device.device_key_id, bytes.hex),
            "created": _opt(device.created, time_to_json),
            "order-expires": _opt(device.order_expires, time_to_json),
        }
    )


def device_from_json(obj: Any) -> Device:
    """The :class:`Device` of :func:`device_to_json` (``activation_code`` empty)."""
    r = Reader(obj, "Device")
    return Device(
        id=r.text("device-id"),
        subscription_id=r.text("subscription-id"),
        role=r.enum("role", DeviceRole),
        device_class=r.enum("device-class", DeviceClass),
        name=r.text("name", empty=True),
        state=r.enum("state", DeviceState),
        eid=r.opt_text("eid"),
        iccid=r.text("iccid", max_length=22),
        imsi=r.text("imsi", max_length=15),
        services=r.services("services"),
        quota_bytes=r.opt_number("quota-bytes"),
        token_id=r.opt_hex("token-id"),
        token_consumed=r.flag("token-consumed"),
        device_key=r.opt_b64url("device-key"),
        device_key_id=r.opt_hex("device-key-id"),
        created=r.opt_time("created"),
        order_expires=r.opt_time("order-expires"),
    )


def enrolment_to_json(enrolment: Enrolment) -> dict[str, Any]:
    """An :class:`Enrolment` as JSON."""
    return _drop_none(
        {
            "device-id": enrolment.device_id,
            "iccid": enrolment.iccid,
            "activation-code": enrolment.activation_code,
            "expires": _opt(enrolment.expires, time_to_json),
        }
    )


def enrolment_from_json(obj: Any) -> Enrolment:
    """The :class:`Enrolment` of :func:`enrolment_to_json`."""
    r = Reader(obj, "Enrolment")
    return Enrolment(
        device_id=r.text("device-id"),
        iccid=r.text("iccid", max_length=22),
        activation_code=r.text("activation-code", max_length=512),
        expires=r.opt_time("expires"),
    )


def join_request_to_json(request: JoinRequest) -> dict[str, Any]:
    """A :class:`JoinRequest` as JSON."""
    return _drop_none(
        {
            "request-id": request.id,
            "subscription-id": request.subscription_id,
            "eid": request.eid,
            "device-class": request.device_class.value,
            "name": request.name,
            "state": request.state.value,
            "created": time_to_json(request.created),
            "expires": time_to_json(request.expires),
            "device-id": request.device_id,
        }
    )


def join_request_from_json(obj: Any) -> JoinRequest:
    """The :class:`JoinRequest` of :func:`join_request_to_json`."""
    r = Reader(obj, "JoinRequest")
    return JoinRequest(
        id=r.text("request-id"),
        subscription_id=r.text("subscription-id"),
        eid=r.text("eid", max_length=32),
        device_class=r.enum("device-class", DeviceClass),
        name=r.text("name", empty=True),
        state=r.enum("state", JoinState),
        created=r.time("created"),
        expires=r.time("expires"),
        device_id=r.opt_text("device-id"),
    )


def join_ticket_to_json(ticket: JoinTicket) -> dict[str, Any]:
    """A :class:`JoinTicket` as JSON: the request and its ``secret``."""
    return {"request": join_request_to_json(ticket.request), "secret": ticket.secret}


def join_ticket_from_json(obj: Any) -> JoinTicket:
    """The :class:`JoinTicket` of :func:`join_ticket_to_json`."""
    r = Reader(obj, "JoinTicket")
    return JoinTicket(request=join_request_from_json(r.obj.get("request")), secret=r.text("secret"))


# --------------------------------------------------------------------------
# Errors


def error_to_json(exc: RspfedError) -> dict[str, Any]:
    """``{"error": {"type", "message", ...}}`` for ``exc`` (its class name and text).

    A :class:`NetworkRefusedError` adds ``reason``; a
    :class:`~rspfed.errors.FunctionExecutionError` adds ``subject-code`` and
    ``reason-code``.
    """
    body: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)[:500]}
    if isinstance(exc, NetworkRefusedError):
        body["reason"] = exc.reason.value
    if isinstance(exc, FunctionExecutionError):
        body["subject-code"] = exc.subject_code
        body["reason-code"] = exc.reason_code
    return {"error": body}


def _error_classes() -> dict[str, type[RspfedError]]:
    found: dict[str, type[RspfedError]] = {}
    for name in errors.__all__:
        cls = getattr(errors, name, None)
        if isinstance(cls, type) and issubclass(cls, RspfedError):
            found[name] = cls
    found["NetworkRefusedError"] = NetworkRefusedError
    return found


_ERRORS: Final = _error_classes()
_ROOTS: Final = frozenset({"RspfedError", "LocalError", "RemoteError"})


def error_from_json(obj: Any) -> RspfedError:
    """The exception an error body names (:class:`ProtocolError` for an unknown type).

    The type is looked up by name in :data:`rspfed.errors.__all__` (and
    :class:`~rspfed.network.NetworkRefusedError`, which lives in
    :mod:`rspfed.network`); the message is the
    server's text.  The abstract roots (``RspfedError``, ``LocalError``,
    ``RemoteError``) come back as :class:`ProtocolError`.
    """
    r = Reader(obj, "error")
    e = r.member("error")
    name = e.text("type", max_length=64)
    message = e.opt_text("message", max_length=1000) or name
    cls = _ERRORS.get(name)
    if cls is None or name in _ROOTS:
        return ProtocolError(f"{name}: {message}")
    if cls is NetworkRefusedError:
        reason = e.opt_enum("reason", RefusalReason)
        if reason is None:
            return ProtocolError(f"{name}: {message}")
        prefix = f"{reason.value}: "
        detail = message[len(prefix) :] if message.startswith(prefix) else None
        return NetworkRefusedError(reason, detail)
    if issubclass(cls, FunctionExecutionError):
        subject = e.opt_text("subject-code", max_length=16) or ""
        reason_code = e.opt_text("reason-code", max_length=16) or ""
        function, sep, rest = message.partition(": ")
        codes = f"{subject}/{reason_code}"
        if not sep or not rest.startswith(codes):
            function, rest = "", message
        text = rest.removeprefix(codes).removeprefix(" ")
        return cls(text, subject_code=subject, reason_code=reason_code, function=function or None)
    return _plain(cls, message)


def _plain(cls: type[RspfedError], message: str) -> RspfedError:
    try:
        return cls(message)
    except TypeError:  # pragma: no cover - every class in rspfed.errors takes a message
        return ProtocolError(message)


# --------------------------------------------------------------------------
# The shared data pool (rspfed.federation.pool)


def fired_alert_to_json(alert: FiredAlert) -> dict[str, Any]:
    """A :class:`~rspfed.federation.pool.FiredAlert` as JSON (``id`` in hex)."""
    return _drop_none(
        {
            "id": alert.id.hex(),
            "subscription-id": alert.subscription_id,
            "scope": alert.scope,
            "iccid": alert.key.device,
            "device-id": alert.device_id,
            "threshold": alert.key.threshold,
            "period": alert.key.period,
            "pool-epoch": alert.key.pool_epoch,
            "used": alert.used,
            "limit": alert.limit,
            "fired": time_to_json(alert.fired),
        }
    )


def fired_alert_from_json(obj: Any) -> FiredAlert:
    """The inverse of :func:`fired_alert_to_json` (:class:`DecodeError` if malformed)."""
    r = Reader(obj, "alert")
    aid = r.hex("id")
    if len(aid) != 16:
        raise DecodeError("id: 16 octets", type_name="alert")
    try:
        key = AlertKey(
            r.opt_text("iccid", max_length=20),
            r.number("threshold"),
            r.number("period"),
            r.number("pool-epoch"),
        )
    except UsageError as exc:
        raise DecodeError(f"bad alert key: {exc}", type_name="alert") from None
    return FiredAlert(
        aid,
        r.text("subscription-id", max_length=64),
        key,
        r.opt_text("device-id", max_length=64),
        r.number("used"),
        r.number("limit"),
        r.time("fired"),
    )


def usage_result_to_json(result: UsageResult) -> dict[str, Any]:
    """What ``network/use`` carried, as JSON."""
    return _drop_none(
        {
            "iccid": result.iccid,
            "requested": result.requested,
            "carried": result.carried,
            "counter": result.counter,
            "used": result.used,
            "throttled": result.throttled,
            "refusal": None if result.refusal is None else result.refusal.value,
            "period": result.period,
        }
    )


def usage_result_from_json(obj: Any) -> UsageResult:
    """The inverse of :func:`usage_result_to_json`."""
    r = Reader(obj, "network/use")
    refusal = r.opt_text("refusal", max_length=64)
    try:
        reason = None if refusal is None else RefusalReason(refusal)
    except ValueError:
        raise DecodeError("refusal: unknown reason", type_name="network/use") from None
    return UsageResult(
        r.text("iccid", max_length=20),
        r.number("requested"),
        r.number("carried"),
        r.number("counter"),
        r.number("used"),
        r.flag("throttled"),
        reason,
        r.opt_number("period") or 0,
    )


def usage_view_to_json(view: UsageView) -> dict[str, Any]:
    """A :class:`~rspfed.federation.pool.UsageView` as JSON (what ``usage --json`` prints)."""
    return {
        "subscription-id": view.subscription_id,
        "period": {
            "id": view.period.id,
            "start": time_to_json(view.period.start),
            "end": time_to_json(view.period.end),
        },
        "pool": {
            "limit": view.pool_limit,
            "used": view.pool_used,
            "percent": round(view.percent, 2),
            "epoch": view.pool_epoch,
        },
        "devices": [
            _drop_none(
                {
                    "device-id": d.device_id,
                    "name": d.name,
                    "device-class": d.device_class.value,
                    "role": d.role.value,
                    "state": d.state.value,
                    "iccid": d.iccid,
                    "used": d.used,
                    "quota": d.quota,
                    "reported": d.reported,
                    "data": d.action.value,
                    "reason": d.reason or None,
                }
            )
            for d in view.devices
        ],
        "alerts": [fired_alert_to_json(a) for a in view.alerts],
        "points": [{"at": time_to_json(p.at), "used": p.used} for p in view.points],
        "by-plmn": dict(view.by_plmn),
    }
