"""Strict DER: one negative test per rule, with the error's type name and offset."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed import asn1
from rspfed.asn1 import _base, rsp, saip
from rspfed.errors import DecodeError, EncodeError, UsageError

ICCID = bytes.fromhex("98102143658709214365")
GET_EID = bytes.fromhex("bf3e035c015a")  # GetEuiccDataRequest { tagList '5A' }


def _fails(cls: Any, data: bytes, type_name: str, offset: int, words: str) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        asn1.decode(cls, data)
    error = info.value
    assert error.type_name == type_name, str(error)
    assert error.offset == offset, str(error)
    assert words in str(error)
    return error


def test_valid_reference_message() -> None:
    value = asn1.decode(rsp.GetEuiccDataRequest, GET_EID)
    assert value["tagList"].native == b"\x5a"


def test_non_minimal_length() -> None:
    _fails(rsp.GetEuiccDataRequest, bytes.fromhex("bf3e81035c015a"), "GetEuiccDataRequest", 0,
           "non-minimal length")
    # a component's header is checked by the enclosing type
    _fails(rsp.GetEuiccDataRequest, bytes.fromhex("bf3e055c8200015a"), "GetEuiccDataRequest", 3,
           "leading zero")


def test_indefinite_length() -> None:
    _fails(rsp.GetEuiccDataRequest, bytes.fromhex("bf3e805c015a0000"), "GetEuiccDataRequest", 0,
           "indefinite")


def test_non_minimal_tag() -> None:
    # [APPLICATION 28] written in the high-tag-number form
    _fails(rsp.GetEuiccDataRequest, bytes.fromhex("bf3e045f1c015a"), "GetEuiccDataRequest", 3,
           "non-minimal tag")
    # leading 0x80 in the tag number octets
    _fails(rsp.GetEuiccDataRequest, bytes.fromhex("bf803e035c015a"), "GetEuiccDataRequest", 0,
           "non-minimal tag")


def test_non_minimal_integer() -> None:
    # content errors point at the contents octets
    _fails(rsp.NotificationSentRequest, bytes.fromhex("bf300480020005"), "INTEGER", 5,
           "non-minimal INTEGER")
    _fails(rsp.NotificationSentRequest, bytes.fromhex("bf30048002ff80"), "INTEGER", 5,
           "non-minimal INTEGER")
    _fails(rsp.NotificationSentRequest, bytes.fromhex("bf30028000"), "INTEGER", 5,
           "at least one octet")


def test_boolean_must_be_00_or_ff() -> None:
    # automatic tags: profileIdentifier [0] (explicit: a CHOICE), refreshFlag [1]
    good = bytes.fromhex("bf3111a00c5a0a") + ICCID + bytes.fromhex("8101ff")
    assert asn1.decode(rsp.EnableProfileRequest, good)["refreshFlag"].native is True
    bad = good[:-1] + b"\x01"
    _fails(rsp.EnableProfileRequest, bad, "BOOLEAN", 19, "00 or FF")


def test_default_value_encoded_explicitly() -> None:
    data = bytes.fromhex("e30f5a0a") + ICCID + bytes.fromhex("950102")
    _fails(rsp.ProfileInfo, data, "ProfileInfo", 14, "DEFAULT")
    other = bytes.fromhex("e30f5a0a") + ICCID + bytes.fromhex("950101")
    assert asn1.decode(rsp.ProfileInfo, other)["profileClass"].native == "provisioning"


def test_wrong_tag() -> None:
    _fails(rsp.GetEuiccDataRequest, bytes.fromhex("bf3f035c015a"), "GetEuiccDataRequest", 0,
           "expected tag [CONTEXT 62]")
    _fails(rsp.GetEuiccDataRequest, bytes.fromhex("bf3e035d015a"), "GetEuiccDataRequest", 3,
           "expected component 'tagList'")


def test_constructed_primitive_mismatch() -> None:
    _fails(rsp.GetEuiccDataRequest, bytes.fromhex("bf3e057c03040101"), "Octet1", 3,
           "constructed encoding where primitive")
    _fails(rsp.GetEuiccDataRequest, bytes.fromhex("9f3e035c015a"), "GetEuiccDataRequest", 0,
           "primitive encoding where constructed")


def test_bit_string_padding() -> None:
    good = bytes.fromhex("bf3404820207" + "80")  # resetOptions {deleteOperationalProfiles}
    assert asn1.decode(rsp.EuiccMemoryResetRequest, good)["resetOptions"].native == {
        "deleteOperationalProfiles"
    }
    _fails(rsp.EuiccMemoryResetRequest, bytes.fromhex("bf340482020781"),
           "EuiccMemoryResetRequest.resetOptions", 6, "padding bits")
    _fails(rsp.EuiccMemoryResetRequest, bytes.fromhex("bf340482020880"),
           "EuiccMemoryResetRequest.resetOptions", 5, "above 7")
    _fails(rsp.EuiccMemoryResetRequest, bytes.fromhex("bf3403820101"),
           "EuiccMemoryResetRequest.resetOptions", 5, "empty BIT STRING with unused bits")
    # named bits: trailing zero bits must be removed
    _fails(rsp.EuiccMemoryResetRequest, bytes.fromhex("bf340482020480"),
           "EuiccMemoryResetRequest.resetOptions", 6, "trailing zero bits")


def test_size_constraint() -> None:
    _fails(rsp.GetEuiccDataRequest, bytes.fromhex("bf3e045c025a5a"), "Octet1", 5, "size 2")
    _fails(rsp.GetEuiccDataRequest, bytes.fromhex("bf3e025c00"), "Octet1", 5, "size 0")
    long_name = "x" * 65
    value = rsp.SetNicknameRequest({"iccid": ICCID, "profileNickname": long_name})
    with pytest.raises(EncodeError) as info:
        asn1.encode(value)
    assert "SetNicknameRequest.profileNickname" in str(info.value)


def test_value_range_constraint() -> None:
    assert asn1.decode(saip.UInt8, bytes.fromhex("020200ff")).native == 255
    _fails(saip.UInt8, bytes.fromhex("0202012c"), "UInt8", 2, "outside 0..255")
    _fails(saip.UInt8, bytes.fromhex("0201ff"), "UInt8", 2, "outside 0..255")
    with pytest.raises(EncodeError):
        asn1.encode(saip.UInt15(40000))


class _ClosedEnum(_base.Enumerated):
    _asn1_name = "ClosedEnum"
    _map = {0: "a", 1: "b"}  # noqa: RUF012
    _extensible = False


class _OpenEnum(_base.Enumerated):
    _asn1_name = "OpenEnum"
    _map = {0: "a", 1: "b"}  # noqa: RUF012


def test_unknown_enumeration_value() -> None:
    _fails(_ClosedEnum, bytes.fromhex("0a0105"), "ClosedEnum", 2, "unknown enumeration value 5")
    # extensible (EXTENSIBILITY IMPLIED): kept as a number, re-encoded as received
    value = asn1.decode(_OpenEnum, bytes.fromhex("0a0105"))
    assert value.native == 5
    assert asn1.encode(value) == bytes.fromhex("0a0105")
    assert asn1.decode(_OpenEnum, bytes.fromhex("0a0101")).native == "b"


def test_unknown_named_bits_are_kept() -> None:
    # a newer eUICC sets rspCapability bit 9
    data = bytes.fromhex("030306c040")
    value = asn1.decode(rsp.RspCapability, data)
    assert value.native == {"additionalProfile", "crlSupport", 9}
    assert asn1.encode(value) == data


def test_trailing_bytes() -> None:
    _fails(rsp.GetEuiccDataRequest, GET_EID + b"\x00", "GetEuiccDataRequest", 6, "trailing")


def test_truncated() -> None:
    _fails(rsp.GetEuiccDataRequest, GET_EID[:-1], "GetEuiccDataRequest", 0, "runs past")
    _fails(rsp.GetEuiccDataRequest, b"", "GetEuiccDataRequest", 0, "truncated")


def test_missing_mandatory_component() -> None:
    _fails(rsp.GetEuiccDataRequest, bytes.fromhex("bf3e00"), "GetEuiccDataRequest", 3,
           "mandatory component 'tagList' missing")
    with pytest.raises(EncodeError) as info:
        asn1.encode(rsp.GetEuiccDataRequest({}))
    assert "tagList" in str(info.value)


def test_error_names_field_path() -> None:
    # a wrong-size euiccChallenge deep inside InitiateAuthenticationRequest
    request = rsp.InitiateAuthenticationRequest(
        {
            "euiccChallenge": b"\x01" * 16,
            "smdpAddress": "a",
            "euiccInfo1": {
                "svn": b"\x02\x02\x00",
                "euiccCiPKIdListForVerification": [],
                "euiccCiPKIdListForSigning": [],
            },
        }
    )
    der = bytearray(asn1.encode(request))
    index = der.find(bytes.fromhex("8203020200"))
    der[index + 1] = 2  # svn of 2 octets, then a stray octet
    with pytest.raises(DecodeError) as info:
        asn1.decode(rsp.InitiateAuthenticationRequest, bytes(der))
    assert info.value.type_name is not None


def test_not_bytes_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        asn1.decode(rsp.GetEuiccDataRequest, "bf3e035c015a")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        asn1.decode("GetEuiccDataRequest", GET_EID)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        asn1.encode(GET_EID)  # type: ignore[arg-type]


def test_received_bytes_are_bytearray_friendly() -> None:
    assert asn1.encode(asn1.decode(rsp.GetEuiccDataRequest, bytearray(GET_EID))) == GET_EID


SAMPLE = asn1.encode(
    rsp.ProfileInfo(
        {
            "iccid": ICCID,
            "profileState": "enabled",
            "profileNickname": "work",
            "profileClass": "provisioning",
            "profilePolicyRules": {"ppr1"},
        }
    )
)


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=40))
def test_mutations_raise_only_decode_error(noise: bytes, cut: int) -> None:
    for data in (noise, SAMPLE[:cut] + noise, SAMPLE[: len(SAMPLE) - cut] + noise[:2]):
        try:
            value = asn1.decode(rsp.ProfileInfo, data)
        except DecodeError:
            continue
        # accepted input is fully usable and round-trips
        value.native  # noqa: B018
        assert asn1.encode(value) == data


@given(st.integers(min_value=0, max_value=len(SAMPLE) - 1), st.integers(0, 255))
def test_byte_flips_raise_only_decode_error(index: int, byte: int) -> None:
    data = bytearray(SAMPLE)
    data[index] = byte
    try:
        value = asn1.decode(rsp.ProfileInfo, bytes(data))
    except DecodeError:
        return
    value.native  # noqa: B018
    assert asn1.encode(value) == bytes(data)


def _ci_certificate() -> bytes:
    from tests.paths import SGP26

    return (SGP26 / "CertificateIssuer" / "CERT_CI_ECDSA_NIST.der").read_bytes()


def test_certificate_default_encoded_explicitly() -> None:
    from asn1crypto import x509

    data = bytearray(_ci_certificate())
    index = data.find(bytes.fromhex("a003020102"))  # version [0] v3
    assert index > 0
    data[index + 4] = 0  # v1 is the DEFAULT: must be omitted in DER
    _fails(x509.Certificate, bytes(data), "TbsCertificate", index, "DEFAULT")


def test_certificate_extension_value_not_der() -> None:
    from asn1crypto import x509

    data = bytearray(_ci_certificate())
    # basicConstraints: extnValue OCTET STRING { SEQUENCE { BOOLEAN TRUE } }
    index = data.find(bytes.fromhex("0603551d130101ff040530030101ff"))
    assert index > 0
    data[index + 14] = 0x01  # BOOLEAN TRUE as 01: BER, not DER
    _fails(x509.Certificate, bytes(data), "Certificate", 0, "not DER")
    # BOOLEAN critical itself (checked by the walk)
    data = bytearray(_ci_certificate())
    data[index + 7] = 0x01
    _fails(x509.Certificate, bytes(data), "BOOLEAN", index + 7, "00 or FF")


@given(st.integers(0, 40))
def test_octet_string_size_constraints(n: int) -> None:
    """SIZE constraints from RSPDefinitions: TransactionId (1..16), Octet16 (16), Iccid (10)."""
    for cls, low, high, tag in (
        (rsp.TransactionId, 1, 16, 0x04),
        (rsp.Octet16, 16, 16, 0x04),
        (rsp.Iccid, 10, 10, 0x5A),
    ):
        der = bytes((tag, n)) + bytes(n)
        if low <= n <= high:
            asn1.decode(cls, der)
        else:
            with pytest.raises(DecodeError, match="outside"):
                asn1.decode(cls, der)
