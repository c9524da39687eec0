"""Transfer messages: round trips, against asn1tools, and what a v1 reader refuses.

asn1tools compiles ``rspfed/asn1/modules/transfer.asn`` (an independent DER
codec): it decodes what rspfed encodes to the expected values and rspfed
decodes what it encodes.  An alternative added after the extension marker
(as issues H and I will) and another version are refused with
``ProtocolError``; anything malformed with ``DecodeError``, never another
exception.
"""

from __future__ import annotations

import contextlib
from functools import cache
from typing import Any, cast

import asn1tools
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import DecodeError, ProtocolError, RspfedError, UsageError
from rspfed.federation.token import DeviceClass, Service
from rspfed.pki.eid import eid_check_digits
from rspfed.transfer.messages import (
    CODECS,
    Bye,
    ByeReason,
    Capability,
    DeviceRole,
    Hello,
    JoinFailure,
    JoinRequest,
    JoinResult,
    LedgerState,
    Message,
    Refusal,
    RefusalReason,
    TokenGrant,
    decode_message,
    encode_message,
    message_kind,
)
from tests.paths import ASN1_MODULES

MODULE = ASN1_MODULES / "transfer.asn"


@cache
def _spec(text: str | None = None) -> Any:
    if text is None:
        return asn1tools.compile_files(str(MODULE), "der")
    return asn1tools.compile_string(text, "der")


def _extended(old: str, new: str) -> Any:
    text = MODULE.read_text(encoding="utf-8")
    assert old in text
    return _spec(text.replace(old, new))


# -- strategies ------------------------------------------------------------------------

names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=64)
eids = st.text("0123456789", min_size=30, max_size=30).map(lambda s: s + eid_check_digits(s))
iccids = st.text("0123456789", min_size=18, max_size=20)

hellos = st.builds(
    Hello,
    name=names,
    device_class=st.sampled_from(DeviceClass),
    role=st.sampled_from(DeviceRole),
    eid=eids,
    capabilities=st.frozensets(st.sampled_from(Capability)),
)
join_requests = st.builds(
    JoinRequest,
    device_class=st.sampled_from(DeviceClass),
    services=st.frozensets(st.sampled_from(Service)),
    name=names,
)
grants = st.builds(
    TokenGrant,
    token=st.binary(min_size=1, max_size=300),
    operator_url=st.text(min_size=1, max_size=80).filter(
        lambda s: all(not 0xD800 <= ord(c) <= 0xDFFF for c in s)
    ),
)
refusals = st.builds(Refusal, reason=st.sampled_from(RefusalReason))
results = st.one_of(
    iccids.map(JoinResult.installed), st.sampled_from(JoinFailure).map(JoinResult.failed)
)
ledgers = st.builds(LedgerState, state=st.binary(max_size=300))
byes = st.builds(Bye, reason=st.sampled_from(ByeReason))
messages: st.SearchStrategy[Message] = st.one_of(
    hellos, join_requests, grants, refusals, results, ledgers, byes
)


def _iccid_octets(iccid: str) -> bytes:
    d = iccid.ljust(20, "f")
    return bytes(int(d[i + 1] + d[i], 16) for i in range(0, 20, 2))


def _expected(m: Message) -> tuple[str, Any]:
    """The asn1tools value of a message's body, built without rspfed."""
    if isinstance(m, Hello):
        caps = ["join", "companion", "deviceChange", "ledger"]
        return "hello", {
            "name": m.name,
            "deviceClass": m.device_class.value,
            "role": m.role.value,
            "eid": bytes.fromhex(m.eid),
            "capabilities": _bits({c.value for c in m.capabilities}, caps),
        }
    if isinstance(m, JoinRequest):
        names_ = ["data", "voice", "sms", "tethering"]
        return "joinRequest", {
            "deviceClass": m.device_class.value,
            "services": _bits({s.value for s in m.services}, names_),
            "name": m.name,
        }
    if isinstance(m, TokenGrant):
        return "tokenGrant", {"token": m.token, "operatorUrl": m.operator_url}
    if isinstance(m, Refusal):
        return "refusal", {"reason": m.reason.value}
    if isinstance(m, JoinResult):
        if m.iccid is not None:
            return "joinResult", {"outcome": ("installed", _iccid_octets(m.iccid))}
        assert m.failure is not None
        return "joinResult", {"outcome": ("failed", m.failure.value)}
    if isinstance(m, LedgerState):
        return "ledgerState", m.state
    return "bye", {"reason": m.reason.value}


def _bits(present: set[str], named: list[str]) -> tuple[bytes, int]:
    """A DER named-bit BIT STRING value for asn1tools (trailing zero bits removed)."""
    idx = [i for i, n in enumerate(named) if n in present]
    if not idx:
        return (b"", 0)
    length = max(idx) + 1
    value = 0
    for i in idx:
        value |= 1 << (7 - i)
    return (bytes([value]), length)


