"""EXTENSIBILITY IMPLIED: unknown extension additions and CHOICE alternatives survive byte-exact."""

from __future__ import annotations

import pytest

from rspfed import asn1
from rspfed.asn1 import rsp, saip
from rspfed.errors import DecodeError, EncodeError

SERVER_SIGNED1 = rsp.ServerSigned1(
    {
        "transactionId": b"\x01" * 16,
        "euiccChallenge": b"\x02" * 16,
        "serverAddress": "smdp.example.com",
        "serverChallenge": b"\x03" * 16,
    }
)


def _with_trailing(value: asn1.Asn1Value, extra: bytes) -> bytes:
    der = asn1.encode(value)
    # the outer length is below 128 here: rebuild the short-form header
    assert der[1] < 0x80
    contents = der[2:] + extra
    return der[:1] + bytes([len(contents)]) + contents


def test_sequence_extension_additions_are_kept_in_place() -> None:
    extra = bytes.fromhex("8503010203") + bytes.fromhex("bf6403800100")
    data = _with_trailing(SERVER_SIGNED1, extra)
    value = asn1.decode(rsp.ServerSigned1, data)
    assert [ext.der for ext in value.extensions] == [
        bytes.fromhex("8503010203"),
        bytes.fromhex("bf6403800100"),
    ]
    assert value["serverAddress"].native == "smdp.example.com"
    assert asn1.encode(value) == data
    assert asn1.received_der(value) == data


def test_known_tag_after_the_end_is_not_an_extension() -> None:
    data = _with_trailing(SERVER_SIGNED1, bytes.fromhex("800101"))
    with pytest.raises(DecodeError) as info:
        asn1.decode(rsp.ServerSigned1, data)
    assert info.value.type_name == "ServerSigned1"
    assert "repeated or out of order" in str(info.value)


def test_unknown_tag_before_a_mandatory_component_is_an_error() -> None:
    der = asn1.encode(SERVER_SIGNED1)
    contents = der[2:]
    data = der[:1] + bytes([len(contents) + 3]) + bytes.fromhex("850100") + contents
    with pytest.raises(DecodeError) as info:
        asn1.decode(rsp.ServerSigned1, data)
    assert info.value.offset == 2
    assert "expected component 'transactionId'" in str(info.value)


def test_extension_after_optional_components() -> None:
    # ProfileInfo: everything optional; a new [PRIVATE 30] component at the end
    info = rsp.ProfileInfo({"iccid": b"\x98" * 10})
    data = _with_trailing(info, bytes.fromhex("de0107"))
    value = asn1.decode(rsp.ProfileInfo, data)
    assert value["profileState"].native is None
    assert len(value.extensions) == 1
    assert asn1.encode(value) == data


def test_set_extensions_and_encode() -> None:
    value = rsp.ServerSigned1(SERVER_SIGNED1.native)
    value.set_extensions([bytes.fromhex("8a00")])
    der = asn1.encode(value)
    assert der.endswith(bytes.fromhex("8a00"))
    assert asn1.decode(rsp.ServerSigned1, der).extensions[0].der == bytes.fromhex("8a00")
    value.set_extensions([bytes.fromhex("830100")])  # serverAddress's tag
    with pytest.raises(EncodeError):
        asn1.encode(value)


def test_unknown_alternative_of_tagged_choice() -> None:
    data = bytes.fromhex("bf2d05" + "8a03010203")  # ProfileInfoListResponse, new [10]
    value = asn1.decode(rsp.ProfileInfoListResponse, data)
    assert value.name == asn1.UNKNOWN_ALTERNATIVE
    assert value.is_unknown
    assert isinstance(value.chosen, asn1.Opaque)
    assert value.chosen.der == bytes.fromhex("8a03010203")
    assert asn1.encode(value) == data


def test_unknown_alternative_of_untagged_choice_in_a_sequence() -> None:
    # AuthenticateServerRequest.ctxParams1 is a mandatory untagged CHOICE: a newer
    # LPA may send a new context alternative [1]
    from tests.asn1.test_roundtrip import _messages

    request = _messages()[3]
    assert isinstance(request, rsp.AuthenticateServerRequest)
    der = asn1.encode(request)
    ctx = asn1.encode(request["ctxParams1"])
    new_ctx = bytes.fromhex("a103800101")
    body = der[der.index(b"\x30") :]  # after BF38 + length
    header_len = len(der) - len(body)
    contents = body.replace(ctx, new_ctx)
    outer = bytes.fromhex("bf38") + _length(len(contents))
    data = outer + contents
    assert header_len > 0
    value = asn1.decode(rsp.AuthenticateServerRequest, data)
    assert value["ctxParams1"].name == asn1.UNKNOWN_ALTERNATIVE
    assert asn1.encode(value) == data


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def test_unknown_profile_element_is_kept() -> None:
    header = saip.ProfileElement(
        (
            "header",
            {
                "major-version": 3,
                "minor-version": 3,
                "iccid": b"\x98" * 10,
                "eUICC-Mandatory-services": {},
                "eUICC-Mandatory-GFSTEList": [],
            },
        )
    )
    future = bytes.fromhex("bf7f03800101")  # a PE from a newer SAIP version
    end = saip.ProfileElement(("end", {"end-header": {"identification": 9}}))
    data = asn1.encode(header) + future + asn1.encode(end)
    elements = asn1.decode_profile_elements(data)
    assert [pe.name for pe in elements] == ["header", asn1.UNKNOWN_ALTERNATIVE, "end"]
    assert asn1.encode_profile_elements(elements) == data


def test_build_unknown_alternative() -> None:
    value = rsp.CtxParams1.unknown(bytes.fromhex("a2028000"))
    assert asn1.encode(value) == bytes.fromhex("a2028000")
    with pytest.raises(EncodeError):
        rsp.CtxParams1.unknown(bytes.fromhex("a0028000"))  # [0] is a known alternative
    with pytest.raises(EncodeError):
        rsp.CtxParams1.unknown(bytes.fromhex("a20280"))  # truncated
