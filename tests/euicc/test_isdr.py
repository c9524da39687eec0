"""ES10c/ES10b notification functions of the ISD-R: DER in, DER out, state in the store."""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.crypto import ecka
from rspfed.crypto.curves import Curve
from rspfed.errors import DecodeError
from rspfed.es8p.result import InstallationSuccess, build_profile_installation_result
from rspfed.euicc import _state as st
from rspfed.euicc.apdu import CommandApdu
from rspfed.euicc.isdr import ISD_R_AID, EuiccCredential, IsdR
from rspfed.euicc.store import Store
from rspfed.euicc.uicc import Uicc, demo_state
from rspfed.pki.eid import generate_eid
from rspfed.pki.testpki import TestPki

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
EVENTS = frozenset(
    {"notificationInstall", "notificationEnable", "notificationDisable", "notificationDelete"}
)


@pytest.fixture(scope="module")
def credential(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, EuiccCredential]:
    pki = TestPki.create(tmp_path_factory.mktemp("pki") / "pki", now=NOW, curves=[Curve.NIST])
    eid = generate_eid(pki.ein, os.urandom)
    key = ecka.generate_key_pair(Curve.NIST, os.urandom)
    cert = pki.issue_euicc_certificate(eid, key.public_key(), Curve.NIST, now=NOW)
    eum = pki.material(Curve.NIST).eum
    return eid, EuiccCredential(
        key, cert.public_bytes(Encoding.DER), eum.public_bytes(Encoding.DER)
    )


class Switches:
    def __init__(self) -> None:
        self.seen: list[bytes | None] = []

    def __call__(self, profile: st.Profile | None) -> None:
        self.seen.append(None if profile is None else profile.iccid)


def make_isdr(tmp_path: Path, credential: tuple[str, EuiccCredential]) -> tuple[IsdR, Switches]:
    eid, cred = credential
    store = Store.create(tmp_path / "e.db", eid=bytes.fromhex(eid))
    switches = Switches()
    isdr = IsdR(
        store=store, credentials=[cred], rand=os.urandom, now=lambda: NOW, on_switch=switches
    )
    return isdr, switches


ICCIDS = [bytes.fromhex(f"98{n:02d}1032547698103214") for n in range(1, 4)]


def install(isdr: IsdR, n: int, **kw: object) -> st.Profile:
    store = isdr.store
    p = st.Profile(
        iccid=ICCIDS[n],
        isdp_aid=st.next_isdp_aid(store.state),
        service_provider_name=f"SP{n}",
        profile_name=f"Profile {n}",
        notification_config=(st.NotificationConfig(EVENTS, f"smdp{n}.example"),),
        profile_owner=st.OperatorId(bytes.fromhex("00F110")),
        **kw,  # type: ignore[arg-type]
    )
    meta = rsp.NotificationMetadata(
        {
            "seqNumber": store.state.next_seq,
            "profileManagementOperation": {"notificationInstall"},
            "notificationAddress": f"smdp{n}.example",
            "iccid": p.iccid,
        }
    )
    pir = build_profile_installation_result(
        transaction_id=bytes(16),
        notification_metadata=meta,
        final_result=InstallationSuccess(p.isdp_aid),
        euicc_key=isdr.credentials[0].private_key,
    )
    out = st.install(store.state, p, address=f"smdp{n}.example", pending=pir)
    assert out.ok
    store.commit(out.state, contents={p.iccid: b"pkg"})
    return out.state.profiles[-1]


def enable_req(iccid: bytes) -> bytes:
    return asn1.encode(
        rsp.EnableProfileRequest(
            {
                "profileIdentifier": rsp.EnableProfileRequest_profileIdentifier(
                    name="iccid", value=iccid
                ),
                "refreshFlag": False,
            }
        )
    )


def disable_req(iccid: bytes) -> bytes:
    return asn1.encode(
        rsp.DisableProfileRequest(
            {
                "profileIdentifier": rsp.DisableProfileRequest_profileIdentifier(
                    name="iccid", value=iccid
                ),
                "refreshFlag": False,
            }
        )
    )


def delete_req(iccid: bytes) -> bytes:
    return asn1.encode(rsp.DeleteProfileRequest(name="iccid", value=iccid))


def result(cls: type[asn1.Asn1Value], der: bytes, field: str) -> object:
    value: Any = asn1.decode(cls, der)
    return value[field].native


