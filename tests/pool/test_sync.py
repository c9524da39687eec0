"""Usage sync in injected time: replicas converge; an offline device catches up at once."""

from __future__ import annotations

from datetime import timedelta

from rspfed.federation.ledger import LedgerState, decode_state, encode_state
from rspfed.federation.types import Plan
from tests.pool.conftest import MB, POOL, Family


def test_replicas_converge_and_an_offline_device_catches_up(family: Family) -> None:
    fam = family
    pool = fam.pool
    period = pool.period(fam.sub_id).id
    online = [LedgerState(fam.sub_id), LedgerState(fam.sub_id)]
    versions = [0, 0]
    offline = LedgerState(fam.sub_id)
    gateway = pool.gateway
    for step in range(12):
        name = ("phone", "laptop", "tablet")[step % 3]
        record = gateway.carry(fam.devices[name].iccid, period, 40 * MB).record
        pool.ingest_network_records(fam.sub_id, [record])
        if step == 6:
            pool.top_up(fam.sub_id, POOL)
        fam.ow.clock.advance(timedelta(seconds=1))
        for i, replica in enumerate(online):
            # the delta travels as the DER message, as over HTTPS
            delta, versions[i] = pool.state_since(fam.sub_id, versions[i])
            replica.merge(decode_state(encode_state(delta)))
            # within one poll of the ingest, every online replica has it
            assert replica == pool.ledger(fam.sub_id)
    assert online[0] == online[1]
    # an offline device comes back: one full state, and it is equal too
    whole, version = pool.state_since(fam.sub_id, 0)
    offline.merge(whole)
    assert offline == online[0]
    assert version == pool.version(fam.sub_id)
    # nothing new: an empty delta
    assert pool.state_since(fam.sub_id, version)[0].is_empty()


def test_plan_change_opens_an_epoch_and_keeps_top_ups(family: Family) -> None:
    fam = family
    pool = fam.pool
    pool.top_up(fam.sub_id, POOL)
    epoch = pool.change_plan(fam.sub_id, Plan(pool_bytes=3 * POOL, device_limit=4))
    assert epoch.limit == 4 * POOL
    assert pool.view(fam.sub_id).pool_limit == 4 * POOL
    assert pool.operator.subscription(fam.sub_id).plan.pool_bytes == 3 * POOL
