"""Federation across a carrier switch (issue F item 4), with the in-process operator cores.

The phone is the primary of a subscription at Carrier One with a linked
laptop.  It downloads Carrier Two's profile and *switches* to it through the
profile policy.  The laptop keeps working: it holds its own linked profile,
bound to its own eUICC, served by Carrier One, which the phone's switch does
not touch; and the phone still manages the Carrier One subscription with its
federation key (signed requests need no enabled Carrier One profile).  Then
the laptop moves: the phone registers at Carrier Two (a second federation
record, a second key), signs a new token, the laptop redeems it there, and
the phone removes it from Carrier One, whose network refuses the old
profile from then on.
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from rspfed.errors import NotFoundError
from rspfed.federation import DeviceClass, Service
from rspfed.federation.operator import Operator
from rspfed.federation.signing import sign_request
from rspfed.federation.store import SqliteOperatorStore
from rspfed.federation.types import Caller, DeviceRole, DeviceState
from rspfed.lpa import InProcessEs10, Lpa
from rspfed.lpa.failover import Failover
from rspfed.lpa.notifications import Delivery, deliver
from rspfed.lpa.policy import ProfilePolicy
from rspfed.lpa.settings import LpaSettings
from rspfed.network import Auc, NetworkRefusedError, RefusalReason, SqliteSubscriberStore
from rspfed.smdp import ProfileType, Smdp, SqliteSmdpStore
from tests.carrier.world import InProcessEs9
from tests.federation.world import PLAN, OperatorWorld, Phone, make_operator_world
from tests.smdp.helpers import ADDRESS, TEMPLATE, TYPE_METADATA
from tests.smdp.helpers import Lpa as MiniLpa

ADDRESS_TWO = "smdp.carrier-two.example"


def carrier_two(one: OperatorWorld, tmp: Path) -> OperatorWorld:
    """A second operator (own SM-DP+ address, ICCID range and HPLMN 00102) on one's clock."""
    tmp.mkdir(parents=True, exist_ok=True)
    smdp = Smdp(
        attrs.evolve(one.world.config, address=ADDRESS_TWO),
        SqliteSmdpStore.create(tmp / "smdp.sqlite"),
        now=one.clock,
    )
    meta: dict[str, Any] = dict(TYPE_METADATA)
    meta.update(
        iccidPrefix="8900002",
        imsiPrefix="00102",
        notificationConfigurationInfo=[
            {"events": ["install", "enable", "disable", "delete"], "address": ADDRESS_TWO}
        ],
    )
    smdp.add_profile_type(ProfileType.from_metadata("ts48", TEMPLATE, meta))
    auc = Auc(SqliteSubscriberStore(tmp / "network.sqlite"), rand=os.urandom)
    store = SqliteOperatorStore(tmp / "operator.sqlite")
    operator = Operator(store, smdp, auc, now=one.clock, rand=os.urandom)
    return OperatorWorld(one.world, one.clock, smdp, auc, store, operator, tmp)


def download_from_two(two: OperatorWorld, device: Phone, code: str) -> str:
    """Download (not enable) a Carrier Two profile; its ICCID."""
    matching_id = code.split("$")[2]
    before = {p.iccid for p in Lpa(InProcessEs10(device.euicc.isdr)).profiles()}
    MiniLpa(two.smdp, device.euicc.isdr, address=ADDRESS_TWO).download(matching_id)
    after = {p.iccid for p in Lpa(InProcessEs10(device.euicc.isdr)).profiles()}
    (iccid,) = after - before
    return iccid


def caller(ow: OperatorWorld, device: Phone) -> Caller:
    assert device.key is not None
    header = sign_request(
        device.key, method="POST", path="/m", body=b"", now=ow.clock(), nonce=os.urandom(16)
    )
    return ow.operator.authenticate_request(header, "POST", "/m", b"")


