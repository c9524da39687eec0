"""Pairing offers: DER against asn1tools, the ``rspfed:1:pair:`` URI, refusals."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from functools import cache
from typing import Any

import asn1tools
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import DecodeError, RspfedError, UsageError
from rspfed.federation.token import DeviceClass
from rspfed.federation.uri import MAX_URI_LENGTH, RspfedUri, token_uri
from rspfed.transfer.code import discovery_id_from_secret
from rspfed.transfer.messages import DeviceRole
from rspfed.transfer.offer import LanHint, PairingOffer
from tests.paths import ASN1_MODULES

MODULE = ASN1_MODULES / "transfer.asn"


@cache
def _spec(text: str | None = None) -> Any:
    if text is None:
        return asn1tools.compile_files(str(MODULE), "der")
    return asn1tools.compile_string(text, "der")


hosts = st.one_of(
    st.none(),
    st.ip_addresses().map(str),
    st.from_regex(r"[a-z0-9]{1,20}(\.[a-z0-9-]{1,20}){0,3}", fullmatch=True),
)
lan_hints = st.builds(LanHint, host=hosts, port=st.one_of(st.none(), st.integers(1, 65535)))


@st.composite
def offers(draw: st.DrawFn) -> PairingOffer:
    lan = draw(st.one_of(st.none(), lan_hints))
    return PairingOffer(
        secret=draw(st.binary(min_size=32, max_size=32)),
        offerer_role=draw(st.sampled_from(DeviceRole)),
        offerer_name=draw(
            st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=64)
        ),
        device_class=draw(st.sampled_from(DeviceClass)),
        lan=lan,
        ble=draw(st.booleans()) if lan is not None else True,
    )


def _expected(o: PairingOffer) -> dict[str, Any]:
    transports: dict[str, Any] = {}
    if o.lan is not None:
        lan: dict[str, Any] = {}
        if o.lan.host is not None:
            lan["host"] = o.lan.host
        if o.lan.port is not None:
            lan["port"] = o.lan.port
        transports["lan"] = lan
    if o.ble:
        transports["ble"] = {}
    return {
        "version": 1,
        "secret": o.secret,
        "offererRole": o.offerer_role.value,
        "offererName": o.offerer_name,
        "deviceClass": o.device_class.value,
        "transports": transports,
    }


@given(offers())
def test_round_trip_and_uri(o: PairingOffer) -> None:
    der = o.to_der()
    assert PairingOffer.from_der(der) == o
    uri = o.to_uri()
    assert uri.startswith("rspfed:1:pair:")
    assert len(uri) <= MAX_URI_LENGTH
    assert PairingOffer.from_uri(uri) == o
    assert PairingOffer.from_uri("  RSPFED" + uri[6:] + "\n") == o
    assert o.discovery_id == discovery_id_from_secret(o.secret)
    assert o.secret.hex() not in repr(o)


@given(offers())
def test_against_asn1tools(o: PairingOffer) -> None:
    der = o.to_der()
    assert _spec().decode("PairingOffer", der) == _expected(o)
    assert _spec().encode("PairingOffer", _expected(o)) == der


def test_generate_uses_rand() -> None:
    o = PairingOffer.generate(
        lambda n: bytes(range(n)),
        offerer_role=DeviceRole.COMPANION,
        offerer_name="Ana's watch",
        device_class=DeviceClass.WATCH,
        ble=True,
    )
    assert o.secret == bytes(range(32))
    with pytest.raises(UsageError):
        PairingOffer.generate(
            lambda n: b"",
            offerer_role=DeviceRole.PRIMARY,
            offerer_name="x",
            device_class=DeviceClass.PHONE,
            ble=True,
        )


def test_refusals() -> None:
    with pytest.raises(UsageError, match="transport"):
        PairingOffer(b"\x00" * 32, DeviceRole.PRIMARY, "x", DeviceClass.PHONE)
    with pytest.raises(UsageError):
        LanHint(host="not a host!")
    with pytest.raises(UsageError):
        LanHint(port=0)
    base = {
        "version": 1,
        "secret": b"\x01" * 32,
        "offererRole": "primary",
        "offererName": "x",
        "deviceClass": "phone",
        "transports": {"ble": {}},
    }
    assert PairingOffer.from_der(_spec().encode("PairingOffer", base)).ble
    changes: list[dict[str, Any]] = [
        {"version": 2},
        {"transports": {}},
        {"transports": {"lan": {"host": "a b"}}},
    ]
    for change in changes:
        der = _spec().encode("PairingOffer", {**base, **change})
        with pytest.raises(DecodeError):
            PairingOffer.from_der(der)
    with pytest.raises(DecodeError, match="'pair'"):
        PairingOffer.from_uri(token_uri(b"\x30\x00"))
    with pytest.raises(DecodeError):
        PairingOffer.from_uri("rspfed:1:pair:AAAA")


def test_extensions_are_skipped() -> None:
    text = MODULE.read_text(encoding="utf-8")
    old = "  transports TransportHints,\n  ...\n}"
    assert old in text
    spec = _spec(text.replace(old, old[:-2] + ",\n  expires GeneralizedTime OPTIONAL\n}"))
    value = {
        "version": 1,
        "secret": b"\x02" * 32,
        "offererRole": "secondary",
        "offererName": "tablet",
        "deviceClass": "tablet",
        "transports": {"lan": {"port": 4242}},
        "expires": datetime(2026, 11, 28, 15, 0, tzinfo=UTC),
    }
    o = PairingOffer.from_der(spec.encode("PairingOffer", value))
    assert o.lan == LanHint(port=4242)


def test_uri_type_pair_is_known() -> None:
    assert RspfedUri.parse("rspfed:1:pair:AAEC").type == "pair"


@given(st.binary(max_size=120))
def test_random_bytes_only_raise_rspfed_errors(data: bytes) -> None:
    with contextlib.suppress(RspfedError):
        PairingOffer.from_der(data)
