"""The SGP.22 retry after a cut link, notifications, and download-progress events."""

from __future__ import annotations

from pathlib import Path

import pytest

from rspfed import asn1, es8p
from rspfed.asn1 import rsp
from rspfed.errors import EuiccVerificationError
from rspfed.es9p import messages as m
from rspfed.saip.identifiers import encode_iccid
from rspfed.smdp import ItemState, NotificationPoint
from tests.euicc.test_isdr import delete_req, disable_req, enable_req
from tests.smdp.helpers import Lpa, World, make_euicc, make_smdp, make_world, pir_ok, state_of

CALLBACK = "https://operator.example.com/es2plus"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("pki") / "pki")


def after_isc(bpp: bytes) -> bytes:
    """The BPP without its header and InitialiseSecureChannelRequest (the protected segments)."""
    value = asn1.decode(rsp.BoundProfilePackage, bpp)
    return bpp[bpp.find(asn1.received_der(value["firstSequenceOf87"])) :]


def test_retry_after_a_cut_link_reuses_the_package(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world)
    lpa = Lpa(smdp, make_euicc(world, tmp_path / "e").isdr)
    iccid = smdp.download_order(profile_type="ts48")
    mid = smdp.confirm_order(iccid=iccid).matching_id
    auth = lpa.authenticate(lpa.initiate(), mid)
    assert asn1.decode(rsp.SmdpSigned2, auth.smdp_signed2)["bppEuiccOtpk"].native is None
    first = lpa.get_bpp(auth)  # ... and the link is cut: the eUICC never sees it
    assert state_of(smdp, iccid) is ItemState.DOWNLOADED
    kept = smdp.store.get_binding(iccid)
    assert kept is not None

    auth2 = lpa.authenticate(lpa.initiate(), mid)
    signed2 = asn1.decode(rsp.SmdpSigned2, auth2.smdp_signed2)
    assert bytes(signed2["bppEuiccOtpk"].native) == kept.euicc_otpk
    second = lpa.get_bpp(auth2)
    assert auth2.transaction_id != auth.transaction_id
    assert second.bound_profile_package != first.bound_profile_package
    assert after_isc(second.bound_profile_package) == after_isc(first.bound_profile_package)
    pir = lpa.load(second)
    assert pir_ok(pir)
    lpa.notify(pir)
    assert state_of(smdp, iccid) is ItemState.INSTALLED
    assert smdp.store.get_binding(iccid) is None


def test_retry_with_a_new_euicc_key_binds_again(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world)
    euicc = make_euicc(world, tmp_path / "e")
    lpa = Lpa(smdp, euicc.isdr)
    iccid = smdp.download_order(profile_type="ts48")
    mid = smdp.confirm_order(iccid=iccid).matching_id
    first = lpa.get_bpp(lpa.authenticate(lpa.initiate(), mid))
    euicc.isdr.reset()  # the eUICC forgets its one-time key
    second = lpa.get_bpp(lpa.authenticate(lpa.initiate(), mid))
    assert after_isc(second.bound_profile_package) != after_isc(first.bound_profile_package)
    pir = lpa.load(second)
    assert pir_ok(pir)
    lpa.notify(pir)
    assert state_of(smdp, iccid) is ItemState.INSTALLED


def test_pir_error_moves_to_error(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world, callback_url=CALLBACK)
    lpa = Lpa(smdp, make_euicc(world, tmp_path / "e").isdr)
    iccid = smdp.download_order(profile_type="ts48")
    mid = smdp.confirm_order(iccid=iccid).matching_id
    bpp = lpa.get_bpp(lpa.authenticate(lpa.initiate(), mid))
    blocks = es8p.segment_bpp_for_es10b(bpp.bound_profile_package)
    damaged = bytearray(blocks[-1])
    damaged[-3] ^= 1
    blocks[-1] = bytes(damaged)
    pir = b""
    for block in blocks:
        pir = lpa.isdr.handle(block)
        if pir:
            break
    assert not pir_ok(pir)
    lpa.notify(pir)
    assert state_of(smdp, iccid) is ItemState.ERROR
    assert [n.event for n in smdp.notifications(iccid)] == ["install-error"]
    last = smdp.take_progress_events()[-1]
    assert last.notification_point_id == NotificationPoint.BPP_INSTALLATION
    assert last.status is not None
    # the operator takes the instance back; a new order gets it with fresh keys
    smdp.cancel_order(iccid=iccid)
    assert state_of(smdp, iccid) is ItemState.AVAILABLE


def test_notifications_move_the_inventory(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world, callback_url=CALLBACK)
    euicc = make_euicc(world, tmp_path / "e")
    lpa = Lpa(smdp, euicc.isdr)
    iccid = smdp.download_order(profile_type="ts48", requester="op1")
    mid = smdp.confirm_order(iccid=iccid).matching_id
    pir = lpa.download(mid)
    lpa.notify(pir)  # the same PIR twice: recorded, no change
    assert state_of(smdp, iccid) is ItemState.INSTALLED

    events = smdp.take_progress_events()
    assert [e.notification_point_id for e in events] == [
        NotificationPoint.BPP_DOWNLOAD,
        NotificationPoint.BPP_INSTALLATION,
    ]
    assert all(e.callback_url == CALLBACK and e.status is None for e in events)
    assert events[1].result_data == pir
    assert events[0].eid == euicc.eid
    assert smdp.take_progress_events() == []

    raw = encode_iccid(iccid)
    for request in (enable_req(raw), disable_req(raw), delete_req(raw)):
        assert euicc.isdr.handle(request)[-1] == 0  # ok
    listed = asn1.decode(rsp.RetrieveNotificationsListResponse, euicc.isdr.handle(b"\xbf\x2b\x00"))
    others = [asn1.received_der(n) for n in listed.chosen if n.name == "otherSignedNotification"]
    assert len(others) == 3
    tampered = bytearray(others[0])
    tampered[-5] ^= 1  # inside the EUM certificate's signature
    with pytest.raises(EuiccVerificationError):
        smdp.handle_notification(m.HandleNotificationRequest(bytes(tampered)))
    for der in others:
        smdp.handle_notification(m.HandleNotificationRequest(der))
    assert [n.event for n in smdp.notifications(iccid)] == [
        "install",
        "install",
        "enable",
        "disable",
        "delete",
    ]
    assert state_of(smdp, iccid) is ItemState.UNAVAILABLE
    points = [e.notification_point_id for e in smdp.take_progress_events()]
    assert points == [NotificationPoint.HANDLE_NOTIFICATION] * 3