def test_profiles_info_and_lifecycle(
    tmp_path: Path, credential: tuple[str, EuiccCredential]
) -> None:
    isdr, switches = make_isdr(tmp_path, credential)
    a = install(isdr, 0)
    b = install(isdr, 1, profile_class=0)
    info = asn1.decode(rsp.ProfileInfoListResponse, isdr.handle(bytes.fromhex("BF2D00")))
    assert info.name == "profileInfoListOk"
    listed = info.chosen.native
    assert [bytes(p["iccid"]) for p in listed] == [a.iccid, b.iccid]
    assert listed[0]["profileState"] == "disabled"
    assert listed[0]["profileName"] == "Profile 0"
    assert listed[1]["profileClass"] == "test"
    assert listed[0]["notificationConfigurationInfo"][0]["notificationAddress"] == "smdp0.example"

    assert (
        result(rsp.EnableProfileResponse, isdr.handle(enable_req(a.iccid)), "enableResult") == "ok"
    )
    assert switches.seen == [a.iccid]
    assert (
        result(rsp.EnableProfileResponse, isdr.handle(enable_req(a.iccid)), "enableResult")
        == "profileNotInDisabledState"
    )
    assert result(rsp.DeleteProfileResponse, isdr.handle(delete_req(a.iccid)), "deleteResult") == (
        "profileNotInDisabledState"
    )
    assert (
        result(rsp.EnableProfileResponse, isdr.handle(enable_req(b.iccid)), "enableResult") == "ok"
    )
    assert switches.seen == [a.iccid, b.iccid]
    assert (
        result(rsp.DisableProfileResponse, isdr.handle(disable_req(b.iccid)), "disableResult")
        == "ok"
    )
    assert switches.seen[-1] is None
    assert (
        result(rsp.DeleteProfileResponse, isdr.handle(delete_req(a.iccid)), "deleteResult") == "ok"
    )
    assert (
        result(rsp.EnableProfileResponse, isdr.handle(enable_req(ICCIDS[2])), "enableResult")
        == "iccidOrAidNotFound"
    )
    # the store saw every change
    with Store.open(tmp_path / "e.db") as again:
        assert again.state == isdr.store.state


def test_profiles_info_search_and_tag_list(
    tmp_path: Path, credential: tuple[str, EuiccCredential]
) -> None:
    isdr, _ = make_isdr(tmp_path, credential)
    a = install(isdr, 0)
    install(isdr, 1, profile_class=0)

    def query(
        criteria: rsp.ProfileInfoListRequest_searchCriteria | None, tags: bytes | None
    ) -> list[dict[str, Any]]:
        value: dict[str, object] = {}
        if criteria is not None:
            value["searchCriteria"] = criteria
        if tags is not None:
            value["tagList"] = tags
        der = isdr.handle(asn1.encode(rsp.ProfileInfoListRequest(value)))
        resp = asn1.decode(rsp.ProfileInfoListResponse, der)
        assert resp.name == "profileInfoListOk"
        out: list[dict[str, Any]] = resp.chosen.native
        return out

    by_iccid = rsp.ProfileInfoListRequest_searchCriteria(name="iccid", value=a.iccid)
    assert [bytes(p["iccid"]) for p in query(by_iccid, None)] == [a.iccid]
    by_aid = rsp.ProfileInfoListRequest_searchCriteria(name="isdpAid", value=a.isdp_aid)
    assert len(query(by_aid, None)) == 1
    by_class = rsp.ProfileInfoListRequest_searchCriteria(name="profileClass", value="test")
    assert [p["profileClass"] for p in query(by_class, None)] == ["test"]
    only = query(None, bytes.fromhex("5A9F7092"))
    assert {k for k, v in only[0].items() if v is not None and k != "profileClass"} == {
        "iccid",
        "profileState",
        "profileName",
    }
    nothing = rsp.ProfileInfoListRequest_searchCriteria(name="iccid", value=bytes(10))
    assert query(nothing, None) == []


