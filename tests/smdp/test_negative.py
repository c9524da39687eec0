"""Refusals of the SM-DP+ core, each with its SGP.22 subject/reason code and error class."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.crypto import ecka, signature
from rspfed.crypto.curves import Curve
from rspfed.errors import (
    ConfirmationCodeError,
    DownloadOrderError,
    EidError,
    EuiccVerificationError,
    FunctionExecutionError,
    MatchingIdError,
    ProfileError,
    ServerConfigurationError,
    TransactionIdError,
)
from rspfed.es9p import messages as m
from rspfed.pki.eid import generate_eid
from rspfed.pki.testpki import TestPki
from rspfed.smdp import ItemState
from tests.smdp.helpers import (
    NOW,
    SMDP_OID,
    Clock,
    Lpa,
    World,
    make_euicc,
    make_smdp,
    make_world,
    pir_ok,
    state_of,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("pki") / "pki")


@contextmanager
def refused(cls: type[FunctionExecutionError], subject: str, reason: str) -> Iterator[None]:
    with pytest.raises(cls) as info:
        yield
    assert (info.value.subject_code, info.value.reason_code) == (subject, reason)


def flip_signature(der: bytes) -> bytes:
    """Flip a bit in the first ``5F37 40`` signature of ``der`` (the DER stays valid)."""
    at = der.find(b"\x5f\x37\x40")
    assert at > 0
    out = bytearray(der)
    out[at + 3 + 10] ^= 0x01
    return bytes(out)


def ordered(smdp_lpa: Lpa, **confirm: object) -> tuple[str, str]:
    smdp = smdp_lpa.smdp
    iccid = smdp.download_order(profile_type="ts48")
    order = smdp.confirm_order(iccid=iccid, **confirm)  # type: ignore[arg-type]
    return iccid, order.matching_id


def test_unknown_and_reused_matching_id(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world)
    lpa = Lpa(smdp, make_euicc(world, tmp_path / "e").isdr)
    with refused(MatchingIdError, "8.2.6", "3.8"):
        lpa.authenticate(lpa.initiate(), "NO-SUCH-ID")
    iccid, mid = ordered(lpa)
    assert pir_ok(lpa.download(mid))
    assert state_of(smdp, iccid) is ItemState.INSTALLED
    with refused(MatchingIdError, "8.2.6", "3.8"):
        lpa.authenticate(lpa.initiate(), mid)
    # and an operator cannot order with it again
    other = smdp.download_order(profile_type="ts48")
    with refused(MatchingIdError, "8.2.6", "3.3"):
        smdp.confirm_order(iccid=other, matching_id=mid)


def test_confirmation_code_limit(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world)
    lpa = Lpa(smdp, make_euicc(world, tmp_path / "e").isdr)
    iccid, mid = ordered(lpa, confirmation_code="1234")
    # the eUICC requires the code once ccRequiredFlag is set: the LPA must send one
    auth = lpa.authenticate(lpa.initiate(), mid)
    assert asn1.decode(rsp.SmdpSigned2, auth.smdp_signed2)["ccRequiredFlag"].native is True
    with refused(ConfirmationCodeError, "8.2.7", "3.8"):
        lpa.get_bpp(auth, "0000")
    with refused(ConfirmationCodeError, "8.2.7", "3.8"):
        lpa.get_bpp(lpa.authenticate(lpa.initiate(), mid), "1111")
    assert state_of(smdp, iccid) is ItemState.RELEASED
    with refused(ConfirmationCodeError, "8.2.7", "6.4"):
        lpa.get_bpp(lpa.authenticate(lpa.initiate(), mid), "2222")
    assert state_of(smdp, iccid) is ItemState.ERROR
    with refused(MatchingIdError, "8.2.6", "3.8"):
        lpa.authenticate(lpa.initiate(), mid)


def test_confirmation_code_right_after_a_wrong_one(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world)
    lpa = Lpa(smdp, make_euicc(world, tmp_path / "e").isdr)
    iccid, mid = ordered(lpa, confirmation_code="1234")
    with refused(ConfirmationCodeError, "8.2.7", "3.8"):
        lpa.get_bpp(lpa.authenticate(lpa.initiate(), mid), "4321")
    assert pir_ok(lpa.download(mid, "1234"))
    assert state_of(smdp, iccid) is ItemState.INSTALLED


def test_expired_session(tmp_path: Path, world: World) -> None:
    clock = Clock()
    smdp = make_smdp(world, clock=clock)
    lpa = Lpa(smdp, make_euicc(world, tmp_path / "e").isdr)
    _, mid = ordered(lpa)
    init = lpa.initiate()
    clock.advance(smdp.config.session_ttl + timedelta(seconds=1))
    with refused(TransactionIdError, "8.10.1", "3.9"):
        lpa.authenticate(init, mid)
    # a fresh session works
    clock.advance(timedelta(seconds=1))
    assert pir_ok(lpa.download(mid))


def test_expired_between_authenticate_and_bpp(tmp_path: Path, world: World) -> None:
    clock = Clock()
    smdp = make_smdp(world, clock=clock)
    lpa = Lpa(smdp, make_euicc(world, tmp_path / "e").isdr)
    _, mid = ordered(lpa)
    auth = lpa.authenticate(lpa.initiate(), mid)
    clock.advance(timedelta(hours=1))
    with refused(TransactionIdError, "8.10.1", "3.9"):
        lpa.get_bpp(auth)
    assert smdp.store.get_session(auth.transaction_id) is None


def test_replayed_transaction_id(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world)
    lpa = Lpa(smdp, make_euicc(world, tmp_path / "e").isdr)
    _, mid = ordered(lpa)
    init = lpa.initiate()
    answer = lpa.authenticate_server(init, mid)
    request = m.AuthenticateClientRequest(init.transaction_id, answer)
    auth = smdp.authenticate_client(request)
    with refused(TransactionIdError, "8.10.1", "3.9"):
        smdp.authenticate_client(request)
    prepared = lpa.prepare_download(auth)
    bpp_request = m.GetBoundProfilePackageRequest(auth.transaction_id, prepared)
    smdp.get_bound_profile_package(bpp_request)
    with refused(TransactionIdError, "8.10.1", "3.9"):
        smdp.get_bound_profile_package(bpp_request)
    with refused(TransactionIdError, "8.10.1", "3.9"):
        smdp.authenticate_client(m.AuthenticateClientRequest(os.urandom(16), answer))


def test_wrong_eid_for_an_eid_bound_order(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world)
    euicc = make_euicc(world, tmp_path / "e")
    other_eid = generate_eid(world.pki.ein, os.urandom)
    assert other_eid != euicc.eid
    iccid = smdp.download_order(profile_type="ts48", eid=other_eid)
    assert state_of(smdp, iccid) is ItemState.LINKED
    mid = smdp.confirm_order(iccid=iccid).matching_id
    lpa = Lpa(smdp, euicc.isdr)
    with refused(EidError, "8.1.1", "3.8"):
        lpa.authenticate(lpa.initiate(), mid)
    assert state_of(smdp, iccid) is ItemState.RELEASED


def test_default_smdp_order_by_eid(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world)
    euicc = make_euicc(world, tmp_path / "e")
    lpa = Lpa(smdp, euicc.isdr)
    with refused(MatchingIdError, "8.2.6", "3.8"):  # no order for this EID yet
        lpa.authenticate(lpa.initiate(), None)
    iccid = smdp.download_order(profile_type="ts48")
    order = smdp.confirm_order(iccid=iccid, eid=euicc.eid, matching_id="")
    assert order.matching_id == ""
    assert pir_ok(lpa.download(None))
    assert state_of(smdp, iccid) is ItemState.INSTALLED


def test_tampered_signatures(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world)
    lpa = Lpa(smdp, make_euicc(world, tmp_path / "e").isdr)
    iccid, mid = ordered(lpa)
    with refused(EuiccVerificationError, "8.1", "6.1"):
        lpa.authenticate(lpa.initiate(), mid, tamper=flip_signature)
    auth = lpa.authenticate(lpa.initiate(), mid)
    with refused(EuiccVerificationError, "8.1", "6.1"):
        lpa.get_bpp(auth, tamper=flip_signature)
    assert state_of(smdp, iccid) is ItemState.RELEASED
    # a tampered euiccSigned1 (the serverChallenge echoed) is refused as well
    init = lpa.initiate()
    answer = lpa.authenticate_server(init, mid)
    value = asn1.decode(rsp.AuthenticateServerResponse, answer)
    challenge = bytes(value.chosen["euiccSigned1"]["serverChallenge"].native)
    bad = answer.replace(challenge, bytes(b ^ 0xFF for b in challenge))
    with refused(EuiccVerificationError, "8.1", "6.1"):
        smdp.authenticate_client(m.AuthenticateClientRequest(init.transaction_id, bad))


def test_untrusted_euicc_chain(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world)
    euicc = make_euicc(world, tmp_path / "e")
    lpa = Lpa(smdp, euicc.isdr)
    _, mid = ordered(lpa)
    # the same EID and key certified by an EUM under a CI the SM-DP+ does not trust
    rogue = TestPki.create(tmp_path / "rogue", now=NOW, curves=[Curve.NIST], ein=world.pki.ein)
    key = euicc.store.private_key("euicc-nist")
    cert = rogue.issue_euicc_certificate(euicc.eid, key.public_key(), Curve.NIST, now=NOW)
    real_cert = euicc.store.certificate("euicc-nist")
    real_eum = euicc.store.certificate("eum-nist")
    assert real_cert is not None
    assert real_eum is not None
    rogue_cert = cert.public_bytes(Encoding.DER)
    rogue_eum = rogue.material(Curve.NIST).eum.public_bytes(Encoding.DER)

    def swap(der: bytes) -> bytes:
        out = der.replace(real_cert, rogue_cert).replace(real_eum, rogue_eum)
        return rewrap(out, der)

    with refused(EuiccVerificationError, "8.11.1", "3.9"):
        lpa.authenticate(lpa.initiate(), mid, tamper=swap)

    # a revoked eUICC certificate (CRL of the EUM)
    crl = world.pki.revoke(real_cert, now=NOW).public_bytes(Encoding.DER)
    strict = make_smdp(world, crls=(crl,))
    lpa2 = Lpa(strict, euicc.isdr)
    _, mid2 = ordered(lpa2)
    with refused(EuiccVerificationError, "8.1.3", "6.1"):
        lpa2.authenticate(lpa2.initiate(), mid2)


def rewrap(body: bytes, original: bytes) -> bytes:
    """Re-encode the outer lengths of an AuthenticateServerResponse after a swap."""
    value = asn1.decode(rsp.AuthenticateServerResponse, original)
    ok = value.chosen
    start = asn1.received_der(ok["euiccSigned1"]) + asn1.received_der(ok["euiccSignature1"])
    at = body.find(start)
    inner = body[at:]
    # inner ends with the two (swapped) certificates; the rest of the outer headers follow
    seq = b"\xa0" + _len(len(inner)) + inner
    return b"\xbf\x38" + _len(len(seq)) + seq


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def test_smdp_address_and_security_configuration(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world)
    euicc = make_euicc(world, tmp_path / "e")
    with refused(ServerConfigurationError, "8.8.1", "3.8"):
        Lpa(smdp, euicc.isdr, address="other.example.com").initiate()
    # an SM-DP+ with only a brainpool credential for a NIST-only eUICC
    bp_only = make_smdp(
        world, credentials=tuple(c for c in world.config.credentials if c.curve is Curve.BRAINPOOL)
    )
    with refused(ServerConfigurationError, "8.8.2", "3.1"):
        Lpa(bp_only, euicc.isdr).initiate()


def test_confirmed_order_needs_release(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world)
    lpa = Lpa(smdp, make_euicc(world, tmp_path / "e").isdr)
    iccid, mid = ordered(lpa, release_flag=False)
    assert state_of(smdp, iccid) is ItemState.CONFIRMED
    with refused(ProfileError, "8.2", "1.2"):
        lpa.authenticate(lpa.initiate(), mid)
    smdp.release_profile(iccid=iccid)
    assert pir_ok(lpa.download(mid))


def test_download_attempts_limit(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world, max_download_attempts=2)
    lpa = Lpa(smdp, make_euicc(world, tmp_path / "e").isdr)
    iccid, mid = ordered(lpa)
    for _ in range(2):
        lpa.authenticate(lpa.initiate(), mid)
    with refused(DownloadOrderError, "8.8.5", "6.4"):
        lpa.authenticate(lpa.initiate(), mid)
    assert state_of(smdp, iccid) is ItemState.ERROR


@pytest.mark.parametrize(
    ("reason", "after"),
    [
        ("postponed", ItemState.RELEASED),
        ("timeout", ItemState.RELEASED),
        ("endUserRejection", ItemState.ERROR),
        ("pprNotAllowed", ItemState.ERROR),
    ],
)
def test_cancel_session(tmp_path: Path, world: World, reason: str, after: ItemState) -> None:
    smdp = make_smdp(world)
    lpa = Lpa(smdp, make_euicc(world, tmp_path / "e").isdr)
    iccid, mid = ordered(lpa)
    auth = lpa.authenticate(lpa.initiate(), mid)
    request = asn1.encode(
        rsp.CancelSessionRequest({"transactionId": auth.transaction_id, "reason": reason})
    )
    answer = lpa.isdr.handle(request)
    with refused(EuiccVerificationError, "8.1", "6.1"):
        smdp.cancel_session(m.CancelSessionRequest(auth.transaction_id, flip_signature(answer)))
    smdp.cancel_session(m.CancelSessionRequest(auth.transaction_id, answer))
    assert state_of(smdp, iccid) is after
    with refused(TransactionIdError, "8.10.1", "3.9"):
        smdp.cancel_session(m.CancelSessionRequest(auth.transaction_id, answer))
    if after is ItemState.RELEASED:
        assert pir_ok(lpa.download(mid))


def _sig_tlv(sig: bytes) -> bytes:
    return b"\x5f\x37" + bytes([len(sig)]) + sig


def test_cancel_session_smdp_oid(tmp_path: Path, world: World) -> None:
    """The eUICC signs the OID of CERT.DPauth (SGP.22 §5.7.14); another OID is refused."""
    smdp = make_smdp(world)
    euicc = make_euicc(world, tmp_path / "e")
    lpa = Lpa(smdp, euicc.isdr)
    iccid, mid = ordered(lpa)
    auth = lpa.authenticate(lpa.initiate(), mid)
    request = asn1.encode(
        rsp.CancelSessionRequest({"transactionId": auth.transaction_id, "reason": "timeout"})
    )
    answer = asn1.decode(rsp.CancelSessionResponse, lpa.isdr.handle(request))
    assert answer.name == "cancelSessionResponseOk"
    assert answer.chosen["euiccCancelSessionSigned"]["smdpOid"].dotted == SMDP_OID
    # the same answer, signed by the eUICC's own key, but naming another SM-DP+
    signed = asn1.encode(
        rsp.EuiccCancelSessionSigned(
            {"transactionId": auth.transaction_id, "smdpOid": "2.999.1", "reason": "timeout"}
        )
    )
    key = euicc.store.private_key("euicc-nist")
    forged = rsp.CancelSessionResponse(
        name="cancelSessionResponseOk",
        value={
            "euiccCancelSessionSigned": asn1.decode(rsp.EuiccCancelSessionSigned, signed),
            "euiccCancelSessionSignature": signature.sign(key, signed),
        },
    )
    with refused(ServerConfigurationError, "8.8", "3.10"):
        smdp.cancel_session(m.CancelSessionRequest(auth.transaction_id, asn1.encode(forged)))
    # refused: the session still stands, so the genuine answer is accepted after
    smdp.cancel_session(m.CancelSessionRequest(auth.transaction_id, asn1.encode(answer)))
    assert state_of(smdp, iccid) is ItemState.RELEASED


def test_es2_refusals(world: World) -> None:
    smdp = make_smdp(world)
    with refused(ProfileError, "8.2.5", "3.9"):
        smdp.download_order(profile_type="nope")
    with refused(ProfileError, "8.2.1", "3.9"):
        smdp.confirm_order(iccid="89000000000000000001")
    with refused(EidError, "8.1.1", "2.1"):
        smdp.download_order(profile_type="ts48", eid="1234")
    iccid = smdp.download_order(profile_type="ts48")
    with refused(ProfileError, "8.2.1", "3.3"):
        smdp.download_order(iccid=iccid)
    smdp.confirm_order(iccid=iccid, release_flag=False)
    with refused(ProfileError, "8.2.1", "3.3"):
        smdp.confirm_order(iccid=iccid)
    smdp.cancel_order(iccid=iccid, final_profile_status_indicator="Unavailable")
    assert state_of(smdp, iccid) is ItemState.UNAVAILABLE
    with refused(ProfileError, "8.2.1", "3.3"):
        smdp.cancel_order(iccid=iccid)


def test_cancel_order_returns_fresh_keys(world: World) -> None:
    smdp = make_smdp(world)
    iccid = smdp.download_order(profile_type="ts48")
    before = smdp.item(iccid)
    mid = smdp.confirm_order(iccid=iccid).matching_id
    smdp.cancel_order(iccid=iccid)
    after = smdp.item(iccid)
    assert before is not None
    assert after is not None
    assert after.state is ItemState.AVAILABLE
    assert after.k != before.k
    assert after.matching_id is None
    assert smdp.store.matching_id_known(mid)
    # the next order of the type takes it again
    assert smdp.download_order(profile_type="ts48") == iccid


def test_key_of_other_curve_is_refused(tmp_path: Path, world: World) -> None:
    """An euiccOtpk not on the session's curve is refused, nothing changes."""
    smdp = make_smdp(world)
    lpa = Lpa(smdp, make_euicc(world, tmp_path / "e").isdr)
    iccid, mid = ordered(lpa)
    auth = lpa.authenticate(lpa.initiate(), mid)
    answer = lpa.prepare_download(auth)
    otpk = bytes(
        asn1.decode(rsp.PrepareDownloadResponse, answer).chosen["euiccSigned2"]["euiccOtpk"].native
    )
    other = ecka.encode_public_key(ecka.generate_key_pair(Curve.NIST, os.urandom).public_key())
    with refused(EuiccVerificationError, "8.1", "6.1"):  # the signature covers the key
        smdp.get_bound_profile_package(
            m.GetBoundProfilePackageRequest(auth.transaction_id, answer.replace(otpk, other))
        )
    assert state_of(smdp, iccid) is ItemState.RELEASED


def test_abandoned_sessions_are_purged(tmp_path: Path, world: World) -> None:
    clock = Clock()
    smdp = make_smdp(world, clock=clock)
    info1 = make_euicc(world, tmp_path / "e").isdr.handle(bytes.fromhex("BF2000"))

    def initiate(count: int) -> None:
        for _ in range(count):
            smdp.initiate_authentication(
                m.InitiateAuthenticationRequest(os.urandom(16), info1, smdp.config.address)
            )

    initiate(10)
    clock.advance(smdp.config.session_ttl)
    assert smdp.purge_expired_sessions() == 10
    initiate(190)  # 200 calls so far
    clock.advance(smdp.config.session_ttl)
    initiate(56)  # the 256th call purged the 190 expired ones on its own
    assert smdp.purge_expired_sessions() == 0
