"""The type registry: find_type, types_for_tag, ALL_TYPES."""

from __future__ import annotations

import pytest
from asn1crypto import crl, x509

from rspfed import asn1
from rspfed.asn1 import rsp, saip
from rspfed.errors import DecodeError, UsageError
from tests.paths import TS48


def test_find_type() -> None:
    assert asn1.find_type("AuthenticateServerRequest") is rsp.AuthenticateServerRequest
    assert asn1.find_type("PE-MF") is saip.PE_MF
    assert asn1.find_type("PE_MF") is saip.PE_MF
    assert asn1.find_type("Certificate") is x509.Certificate
    assert asn1.find_type("CertificateList") is crl.CertificateList
    assert asn1.find_type("ProfileElements") is saip.ProfileElement
    assert asn1.find_type("UICCCapability") is rsp.UICCCapability
    assert asn1.find_type("PEDefinitions.UICCCapability") is saip.UICCCapability
    assert asn1.find_type("RSPDefinitions.UICCCapability") is rsp.UICCCapability
    with pytest.raises(UsageError):
        asn1.find_type("NoSuchType")


def test_all_types() -> None:
    assert len(asn1.ALL_TYPES) > 180  # 126 SGP.22 + 60 SAIP + PKIX
    assert asn1.PROFILE_ELEMENTS not in asn1.ALL_TYPES
    for name, cls in asn1.ALL_TYPES.items():
        assert issubclass(cls, asn1.Asn1Value), name
    assert asn1.type_name(saip.PE_AKAParameter) == "PE-AKAParameter"


def test_types_for_tag() -> None:
    assert asn1.types_for_tag(0xBF38) == ["AuthenticateServerRequest", "AuthenticateServerResponse"]
    assert asn1.types_for_tag(0xBF3E) == ["GetEuiccDataRequest", "GetEuiccDataResponse"]
    assert asn1.types_for_tag(bytes.fromhex("bf3e035c015a")) == ["GetEuiccDataRequest"]
    # an untagged CHOICE counts with each alternative's tag
    assert asn1.types_for_tag(0xA0) == ["CtxParams1", "ProfileElement"]
    # given data, the candidates are narrowed to those that decode it
    package = sorted(TS48.glob("*.der"))[0].read_bytes()
    assert asn1.types_for_tag(package) == ["ProfileElement"]
    assert asn1.types_for_tag(bytes.fromhex("a0053003040100")) == [
        "CtxParams1",
        "ProfileElement",
    ]  # decodes as neither: all candidates
    assert "Certificate" in asn1.types_for_tag(0x30)
    assert asn1.types_for_tag(0x9F7F) == []
    with pytest.raises(DecodeError):
        asn1.types_for_tag(b"")
