"""Signed ProfileInstallationResult, and the whole ES8+ leg with keys from a generated test PKI.

Independent checks: asn1tools decodes the result; ``euiccSignPIR`` verifies with
``cryptography`` over the ``BF27`` TLV cut out here by hand.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path

import asn1tools
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from rspfed import asn1, es8p
from rspfed.asn1 import rsp
from rspfed.crypto import ecka
from rspfed.crypto.curves import Curve
from rspfed.errors import DecodeError, EncodeError, ProtocolError, SignatureError
from rspfed.es8p import BppCommandId as C
from rspfed.es8p import ErrorReason as R
from rspfed.pki import eid as eid_mod
from rspfed.pki.roles import CertificateRole
from rspfed.pki.testpki import TestPki
from tests.es8p.helpers import ICCID, PACKAGE, _tlvs, run, seeded
from tests.paths import ASN1_MODULES

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
SMDP_OID = "1.3.6.1.4.1.31746.1"


@functools.cache
def _asn1tools() -> asn1tools.compiler.Specification:
    names = ("rsp.asn", "PKIX1Explicit88.asn", "PKIX1Implicit88.asn")
    return asn1tools.compile_files([str(ASN1_MODULES / n) for n in names], "der")


def _metadata(seq: int = 1) -> rsp.NotificationMetadata:
    return rsp.NotificationMetadata(
        {
            "seqNumber": seq,
            "profileManagementOperation": {"notificationInstall"},
            "notificationAddress": "smdp.example.com",
            "iccid": ICCID,
        }
    )


def _check_signature_independently(der: bytes, public_key: ec.EllipticCurvePublicKey) -> None:
    [(tag, _, body)] = _tlvs(der)
    assert tag == 0xBF37
    # body = BF27 TLV || 5F37 TLV: cut the first TLV out by its own header
    first = _tlvs(body)
    assert [t for t, _, _ in first] == [0xBF27, 0x5F37]
    signed = first[0][1] + first[0][2]
    raw = first[1][2]
    der_sig = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key.verify(der_sig, signed, ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize("curve", list(Curve), ids=lambda c: c.name)
def test_success_result(curve: Curve) -> None:
    key = ecka.generate_key_pair(curve, seeded(11))
    tid = bytes(range(16))
    der = es8p.build_profile_installation_result(
        transaction_id=tid,
        notification_metadata=_metadata(),
        final_result=es8p.InstallationSuccess(bytes.fromhex("a0000005591010ffffffff8900001000")),
        euicc_key=key,
        smdp_oid=SMDP_OID,
    )
    _check_signature_independently(der, key.public_key())
    other = _asn1tools().decode("ProfileInstallationResult", der)
    data = other["profileInstallationResultData"]
    assert data["transactionId"] == tid
    assert data["smdpOid"] == SMDP_OID
    assert data["finalResult"][0] == "successResult"
    result = es8p.verify_profile_installation_result(der, key.public_key(), transaction_id=tid)
    assert result["profileInstallationResultData"]["finalResult"].name == "successResult"


def test_error_result_for_each_reason() -> None:
    key = ecka.generate_key_pair(Curve.NIST, seeded(12))
    for command, reasons in es8p.ERROR_REASONS.items():
        for reason in reasons:
            failure = es8p.InstallationFailure.from_error(es8p.BppError(command, reason))
            der = es8p.build_profile_installation_result(
                transaction_id=b"\x01",
                notification_metadata=_metadata(),
                final_result=failure,
                euicc_key=key,
            )
            _check_signature_independently(der, key.public_key())
            choice, error = _asn1tools().decode("ProfileInstallationResult", der)[
                "profileInstallationResultData"
            ]["finalResult"]
            assert choice == "errorResult"
            assert (error["bppCommandId"], error["errorReason"]) == (command, reason)


def test_codes_are_the_asn1_named_numbers() -> None:
    assert {c.value: c.name for c in es8p.BppCommandId} == rsp.BppCommandId._map
    assert {r.value: r.name for r in es8p.ErrorReason} == rsp.ErrorReason._map
    assert all(reasons for reasons in es8p.ERROR_REASONS.values())
    assert set(es8p.ERROR_REASONS) == set(es8p.BppCommandId)


def test_result_verification_failures() -> None:
    key = ecka.generate_key_pair(Curve.BRAINPOOL, seeded(13))
    der = es8p.build_profile_installation_result(
        transaction_id=b"\x01\x02",
        notification_metadata=_metadata(),
        final_result=es8p.InstallationFailure(C.loadProfileElements, R.scp03tSecurityError),
        euicc_key=key,
    )
    with pytest.raises(ProtocolError):
        es8p.verify_profile_installation_result(der, key.public_key(), transaction_id=b"\x09")
    stranger = ecka.generate_key_pair(Curve.BRAINPOOL, seeded(14))
    with pytest.raises(SignatureError):
        es8p.verify_profile_installation_result(der, stranger.public_key())
    tampered = bytearray(der)
    tampered[10] ^= 0x01  # inside the transactionId / metadata, still DER
    with pytest.raises((SignatureError, DecodeError)):
        es8p.verify_profile_installation_result(bytes(tampered), key.public_key())
    with pytest.raises(DecodeError):
        es8p.verify_profile_installation_result(der[:-1], key.public_key())


@pytest.mark.parametrize("curve", list(Curve), ids=lambda c: c.name)
def test_es8_leg_with_a_test_pki(tmp_path: Path, curve: Curve) -> None:
    """SM-DP+ and eUICC keys certified by a generated test PKI; PPK mode; both results."""
    rand = seeded(21)
    pki = TestPki.create(tmp_path / "pki", now=NOW, curves=[curve], rand=rand)
    dp_pb_key = ecka.generate_key_pair(curve, rand)
    dp_pb_cert = pki.issue_smdp_certificate(
        CertificateRole.DPPB, dp_pb_key.public_key(), curve, now=NOW, rand=rand
    )
    eid_text = eid_mod.generate_eid(pki.ein, rand)
    euicc_key = ecka.generate_key_pair(curve, rand)
    euicc_cert = pki.issue_euicc_certificate(
        eid_text, euicc_key.public_key(), curve, now=NOW, rand=rand
    )
    eid = bytes.fromhex(eid_text)
    tid = rand(16)
    euicc_ot = ecka.generate_key_pair(curve, rand)
    smdp_ot = ecka.generate_key_pair(curve, rand)
    ppp = es8p.protect_profile_package(PACKAGE, es8p.generate_ppk(rand))

    bpp = es8p.build_bound_profile_package(
        transaction_id=tid,
        euicc_otpk=ecka.encode_public_key(euicc_ot.public_key()),
        smdp_ot_key=smdp_ot,
        dp_pb_key=dp_pb_key,
        eid=eid,
        host_id=b"\x01",
        metadata=es8p.store_metadata_request(ICCID, "SP", "PKI", profile_class="operational"),
        profile=ppp,
    )
    dp_pb_public = dp_pb_cert.public_key()
    assert isinstance(dp_pb_public, ec.EllipticCurvePublicKey)
    unbinder = es8p.BppUnbinder(
        euicc_ot_key=euicc_ot, smdp_public_key=dp_pb_public, transaction_id=tid, eid=eid
    )
    out = run(unbinder, es8p.segment_bpp_for_es10b(bpp))
    assert out.error is None
    last = out.events[-1]
    assert isinstance(last, es8p.BppComplete)
    assert last.profile_package == PACKAGE

    euicc_public = euicc_cert.public_key()
    assert isinstance(euicc_public, ec.EllipticCurvePublicKey)
    pir = es8p.build_profile_installation_result(
        transaction_id=tid,
        notification_metadata=_metadata(),
        final_result=es8p.InstallationSuccess(bytes.fromhex("a0000005591010ffffffff8900001100")),
        euicc_key=euicc_key,
    )
    es8p.verify_profile_installation_result(pir, euicc_public, transaction_id=tid)


def _codec_data(
    tid: bytes,
    seq: int,
    address: str,
    final: es8p.InstallationSuccess | es8p.InstallationFailure,
    iccid: bytes | None,
    oid: str | None,
) -> bytes:
    """profileInstallationResultData through the asn1crypto codec (the reference)."""
    meta: dict[str, object] = {
        "seqNumber": seq,
        "profileManagementOperation": {"notificationInstall"},
        "notificationAddress": address,
    }
    if iccid is not None:
        meta["iccid"] = iccid
    if isinstance(final, es8p.InstallationSuccess):
        chosen = rsp.ProfileInstallationResultData_finalResult(
            name="successResult", value={"aid": final.aid, "simaResponse": final.sima_response}
        )
    else:
        error: dict[str, object] = {
            "bppCommandId": int(final.bpp_command_id),
            "errorReason": int(final.error_reason),
        }
        if final.sima_response is not None:
            error["simaResponse"] = final.sima_response
        chosen = rsp.ProfileInstallationResultData_finalResult(name="errorResult", value=error)
    fields: dict[str, object] = {
        "transactionId": tid,
        "notificationMetadata": rsp.NotificationMetadata(meta),
        "finalResult": chosen,
    }
    if oid is not None:
        fields["smdpOid"] = oid
    return asn1.encode(rsp.ProfileInstallationResultData(fields))


_finals = st.one_of(
    st.builds(
        es8p.InstallationSuccess, st.binary(min_size=5, max_size=16), st.binary(max_size=300)
    ),
    st.builds(
        es8p.InstallationFailure,
        st.sampled_from(list(es8p.BppCommandId)),
        st.sampled_from(list(es8p.ErrorReason)),
        st.none() | st.binary(max_size=200),
    ),
)
_oids = st.lists(st.integers(0, 2**40), min_size=1, max_size=6).map(
    lambda arcs: ".".join(map(str, [1, 3, *arcs]))
)


@given(
    tid=st.binary(min_size=1, max_size=16),
    seq=st.integers(-(2**70), 2**70),
    address=st.text(max_size=150),
    final=_finals,
    iccid=st.none() | st.binary(min_size=10, max_size=10),
    oid=st.none() | _oids,
)
def test_data_der_equals_the_codec(
    tid: bytes,
    seq: int,
    address: str,
    final: es8p.InstallationSuccess | es8p.InstallationFailure,
    iccid: bytes | None,
    oid: str | None,
) -> None:
    """The eUICC's DER-parts builder gives the bytes of the asn1crypto codec path."""
    try:
        address.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(EncodeError):
            es8p.profile_installation_result_data_der(
                transaction_id=tid, seq_number=seq, notification_address=address,
                final_result=final,
            )  # fmt: skip
        return
    der = es8p.profile_installation_result_data_der(
        transaction_id=tid,
        seq_number=seq,
        notification_address=address,
        final_result=final,
        iccid=iccid,
        smdp_oid=oid,
    )
    assert der == _codec_data(tid, seq, address, final, iccid, oid)