def test_notifications_signed_listed_retrieved_removed(
    tmp_path: Path, credential: tuple[str, EuiccCredential]
) -> None:
    isdr, _ = make_isdr(tmp_path, credential)
    a = install(isdr, 0)
    isdr.handle(enable_req(a.iccid))
    isdr.handle(disable_req(a.iccid))
    listed = asn1.decode(rsp.ListNotificationResponse, isdr.handle(bytes.fromhex("BF2800")))
    metas = listed.chosen.native
    assert [(m["seqNumber"], m["profileManagementOperation"]) for m in metas] == [
        (1, {"notificationInstall"}),
        (2, {"notificationEnable"}),
        (3, {"notificationDisable"}),
    ]
    only_enable = asn1.encode(
        rsp.ListNotificationRequest({"profileManagementOperation": {"notificationEnable"}})
    )
    assert len(asn1.decode(rsp.ListNotificationResponse, isdr.handle(only_enable)).chosen) == 1

    got = asn1.decode(rsp.RetrieveNotificationsListResponse, isdr.handle(bytes.fromhex("BF2B00")))
    assert got.name == "notificationList"
    assert len(got.chosen) == 3
    other = got.chosen[1]
    assert other.name == "otherSignedNotification"
    signed = other.chosen
    tbs = asn1.received_der(signed["tbsOtherNotification"])
    assert tbs[:2] == b"\xbf\x2f"
    euicc_cert = x509.load_der_x509_certificate(asn1.received_der(signed["euiccCertificate"]))
    sig = bytes(signed["euiccNotificationSignature"].native)
    pub = euicc_cert.public_key()
    assert isinstance(pub, ec.EllipticCurvePublicKey)
    der_sig = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    pub.verify(der_sig, tbs, ec.ECDSA(hashes.SHA256()))
    assert signed["tbsOtherNotification"]["iccid"].native == a.iccid

    def retrieve_seq(seq: int) -> rsp.RetrieveNotificationsListResponse:
        crit = rsp.RetrieveNotificationsListRequest_searchCriteria(name="seqNumber", value=seq)
        req = asn1.encode(rsp.RetrieveNotificationsListRequest({"searchCriteria": crit}))
        return asn1.decode(rsp.RetrieveNotificationsListResponse, isdr.handle(req))

    assert len(retrieve_seq(2).chosen) == 1
    missing = retrieve_seq(42)
    assert (missing.name, missing.chosen.native) == (
        "notificationsListResultError",
        "noResultAvailable",
    )

    def remove(seq: int) -> object:
        req = asn1.encode(rsp.NotificationSentRequest({"seqNumber": seq}))
        return result(rsp.NotificationSentResponse, isdr.handle(req), "deleteNotificationStatus")

    assert remove(2) == "ok"
    assert remove(2) == "nothingToDelete"
    assert [n.seq_number for n in isdr.store.state.notifications] == [1, 3]


def test_nickname_eid_rat_addresses_reset(
    tmp_path: Path, credential: tuple[str, EuiccCredential]
) -> None:
    isdr, _ = make_isdr(tmp_path, credential)
    a = install(isdr, 0)
    req = asn1.encode(rsp.SetNicknameRequest({"iccid": a.iccid, "profileNickname": "home"}))
    assert result(rsp.SetNicknameResponse, isdr.handle(req), "setNicknameResult") == "ok"
    assert isdr.store.state.profiles[0].nickname == "home"
    req = asn1.encode(rsp.SetNicknameRequest({"iccid": bytes(10), "profileNickname": "x"}))
    assert result(rsp.SetNicknameResponse, isdr.handle(req), "setNicknameResult") == "iccidNotFound"

    eid = result(rsp.GetEuiccDataResponse, isdr.handle(bytes.fromhex("BF3E035C015A")), "eidValue")
    assert eid == bytes.fromhex(credential[0])
    with pytest.raises(DecodeError):
        isdr.handle(bytes.fromhex("BF3E035C014F"))

    assert result(rsp.GetRatResponse, isdr.handle(bytes.fromhex("BF4300")), "rat") == []

    addresses = asn1.decode(
        rsp.EuiccConfiguredAddressesResponse, isdr.handle(bytes.fromhex("BF3C00"))
    )
    assert addresses["defaultDpAddress"].native is None
    req = asn1.encode(rsp.SetDefaultDpAddressRequest({"defaultDpAddress": "dp.example"}))
    assert (
        result(rsp.SetDefaultDpAddressResponse, isdr.handle(req), "setDefaultDpAddressResult")
        == "ok"
    )
    addresses = asn1.decode(
        rsp.EuiccConfiguredAddressesResponse, isdr.handle(bytes.fromhex("BF3C00"))
    )
    assert addresses["defaultDpAddress"].native == "dp.example"

    reset = asn1.encode(
        rsp.EuiccMemoryResetRequest(
            {"resetOptions": {"deleteOperationalProfiles", "resetDefaultSmdpAddress"}}
        )
    )
    assert result(rsp.EuiccMemoryResetResponse, isdr.handle(reset), "resetResult") == "ok"
    assert isdr.store.state.profiles == ()
    assert isdr.store.state.default_dp_address is None
    assert (
        result(rsp.EuiccMemoryResetResponse, isdr.handle(reset), "resetResult") == "nothingToDelete"
    )


