"""JSON forms of the operator's values: round trips (hypothesis), strict decoding, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed import errors
from rspfed.errors import DecodeError, FunctionExecutionError, ProtocolError, RspfedError
from rspfed.federation import DeviceClass, Service
from rspfed.federation.operator import TokenScopeError
from rspfed.federation.types import (
    Device,
    DeviceRole,
    DeviceState,
    Enrolment,
    JoinRequest,
    JoinState,
    JoinTicket,
)
from rspfed.federation.wire import (
    Reader,
    device_from_json,
    device_to_json,
    dump,
    enrolment_from_json,
    enrolment_to_json,
    error_from_json,
    error_to_json,
    join_request_from_json,
    join_request_to_json,
    join_ticket_from_json,
    join_ticket_to_json,
    parse_body,
)
from rspfed.network import NetworkRefusedError, RefusalReason

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", min_size=1, max_size=30)
names = st.text(min_size=0, max_size=64)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
digits = st.text(alphabet="0123456789", min_size=15, max_size=15)
eids = st.text(alphabet="0123456789", min_size=32, max_size=32)
services = st.frozensets(st.sampled_from(Service))
opt_bytes = st.none() | st.binary(min_size=1, max_size=65)

devices = st.builds(
    Device,
    id=ids,
    subscription_id=ids,
    role=st.sampled_from(DeviceRole),
    device_class=st.sampled_from(DeviceClass),
    name=names,
    state=st.sampled_from(DeviceState),
    eid=st.none() | eids,
    iccid=st.text(alphabet="0123456789", min_size=19, max_size=20),
    imsi=digits,
    services=services,
    quota_bytes=st.none() | st.integers(0, (1 << 63) - 1),
    token_id=opt_bytes,
    token_consumed=st.booleans(),
    device_key=opt_bytes,
    device_key_id=opt_bytes,
    created=st.none() | times,
    order_expires=st.none() | times,
)
enrolments = st.builds(
    Enrolment,
    device_id=ids,
    iccid=st.text(alphabet="0123456789", min_size=19, max_size=20),
    activation_code=st.from_regex(r"LPA:1\$[a-z.]{1,20}\$[A-Z0-9-]{1,30}", fullmatch=True),
    expires=st.none() | times,
)
join_requests = st.builds(
    JoinRequest,
    id=ids,
    subscription_id=ids,
    eid=eids,
    device_class=st.sampled_from(DeviceClass),
    name=names,
    state=st.sampled_from(JoinState),
    created=times,
    expires=times,
    device_id=st.none() | ids,
)


def over_the_wire(obj: dict[str, Any]) -> dict[str, Any]:
    return parse_body(dump(obj))


@given(devices)
def test_device_round_trip(device: Device) -> None:
    # the activation code is not part of the device's JSON (only an Enrolment carries it)
    assert device_from_json(over_the_wire(device_to_json(device))) == device


def test_device_json_leaves_out_the_activation_code() -> None:
    device = Device(
        id="d1",
        subscription_id="s1",
        role=DeviceRole.PRIMARY,
        device_class=DeviceClass.PHONE,
        name="phone",
        state=DeviceState.ACTIVE,
        eid=None,
        iccid="8900000000000000017",
        imsi="001010000000001",
        services=frozenset({Service.DATA}),
        activation_code="LPA:1$x$SECRET",
    )
    text = dump(device_to_json(device)).decode()
    assert "SECRET" not in text
    assert device_from_json(json.loads(text)) == attrs.evolve(device, activation_code="")


@given(enrolments)
def test_enrolment_round_trip(enrolment: Enrolment) -> None:
    assert enrolment_from_json(over_the_wire(enrolment_to_json(enrolment))) == enrolment


@given(join_requests)
def test_join_request_round_trip(request: JoinRequest) -> None:
    assert join_request_from_json(over_the_wire(join_request_to_json(request))) == request


@given(join_requests, st.text(min_size=1, max_size=40))
def test_join_ticket_round_trip(request: JoinRequest, secret: str) -> None:
    ticket = JoinTicket(request, secret)
    assert join_ticket_from_json(over_the_wire(join_ticket_to_json(ticket))) == ticket


def test_times_from_other_zones_become_utc() -> None:
    request = JoinRequest(
        "r", "s", "1" * 32, DeviceClass.TABLET, "t", JoinState.PENDING,
        datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC),
    )  # fmt: skip
    obj = join_request_to_json(request)
    obj["created"] = "2026-01-01T01:00:00+01:00"
    assert join_request_from_json(obj).created == request.created
    obj["created"] = "2026-01-01T00:00:00"  # naive
    with pytest.raises(DecodeError, match="time zone"):
        join_request_from_json(obj)


GOOD_DEVICE: dict[str, Any] = {
    "device-id": "d",
    "subscription-id": "s",
    "role": "primary",
    "device-class": "phone",
    "name": "n",
    "state": "active",
    "iccid": "8900000000000000017",
    "imsi": "001010000000001",
    "services": ["data"],
    "token-consumed": False,
}


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("device-id", None),
        ("device-id", 5),
        ("role", "boss"),
        ("services", ["data", "teleport"]),
        ("services", "data"),
        ("token-consumed", 0),
        ("quota-bytes", True),
        ("quota-bytes", -1),
        ("token-id", "ABCD"),
        ("token-id", "abc"),
        ("device-key", "AAAA="),
        ("device-key", "AA+/"),
        ("device-key", "AB"),  # not canonical: trailing bits set
        ("created", "yesterday"),
    ],
)
def test_strict_decoding(member: str, value: Any) -> None:
    obj = dict(GOOD_DEVICE)
    obj[member] = value
    with pytest.raises(DecodeError) as info:
        device_from_json(obj)
    assert member in str(info.value)
    device_from_json(GOOD_DEVICE)


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b'"x"', b"\xff\xfe", b'{"a":' * 20 + b"1" + b"}" * 20, b"{}" + b" " * 70000],
)
def test_parse_body_refuses(body: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_body(body)


def test_reader_b64_is_canonical() -> None:
    assert Reader({"p": "AAEC"}, "x").b64("p") == b"\x00\x01\x02"
    for bad in ("AAE", "AAEC\n", "AA=C", "AAF="):
        with pytest.raises(DecodeError):
            Reader({"p": bad}, "x").b64("p")


def _concrete() -> list[type[RspfedError]]:
    found = []
    for name in errors.__all__:
        cls = getattr(errors, name)
        concrete = name not in ("RspfedError", "LocalError", "RemoteError")
        if isinstance(cls, type) and issubclass(cls, RspfedError) and concrete:
            found.append(cls)
    return found


def _instance(cls: type[RspfedError], message: str) -> RspfedError:
    if issubclass(cls, FunctionExecutionError):
        return cls(message, subject_code="8.2.6", reason_code="3.8", function="authenticateClient")
    return cls(message)


@pytest.mark.parametrize("cls", _concrete(), ids=lambda c: c.__name__)
@given(message=st.text(min_size=1, max_size=80))
def test_every_error_class_survives_the_wire(cls: type[RspfedError], message: str) -> None:
    sent = _instance(cls, message)
    got = error_from_json(over_the_wire(error_to_json(sent)))
    assert type(got) is cls
    assert str(got) == str(sent)[:500]


@given(st.sampled_from(RefusalReason), st.none() | st.text(min_size=1, max_size=40))
def test_network_refusal_keeps_its_reason(reason: RefusalReason, detail: str | None) -> None:
    sent = NetworkRefusedError(reason, detail)
    got = error_from_json(over_the_wire(error_to_json(sent)))
    assert isinstance(got, NetworkRefusedError)
    assert got.reason is reason
    assert str(got) == str(sent)


def test_scope_error_and_unknown_names() -> None:
    got = error_from_json(error_to_json(TokenScopeError("a laptop may not get voice")))
    assert type(got) is TokenScopeError
    for name in ("KeyError", "RspfedError", "RemoteError", "SystemExit"):
        odd = error_from_json({"error": {"type": name, "message": "m"}})
        assert type(odd) is ProtocolError
    with pytest.raises(DecodeError):
        error_from_json({"error": "boom"})


def test_now_is_not_needed() -> None:
    # values carry their own instants; nothing in the codec reads a clock
    when = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)
    request = JoinRequest(
        "r", "s", "1" * 32, DeviceClass.WATCH, "w", JoinState.APPROVED, when,
        when + timedelta(hours=24), "d",
    )  # fmt: skip
    assert join_request_to_json(request)["created"] == "2026-11-28T12:00:00.123456Z"