@pytest.mark.parametrize("curve", list(Curve), ids=lambda c: c.name)
def test_signed_from_parts_verifies_and_decodes_independently(curve: Curve) -> None:
    key = ecka.generate_key_pair(curve, seeded(15))
    data = es8p.profile_installation_result_data_der(
        transaction_id=b"\x07" * 16,
        seq_number=513,
        notification_address="smdp.example.com",
        final_result=es8p.InstallationSuccess(bytes.fromhex("a0000005591010ffffffff8900001000")),
        iccid=ICCID,
        smdp_oid=SMDP_OID,
    )
    der = es8p.sign_profile_installation_result(data, key)
    _check_signature_independently(der, key.public_key())
    decoded = _asn1tools().decode("ProfileInstallationResult", der)
    meta = decoded["profileInstallationResultData"]["notificationMetadata"]
    assert meta["seqNumber"] == 513
    assert meta["iccid"] == ICCID
    es8p.verify_profile_installation_result(der, key.public_key(), transaction_id=b"\x07" * 16)


def test_data_der_rejects_values_out_of_their_types() -> None:
    ok = es8p.InstallationSuccess(bytes(5))
    cases: list[tuple[bytes, bytes | None, str | None, es8p.InstallationSuccess]] = [
        (b"", None, None, ok),
        (bytes(17), None, None, ok),
        (b"\x01", bytes(9), None, ok),
        (b"\x01", None, "not an oid", ok),
        (b"\x01", None, None, es8p.InstallationSuccess(bytes(4))),
    ]
    for tid, iccid, oid, final in cases:
        with pytest.raises(EncodeError):
            es8p.profile_installation_result_data_der(
                transaction_id=tid,
                seq_number=1,
                notification_address="a",
                final_result=final,
                iccid=iccid,
                smdp_oid=oid,
            )