@pytest.mark.parametrize(
    "request_hex",
    [
        "",
        "00",
        "BF",
        "BF2D",
        "BF2D01",
        "BF2D0100",
        "BF31035A0100",
        "BF99020000",
        "30020500",
        "BF33035A0100",
        "BF3E00",
        "BF2900",
    ],
)
def test_bad_input_raises_decode_error_and_changes_nothing(
    tmp_path: Path, credential: tuple[str, EuiccCredential], request_hex: str
) -> None:
    isdr, _ = make_isdr(tmp_path, credential)
    install(isdr, 0)
    before = isdr.store.state
    with pytest.raises(DecodeError):
        isdr.handle(bytes.fromhex(request_hex))
    assert isdr.store.state == before


def test_over_apdus(tmp_path: Path, credential: tuple[str, EuiccCredential]) -> None:
    isdr, _ = make_isdr(tmp_path, credential)
    install(isdr, 0)
    card = Uicc(demo_state())
    card.register_applet(isdr)
    card.power_on()
    assert (
        card.transmit(bytes([0x00, 0xA4, 0x04, 0x00, len(ISD_R_AID)]) + ISD_R_AID)[-2:]
        == b"\x90\x00"
    )
    resp = card.transmit(
        CommandApdu(0x80, 0xE2, 0x91, 0x00, bytes.fromhex("BF2D00"), ne=256).encode()
    )
    assert resp[-2:] == b"\x90\x00"
    info = asn1.decode(rsp.ProfileInfoListResponse, resp[:-2])
    assert len(info.chosen) == 1
    bad = card.transmit(
        CommandApdu(0x80, 0xE2, 0x91, 0x00, bytes.fromhex("BF2D0100"), ne=256).encode()
    )
    assert bad == b"\x6a\x80"


def _fail_writes(store: Store) -> None:
    store.connection.set_progress_handler(lambda: 1, 1)  # every statement is interrupted


def test_store_failure_answers_undefined_error(
    tmp_path: Path, credential: tuple[str, EuiccCredential]
) -> None:
    isdr, switches = make_isdr(tmp_path, credential)
    a = install(isdr, 0)
    before = isdr.store.state
    _fail_writes(isdr.store)
    assert result(rsp.EnableProfileResponse, isdr.handle(enable_req(a.iccid)), "enableResult") == (
        "undefinedError"
    )
    req = asn1.encode(rsp.NotificationSentRequest({"seqNumber": 1}))
    assert result(rsp.NotificationSentResponse, isdr.handle(req), "deleteNotificationStatus") == (
        "undefinedError"
    )
    req = asn1.encode(rsp.SetDefaultDpAddressRequest({"defaultDpAddress": "x.example"}))
    assert (
        result(rsp.SetDefaultDpAddressResponse, isdr.handle(req), "setDefaultDpAddressResult")
        == "undefinedError"
    )
    isdr.store.connection.set_progress_handler(None, 1)
    assert isdr.store.state == before
    assert switches.seen == []
    with Store.open(tmp_path / "e.db") as again:
        assert again.state == before


VALID_REQUESTS = [
    bytes.fromhex(h)
    for h in (
        "BF2D00",
        "BF2800",
        "BF2B00",
        "BF4300",
        "BF3C00",
        "BF2000",
        "BF2200",
        "BF3E035C015A",
        "BF2D065C045A9F7092",
    )
]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base=hs.sampled_from([*VALID_REQUESTS, b""]),
    edits=hs.lists(hs.tuples(hs.integers(0, 40), hs.integers(0, 255)), max_size=4),
    tail=hs.binary(max_size=8),
)
def test_fuzzed_requests_only_decode_errors_and_no_change(
    isdr_for_fuzz: IsdR, base: bytes, edits: list[tuple[int, int]], tail: bytes
) -> None:
    data = bytearray(base + tail)
    for pos, value in edits:
        if data:
            data[pos % len(data)] = value
    before = isdr_for_fuzz.store.state
    with contextlib.suppress(DecodeError):
        isdr_for_fuzz.handle(bytes(data))
    after = isdr_for_fuzz.store.state
    # only the state-changing functions may change it, and none of the bases is one
    changing = {0x31, 0x32, 0x33, 0x29, 0x34, 0x30, 0x3F, 0x35}
    if len(data) < 2 or data[0] != 0xBF or data[1] not in changing:
        assert after == before


@pytest.fixture(scope="module")
def isdr_for_fuzz(
    tmp_path_factory: pytest.TempPathFactory, credential: tuple[str, EuiccCredential]
) -> IsdR:
    isdr, _ = make_isdr(tmp_path_factory.mktemp("fuzz"), credential)
    install(isdr, 0)
    return isdr