def _normalise(value: Any) -> Any:
    """asn1tools returns BIT STRINGs as (bytes, length); compare as set bit indexes."""
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int):
        data, length = value
        n = int.from_bytes(data, "big") if data else 0
        return ("bits", frozenset(i for i in range(length) if n >> (8 * len(data) - 1 - i) & 1))
    if isinstance(value, tuple):
        return tuple(_normalise(v) for v in value)
    return value


# -- round trips -----------------------------------------------------------------------


@given(messages)
def test_round_trip(m: Message) -> None:
    der = encode_message(m)
    assert decode_message(der) == m
    assert message_kind(m) in CODECS


@given(messages)
def test_asn1tools_decodes_what_rspfed_encodes(m: Message) -> None:
    decoded = _spec().decode("TransferMessage", encode_message(m))
    assert decoded["version"] == 1
    assert _normalise(decoded["body"]) == _normalise(_expected(m))


@given(messages)
def test_rspfed_decodes_what_asn1tools_encodes(m: Message) -> None:
    der = _spec().encode("TransferMessage", {"version": 1, "body": _expected(m)})
    assert decode_message(der) == m
    assert encode_message(m) == der


# -- refusals --------------------------------------------------------------------------


def test_unknown_alternative_is_a_protocol_error() -> None:
    spec = _extended(
        "    changeDone ChangeDone\n",
        "    changeDone ChangeDone,\n    laterRelay OCTET STRING\n",
    )
    der = spec.encode("TransferMessage", {"version": 1, "body": ("laterRelay", b"\xbf\x20\x00")})
    with pytest.raises(ProtocolError, match="unknown"):
        decode_message(der)


def test_other_version_is_a_protocol_error() -> None:
    der = _spec().encode("TransferMessage", {"version": 2, "body": ("bye", {"reason": "done"})})
    with pytest.raises(ProtocolError, match="version 2"):
        decode_message(der)


def test_unknown_enumeration_value_is_a_decode_error() -> None:
    spec = _extended("protocolError(3), ...", "protocolError(3), ..., later(9)")
    der = spec.encode("TransferMessage", {"version": 1, "body": ("bye", {"reason": "later"})})
    with pytest.raises(DecodeError):
        decode_message(der)


def test_extension_additions_in_a_message_are_skipped() -> None:
    spec = _extended(
        "  reason ByeReason,\n  ...\n}",
        "  reason ByeReason,\n  ...,\n  note UTF8String OPTIONAL\n}",
    )
    der = spec.encode(
        "TransferMessage", {"version": 1, "body": ("bye", {"reason": "done", "note": "hi"})}
    )
    assert decode_message(der) == Bye(ByeReason.DONE)


def test_bad_field_values_are_decode_errors() -> None:
    spec = _spec()
    bad_eid = {
        "name": "x",
        "deviceClass": "phone",
        "role": "primary",
        "eid": b"\x89" + b"\x00" * 15,
        "capabilities": (b"", 0),
    }
    for body in (
        ("hello", bad_eid),
        ("joinResult", {"outcome": ("installed", b"\xff" * 10)}),
    ):
        der = spec.encode("TransferMessage", {"version": 1, "body": body})
        with pytest.raises(DecodeError):
            decode_message(der)


@given(st.binary(max_size=80))
def test_random_bytes_only_raise_rspfed_errors(data: bytes) -> None:
    with contextlib.suppress(DecodeError, ProtocolError):
        decode_message(data)


@given(messages, st.data())
def test_mutations_only_raise_rspfed_errors(m: Message, data: st.DataObject) -> None:
    der = bytearray(encode_message(m))
    i = data.draw(st.integers(0, len(der) - 1))
    der[i] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(RspfedError):
        decode_message(bytes(der))


def test_construction_checks() -> None:
    with pytest.raises(UsageError):
        Hello("", DeviceClass.PHONE, DeviceRole.PRIMARY, "89049032123451234512345678901235")
    with pytest.raises(UsageError):
        Hello("x", DeviceClass.PHONE, DeviceRole.PRIMARY, "89049032123451234512345678901234")
    with pytest.raises(UsageError):
        JoinResult()
    with pytest.raises(UsageError):
        JoinResult(iccid="8949000000000000001", failure=JoinFailure.ERROR)
    with pytest.raises(UsageError):
        TokenGrant(b"", "https://x")
    with pytest.raises(UsageError):
        encode_message(cast(Any, "hello"))
    assert "secret-token" not in repr(TokenGrant(b"secret-token", "https://x"))
