"""Whole downloads in-process: rspfed.smdp.Smdp ↔ test LPA ↔ a real rspfed.euicc.Euicc."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed import asn1, es8p
from rspfed.asn1 import rsp
from rspfed.crypto.curves import Curve
from rspfed.crypto.milenage import compute_opc
from rspfed.saip.identifiers import encode_iccid
from rspfed.saip.personalise import Personalisation, personalise
from rspfed.smdp import ItemState, Smdp
from tests.smdp.helpers import (
    ADDRESS,
    TEMPLATE,
    TYPE_METADATA,
    Clock,
    Lpa,
    World,
    item_of,
    make_euicc,
    make_smdp,
    make_world,
    pir_ok,
    state_of,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("pki") / "pki")


@pytest.mark.parametrize("curve", [Curve.NIST, Curve.BRAINPOOL])
def test_download_installs_the_personalised_profile(
    tmp_path: Path, world: World, curve: Curve
) -> None:
    smdp = make_smdp(world, tmp_path / "smdp.db")
    euicc = make_euicc(world, tmp_path / "e", curve)
    iccid = smdp.download_order(profile_type="ts48")
    order = smdp.confirm_order(iccid=iccid)
    assert order.activation_code == f"LPA:1${ADDRESS}${order.matching_id}"
    assert state_of(smdp, iccid) is ItemState.RELEASED

    lpa = Lpa(smdp, euicc.isdr)
    init = lpa.initiate()
    signed1 = asn1.decode(rsp.ServerSigned1, init.server_signed1)
    assert signed1["serverAddress"].native == ADDRESS
    auth = lpa.authenticate(init, order.matching_id)
    meta = asn1.decode(rsp.StoreMetadataRequest, auth.profile_metadata)
    assert bytes(meta["iccid"].native) == encode_iccid(iccid)
    assert meta["serviceProviderName"].native == TYPE_METADATA["serviceProviderName"]
    assert state_of(smdp, iccid) is ItemState.RELEASED
    bpp = lpa.get_bpp(auth)
    item = item_of(smdp, iccid)
    assert item.state is ItemState.DOWNLOADED
    assert item.eid == euicc.eid
    # the same bytes as es8p.build_bound_profile_package with the kept one-time key
    kept = smdp.store.get_binding(iccid)
    assert kept is not None
    ot_key = ec.derive_private_key(int.from_bytes(kept.smdp_ot_key[1:], "big"), curve.ec_curve)
    cred = next(c for c in smdp.config.credentials if c.curve is curve)
    reference = es8p.build_bound_profile_package(
        transaction_id=auth.transaction_id,
        euicc_otpk=kept.euicc_otpk,
        smdp_ot_key=ot_key,
        dp_pb_key=cred.dp_pb_key,
        eid=bytes.fromhex(euicc.eid),
        host_id=smdp.config.host_id,
        metadata=auth.profile_metadata,
        profile=personalise(
            TEMPLATE,
            Personalisation(
                iccid=iccid, imsi=item.imsi, k=item.k, opc=item.opc, algorithm="milenage"
            ),
        ),
    )
    ours = bpp.bound_profile_package
    at = ours.find(b"\x5f\x37\x40")  # smdpSign (ECDSA: randomised)
    assert len(ours) == len(reference)
    assert ours[:at] == reference[:at]
    assert ours[at + 67 :] == reference[at + 67 :]
    pir = lpa.load(bpp)
    assert pir_ok(pir)
    lpa.notify(pir)
    item = item_of(smdp, iccid)
    assert item.state is ItemState.INSTALLED
    assert [n.event for n in smdp.notifications(iccid)] == ["install"]

    # the eUICC holds exactly what the reference personalisation gives for the item
    expected = personalise(
        TEMPLATE,
        Personalisation(iccid=iccid, imsi=item.imsi, k=item.k, opc=item.opc, algorithm="milenage"),
    )
    assert euicc.store.content(encode_iccid(iccid)) == expected
    assert item.opc == compute_opc(item.k, bytes.fromhex(TYPE_METADATA["op"]))
    assert [p.iccid for p in euicc.store.state.profiles] == [encode_iccid(iccid)]


def test_second_order_same_type_new_instance(tmp_path: Path, world: World) -> None:
    smdp = make_smdp(world, clock=Clock())
    first = smdp.download_order(profile_type="ts48")
    second = smdp.download_order(profile_type="ts48")
    assert first != second
    assert len(first) == len(second) == 20
    items = {i.iccid: i for i in smdp.inventory("ts48")}
    assert items[first].imsi != items[second].imsi
    assert items[first].k != items[second].k


def test_prepare_profile_types(world: World) -> None:
    first = make_smdp(world)
    again = Smdp(first.config, first.store, now=Clock())
    assert again.prepare_profile_types() == 1
