"""The device-change messages (issue I): codec, asn1tools both ways, malformed input, secrets.

asn1tools compiles ``rspfed/asn1/modules/transfer.asn`` independently: it
decodes what rspfed encodes to values built here without rspfed (the ICCID
octets by a BCD helper of this file), and rspfed decodes what asn1tools
encodes and re-encodes it to the same octets.  Malformed or oversize input
raises ``DecodeError`` (``ProtocolError`` for an unknown alternative or
version) and never another exception type.  A reader of the module before
issue I sees the four alternatives as unknown extension additions.
"""

from __future__ import annotations

import contextlib
import re
from functools import cache
from typing import Any

import asn1tools
import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import DecodeError, ProtocolError, RspfedError, UsageError
from rspfed.federation.token import DeviceClass
from rspfed.pki.eid import eid_check_digits
from rspfed.transfer import (
    Bye,
    ByeReason,
    ByeReceived,
    ChangeDone,
    ChangeFailure,
    ChangeOrder,
    ChangeRequest,
    ChangeResult,
    CompanionHandover,
    CompanionTransport,
    ConnectionState,
    DeviceRole,
    decode_message,
    encode_message,
)
from rspfed.transfer.messages import MAX_COMPANIONS, Message
from tests.paths import ASN1_MODULES, REPO
from tests.transfer.change_world import DONE, NEW_ICCID, ORDER, REQUEST, WATCH, ready

MODULE = ASN1_MODULES / "transfer.asn"
S = ConnectionState


@cache
def _spec() -> Any:
    return asn1tools.compile_files(str(MODULE), "der")


def _iccid_octets(iccid: str) -> bytes:
    digits = iccid + "F" * (20 - len(iccid))
    return bytes.fromhex("".join(digits[i + 1] + digits[i] for i in range(0, 20, 2)))


# -- strategies ------------------------------------------------------------------------


def _text(n: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=n)


eids = st.text("0123456789", min_size=30, max_size=30).map(lambda s: s + eid_check_digits(s))
iccids = st.text("0123456789", min_size=18, max_size=20)
roles = st.sampled_from(DeviceRole)
urls = st.text("abcdefghijklmnopqrstuvwxyz0123456789.-/", min_size=1, max_size=80).map(
    lambda s: "https://" + s
)
requests = st.builds(ChangeRequest, name=_text(64), device_class=st.sampled_from(DeviceClass))
orders = st.builds(
    ChangeOrder,
    change_id=_text(64),
    secret=_text(128),
    activation_code=_text(255),
    operator_url=urls,
    subscription_id=_text(64),
    device_id=_text(64),
    role=roles,
    replaced_iccid=st.none() | iccids,
)
results = st.one_of(
    iccids.map(ChangeResult.switched), st.sampled_from(ChangeFailure).map(ChangeResult.failed)
)
handovers = st.builds(
    CompanionHandover,
    eid=eids,
    name=_text(64),
    psk=st.binary(min_size=32, max_size=32),
    reconnection_id=st.binary(min_size=16, max_size=16),
    transport=st.sampled_from(CompanionTransport),
)
dones = st.builds(
    ChangeDone,
    deleted=st.none() | iccids,
    companions=st.lists(handovers, max_size=MAX_COMPANIONS).map(tuple),
)
messages: st.SearchStrategy[Message] = st.one_of(requests, orders, results, dones)


def _expected(m: Message) -> tuple[str, Any]:
    """The asn1tools value of a message's body, built without rspfed."""
    if isinstance(m, ChangeRequest):
        return "changeRequest", {"name": m.name, "deviceClass": m.device_class.value}
    if isinstance(m, ChangeOrder):
        value: dict[str, Any] = {
            "changeId": m.change_id,
            "secret": m.secret,
            "activationCode": m.activation_code,
            "operatorUrl": m.operator_url,
            "subscriptionId": m.subscription_id,
            "deviceId": m.device_id,
            "role": m.role.value,
        }
        if m.replaced_iccid is not None:
            value["replacedIccid"] = _iccid_octets(m.replaced_iccid)
        return "changeOrder", value
    if isinstance(m, ChangeResult):
        if m.iccid is not None:
            return "changeResult", {"outcome": ("switched", _iccid_octets(m.iccid))}
        assert m.failure is not None
        return "changeResult", {"outcome": ("failed", m.failure.value)}
    assert isinstance(m, ChangeDone)
    done: dict[str, Any] = {
        "companions": [
            {
                "eid": bytes.fromhex(c.eid),
                "name": c.name,
                "psk": c.psk,
                "reconnectionId": c.reconnection_id,
                "transport": c.transport.value,
            }
            for c in m.companions
        ]
    }
    if m.deleted is not None:
        done["deleted"] = _iccid_octets(m.deleted)
    return "changeDone", done


@given(messages)
def test_round_trip(m: Message) -> None:
    assert decode_message(encode_message(m)) == m


