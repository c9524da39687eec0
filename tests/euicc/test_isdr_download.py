"""ES10b download on the ISD-R: a test SM-DP+ (keys from the test PKI) drives a whole session."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed import asn1, es8p
from rspfed.asn1 import rsp
from rspfed.asn1.bertlv import encode_tlv, parse_one
from rspfed.crypto import ecka, signature
from rspfed.crypto.curves import Curve
from rspfed.errors import DecodeError
from rspfed.euicc import _state as st
from rspfed.euicc.isdr import EuiccCredential, IsdR, PackageInstaller
from rspfed.euicc.store import Store
from rspfed.pki import CertificateRole
from rspfed.pki.eid import generate_eid
from rspfed.pki.testpki import TestPki
from tests.paths import TS48

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PACKAGE = (TS48 / "TS48v2_SAIP2.3_BERTLV.der").read_bytes()
ICCID = bytes.fromhex("98001032547698103214")
SMDP_OID = "1.3.6.1.4.1.31746.1"


@attrs.frozen
class World:
    pki: TestPki
    eid: str
    credential: EuiccCredential
    dp_auth_key: ec.EllipticCurvePrivateKey
    dp_auth_cert: bytes
    dp_pb_key: ec.EllipticCurvePrivateKey
    dp_pb_cert: bytes
    ci_der: bytes
    curve: Curve = Curve.NIST


def make_world(directory: Path, curve: Curve) -> World:
    pki = TestPki.create(directory, now=NOW, curves=[curve])
    eid = generate_eid(pki.ein, os.urandom)
    key = ecka.generate_key_pair(curve, os.urandom)
    cert = pki.issue_euicc_certificate(eid, key.public_key(), curve, now=NOW)
    m = pki.material(curve)
    cred = EuiccCredential(key, cert.public_bytes(Encoding.DER), m.eum.public_bytes(Encoding.DER))
    auth = ecka.generate_key_pair(curve, os.urandom)
    pb = ecka.generate_key_pair(curve, os.urandom)

    def issue(role: CertificateRole, k: ec.EllipticCurvePrivateKey) -> bytes:
        c = pki.issue_smdp_certificate(role, k.public_key(), curve, registered_id=SMDP_OID, now=NOW)
        return c.public_bytes(Encoding.DER)

    return World(
        pki,
        eid,
        cred,
        auth,
        issue(CertificateRole.DPAUTH, auth),
        pb,
        issue(CertificateRole.DPPB, pb),
        m.ci.public_bytes(Encoding.DER),
        curve,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("pki") / "pki", Curve.NIST)


def make_isdr(
    tmp_path: Path, world: World, seed: int = 1, installer: PackageInstaller | None = None
) -> IsdR:
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = Store.create(tmp_path / "e.db", eid=bytes.fromhex(world.eid))
    return IsdR(
        store=store,
        credentials=[world.credential],
        rand=random.Random(seed).randbytes,
        now=lambda: NOW,
        ci_certificates=[world.ci_der],
        installer=installer,
    )


def ci_pkid(world: World) -> bytes:
    info = asn1.decode(rsp.EUICCInfo1, make_info1(world))
    return bytes(info["euiccCiPKIdListForVerification"][0].native)


def make_info1(world: World) -> bytes:
    from rspfed.pki import parse_certificate

    ski = parse_certificate(world.ci_der).subject_key_id
    assert ski is not None
    return asn1.encode(
        rsp.EUICCInfo1(
            {
                "svn": b"\x02\x02\x02",
                "euiccCiPKIdListForVerification": [ski],
                "euiccCiPKIdListForSigning": [ski],
            }
        )
    )


def sig_tlv(sig: bytes) -> bytes:
    return b"\x5f\x37\x40" + sig


CTX = rsp.CtxParams1(
    name="ctxParamsForCommonAuthentication",
    value={
        "matchingId": "ABC",
        "deviceInfo": {"tac": b"\x35\x29\x06\x11", "deviceCapabilities": {}},
    },
)


def authenticate(
    isdr: IsdR,
    world: World,
    tid: bytes,
    *,
    mutate: Callable[[dict[str, Any]], None] | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    cert: bytes | None = None,
    ci: bytes | None = None,
) -> rsp.AuthenticateServerResponse:
    challenge = asn1.decode(rsp.GetEuiccChallengeResponse, isdr.handle(bytes.fromhex("BF2E00")))
    signed: dict[str, Any] = {
        "transactionId": tid,
        "euiccChallenge": bytes(challenge["euiccChallenge"].native),
        "serverAddress": "smdp.example",
        "serverChallenge": b"S" * 16,
    }
    if mutate is not None:
        mutate(signed)
    signed_der = asn1.encode(rsp.ServerSigned1(signed))
    sig = signature.sign(key or world.dp_auth_key, signed_der)
    from asn1crypto import x509 as ax509

    req = rsp.AuthenticateServerRequest(
        {
            "serverSigned1": asn1.decode(rsp.ServerSigned1, signed_der),
            "serverSignature1": sig,
            "euiccCiPKIdToBeUsed": ci or ci_pkid(world),
            "serverCertificate": ax509.Certificate.load(cert or world.dp_auth_cert),
            "ctxParams1": CTX,
        }
    )
    return asn1.decode(rsp.AuthenticateServerResponse, isdr.handle(asn1.encode(req)))


def prepare(
    isdr: IsdR,
    world: World,
    tid: bytes,
    euicc_sig1: bytes,
    *,
    cc: bytes | None = None,
    previous_otpk: bytes | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    cert: bytes | None = None,
) -> rsp.PrepareDownloadResponse:
    from asn1crypto import x509 as ax509

    signed: dict[str, Any] = {"transactionId": tid, "ccRequiredFlag": cc is not None}
    if previous_otpk is not None:
        signed["bppEuiccOtpk"] = previous_otpk
    signed_der = asn1.encode(rsp.SmdpSigned2(signed))
    sig2 = signature.sign(key or world.dp_pb_key, signed_der + sig_tlv(euicc_sig1))
    value: dict[str, Any] = {
        "smdpSigned2": asn1.decode(rsp.SmdpSigned2, signed_der),
        "smdpSignature2": sig2,
        "smdpCertificate": ax509.Certificate.load(cert or world.dp_pb_cert),
    }
    if cc is not None:
        import hashlib

        value["hashCc"] = hashlib.sha256(hashlib.sha256(cc).digest() + tid).digest()
    resp = asn1.decode(
        rsp.PrepareDownloadResponse, isdr.handle(asn1.encode(rsp.PrepareDownloadRequest(value)))
    )
    if resp.name == "downloadResponseOk":  # euiccSignature2 over euiccSigned2 || smdpSignature2
        signature.verify(
            world.credential.private_key.public_key(),
            asn1.received_der(resp.chosen["euiccSigned2"]) + sig_tlv(sig2),
            bytes(resp.chosen["euiccSignature2"].native),
        )
    return resp


def metadata(iccid: bytes = ICCID, **kw: Any) -> bytes:
    return es8p.store_metadata_request(
        iccid,
        "rspfed SP",
        "Test profile",
        notification_configuration_info=[
            ({"notificationInstall", "notificationEnable"}, "n.example")
        ],
        **kw,
    )


def download(
    isdr: IsdR,
    world: World,
    *,
    tid: bytes = b"T" * 16,
    meta: bytes | None = None,
    tamper: Callable[[list[bytes]], list[bytes]] | None = None,
    otpk_out: list[bytes] | None = None,
) -> bytes:
    auth = authenticate(isdr, world, tid)
    assert auth.name == "authenticateResponseOk"
    sig1 = bytes(auth.chosen["euiccSignature1"].native)
    prep = prepare(isdr, world, tid, sig1)
    assert prep.name == "downloadResponseOk"
    otpk = bytes(prep.chosen["euiccSigned2"]["euiccOtpk"].native)
    if otpk_out is not None:
        otpk_out.append(otpk)
    bpp = es8p.build_bound_profile_package(
        transaction_id=tid,
        euicc_otpk=otpk,
        smdp_ot_key=ecka.generate_key_pair(world.curve, os.urandom),
        dp_pb_key=world.dp_pb_key,
        eid=bytes.fromhex(world.eid),
        host_id=b"host",
        metadata=meta or metadata(),
        profile=PACKAGE,
    )
    blocks = es8p.segment_bpp_for_es10b(bpp)
    if tamper is not None:
        blocks = tamper(blocks)
    for i, block in enumerate(blocks):
        answer = isdr.handle(block)
        if answer:  # the PIR: the LPA stops here (success on the last block, else failure)
            assert answer[:2] == b"\xbf\x37"
            if i != len(blocks) - 1:
                assert (
                    asn1.decode(rsp.ProfileInstallationResult, answer)[
                        "profileInstallationResultData"
                    ]["finalResult"].name
                    == "errorResult"
                )
            return answer
    raise AssertionError("no ProfileInstallationResult")


def test_info_and_challenge(tmp_path: Path, world: World) -> None:
    isdr = make_isdr(tmp_path, world)
    assert isdr.handle(bytes.fromhex("BF2000")) == make_info1(world)
    info2 = asn1.decode(rsp.EUICCInfo2, isdr.handle(bytes.fromhex("BF2200")))
    assert info2["svn"].native == b"\x02\x02\x02"
    c1 = isdr.handle(bytes.fromhex("BF2E00"))
    c2 = isdr.handle(bytes.fromhex("BF2E00"))
    assert c1 != c2
    assert len(asn1.decode(rsp.GetEuiccChallengeResponse, c1)["euiccChallenge"].native) == 16


def test_full_download_installs_once(tmp_path: Path, world: World) -> None:
    isdr = make_isdr(tmp_path, world)
    tid = b"T" * 16
    used_otpk: list[bytes] = []
    pir_der = download(isdr, world, tid=tid, otpk_out=used_otpk)
    result = es8p.verify_profile_installation_result(
        pir_der, world.credential.private_key.public_key(), transaction_id=tid
    )
    data = result["profileInstallationResultData"]
    assert data["finalResult"].name == "successResult"
    assert data["notificationMetadata"]["notificationAddress"].native == "n.example"
    assert data["smdpOid"].native == SMDP_OID
    state = isdr.store.state
    assert [p.iccid for p in state.profiles] == [ICCID]
    assert state.profiles[0].status is st.ProfileStatus.DISABLED
    assert state.notifications[-1].pending == pir_der
    assert isdr.store.content(ICCID) == PACKAGE
    # the one-time key is gone after an installation: a retry naming it gets a new one
    sig1 = bytes(authenticate(isdr, world, tid).chosen["euiccSignature1"].native)
    retry = prepare(isdr, world, tid, sig1, previous_otpk=used_otpk[0])
    assert bytes(retry.chosen["euiccSigned2"]["euiccOtpk"].native) != used_otpk[0]
    isdr.handle(
        asn1.encode(rsp.CancelSessionRequest({"transactionId": tid, "reason": "postponed"}))
    )
    with Store.open(tmp_path / "e.db") as again:
        assert again.state == state
    # session is closed: a segment now is rejected, a second BPP needs a new session
    again_pir = download(isdr, world, tid=b"U" * 16)
    failed = asn1.decode(rsp.ProfileInstallationResult, again_pir)
    err = failed["profileInstallationResultData"]["finalResult"].chosen
    assert err["errorReason"].native == "installFailedDueToIccidAlreadyExistsOnEuicc"
    assert isdr.store.state == state


def test_signatures_and_chain_are_checked(tmp_path: Path, world: World) -> None:
    isdr = make_isdr(tmp_path, world)
    tid = b"A" * 16
    ok = authenticate(isdr, world, tid)
    signed1 = ok.chosen["euiccSigned1"]
    signature.verify(
        world.credential.private_key.public_key(),
        asn1.received_der(signed1),
        bytes(ok.chosen["euiccSignature1"].native),
    )
    assert signed1["serverChallenge"].native == b"S" * 16
    assert signed1["ctxParams1"].chosen["matchingId"].native == "ABC"

    def error(resp: Any) -> object:
        assert resp.name.endswith("Error")
        return resp.chosen[1].native

    other = ecka.generate_key_pair(Curve.NIST, os.urandom)
    assert error(authenticate(isdr, world, tid, key=other)) == "invalidSignature"
    assert error(authenticate(isdr, world, tid, cert=world.dp_pb_cert)) == "invalidCertificate"

    def wrong_challenge(signed: dict[str, Any]) -> None:
        signed["euiccChallenge"] = bytes(16)

    assert error(authenticate(isdr, world, tid, mutate=wrong_challenge)) == "euiccChallengeMismatch"

    sig1 = bytes(authenticate(isdr, world, tid).chosen["euiccSignature1"].native)
    assert error(prepare(isdr, world, tid, sig1, key=other)) == "invalidSignature"
    # the failure closed the session
    assert error(prepare(isdr, world, tid, sig1)) == "noSessionContext"
    sig1 = bytes(authenticate(isdr, world, tid).chosen["euiccSignature1"].native)
    assert error(prepare(isdr, world, b"B" * 16, sig1)) == "invalidTransactionId"


def test_prepare_download_cc_and_retry(tmp_path: Path, world: World) -> None:
    isdr = make_isdr(tmp_path, world)
    tid = b"C" * 16
    sig1 = bytes(authenticate(isdr, world, tid).chosen["euiccSignature1"].native)
    prep = prepare(isdr, world, tid, sig1, cc=b"1234")
    signed2 = prep.chosen["euiccSigned2"]
    import hashlib

    assert (
        signed2["hashCc"].native == hashlib.sha256(hashlib.sha256(b"1234").digest() + tid).digest()
    )
    otpk = bytes(signed2["euiccOtpk"].native)
    # retry: a new session, smdpSigned2 names the previous otPK -> the same key comes back
    sig1 = bytes(authenticate(isdr, world, tid).chosen["euiccSignature1"].native)
    again = prepare(isdr, world, tid, sig1, previous_otpk=otpk)
    assert bytes(again.chosen["euiccSigned2"]["euiccOtpk"].native) == otpk
    # an unknown previous otPK: a fresh key
    sig1 = bytes(authenticate(isdr, world, tid).chosen["euiccSignature1"].native)
    fresh = prepare(isdr, world, tid, sig1, previous_otpk=b"\x04" + bytes(64))
    assert bytes(fresh.chosen["euiccSigned2"]["euiccOtpk"].native) != otpk


def test_cancel_session(tmp_path: Path, world: World) -> None:
    isdr = make_isdr(tmp_path, world)
    tid = b"D" * 16
    authenticate(isdr, world, tid)
    req = asn1.encode(rsp.CancelSessionRequest({"transactionId": b"X" * 16, "reason": "postponed"}))
    bad = asn1.decode(rsp.CancelSessionResponse, isdr.handle(req))
    assert (bad.name, bad.chosen.native) == ("cancelSessionResponseError", "invalidTransactionId")
    req = asn1.encode(rsp.CancelSessionRequest({"transactionId": tid, "reason": "postponed"}))
    ok = asn1.decode(rsp.CancelSessionResponse, isdr.handle(req))
    assert ok.name == "cancelSessionResponseOk"
    signed = ok.chosen["euiccCancelSessionSigned"]
    signature.verify(
        world.credential.private_key.public_key(),
        asn1.received_der(signed),
        bytes(ok.chosen["euiccCancelSessionSignature"].native),
    )
    assert signed["reason"].native == "postponed"
    assert (
        asn1.decode(rsp.CancelSessionResponse, isdr.handle(req)).name
        == "cancelSessionResponseError"
    )


def _flip(index: int, offset: int) -> Callable[[list[bytes]], list[bytes]]:
    def tamper(blocks: list[bytes]) -> list[bytes]:
        i = index % len(blocks)
        b = bytearray(blocks[i])
        b[offset % len(b)] ^= 0x01
        blocks[i] = bytes(b)
        return blocks

    return tamper


@pytest.mark.parametrize(
    ("index", "offset"), [(0, 40), (0, -3), (1, -1), (2, 10), (-1, -5), (-1, 20), (3, 7)]
)
def test_bad_bpp_installs_nothing(tmp_path: Path, world: World, index: int, offset: int) -> None:
    isdr = make_isdr(tmp_path, world)
    before = isdr.store.state
    pir = asn1.decode(
        rsp.ProfileInstallationResult, download(isdr, world, tamper=_flip(index, offset))
    )
    assert pir["profileInstallationResultData"]["finalResult"].name == "errorResult"
    assert isdr.store.state == before
    # the session is closed: any further segment is refused
    with pytest.raises(DecodeError):
        isdr.handle(bytes.fromhex("A300"))


def test_reordered_and_replayed_segments(tmp_path: Path, world: World) -> None:
    def swap(blocks: list[bytes]) -> list[bytes]:
        blocks[-1], blocks[-2] = blocks[-2], blocks[-1]
        return blocks

    def replay(blocks: list[bytes]) -> list[bytes]:
        return [*blocks[:-1], blocks[-2], blocks[-1]]

    for i, tamper in enumerate((swap, replay)):
        isdr = make_isdr(tmp_path / str(i), world)
        pir = asn1.decode(rsp.ProfileInstallationResult, download(isdr, world, tamper=tamper))
        assert pir["profileInstallationResultData"]["finalResult"].name == "errorResult"
        assert isdr.store.state.profiles == ()


def test_ppr_not_allowed(tmp_path: Path, world: World) -> None:
    isdr = make_isdr(tmp_path, world)
    meta = metadata(
        profile_owner={"mccMnc": bytes.fromhex("00F110")}, profile_policy_rules={"ppr1"}
    )
    pir = asn1.decode(rsp.ProfileInstallationResult, download(isdr, world, meta=meta))
    err = pir["profileInstallationResultData"]["finalResult"].chosen
    assert err["errorReason"].native == "pprNotAllowed"
    assert isdr.store.state.profiles == ()


def load_crl_request(crl_der: bytes) -> bytes:
    # LoadCRLRequest ::= [PRIVATE 53] SEQUENCE { crl [0] IMPLICIT CertificateList }
    body = b"\xa0" + crl_der[1:]
    return asn1.encode(asn1.decode(rsp.LoadCRLRequest, b"\xbf\x35" + _len(len(body)) + body))


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def test_load_crl_revokes_dp_auth(tmp_path: Path, world: World) -> None:
    isdr = make_isdr(tmp_path / "a", world)
    key = ecka.generate_key_pair(Curve.NIST, os.urandom)
    cert = world.pki.issue_smdp_certificate(
        CertificateRole.DPAUTH, key.public_key(), Curve.NIST, now=NOW
    ).public_bytes(Encoding.DER)
    assert authenticate(isdr, world, b"R" * 16, key=key, cert=cert).name == "authenticateResponseOk"
    crl = world.pki.revoke(cert, now=NOW).public_bytes(Encoding.DER)

    def load(der: bytes) -> object:
        resp = asn1.decode(rsp.LoadCRLResponse, isdr.handle(load_crl_request(der)))
        return resp.name if resp.name == "loadCRLResponseOk" else resp.chosen.native

    assert load(crl) == "loadCRLResponseOk"
    refused = authenticate(isdr, world, b"R" * 16, key=key, cert=cert)
    assert refused.chosen[1].native == "invalidCertificate"
    # kept in the store: a reopened eUICC still refuses
    isdr.store.close()
    again = IsdR(
        store=Store.open(tmp_path / "a" / "e.db"),
        credentials=[world.credential],
        rand=os.urandom,
        now=lambda: NOW,
        ci_certificates=[world.ci_der],
    )
    assert authenticate(again, world, b"R" * 16, key=key, cert=cert).name.endswith("Error")
    # a CRL no trusted CI issued; a broken signature
    other = TestPki.create(tmp_path / "other", now=NOW, curves=[Curve.NIST])
    foreign = other.material(Curve.NIST).ci_crl.public_bytes(Encoding.DER)
    assert (
        asn1.decode(rsp.LoadCRLResponse, again.handle(load_crl_request(foreign))).chosen.native
        == "verificationKeyNotFound"
    )
    broken = crl[:-2] + bytes([crl[-2] ^ 1]) + crl[-1:]
    assert (
        asn1.decode(rsp.LoadCRLResponse, again.handle(load_crl_request(broken))).chosen.native
        == "invalidSignature"
    )


def test_download_over_apdus_with_store_data_chaining(tmp_path: Path, world: World) -> None:
    from rspfed.euicc.apdu import CommandApdu
    from rspfed.euicc.isdr import ISD_R_AID
    from rspfed.euicc.uicc import Uicc

    isdr = make_isdr(tmp_path, world)
    card = Uicc(
        __import__("rspfed.euicc.euicc", fromlist=["bare_state"]).bare_state(), applets=[isdr]
    )

    def es10(der: bytes) -> bytes:
        """STORE DATA in blocks of at most 120 octets, then GET RESPONSE for 61xx."""
        chunks = [der[i : i + 120] for i in range(0, len(der), 120)] or [b""]
        out = b""
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1
            resp = card.transmit(
                CommandApdu(
                    0x80, 0xE2, 0x91 if last else 0x11, n, chunk, ne=256 if last else None
                ).encode()
            )
            if not last:
                assert resp == b"\x90\x00"
        while resp[-2] == 0x61:
            out += resp[:-2]
            resp = card.transmit(bytes([0x00, 0xC0, 0x00, 0x00, resp[-1]]))
        assert resp[-2:] == b"\x90\x00", resp[-2:].hex()
        return out + resp[:-2]

    assert card.transmit(bytes([0x00, 0xA4, 0x04, 0x00, 16]) + ISD_R_AID)[-2:] == b"\x90\x00"

    class Over:
        """IsdR look-alike whose handle() goes over APDUs."""

        store = isdr.store

        @staticmethod
        def handle(der: bytes) -> bytes:
            return es10(der)

    tid = b"P" * 16
    pir = download(Over, world, tid=tid)  # type: ignore[arg-type]
    es8p.verify_profile_installation_result(
        pir, world.credential.private_key.public_key(), transaction_id=tid
    )
    assert [p.iccid for p in isdr.store.state.profiles] == [ICCID]


def test_card_reset_drops_the_session(tmp_path: Path, world: World) -> None:
    from rspfed.euicc.euicc import bare_state
    from rspfed.euicc.uicc import Uicc

    isdr = make_isdr(tmp_path, world)
    card = Uicc(bare_state(), applets=[isdr])
    tid = b"Q" * 16
    sig1 = bytes(authenticate(isdr, world, tid).chosen["euiccSignature1"].native)
    card.reset()
    assert prepare(isdr, world, tid, sig1).chosen[1].native == "noSessionContext"
    # the kept one-time key is gone too: a retry gets a fresh key
    sig1 = bytes(authenticate(isdr, world, tid).chosen["euiccSignature1"].native)
    first = prepare(isdr, world, tid, sig1).chosen["euiccSigned2"]["euiccOtpk"].native
    card.power_off()
    card.power_on()
    sig1 = bytes(authenticate(isdr, world, tid).chosen["euiccSignature1"].native)
    retry = prepare(isdr, world, tid, sig1, previous_otpk=first)
    assert retry.chosen["euiccSigned2"]["euiccOtpk"].native != first


def test_install_commit_failure_installs_nothing(tmp_path: Path, world: World) -> None:
    isdr = make_isdr(tmp_path, world)
    before = isdr.store.state

    # every store statement fails once the BPP starts (the eUICC's session is in memory)
    def tamper(blocks: list[bytes]) -> list[bytes]:
        isdr.store.connection.set_progress_handler(lambda: 1, 1)
        return blocks

    pir_der = download(isdr, world, tamper=tamper)
    isdr.store.connection.set_progress_handler(None, 1)
    pir = asn1.decode(rsp.ProfileInstallationResult, pir_der)
    err = pir["profileInstallationResultData"]["finalResult"]
    assert err.name == "errorResult"
    assert err.chosen["errorReason"].native == "installFailedDueToUnknownError"
    assert isdr.store.state == before
    with Store.open(tmp_path / "e.db") as again:
        assert again.state == before


def test_package_installer_checks(tmp_path: Path, world: World) -> None:
    from rspfed.errors import ProtocolError

    seen: list[bytes] = []

    def good(package: bytes) -> str:
        seen.append(package)
        return "89000123456789012341"  # EF.ICCID 98 00 10 32 54 76 98 10 32 14

    def bad(package: bytes) -> str:
        raise ProtocolError("unsupported profile element")

    def other(package: bytes) -> str:
        return "89000123456789012349"

    isdr = make_isdr(tmp_path / "good", world, installer=good)
    pir = asn1.decode(rsp.ProfileInstallationResult, download(isdr, world))
    assert pir["profileInstallationResultData"]["finalResult"].name == "successResult"
    assert seen == [PACKAGE]
    for name, installer, reason in (
        ("bad", bad, "installFailedDueToPEProcessingError"),
        ("other", other, "installFailedDueToIccidMismatch"),
    ):
        isdr = make_isdr(tmp_path / name, world, installer=installer)
        pir = asn1.decode(rsp.ProfileInstallationResult, download(isdr, world))
        err = pir["profileInstallationResultData"]["finalResult"].chosen
        assert err["bppCommandId"].native == "loadProfileElements"
        assert err["errorReason"].native == reason
        assert isdr.store.state.profiles == ()


def test_ci_choice(tmp_path: Path, world: World) -> None:
    other = TestPki.create(tmp_path / "other", now=NOW, curves=[Curve.NIST])
    other_ci = other.material(Curve.NIST).ci.public_bytes(Encoding.DER)
    store = Store.create(tmp_path / "e.db", eid=bytes.fromhex(world.eid))
    isdr = IsdR(
        store=store,
        credentials=[world.credential],
        rand=os.urandom,
        now=lambda: NOW,
        ci_certificates=[world.ci_der, other_ci],
    )
    tid = b"K" * 16
    # a CI the eUICC has no certificate under: ciPKUnknown
    from rspfed.pki import parse_certificate

    other_ski = parse_certificate(other_ci).subject_key_id
    assert other_ski is not None
    resp = authenticate(isdr, world, tid, ci=other_ski)
    assert resp.chosen[1].native == "ciPKUnknown"
    # CERT.DPpb under another (trusted) CI than CERT.DPauth: invalidCertificate
    pb_key = ecka.generate_key_pair(Curve.NIST, os.urandom)
    pb_other = other.issue_smdp_certificate(
        CertificateRole.DPPB, pb_key.public_key(), Curve.NIST, now=NOW
    ).public_bytes(Encoding.DER)
    sig1 = bytes(authenticate(isdr, world, tid).chosen["euiccSignature1"].native)
    resp2 = prepare(isdr, world, tid, sig1, key=pb_key, cert=pb_other)
    assert resp2.chosen[1].native == "invalidCertificate"
    # CERT.DPauth under the other trusted CI while the eUICC signs under its own: accepted
    auth_key = ecka.generate_key_pair(Curve.NIST, os.urandom)
    auth_other = other.issue_smdp_certificate(
        CertificateRole.DPAUTH, auth_key.public_key(), Curve.NIST, now=NOW
    ).public_bytes(Encoding.DER)
    ok = authenticate(isdr, world, tid, key=auth_key, cert=auth_other)
    assert ok.name == "authenticateResponseOk"


def test_brainpool_download(tmp_path: Path) -> None:
    bp = make_world(tmp_path / "pki", Curve.BRAINPOOL)
    isdr = make_isdr(tmp_path / "e", bp)
    pir = download(isdr, bp)
    es8p.verify_profile_installation_result(pir, bp.credential.private_key.public_key())
    assert [p.iccid for p in isdr.store.state.profiles] == [ICCID]


def _extended(der: bytes, extra: bytes) -> bytes:
    """``der`` (one TLV) with ``extra`` appended to its contents (an extension addition)."""
    tlv = parse_one(der)
    return encode_tlv(tlv.tag, tlv.value + extra)


def test_requests_with_extension_additions(tmp_path: Path, world: World) -> None:
    """Unknown trailing components (extension additions) of AuthenticateServerRequest,
    ServerSigned1, PrepareDownloadRequest and SmdpSigned2 are ignored, and signatures
    cover the received encodings; hashCc and bppEuiccOtpk are still found."""
    import hashlib

    from asn1crypto import x509 as ax509

    extra = bytes.fromhex("9E0101")  # [30] primitive: no component has it
    isdr = make_isdr(tmp_path, world)
    tid = b"X" * 16
    challenge = asn1.decode(rsp.GetEuiccChallengeResponse, isdr.handle(bytes.fromhex("BF2E00")))
    signed1 = _extended(
        asn1.encode(
            rsp.ServerSigned1(
                {
                    "transactionId": tid,
                    "euiccChallenge": bytes(challenge["euiccChallenge"].native),
                    "serverAddress": "smdp.example",
                    "serverChallenge": b"S" * 16,
                }
            )
        ),
        extra,
    )
    req = rsp.AuthenticateServerRequest(
        {
            "serverSigned1": asn1.decode(rsp.ServerSigned1, signed1),
            "serverSignature1": signature.sign(world.dp_auth_key, signed1),
            "euiccCiPKIdToBeUsed": ci_pkid(world),
            "serverCertificate": ax509.Certificate.load(world.dp_auth_cert),
            "ctxParams1": CTX,
        }
    )
    outer = asn1.decode(rsp.AuthenticateServerRequest, _extended(asn1.encode(req), extra))
    assert asn1.received_der(outer["serverSigned1"]) == signed1
    resp = asn1.decode(
        rsp.AuthenticateServerResponse, isdr.handle(_extended(asn1.encode(req), extra))
    )
    assert resp.name == "authenticateResponseOk"
    euicc_signed1 = resp.chosen["euiccSigned1"]
    assert euicc_signed1["serverAddress"].native == "smdp.example"
    assert bytes(euicc_signed1["serverChallenge"].native) == b"S" * 16
    assert asn1.received_der(euicc_signed1["ctxParams1"]) == asn1.encode(CTX)
    sig1 = bytes(resp.chosen["euiccSignature1"].native)

    def prepare_extended(previous: bytes | None) -> rsp.PrepareDownloadResponse:
        fields: dict[str, Any] = {"transactionId": tid, "ccRequiredFlag": True}
        if previous is not None:
            fields["bppEuiccOtpk"] = previous
        signed2 = _extended(asn1.encode(rsp.SmdpSigned2(fields)), extra)
        sig2 = signature.sign(world.dp_pb_key, signed2 + sig_tlv(sig1))
        hash_cc = hashlib.sha256(hashlib.sha256(b"1234").digest() + tid).digest()
        value = {
            "smdpSigned2": asn1.decode(rsp.SmdpSigned2, signed2),
            "smdpSignature2": sig2,
            "hashCc": hash_cc,
            "smdpCertificate": ax509.Certificate.load(world.dp_pb_cert),
        }
        der = _extended(asn1.encode(rsp.PrepareDownloadRequest(value)), extra)
        out = asn1.decode(rsp.PrepareDownloadResponse, isdr.handle(der))
        assert out.name == "downloadResponseOk"
        assert bytes(out.chosen["euiccSigned2"]["hashCc"].native) == hash_cc
        return out

    otpk = bytes(prepare_extended(None).chosen["euiccSigned2"]["euiccOtpk"].native)
    # the retry case: a new session naming the kept otPK gets the same key back
    sig1 = bytes(authenticate(isdr, world, tid).chosen["euiccSignature1"].native)
    again = prepare_extended(otpk)
    assert bytes(again.chosen["euiccSigned2"]["euiccOtpk"].native) == otpk
