"""Pool service edge cases: plan changes keep the period, past periods, bad period ids."""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from rspfed.errors import UsageError
from rspfed.federation.ledger import AutoTopUp
from rspfed.network import RefusalReason
from tests.pool.conftest import MB, PLAN, POOL, QUOTA, Family
from tests.pool.test_pool import attach_bearer


def test_a_plan_change_keeps_the_period_and_its_usage(family: Family) -> None:
    fam = family
    fam.ow.clock.advance(timedelta(days=20))
    fam.pool.use(attach_bearer(fam, "tablet"), 100 * MB)
    before = fam.pool.view(fam.sub_id)
    with pytest.raises(UsageError):
        fam.pool.change_plan(fam.sub_id, attrs.evolve(PLAN, period=timedelta(days=7)))
    after = fam.pool.view(fam.sub_id)
    assert after.period == before.period
    assert after.pool_used == before.pool_used == 100 * MB
    assert after.pool_epoch == before.pool_epoch
    epoch = fam.pool.change_plan(fam.sub_id, attrs.evolve(PLAN, pool_bytes=2 * POOL))
    bigger = fam.pool.view(fam.sub_id)
    assert bigger.period == before.period
    assert bigger.pool_used == 100 * MB
    assert (bigger.pool_limit, bigger.pool_epoch) == (2 * POOL, epoch.index)


def test_a_past_period_stays_readable_by_its_id(family: Family) -> None:
    fam = family
    fam.pool.use(attach_bearer(fam, "phone"), 30 * MB)
    first = fam.pool.view(fam.sub_id)
    fam.ow.clock.advance(PLAN.period)
    fam.pool.use(attach_bearer(fam, "phone"), 5 * MB)
    second = fam.pool.view(fam.sub_id)
    assert second.period.start == first.period.end
    assert second.pool_used == 5 * MB
    past = fam.pool.view(fam.sub_id, period=first.period.id)
    assert past.period == first.period
    assert past.pool_used == 30 * MB


@pytest.mark.parametrize("bad", [2**62, 2**63 - 1, -(2**62), True, "1"])
def test_a_bad_period_id_is_a_usage_error(family: Family, bad: object) -> None:
    with pytest.raises(UsageError):
        family.pool.view(family.sub_id, period=bad)  # type: ignore[arg-type]


def test_a_carry_across_the_limit_continues_after_an_automatic_top_up(family: Family) -> None:
    fam = family
    fam.pool.set_auto_top_up(fam.sub_id, AutoTopUp(add_bytes=POOL, at_percent=90))
    bearer = attach_bearer(fam, "tablet")
    result = fam.pool.use(bearer, POOL + 100 * MB)
    assert result.refusal is None
    assert result.carried == result.used == POOL + 100 * MB
    view = fam.pool.view(fam.sub_id)
    assert (view.pool_used, view.pool_limit) == (POOL + 100 * MB, 2 * POOL)
    fam.pool.set_auto_top_up(fam.sub_id, None)
    last = fam.pool.use(bearer, 2 * POOL)  # no rule now: carried up to the limit, then refused
    assert last.carried == POOL - 100 * MB
    assert last.refusal is RefusalReason.POOL_EXHAUSTED
    assert fam.pool.view(fam.sub_id).pool_used == 2 * POOL


def test_alerts_of_one_ingest_are_listed_in_threshold_order(family: Family) -> None:
    fam = family
    fam.pool.use(attach_bearer(fam, "laptop"), QUOTA)  # the laptop's whole quota: 25 % of the pool
    fam.pool.use(attach_bearer(fam, "tablet"), POOL - QUOTA)  # the rest of the pool at once
    listed = [(a.scope, a.threshold) for a in fam.pool.alerts(fam.sub_id)]
    assert listed == [
        ("device", 50),
        ("device", 75),
        ("device", 90),
        ("device", 100),
        ("pool", 50),
        ("pool", 75),
        ("pool", 90),
        ("pool", 100),
    ]
    assert [(a.scope, a.threshold) for a in fam.pool.view(fam.sub_id).alerts] == listed
    assert [(a.scope, a.threshold) for a in fam.fired] == listed