@given(messages)
def test_asn1tools_decodes_what_rspfed_encodes(m: Message) -> None:
    value = _spec().decode("TransferMessage", encode_message(m))
    assert value == {"version": 1, "body": _expected(m)}


@given(messages)
def test_rspfed_decodes_what_asn1tools_encodes(m: Message) -> None:
    der = _spec().encode("TransferMessage", {"version": 1, "body": _expected(m)})
    assert decode_message(der) == m
    assert encode_message(m) == der


def _skip_header(der: bytes, i: int) -> int:
    """The offset after the tag and length octets at ``i``."""
    first = der[i + 1]
    return i + 2 + (first & 0x7F if first & 0x80 else 0)


def _body_tag_offset(der: bytes) -> int:
    i = _skip_header(der, 0)  # TransferMessage SEQUENCE
    assert der[i : i + 3] == b"\x80\x01\x01"  # version 1
    return _skip_header(der, i + 3)  # body [1] (explicit: the CHOICE) -> the alternative


def test_the_alternatives_follow_the_companion_ones() -> None:
    # [12]..[15] after es10Refused [11]: context-specific, constructed (0xa0 | n)
    changes = (REQUEST, ORDER, ChangeResult.switched(NEW_ICCID), DONE)
    tags = [encode_message(m)[_body_tag_offset(encode_message(m))] for m in changes]
    assert tags == [0xAC, 0xAD, 0xAE, 0xAF]


def test_secrets_stay_out_of_repr() -> None:
    text = repr(ORDER) + repr(DONE) + repr(WATCH)
    assert ORDER.secret not in text
    assert ORDER.activation_code not in text
    assert WATCH.psk.hex() not in text
    assert repr(WATCH.psk) not in text
    assert ORDER.change_id in text  # the id is not a secret


def test_secrets_stay_out_of_error_text() -> None:
    secret = "S" * 129
    with pytest.raises(UsageError) as info:
        attrs.evolve(ORDER, secret=secret)
    assert secret not in str(info.value)
    der = _spec().encode(
        "TransferMessage",
        {"version": 1, "body": ("changeOrder", {**_expected(ORDER)[1], "secret": secret})},
    )
    with pytest.raises(DecodeError) as decode_info:
        decode_message(der)
    assert "SSSS" not in str(decode_info.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: ChangeRequest("", DeviceClass.PHONE),
        lambda: ChangeRequest("x" * 65, DeviceClass.PHONE),
        lambda: attrs.evolve(ORDER, change_id="x" * 65),
        lambda: attrs.evolve(ORDER, activation_code="x" * 256),
        lambda: attrs.evolve(ORDER, operator_url=""),
        lambda: attrs.evolve(ORDER, replaced_iccid="12345"),
        lambda: ChangeResult(),
        lambda: ChangeResult(iccid=NEW_ICCID, failure=ChangeFailure.ERROR),
        lambda: attrs.evolve(WATCH, psk=b"\x00" * 31),
        lambda: attrs.evolve(WATCH, reconnection_id=b"\x00" * 17),
        lambda: attrs.evolve(WATCH, eid="89049032123451234512345678901333"),
        lambda: ChangeDone(companions=(WATCH,) * (MAX_COMPANIONS + 1)),
    ],
)
def test_bad_values_are_usage_errors(build: Any) -> None:
    with pytest.raises(UsageError):
        build()


def _with(kind: str, **changes: Any) -> bytes:
    """A TransferMessage DER with fields changed (asn1tools does not check constraints)."""
    bases: dict[str, Message] = {
        "changeRequest": REQUEST,
        "changeOrder": ORDER,
        "changeResult": ChangeResult.switched(NEW_ICCID),
        "changeDone": DONE,
    }
    body = _expected(bases[kind])[1]
    body.update(changes)
    return bytes(_spec().encode("TransferMessage", {"version": 1, "body": (kind, body)}))


HANDOVER = _expected(DONE)[1]["companions"][0]

MALFORMED = [
    _with("changeRequest", name="x" * 65),
    _with("changeRequest", name=""),
    _with("changeOrder", changeId="x" * 65),
    _with("changeOrder", changeId=""),
    _with("changeOrder", activationCode="x" * 256),
    _with("changeOrder", operatorUrl="https://" + "x" * 2041),
    _with("changeOrder", subscriptionId="x" * 65),
    _with("changeOrder", deviceId=""),
    _with("changeOrder", replacedIccid=b"\x98\x94" + b"\x00" * 7),  # 9 octets
    _with("changeOrder", replacedIccid=b"\xff" * 10),  # not BCD
    _with("changeResult", outcome=("switched", b"\x98\x94")),
    _with("changeDone", deleted=b"\x98" * 11),
    _with("changeDone", companions=[{**HANDOVER, "psk": b"\x00" * 31}]),
    _with("changeDone", companions=[{**HANDOVER, "reconnectionId": b"\x00" * 15}]),
    _with("changeDone", companions=[{**HANDOVER, "eid": b"\x00" * 16}]),
    _with("changeDone", companions=[{**HANDOVER, "name": "n" * 65}]),
    _with("changeDone", companions=[HANDOVER] * (MAX_COMPANIONS + 1)),
]