def test_linked_device_keeps_working_after_the_primary_switches_carrier(tmp_path: Path) -> None:
    one = make_operator_world(tmp_path / "one")
    two = carrier_two(one, tmp_path / "two")
    try:
        # Carrier One: the phone is the primary, the laptop a linked device
        sub1, enrolment = one.operator.subscribe("ts48", PLAN)
        phone = one.euicc()
        iccid_one = one.download(phone, enrolment.activation_code)
        one.register(phone)
        laptop = one.euicc()
        token = one.token(phone, sub1.id, laptop.eid, DeviceClass.LAPTOP)
        laptop_one = one.download(laptop, one.operator.redeem(token, laptop.eid).activation_code)
        assert one.attach(laptop, Service.DATA) == frozenset({Service.DATA})

        # the phone gets Carrier Two's profile and switches to it
        _, enrolment2 = two.operator.subscribe("ts48", PLAN)
        iccid_two = download_from_two(two, phone, enrolment2.activation_code)
        es9 = {ADDRESS: InProcessEs9(one.smdp), ADDRESS_TWO: InProcessEs9(two.smdp)}

        async def in_process(lpa: Lpa) -> list[Delivery]:
            clients: Any = es9
            return await deliver(lpa.es10, lpa.notifications(), lpa.settings, None, clients=clients)

        phone_lpa = Lpa(InProcessEs10(phone.euicc.isdr))
        with LpaSettings.open(tmp_path / "phone.lpa") as settings:
            policy = ProfilePolicy(Failover(phone_lpa, settings, now=one.clock, deliver=in_process))
            asyncio.run(policy.switch(iccid_two))
        enabled = [p.iccid for p in phone_lpa.profiles() if p.enabled]
        assert enabled == [iccid_two]
        # each carrier's SM-DP+ heard about its own profile
        assert [n.event for n in one.smdp.notifications(iccid_one)][-1] == "disable"
        assert [n.event for n in two.smdp.notifications(iccid_two)][-1] == "enable"
        one.clock.advance(timedelta(minutes=5))

        # the laptop still attaches at Carrier One: its own profile, its own eUICC
        assert one.attach(laptop, Service.DATA) == frozenset({Service.DATA})
        # the phone's USIM is Carrier Two's now: Carrier One does not know it...
        with pytest.raises(NetworkRefusedError) as refused:
            one.attach(phone)
        assert refused.value.reason is RefusalReason.UNKNOWN_SUBSCRIBER
        assert two.attach(phone)  # ...Carrier Two does
        # ...but the phone still manages its Carrier One subscription with its key
        devices = {d.device_class: d for d in one.operator.devices(caller(one, phone))}
        assert devices[DeviceClass.LAPTOP].state is DeviceState.ACTIVE

        # moving the laptop: a second federation record (second key) at Carrier Two
        phone_two = Phone(phone.euicc, iccid=iccid_two)
        primary_two = two.register(phone_two)
        assert primary_two.role is DeviceRole.PRIMARY
        token2 = two.token(phone_two, primary_two.subscription_id, laptop.eid, DeviceClass.LAPTOP)
        laptop_two = download_from_two(
            two, laptop, two.operator.redeem(token2, laptop.eid).activation_code
        )
        Lpa(InProcessEs10(laptop.euicc.isdr)).enable(laptop_two)
        assert two.attach(laptop, Service.DATA) == frozenset({Service.DATA})
        # a Carrier One token means nothing at Carrier Two (no such subscription there)
        with pytest.raises(NotFoundError):
            two.operator.redeem(token, laptop.eid)

        # the phone removes the laptop from Carrier One: the old profile is refused there
        removed = one.operator.remove(caller(one, phone), devices[DeviceClass.LAPTOP].id)
        assert removed.state is DeviceState.REMOVED
        Lpa(InProcessEs10(laptop.euicc.isdr)).enable(laptop_one)
        with pytest.raises(NetworkRefusedError) as refused:
            one.attach(laptop, Service.DATA)
        assert refused.value.reason is RefusalReason.REMOVED
    finally:
        one.close()
        two.close()
