"""JSON conversion (:mod:`rspfed.asn1.jsonconv`): exact round trips and clear errors.

``encode(from_json(T, to_json(decode(T, der)))) == der`` for every TS.48
package element, every SGP.26 certificate, CRLs, and hypothesis-generated
values of every SGP.22 and SAIP type; the JSON passes through ``json.dumps``
/ ``json.loads`` on the way.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import crl, x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rspfed.asn1 import (
    UNKNOWN_ALTERNATIVE,
    decode,
    decode_profile_elements,
    encode,
    jsonconv,
    rsp,
    saip,
)
from rspfed.errors import DecodeError
from tests.asn1.strategies import (
    certificate_ders,
    crl_ders,
    pe_strategies,
    rsp_strategies,
    rspfed_class,
    to_rspfed,
)
from tests.asn1.test_differential import RSPFED_XFAIL
from tests.paths import TS48


def _through_text(document: Any) -> Any:
    text = json.dumps(document)
    assert json.dumps(json.loads(text)) == text  # deterministic
    return json.loads(text)


def _round_trip(cls: type[Any], der: bytes) -> Any:
    value = decode(cls, der)
    document = _through_text(jsonconv.to_json(value))
    assert encode(jsonconv.from_json(cls, document)) == der
    return document


@pytest.mark.parametrize("path", sorted(TS48.glob("*.der")), ids=lambda p: p.stem)
def test_ts48_packages_round_trip(path: Path) -> None:
    data = path.read_bytes()
    elements = decode_profile_elements(data)
    out = b""
    for element in elements:
        document = _through_text(jsonconv.to_json(element))
        assert len(document) == 1
        out += encode(jsonconv.from_json(saip.ProfileElement, document))
    assert out == data


@pytest.mark.parametrize("index", range(len(certificate_ders())))
def test_sgp26_certificates_round_trip(index: int) -> None:
    der = certificate_ders()[index]
    document = _round_trip(x509.Certificate, der)
    tbs = document["tbsCertificate"]
    # ASN.1 spellings, not asn1crypto's
    assert {"serialNumber", "subjectPublicKeyInfo", "validity", "issuer"} <= set(tbs)
    assert "rdnSequence" in tbs["issuer"]
    assert tbs["extensions"][0]["extnID"].count(".") >= 2


@pytest.mark.parametrize("index", range(len(crl_ders())))
def test_crls_round_trip(index: int) -> None:
    document = _round_trip(crl.CertificateList, crl_ders()[index])
    assert "revokedCertificates" in document["tbsCertList"]


def test_load_crl_request_with_a_crl() -> None:
    value = rsp.LoadCRLRequest({"crl": crl.CertificateList.load(crl_ders()[0])})
    _round_trip(rsp.LoadCRLRequest, encode(value))


def test_documented_forms() -> None:
    """A hand-built value shows each documented JSON form."""
    value = rsp.StoreMetadataRequest(
        {
            "iccid": bytes.fromhex("89000123456789012341"),
            "serviceProviderName": "OpX",
            "profileName": "Test",
            "profileClass": "test",
            "profilePolicyRules": {"ppr1", "ppr2"},
            "notificationConfigurationInfo": [
                {
                    "profileManagementOperation": {"notificationInstall"},
                    "notificationAddress": "smdp.example.com",
                }
            ],
        }
    )
    document = _round_trip(rsp.StoreMetadataRequest, encode(value))
    assert document == {
        "iccid": "89000123456789012341",
        "serviceProviderName": "OpX",
        "profileName": "Test",
        "profileClass": "test",
        "notificationConfigurationInfo": [
            {
                "profileManagementOperation": ["notificationInstall"],
                "notificationAddress": "smdp.example.com",
            }
        ],
        "profilePolicyRules": ["ppr1", "ppr2"],
    }
    assert list(document) == [
        "iccid",
        "serviceProviderName",
        "profileName",
        "profileClass",
        "notificationConfigurationInfo",
        "profilePolicyRules",
    ]


def test_choice_integer_and_oid_forms() -> None:
    value = rsp.ProfileInfoListRequest({"searchCriteria": {"profileClass": "operational"}})
    assert jsonconv.to_json(decode(rsp.ProfileInfoListRequest, encode(value))) == {
        "searchCriteria": {"profileClass": "operational"}
    }
    number = rsp.CancelSessionReason(77)  # no name for 77
    assert jsonconv.to_json(number) == 77
    oid = rsp.DpProprietaryData({"dpOid": "2.999.1"})
    assert jsonconv.to_json(oid) == {"dpOid": "2.999.1"}


def test_unknown_bits_extensions_and_alternatives_round_trip() -> None:
    unnamed: set[Any] = {"ppr1", 9}  # bit 9 has no name
    bits = rsp.PprIds(unnamed)
    assert jsonconv.to_json(decode(rsp.PprIds, encode(bits))) == ["ppr1", 9]
    _round_trip(rsp.PprIds, encode(bits))

    info = rsp.DeviceCapabilities({"gsmSupportedRelease": b"\x0d\x00\x00"})
    info.set_extensions([bytes.fromhex("9f7f0101"), bytes.fromhex("bf7e00")])
    der = encode(info)
    document = _round_trip(rsp.DeviceCapabilities, der)
    assert document[jsonconv.EXTENSIONS_KEY] == ["9f7f0101", "bf7e00"]

    response = rsp.AuthenticateServerResponse.unknown(bytes.fromhex("a2030101ff"))
    der = encode(response)
    decoded = decode(rsp.AuthenticateServerResponse, der)
    assert decoded.name == UNKNOWN_ALTERNATIVE
    assert _round_trip(rsp.AuthenticateServerResponse, der) == {jsonconv.UNKNOWN_KEY: "a2030101ff"}


def test_expiration_date_uses_asn1_names() -> None:
    value = decode(rsp.ExpirationDate, bytes.fromhex("180f32303530303130313030303030305a"))
    assert jsonconv.to_json(value) == {"generalTime": "20500101000000Z"}
    _round_trip(rsp.ExpirationDate, value.dump())


def test_usage_errors() -> None:
    from rspfed.errors import UsageError

    not_a_value: Any = b"\x30\x00"
    not_a_class: Any = dict
    with pytest.raises(UsageError):
        jsonconv.to_json(not_a_value)
    with pytest.raises(UsageError):
        jsonconv.from_json(not_a_class, {})


def test_time_strings_are_exact() -> None:
    for der in certificate_ders()[:3]:
        cert = decode(x509.Certificate, der)
        validity = jsonconv.to_json(cert)["tbsCertificate"]["validity"]
        for key in ("notBefore", "notAfter"):
            ((alternative, text),) = validity[key].items()
            assert alternative in ("utcTime", "generalTime")
            assert text.endswith("Z")
            assert text.encode() in der


# ---------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("cls", "document", "path"),
    [
        (rsp.StoreMetadataRequest, [], "$"),
        (rsp.StoreMetadataRequest, {"iccid": "zz"}, "$.iccid"),
        (rsp.StoreMetadataRequest, {"iccid": "00" * 10, "bogus": 1}, "$"),
        (rsp.StoreMetadataRequest, {"iccid": "00" * 10}, "$"),  # missing components
        (rsp.ProfileInfoListRequest, {"searchCriteria": {"nope": 1}}, "$.searchCriteria"),
        (rsp.ProfileInfoListRequest, {"searchCriteria": {}}, "$.searchCriteria"),
        (rsp.ProfileClass, "nonsense", "$"),
        (rsp.ProfileClass, 1.5, "$"),
        (rsp.ProfileClass, True, "$"),
        (rsp.PprIds, ["ppr1", "pprX"], "$[1]"),
        (rsp.PprIds, "ff", "$"),
        (rsp.DpProprietaryData, {"dpOid": "1..2"}, "$.dpOid"),
        (rsp.DpProprietaryData, {"dpOid": 12}, "$.dpOid"),
        (rsp.EUICCInfo1, {"svn": "000000", "euiccCiPKIdListForVerification": {}}, "$"),
        (x509.Certificate, {"tbsCertificate": 1}, "$.tbsCertificate"),
        (saip.ProfileElement, {"header": {"major-version": "x"}}, "$.header"),
    ],
)
def test_bad_json_is_a_decode_error_with_path(cls: type[Any], document: Any, path: str) -> None:
    with pytest.raises(DecodeError) as info:
        jsonconv.from_json(cls, document)
    assert f" {path}" in str(info.value)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=10,
    )
)
@settings(max_examples=50)
def test_arbitrary_json_never_crashes(document: Any) -> None:
    """Any JSON document gives a value or a DecodeError (EncodeError at encode time)."""
    from rspfed.errors import EncodeError

    for cls in (rsp.StoreMetadataRequest, rsp.ProfileInfoListRequest, saip.ProfileElement):
        try:
            value = jsonconv.from_json(cls, document)
        except DecodeError:
            continue
        with contextlib.suppress(EncodeError):
            encode(value)


# ---------------------------------------------------------------------------
# every type, generated values


def _all_types() -> list[Any]:
    params = []
    for module, strategies in (
        ("RSPDefinitions", rsp_strategies()),
        ("PEDefinitions", pe_strategies()),
    ):
        for name in strategies.spec[module]["types"]:
            type_id = name if module == "RSPDefinitions" else f"PE:{name}"
            marks = []
            if name in RSPFED_XFAIL:
                marks.append(pytest.mark.xfail(strict=True, reason=RSPFED_XFAIL[name]))
            params.append(pytest.param(module, name, id=type_id, marks=marks))
    return params


@pytest.mark.parametrize(("module", "name"), _all_types())
def test_generated_values_round_trip(module: str, name: str) -> None:
    strategies = rsp_strategies() if module == "RSPDefinitions" else pe_strategies()
    cls = rspfed_class(module, name)
    profile = settings.default
    count = max(3, int(profile.max_examples if profile is not None else 100) // 10)

    @settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(strategies.for_type(module, name))
    def check(generated: Any) -> None:
        der = encode(to_rspfed(cls, generated))
        _round_trip(cls, der)

    check()