@pytest.mark.parametrize("der", MALFORMED)
def test_malformed_or_oversize_change_messages_are_decode_errors(der: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(der)


def test_unknown_enumeration_values_are_decode_errors() -> None:
    # ChangeFailure and CompanionTransport are extensible: a later value is not v1's
    failed = encode_message(ChangeResult.failed(ChangeFailure.ERROR))
    assert failed.endswith(b"\x81\x01\x04")
    with pytest.raises(DecodeError):
        decode_message(failed[:-1] + b"\x05")
    done = encode_message(ChangeDone(companions=(WATCH,)))
    assert done.endswith(b"\x84\x01\x01")
    with pytest.raises(DecodeError):
        decode_message(done[:-1] + b"\x02")


@pytest.mark.parametrize("m", [REQUEST, ORDER, ChangeResult.switched(NEW_ICCID), DONE])
def test_every_truncation_is_a_decode_error(m: Message) -> None:
    der = encode_message(m)
    for n in range(len(der)):
        with pytest.raises(DecodeError):
            decode_message(der[:n])
    with pytest.raises(DecodeError):
        decode_message(der + b"\x00")


@given(messages, st.data())
def test_mutated_messages_raise_only_rspfed_errors(m: Message, data: st.DataObject) -> None:
    der = bytearray(encode_message(m))
    i = data.draw(st.integers(0, len(der) - 1))
    der[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(RspfedError):
        decode_message(bytes(der))


@given(st.binary(max_size=300))
def test_arbitrary_octets_raise_only_rspfed_errors(data: bytes) -> None:
    prefix = bytes.fromhex("3000800101a1")  # a TransferMessage header for a body
    for candidate in (data, prefix + data):
        with contextlib.suppress(RspfedError):
            decode_message(candidate)


def test_the_documented_module_is_the_module() -> None:
    """docs/device-change.md section 3 states the module's text for the four types."""
    doc = (REPO / "docs" / "device-change.md").read_text(encoding="utf-8")
    module = MODULE.read_text(encoding="utf-8")
    for name in (
        "ChangeRequest",
        "ChangeOrder",
        "ChangeResult",
        "ChangeFailure",
        "ChangeDone",
        "CompanionHandover",
        "CompanionTransport",
    ):
        pattern = rf"^{name} ::= .*?(?:^\}}|\}}$)"
        in_module = re.search(pattern, module, flags=re.S | re.M)
        assert in_module is not None, name
        stripped = "\n".join(
            line for line in in_module.group(0).splitlines() if not line.strip().startswith("--")
        )
        assert stripped in doc, name


# -- a reader of the module before issue I ---------------------------------------------


def _pre_issue_i_module() -> str:
    text = MODULE.read_text(encoding="utf-8")
    older = re.sub(
        r",\n\s*-- issue I, device change \(docs/device-change.md\)\n"
        r"(?:\s*change\w+ Change\w+,?\n){4}",
        "\n",
        text,
    )
    assert older != text
    return older


def test_a_reader_before_issue_i_sees_unknown_extension_additions() -> None:
    older = asn1tools.compile_string(_pre_issue_i_module(), "der")
    for m in (REQUEST, ORDER, ChangeResult.switched(NEW_ICCID), DONE):
        # X.680 extensibility: well-formed, an alternative it does not know
        assert older.decode("TransferMessage", encode_message(m)) == {
            "version": 1,
            "body": (None, None),
        }
    assert older.decode("TransferMessage", encode_message(Bye()))["body"][0] == "bye"


@pytest.mark.parametrize("m", [REQUEST, ORDER, ChangeResult.switched(NEW_ICCID), DONE])
def test_rspfed_refuses_an_alternative_it_does_not_know_cleanly(m: Message) -> None:
    """What a v1 (pre-I) rspfed reader does with these: the same message under the next
    tag this reader does not know ([16]) gets ``bye unsupported``; both ends CLOSED."""
    der = bytearray(encode_message(m))
    at = _body_tag_offset(bytes(der))
    assert der[at] in (0xAC, 0xAD, 0xAE, 0xAF)
    der[at] = 0xB0  # [16], constructed
    with pytest.raises(ProtocolError):
        decode_message(bytes(der))
    old, new = ready()
    channel = new._channel  # white box: a peer that sends what this reader does not know
    assert channel is not None
    old.receive_data(channel.seal(bytes(der)))
    with pytest.raises(ProtocolError):
        old.next_event()
    assert old.state is S.CLOSED
    new.receive_data(old.data_to_send())
    assert new.next_event() == ByeReceived(Bye(ByeReason.UNSUPPORTED))
    assert new.state is S.CLOSED
