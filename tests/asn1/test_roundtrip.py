"""Byte-exact round trips: TS.48 packages, SGP.26 certificates, constructed SGP.22 messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import x509

from rspfed import asn1
from rspfed.asn1 import rsp, saip
from tests.paths import SGP26, TS48

PACKAGES = sorted(TS48.glob("*.der"))
CERTIFICATES = sorted(p for p in SGP26.rglob("CERT_*.der"))


def test_reference_data_present() -> None:
    assert len(PACKAGES) >= 18
    assert len(CERTIFICATES) >= 10


@pytest.mark.parametrize("path", PACKAGES, ids=lambda p: p.name)
def test_ts48_package_round_trip(path: Path) -> None:
    data = path.read_bytes()
    elements = asn1.decode_profile_elements(data)
    assert elements[0].name == "header"
    assert elements[-1].name == "end"
    assert all(isinstance(pe, saip.ProfileElement) for pe in elements)
    assert not any(pe.is_unknown for pe in elements)
    assert asn1.encode_profile_elements(elements) == data
    # strict decode validated everything: full parsing cannot fail
    assert all(isinstance(pe.native, dict) for pe in elements)
    # the header is what TS.48 says it is: SAIP major version 2 or 3, a 10-byte ICCID
    header = elements[0].chosen
    assert header["major-version"].native in (2, 3)
    assert len(header["iccid"].native) == 10


@pytest.mark.parametrize("path", CERTIFICATES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_sgp26_certificate_round_trip(path: Path) -> None:
    data = path.read_bytes()
    cert = asn1.decode(x509.Certificate, data)
    assert asn1.encode(cert) == data
    assert asn1.find_type("Certificate") is x509.Certificate
    # the tbsCertificate as received (what the signature covers)
    tbs = asn1.received_der(cert["tbs_certificate"])
    assert data.find(tbs) > 0


def _certificate() -> x509.Certificate:
    return asn1.decode(x509.Certificate, CERTIFICATES[0].read_bytes())


def _euicc_info2() -> rsp.EUICCInfo2:
    return rsp.EUICCInfo2(
        {
            "profileVersion": b"\x02\x03\x01",
            "svn": b"\x02\x02\x02",
            "euiccFirmwareVer": b"\x01\x00\x00",
            "extCardResource": bytes.fromhex("810100820400001000830200ff"),
            "uiccCapability": {"usimSupport", "isimSupport", "akaMilenage", "javacard"},
            "rspCapability": {"additionalProfile", "crlSupport"},
            "euiccCiPKIdListForVerification": [b"\x11" * 20],
            "euiccCiPKIdListForSigning": [b"\x11" * 20, b"\x22" * 20],
            "euiccCategory": "basicEuicc",
            "ppVersion": b"\x01\x00\x00",
            "sasAcreditationNumber": "GI-BA-UP-0419",
        }
    )


def _messages() -> list[asn1.Asn1Value]:
    cert = _certificate()
    server_signed1 = rsp.ServerSigned1(
        {
            "transactionId": bytes(range(16)),
            "euiccChallenge": b"\x02" * 16,
            "serverAddress": "smdp.example.com",
            "serverChallenge": b"\x03" * 16,
        }
    )
    ctx = (
        "ctxParamsForCommonAuthentication",
        {
            "matchingId": "ABC-123",
            "deviceInfo": {"tac": b"\x35\x29\x06\x11", "deviceCapabilities": {}},
        },
    )
    euicc_signed1 = rsp.EuiccSigned1(
        {
            "transactionId": bytes(range(16)),
            "serverAddress": "smdp.example.com",
            "serverChallenge": b"\x03" * 16,
            "euiccInfo2": _euicc_info2(),
            "ctxParams1": ctx,
        }
    )
    bpp = rsp.BoundProfilePackage(
        {
            "initialiseSecureChannelRequest": {
                "remoteOpId": "installBoundProfilePackage",
                "transactionId": b"\x01" * 16,
                "controlRefTemplate": {"keyType": b"\x88", "keyLen": b"\x10", "hostId": b"DP"},
                "smdpOtpk": b"\x04" + b"\x05" * 64,
                "smdpSign": b"\x06" * 64,
            },
            "firstSequenceOf87": [b"\x87" * 40],
            "sequenceOf88": [b"\x88" * 30, b"\x88" * 31],
            "sequenceOf86": [b"\x86" * 1020 for _ in range(12)],
        }
    )
    return [
        rsp.GetEuiccInfo1Request({}),
        rsp.EUICCInfo1(
            {
                "svn": b"\x02\x02\x02",
                "euiccCiPKIdListForVerification": [b"\x11" * 20],
                "euiccCiPKIdListForSigning": [],
            }
        ),
        _euicc_info2(),
        rsp.AuthenticateServerRequest(
            {
                "serverSigned1": server_signed1,
                "serverSignature1": b"\x30" * 64,
                "euiccCiPKIdToBeUsed": b"\x11" * 20,
                "serverCertificate": cert,
                "ctxParams1": ctx,
            }
        ),
        rsp.AuthenticateServerResponse(
            (
                "authenticateResponseOk",
                {
                    "euiccSigned1": euicc_signed1,
                    "euiccSignature1": b"\x31" * 64,
                    "euiccCertificate": cert,
                    "eumCertificate": cert,
                },
            )
        ),
        rsp.AuthenticateClientRequest(
            {
                "transactionId": bytes(range(16)),
                "authenticateServerResponse": (
                    "authenticateResponseError",
                    {"transactionId": b"\x01", "authenticateErrorCode": "ciPKUnknown"},
                ),
            }
        ),
        rsp.CancelSessionRequestEs9(
            {
                "transactionId": b"\x01",
                "cancelSessionResponse": rsp.CancelSessionResponse(
                    ("cancelSessionResponseError", "invalidTransactionId")
                ),
            }
        ),
        bpp,
        rsp.ProfileInfoListResponse(
            (
                "profileInfoListOk",
                [
                    {
                        "iccid": b"\x98\x10" + b"\x00" * 8,
                        "profileState": "enabled",
                        "profileNickname": "work",
                        "profileClass": "test",
                        "profilePolicyRules": {"ppr1"},
                    },
                    {"iccid": b"\x98\x10" + b"\x11" * 8, "profileClass": "operational"},
                ],
            )
        ),
        rsp.ProfileInstallationResult(
            {
                "profileInstallationResultData": {
                    "transactionId": b"\x01" * 16,
                    "notificationMetadata": {
                        "seqNumber": 7,
                        "profileManagementOperation": {"notificationInstall"},
                        "notificationAddress": "smdp.example.com",
                    },
                    "smdpOid": "2.999.10",
                    "finalResult": (
                        "successResult",
                        {"aid": b"\xa0\x00\x00\x05\x59\x10\x10", "simaResponse": b"\x30\x00"},
                    ),
                },
                "euiccSignPIR": b"\x32" * 64,
            }
        ),
        rsp.RetrieveNotificationsListResponse(("notificationsListResultError", 1)),
        rsp.LoadCRLResponse(("loadCRLResponseOk", {"missingParts": [{"number": 3}]})),
        rsp.EuiccMemoryResetRequest({"resetOptions": {"deleteOperationalProfiles"}}),
        rsp.RemoteProfileProvisioningRequest(
            (
                "initiateAuthenticationRequest",
                {
                    "euiccChallenge": b"\x02" * 16,
                    "smdpAddress": "smdp.example.com",
                    "euiccInfo1": {
                        "svn": b"\x02\x02\x02",
                        "euiccCiPKIdListForVerification": [b"\x11" * 20],
                        "euiccCiPKIdListForSigning": [b"\x11" * 20],
                    },
                },
            )
        ),
    ]


@pytest.mark.parametrize("index", range(14))
def test_constructed_message_round_trip(index: int) -> None:
    message = _messages()[index]
    der = asn1.encode(message)
    decoded = asn1.decode(type(message), der)
    assert asn1.encode(decoded) == der
    assert decoded.native == message.native


def test_default_value_is_omitted_and_reads_back() -> None:
    info = rsp.ProfileInfo({"iccid": b"\x98" * 10, "profileClass": "operational"})
    der = asn1.encode(info)
    assert der == bytes.fromhex("e30c5a0a") + b"\x98" * 10  # profileClass DEFAULT operational
    assert asn1.decode(rsp.ProfileInfo, der)["profileClass"].native == "operational"


def test_received_bytes_of_signed_part() -> None:
    message = _messages()[4]
    der = asn1.encode(message)
    decoded = asn1.decode(rsp.AuthenticateServerResponse, der)
    signed = decoded.chosen["euiccSigned1"]
    raw = asn1.received_der(signed)
    assert raw[0] == 0x30
    assert der.find(raw) > 0
    # still the same after re-encoding the whole message
    asn1.encode(decoded)
    assert asn1.received_der(decoded.chosen["euiccSigned1"]) == raw


def test_bpp_decode_is_lazy_until_access() -> None:
    message = _messages()[7]
    der = asn1.encode(message)
    bpp = asn1.decode(rsp.BoundProfilePackage, der)
    assert len(der) > 12000
    assert [len(x.native) for x in bpp["sequenceOf86"]] == [1020] * 12


@pytest.mark.parametrize(
    "hex_der",
    [
        "a206bf4003810101",  # authenticateClientResponseEs11: authenticateClientError 1
        "a205bf4102a000",  # cancelSessionResponseEs9: cancelSessionOk {}
        "a206bf3903810102",  # initiateAuthenticationResponse: error 2
    ],
)
def test_choice_of_tagged_choices(hex_der: str) -> None:
    # RemoteProfileProvisioningResponse ::= [2] CHOICE whose alternatives are
    # themselves tagged CHOICE types ([64] AuthenticateClientResponseEs11 ...)
    der = bytes.fromhex(hex_der)
    value = asn1.decode(rsp.RemoteProfileProvisioningResponse, der)
    assert not value.is_unknown
    value.native  # noqa: B018
    assert asn1.encode(value) == der
    rebuilt = rsp.RemoteProfileProvisioningResponse((value.name, value.chosen))
    assert asn1.encode(rebuilt) == der
