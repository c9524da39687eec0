"""A device change keeps the device's usage: its line, its quota and its alerts
follow the device record to the new ICCID (operator core, SM-DP+ core, AuC and
real software eUICCs in process; the change runs to the switch for real)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from rspfed.federation import DeviceClass, Service
from rspfed.federation.dashboard import operator_view, pool_view
from rspfed.federation.ledger import Action, LedgerState, period_usage
from rspfed.federation.pool import FiredAlert, PoolService, fold_switched_iccids
from rspfed.federation.types import ChangeState, Device, DeviceState, EapPurpose, Plan
from rspfed.network import NetworkRefusedError, RefusalReason
from tests.federation.change_world import delete_and_notify, download_only, enable_and_notify
from tests.federation.test_operator import caller_for
from tests.federation.world import GB, OperatorWorld, Phone, make_operator_world
from tests.smdp.helpers import World, make_world

MB = 1 << 20
QUOTA = 5 * GB
PLAN = Plan(pool_bytes=40 * GB, device_limit=4)


@attrs.define
class Home:
    ow: OperatorWorld
    pool: PoolService
    sub_id: str
    phone: Phone
    tablet: Phone
    laptop: Phone
    fired: list[FiredAlert]

    def device(self, device_id: str) -> Device:
        found = self.ow.store.device(device_id)
        assert found is not None
        return found

    def bearer(self, phone: Phone, device_id: str) -> str:
        first = self.ow.operator.eap_start(self.ow.identity(phone), purpose=EapPurpose.ATTACH)
        self.ow.run_eap(phone, first)
        return self.pool.open_bearer(self.device(device_id).imsi)[0]

    def line(self, device_id: str) -> int:
        (line,) = (d for d in self.pool.view(self.sub_id).devices if d.device_id == device_id)
        return line.used

    def change(self, old: Phone, *, onto: Phone | None = None) -> tuple[Phone, str, str]:
        """Move ``old``'s device record to a new eUICC (or ``onto``) through the switch;
        (new eUICC, device id, old ICCID)."""
        caller = caller_for(self.ow, old)
        before = self.device(caller.device_id)
        new = onto or self.ow.euicc()
        order = self.ow.operator.device_change(caller, new.eid)
        iccid = download_only(self.ow, new, order.activation_code)
        enable_and_notify(self.ow, new, iccid)
        self.ow.operator.sync()
        assert self.ow.operator.device_change_status(order.change.id, order.secret).state is (
            ChangeState.SWITCHED
        )
        assert self.device(caller.device_id).iccid == iccid != before.iccid
        return new, caller.device_id, before.iccid


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def home(tmp_path: Path, shared_world: World) -> Iterator[Home]:
    ow = make_operator_world(tmp_path, shared_world)
    sub, enrolment = ow.operator.subscribe("ts48", PLAN)
    phone = ow.euicc()
    ow.download(phone, enrolment.activation_code)
    ow.register(phone)
    tablet, laptop = ow.euicc(), ow.euicc()
    for dev, cls, name, quota in (
        (tablet, DeviceClass.TABLET, "tablet", QUOTA),
        (laptop, DeviceClass.LAPTOP, "laptop", 0),
    ):
        token = ow.token(phone, sub.id, dev.eid, cls, frozenset({Service.DATA}), quota=quota)
        ow.download(dev, ow.operator.redeem(token, dev.eid, name=name).activation_code)
        ow.register(dev)
    fired: list[FiredAlert] = []
    pool = PoolService(ow.operator, now=ow.clock, rand=os.urandom, on_alert=fired.append)
    yield Home(ow, pool, sub.id, phone, tablet, laptop, fired)
    ow.close()


def _id(home: Home, phone: Phone) -> str:
    return caller_for(home.ow, phone).device_id


def test_a_tablet_near_its_quota_gets_no_fresh_quota_by_changing_device(home: Home) -> None:
    tablet_id = _id(home, home.tablet)
    used = QUOTA * 9 // 10  # 4.5 GB of 5 GB: the 90 % alert fires here
    assert home.pool.use(home.bearer(home.tablet, tablet_id), used).carried == used
    nineties = [a for a in home.fired if a.device_id == tablet_id and a.threshold == 90]
    assert len(nineties) == 1
    pool_before = home.pool.view(home.sub_id).pool_used
    assert pool_before == used

    new, device_id, old_iccid = home.change(home.tablet)
    assert device_id == tablet_id
    view = home.pool.view(home.sub_id)
    assert view.pool_used == pool_before  # the pool total is unchanged by the change
    assert home.line(tablet_id) == used  # the line follows the device to its new ICCID
    new_iccid = home.device(tablet_id).iccid
    assert home.pool.decision(new_iccid).remaining == QUOTA - used

    # on the new ICCID the quota bites after the remaining 0.5 GB, not 5 GB
    result = home.pool.use(home.bearer(new, tablet_id), GB)
    assert result.iccid == new_iccid
    assert result.carried == QUOTA - used
    assert result.refusal is RefusalReason.QUOTA_EXHAUSTED
    assert result.used == QUOTA
    with pytest.raises(NetworkRefusedError) as refused:
        home.pool.gateway.carry(new_iccid, result.period, 1)
    assert refused.value.reason is RefusalReason.QUOTA_EXHAUSTED
    assert home.pool.decision(new_iccid).action is Action.BAR

    view = home.pool.view(home.sub_id)
    (line,) = (d for d in view.devices if d.device_id == tablet_id)
    assert (line.iccid, line.used, line.action, line.reason) == (
        new_iccid,
        QUOTA,
        Action.BAR,
        "quota",
    )
    assert view.pool_used == QUOTA
    # each threshold fired once for the device across the change; the 90 % under the old ICCID
    mine = [a for a in home.pool.alerts(home.sub_id) if a.scope == "device"]
    assert sorted(a.threshold for a in mine) == [50, 75, 90, 100]
    assert all(a.device_id == tablet_id for a in mine)
    by_threshold = {a.threshold: a.key.device for a in mine}
    assert by_threshold[90] == old_iccid
    assert by_threshold[100] == new_iccid
    assert [a.threshold for a in home.fired if a.device_id == tablet_id] == [50, 75, 90, 100]
    # the device still gets its alerts (the old ones included) under its device id
    assert {a.threshold for a in home.pool.pending_alerts(tablet_id)} == {50, 75, 90, 100}

    # the raw ledger still holds both ICCIDs as metered (the wire format is untouched)
    raw = period_usage(home.pool.ledger(home.sub_id), result.period)
    assert (raw.by_iccid[old_iccid], raw.by_iccid[new_iccid]) == (used, QUOTA - used)

    # the dashboard paths show the same per-device figure and name the old alert by device
    page = pool_view(view)
    (tablet_row,) = (d for d in page.devices if d.name == "tablet")
    assert tablet_row.used == QUOTA
    assert [a.scope for a in page.alerts if a.threshold == 90 and a.scope != "pool"] == ["tablet"]
    ledger_page = operator_view(
        home.ow.operator, home.sub_id, home.ow.clock(), ledger=home.pool.ledger(home.sub_id)
    )
    (tablet_row,) = (d for d in ledger_page.devices if d.name == "tablet")
    assert tablet_row.used == QUOTA
    assert {a.scope for a in ledger_page.alerts if a.threshold == 90} >= {"tablet"}


def test_a_late_record_of_the_old_profile_still_bills_the_device(home: Home) -> None:
    tablet_id = _id(home, home.tablet)
    old_iccid = home.device(tablet_id).iccid
    period = home.pool.period(home.sub_id).id
    late = home.pool.gateway.carry(old_iccid, period, 300 * MB).record  # carried, not ingested
    _new, _, _ = home.change(home.tablet)
    home.pool.ingest_network_records(home.sub_id, [late])
    assert home.line(tablet_id) == 300 * MB
    assert home.pool.view(home.sub_id).pool_used == 300 * MB


def test_a_primary_phone_keeps_its_usage_line(home: Home) -> None:
    phone_id = _id(home, home.phone)
    assert home.pool.use(home.bearer(home.phone, phone_id), 700 * MB).carried == 700 * MB
    laptop_id = _id(home, home.laptop)
    assert home.pool.use(home.bearer(home.laptop, laptop_id), 200 * MB).carried == 200 * MB
    new, device_id, _ = home.change(home.phone)
    assert device_id == phone_id
    assert home.line(phone_id) == 700 * MB
    assert home.pool.use(home.bearer(new, phone_id), 100 * MB).carried == 100 * MB
    assert home.line(phone_id) == 800 * MB
    assert home.line(laptop_id) == 200 * MB
    assert home.pool.view(home.sub_id).pool_used == 1000 * MB


def test_a_replaced_linked_device_keeps_its_own_history(home: Home) -> None:
    phone_id, laptop_id = _id(home, home.phone), _id(home, home.laptop)
    laptop_iccid = home.device(laptop_id).iccid
    assert home.pool.use(home.bearer(home.phone, phone_id), 100 * MB).carried == 100 * MB
    assert home.pool.use(home.bearer(home.laptop, laptop_id), 40 * MB).carried == 40 * MB
    home.change(home.phone, onto=home.laptop)  # the phone moves onto the laptop's eUICC
    delete_and_notify(home.ow, home.laptop, laptop_iccid)
    assert home.device(laptop_id).state is DeviceState.REMOVED
    lines = {d.device_id: d for d in home.pool.view(home.sub_id).devices}
    assert lines[phone_id].used == 100 * MB
    assert (lines[laptop_id].used, lines[laptop_id].iccid) == (40 * MB, laptop_iccid)
    assert home.pool.use(home.bearer(home.laptop, phone_id), 10 * MB).carried == 10 * MB
    assert home.line(phone_id) == 110 * MB
    assert home.line(laptop_id) == 40 * MB


def test_folding_sums_colliding_counters_and_keeps_the_total() -> None:
    old, new = "89000000000000000012", "89000000000000000020"
    state = LedgerState("sub")
    period = 1_795_000_000
    state.counters[(0, "pgw-1", old, period, 0, "")] = 7
    state.counters[(0, "pgw-1", new, period, 0, "")] = 5
    folded = fold_switched_iccids(state, {old: new})
    assert period_usage(folded, period).by_iccid == {new: 12}
    assert period_usage(folded, period).total == period_usage(state, period).total == 12
    assert fold_switched_iccids(state, {}) is state
