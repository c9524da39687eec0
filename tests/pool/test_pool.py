"""The shared data pool in-process: metering, exact sums, alerts, quotas, top-ups, rollover."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from rspfed.errors import NotFoundError, UsageError
from rspfed.federation.ledger import Action, AutoTopUp, SourceKind, UsageRecord
from rspfed.federation.token import Service
from rspfed.federation.types import Caller, EapPurpose
from rspfed.network import NetworkRefusedError, RefusalReason
from tests.pool.conftest import MB, POOL, QUOTA, Family


def attach_bearer(fam: Family, name: str) -> str:
    phone = getattr(fam, name)
    first = fam.ow.operator.eap_start(fam.ow.identity(phone), purpose=EapPurpose.ATTACH)
    fam.ow.run_eap(phone, first)
    return fam.pool.open_bearer(fam.devices[name].imsi)[0]


def test_traffic_on_two_devices_sums_exactly(family: Family) -> None:
    fam = family
    phone, tablet = attach_bearer(fam, "phone"), attach_bearer(fam, "tablet")
    sent = {"phone": 0, "tablet": 0}
    rng = random.Random(7)
    for _ in range(20):
        name = rng.choice(["phone", "tablet"])
        n = rng.randrange(1, 50 * MB)
        result = fam.pool.use(phone if name == "phone" else tablet, n)
        assert result.carried == n
        assert result.refusal is None
        sent[name] += n
    view = fam.pool.view(fam.sub_id)
    assert view.pool_used == sum(sent.values())
    assert view.pool_limit == POOL
    by_name = {d.name: d.used for d in view.devices}
    assert by_name["phone"] == sent["phone"]
    assert by_name["tablet"] == sent["tablet"]
    assert by_name["laptop"] == 0
    assert [p.used for p in view.points] == sorted(p.used for p in view.points)
    assert view.points[-1].used == sum(sent.values())


def test_duplicates_reordering_and_gateway_restarts_converge(family: Family) -> None:
    fam = family
    iccid = fam.devices["tablet"].iccid
    period = fam.pool.period(fam.sub_id).id
    records: list[UsageRecord] = []
    truth = 0
    gateway = fam.pool.gateway
    for round_ in range(3):
        for _ in range(5):
            n = 3 * MB + round_
            records.append(gateway.carry(iccid, period, n).record)
            truth += n
        gateway = gateway.restarted()  # the counter restarts from zero under the next epoch
    rng = random.Random(1)
    delivered = records * 3
    rng.shuffle(delivered)
    for i in range(0, len(delivered), 4):
        fam.pool.ingest_network_records(fam.sub_id, delivered[i : i + 4])
    assert fam.pool.view(fam.sub_id).pool_used == truth
    # a second service instance (a restart of the operator) gets a new gateway epoch
    assert fam.new_pool().gateway.counter_epoch > fam.pool.gateway.counter_epoch


def test_pool_alerts_fire_once_each_whatever_the_order(family: Family) -> None:
    fam = family
    iccid = fam.devices["tablet"].iccid
    period = fam.pool.period(fam.sub_id).id
    steps = [POOL * p // 100 for p in (10, 55, 60, 80, 95, 100)]
    records = [UsageRecord(SourceKind.NETWORK, "pgw-x", iccid, period, 0, s) for s in steps]
    for order in (records[::-1], records, records[2:] + records[:2]):
        for record in order:
            fam.pool.ingest_network_records(fam.sub_id, [record])
    pool_alerts = [a for a in fam.pool.alerts(fam.sub_id) if a.scope == "pool"]
    # the largest record arrived first: 50, 75, 90 and 100 at once, each once
    assert sorted(a.threshold for a in pool_alerts) == [50, 75, 90, 100]
    assert sorted(a.threshold for a in fam.fired if a.scope == "pool") == [50, 75, 90, 100]
    # delivered to the primary, once each until acknowledged
    pending = fam.pool.pending_alerts(fam.devices["phone"].id)
    assert {a.id for a in pending} == {a.id for a in pool_alerts}
    assert fam.pool.ack_alerts(fam.devices["phone"].id, [a.id for a in pending]) == 4
    assert fam.pool.pending_alerts(fam.devices["phone"].id) == []
    assert fam.pool.ack_alerts(fam.devices["phone"].id, [a.id for a in pending]) == 0
    # the tablet has no quota: pool alerts go to the primary only
    assert fam.pool.pending_alerts(fam.devices["tablet"].id) == []


def test_device_quota_bites_for_that_imsi_only(family: Family) -> None:
    fam = family
    laptop, phone = attach_bearer(fam, "laptop"), attach_bearer(fam, "phone")
    first = fam.pool.use(laptop, QUOTA // 2)
    assert first.carried == QUOTA // 2
    second = fam.pool.use(laptop, QUOTA)  # more than what is left of the quota
    assert second.carried == QUOTA - QUOTA // 2
    assert second.refusal is RefusalReason.QUOTA_EXHAUSTED
    third = fam.pool.use(laptop, 1)
    assert third.carried == 0
    assert third.refusal is RefusalReason.QUOTA_EXHAUSTED
    assert fam.pool.use(phone, 10 * MB).carried == 10 * MB  # the others continue
    view = fam.pool.view(fam.sub_id)
    lap = next(d for d in view.devices if d.name == "laptop")
    assert lap.used == QUOTA
    assert lap.action is Action.BAR
    assert lap.reason == "quota"
    laptop_alerts = sorted(a.threshold for a in fam.fired if a.device_id == lap.device_id)
    assert laptop_alerts == [50, 75, 90, 100]
    # the laptop itself and the primary both get the laptop's alerts
    got = {a.threshold for a in fam.pool.pending_alerts(lap.device_id)}
    assert got == {50, 75, 90, 100}
    # voice and attach are the AuC's: a data quota does not bar the IMSI
    fam.ow.operator.check_service(fam.devices["laptop"].imsi, Service.DATA)


def test_pool_exhaustion_topup_rearms_above_opening_ratio_and_lifts_the_bar(
    family: Family,
) -> None:
    fam = family
    phone, tablet = attach_bearer(fam, "phone"), attach_bearer(fam, "tablet")
    fam.pool.use(phone, POOL // 2)
    done = fam.pool.use(tablet, POOL)
    assert done.carried == POOL // 2
    assert done.refusal is RefusalReason.POOL_EXHAUSTED
    refused = fam.pool.use(phone, 1)
    assert refused.refusal is RefusalReason.POOL_EXHAUSTED
    assert refused.carried == 0
    epoch = fam.pool.top_up(fam.sub_id, POOL // 4)  # opens at 80 %: 90 and 100 re-arm
    assert epoch.index == 1
    assert epoch.opening_used == POOL
    assert fam.pool.use(phone, POOL // 8).carried == POOL // 8  # the bar is lifted
    view = fam.pool.view(fam.sub_id)
    assert view.pool_limit == POOL + POOL // 4
    assert view.pool_epoch == 1
    in_epoch1 = sorted(a.threshold for a in view.alerts if a.key.pool_epoch == 1)
    assert in_epoch1 == [90]
    fam.pool.use(phone, POOL)
    in_epoch1 = sorted(a.threshold for a in fam.pool.alerts(fam.sub_id) if a.key.pool_epoch == 1)
    assert in_epoch1 == [90, 100]


def test_auto_top_up_at_most_n_times(family: Family) -> None:
    fam = family
    fam.pool.set_auto_top_up(fam.sub_id, AutoTopUp(POOL // 2, at_percent=90, max_per_period=2))
    tablet = attach_bearer(fam, "tablet")
    total = 0
    while True:
        result = fam.pool.use(tablet, POOL // 4)
        total += result.carried
        if result.refusal is not None:
            break
    assert total == POOL + 2 * (POOL // 2)
    assert fam.pool.view(fam.sub_id).pool_epoch == 2


def test_rollover_resets_the_pool_and_lifts_bars(family: Family) -> None:
    fam = family
    laptop = attach_bearer(fam, "laptop")
    fam.pool.use(laptop, 2 * QUOTA)
    assert fam.pool.use(laptop, 1).refusal is RefusalReason.QUOTA_EXHAUSTED
    old = fam.pool.period(fam.sub_id)
    fam.ow.clock.advance(old.end - fam.ow.clock())
    laptop = attach_bearer(fam, "laptop")
    assert fam.pool.period(fam.sub_id).start == old.end
    assert fam.pool.use(laptop, MB).carried == MB
    view = fam.pool.view(fam.sub_id)
    assert view.pool_used == MB
    assert view.alerts == ()
    assert fam.pool.view(fam.sub_id, period=old.id).pool_used == QUOTA
    # a late record of the old period still counts there, not now
    fam.pool.ingest_network_records(
        fam.sub_id,
        [UsageRecord(SourceKind.NETWORK, "late", fam.devices["tablet"].iccid, old.id, 0, MB)],
    )
    assert fam.pool.view(fam.sub_id).pool_used == MB
    assert fam.pool.view(fam.sub_id, period=old.id).pool_used == QUOTA + MB


def test_bearers_expire_and_removed_devices_are_refused(family: Family) -> None:
    fam = family
    laptop = attach_bearer(fam, "laptop")
    with pytest.raises(NetworkRefusedError) as refused:
        fam.pool.use("bnope", 1)
    assert refused.value.reason is RefusalReason.NO_BEARER
    with pytest.raises(UsageError):
        fam.pool.use(laptop, 0)
    primary = fam.devices["phone"]
    caller = Caller(b"", fam.sub_id, primary.id, primary.role)
    fam.ow.operator.remove(caller, fam.devices["laptop"].id)
    with pytest.raises(NetworkRefusedError) as refused:
        fam.pool.use(laptop, 1)
    assert refused.value.reason is RefusalReason.REMOVED
    record = UsageRecord(
        SourceKind.NETWORK, "g", fam.devices["laptop"].iccid, fam.pool.period(fam.sub_id).id, 0, 5
    )
    with pytest.raises(NotFoundError):
        fam.pool.ingest_network_records(fam.sub_id, [record])
    tablet = attach_bearer(fam, "tablet")
    fam.ow.clock.advance(timedelta(hours=1))
    with pytest.raises(NetworkRefusedError) as refused:
        fam.pool.use(tablet, 1)
    assert refused.value.reason is RefusalReason.NO_BEARER


def test_usage_per_visited_network(family: Family) -> None:
    fam = family
    iccid = fam.devices["tablet"].iccid
    period = fam.pool.period(fam.sub_id).id
    gateway = fam.pool.gateway
    home = gateway.carry(iccid, period, 5 * MB).record
    roaming = gateway.carry(iccid, period, 3 * MB, visited_plmn="26201").record
    fam.pool.ingest_network_records(fam.sub_id, [roaming, home, roaming])
    view = fam.pool.view(fam.sub_id)
    assert dict(view.by_plmn) == {"": 5 * MB, "26201": 3 * MB}
    assert view.pool_used == 8 * MB
