"""rspfed.smdp._fields (TLV walk) agrees with asn1crypto on real ES9+ messages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rspfed import asn1, es8p
from rspfed.asn1 import rsp
from rspfed.crypto.curves import Curve
from rspfed.errors import DecodeError
from rspfed.es9p import messages as m
from rspfed.smdp import _fields
from tests.smdp.helpers import Lpa, World, make_euicc, make_smdp, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("pki") / "pki")


def load(isdr_handle: Callable[[bytes], bytes], blocks: list[bytes]) -> bytes:
    for block in blocks:
        answer = isdr_handle(block)
        if answer:
            return answer
    raise AssertionError("no PIR")


@pytest.mark.parametrize(("code", "matching"), [(None, True), ("1234", True), (None, False)])
def test_fields_match_asn1crypto(
    tmp_path: Path, world: World, code: str | None, matching: bool
) -> None:
    smdp = make_smdp(world)
    euicc = make_euicc(world, tmp_path / "e", Curve.BRAINPOOL)
    lpa = Lpa(smdp, euicc.isdr)
    iccid = smdp.download_order(profile_type="ts48")
    order = smdp.confirm_order(
        iccid=iccid,
        confirmation_code=code,
        eid=None if matching else euicc.eid,
        matching_id=None if matching else "",
    )

    info1 = euicc.isdr.handle(bytes.fromhex("BF2000"))
    got1 = _fields.euicc_info1(info1)
    ref1 = asn1.decode(rsp.EUICCInfo1, info1)
    assert got1.svn == ref1["svn"].native
    assert list(got1.ci_pkids_for_verification) == ref1["euiccCiPKIdListForVerification"].native
    assert list(got1.ci_pkids_for_signing) == ref1["euiccCiPKIdListForSigning"].native

    init = lpa.initiate()
    answer = lpa.authenticate_server(init, order.matching_id or None)
    got = _fields.authenticate_response_ok(answer)
    ok = asn1.decode(rsp.AuthenticateServerResponse, answer).chosen
    signed1 = ok["euiccSigned1"]
    assert got is not None
    assert got.transaction_id == signed1["transactionId"].native
    assert got.server_challenge == signed1["serverChallenge"].native
    assert got.euicc_signed1 == asn1.received_der(signed1)
    assert got.euicc_signature1 == ok["euiccSignature1"].native
    assert got.euicc_certificate == asn1.received_der(ok["euiccCertificate"])
    assert got.eum_certificate == asn1.received_der(ok["eumCertificate"])
    assert got.matching_id == (signed1["ctxParams1"].chosen["matchingId"].native or None)
    assert got.matching_id == (order.matching_id or None)

    auth = smdp.authenticate_client(m.AuthenticateClientRequest(init.transaction_id, answer))
    prepared = lpa.prepare_download(auth, code)
    got2 = _fields.prepare_download_ok(prepared)
    ok2 = asn1.decode(rsp.PrepareDownloadResponse, prepared).chosen
    signed2 = ok2["euiccSigned2"]
    assert got2 is not None
    assert got2.transaction_id == signed2["transactionId"].native
    assert got2.euicc_signed2 == asn1.received_der(signed2)
    assert got2.euicc_signature2 == ok2["euiccSignature2"].native
    assert got2.euicc_otpk == signed2["euiccOtpk"].native
    assert got2.hash_cc == signed2["hashCc"].native

    bpp = smdp.get_bound_profile_package(
        m.GetBoundProfilePackageRequest(auth.transaction_id, prepared)
    )
    good = load(euicc.isdr.handle, es8p.segment_bpp_for_es10b(bpp.bound_profile_package))
    # and an errorResult PIR from a second eUICC fed a damaged package
    other = make_euicc(world, tmp_path / "f", Curve.BRAINPOOL)
    lpa2 = Lpa(smdp, other.isdr)
    iccid2 = smdp.download_order(profile_type="ts48")
    auth2 = lpa2.authenticate(lpa2.initiate(), smdp.confirm_order(iccid=iccid2).matching_id)
    blocks = es8p.segment_bpp_for_es10b(lpa2.get_bpp(auth2).bound_profile_package)
    blocks[-1] = blocks[-1][:-1] + bytes([blocks[-1][-1] ^ 1])
    bad = load(other.isdr.handle, blocks)
    for pir, success in ((good, True), (bad, False)):
        got3 = _fields.installation_result(pir)
        ref = asn1.decode(rsp.ProfileInstallationResult, pir)
        data = ref["profileInstallationResultData"]
        assert got3.transaction_id == data["transactionId"].native
        assert got3.data == asn1.received_der(data)
        assert got3.signature == ref["euiccSignPIR"].native
        assert got3.success == (data["finalResult"].name == "successResult")
        assert got3.success is success
        assert got3.seq_number == data["notificationMetadata"]["seqNumber"].native


def test_error_alternatives_and_garbage() -> None:
    error1 = asn1.encode(
        rsp.AuthenticateServerResponse(
            name="authenticateResponseError",
            value={"transactionId": b"\x01" * 16, "authenticateErrorCode": 2},
        )
    )
    assert _fields.authenticate_response_ok(error1) is None
    error2 = asn1.encode(
        rsp.PrepareDownloadResponse(
            name="downloadResponseError",
            value={"transactionId": b"\x01" * 16, "downloadErrorCode": 2},
        )
    )
    assert _fields.prepare_download_ok(error2) is None
    for call in (
        _fields.authenticate_response_ok,
        _fields.prepare_download_ok,
        _fields.installation_result,
        _fields.euicc_info1,
    ):
        for junk in (b"", b"\x30\x00", b"\xbf\x38\x05\xa0\x03\x30\x01", b"\xff" * 9):
            with pytest.raises(DecodeError):
                call(junk)
