"""The generated schema modules: up to date with the generator, complete, named as the ASN.1."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from rspfed import asn1
from rspfed.asn1 import rsp, saip
from tests.paths import ASN1_MODULES, REPO


@pytest.mark.skipif(importlib.util.find_spec("asn1tools") is None, reason="asn1tools missing")
def test_committed_modules_are_up_to_date() -> None:
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import asn1gen
    finally:
        sys.path.pop(0)
    generated = asn1gen.generate(ASN1_MODULES)
    for filename, text in generated.items():
        committed = (REPO / "rspfed" / "asn1" / filename).read_text()
        assert committed == text, f"{filename} is stale: run python tools/asn1gen.py"


@pytest.mark.skipif(importlib.util.find_spec("asn1tools") is None, reason="asn1tools missing")
def test_every_type_assignment_has_a_class() -> None:
    import asn1tools

    parsed = asn1tools.parse_files(
        [str(ASN1_MODULES / "rsp.asn"), str(ASN1_MODULES / "PE_Definitions-3.3.1.asn")]
    )
    for module_name, module in (("RSPDefinitions", rsp), ("PEDefinitions", saip)):
        for type_name in parsed[module_name]["types"]:
            cls = getattr(module, type_name.replace("-", "_"))
            assert cls._asn1_name == type_name
        for value_name, value in parsed[module_name]["values"].items():
            assert hasattr(module, value_name.replace("-", "_"))
            if value["type"] == "INTEGER":
                assert getattr(module, value_name.replace("-", "_")) == value["value"]


def test_constants() -> None:
    # SGP.22 §2.6 / Annex: id-rsp is {2 23 146 1}, roles under id-rsp-cert-objects(2) 1
    assert rsp.id_rsp == "2.23.146.1"
    assert rsp.id_rspRole_ci == "2.23.146.1.2.1.0"
    assert rsp.id_rspRole_dp_pb == "2.23.146.1.2.1.5"
    assert rsp.id_rsp_expDate == "2.23.146.1.2.0.1"
    assert saip.maxUInt8 == 255
    assert saip.UInt8._value_range == ((0, 255),)


def test_tags_from_the_specification_comments() -> None:
    # Tags noted in the SGP.22 ASN.1 comments.
    cases = {
        "EUICCInfo1": 0xBF20,
        "EUICCInfo2": 0xBF22,
        "ProfileInfoListRequest": 0xBF2D,
        "ProfileInfo": 0xE3,
        "AuthenticateServerRequest": 0xBF38,
        "BoundProfilePackage": 0xBF36,
        "InitialiseSecureChannelRequest": 0xBF23,
        "Iccid": 0x5A,
        "EuiccSignPIR": 0x5F37,
        "RemoteProfileProvisioningRequest": 0xA2,
        "ISDRProprietaryApplicationTemplate": 0xE0,
        "GetRatRequest": 0xBF43,
    }
    for name, tag in cases.items():
        assert name in asn1.types_for_tag(tag), name


def test_automatic_tags_only_when_no_component_is_tagged() -> None:
    # FileManagement has tagged alternatives, so fillFileOffset keeps INTEGER's tag
    # (X.680 §25.3); File has none, so its alternatives are [0]..[3].
    fm = saip.FileManagement([("fillFileOffset", 5)])
    assert asn1.encode(fm) == bytes.fromhex("3003020105")
    file_ = saip.File([("fillFileOffset", 5)])
    assert asn1.encode(file_) == bytes.fromhex("3003820105")


def test_components_of_and_explicit_choice_tags() -> None:
    # [0] CHOICE is explicit: A0 wraps the chosen alternative
    request = rsp.ProfileInfoListRequest({"searchCriteria": ("profileClass", "operational")})
    assert asn1.encode(request) == bytes.fromhex("bf2d05a003950102")
    # tagged CHOICE type: [45] CHOICE -> BF2D wraps the alternative
    response = rsp.ProfileInfoListResponse(("profileInfoListError", 1))
    assert asn1.encode(response) == bytes.fromhex("bf2d03810101")
