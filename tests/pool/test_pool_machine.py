"""A hypothesis state machine over the pool service: traffic metered by gateways that
restart, records delivered late, twice and out of order, top-ups, rollovers.

Invariants: the pool's total is the sum of the largest value delivered per
counter, and once everything is delivered it equals the true usage; every
alert fires once (callbacks and the stored history agree, no id twice);
enforcement matches the quotas and the pool's current limit.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rspfed.federation.ledger import Action, UsageRecord
from rspfed.network.gateway import Gateway
from tests.pool.conftest import POOL, QUOTA, Family, make_family
from tests.smdp.helpers import make_world

_WORLD: list[object] = []


def _shared_world() -> object:
    if not _WORLD:
        _WORLD.append(make_world(Path(tempfile.mkdtemp(prefix="pool-pki-"))))
    return _WORLD[0]


NAMES = ("phone", "laptop", "tablet")


class PoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="pool-machine-"))
        self.fam: Family = make_family(self.tmp, _shared_world())
        self.gateways = [Gateway("pgw-a"), Gateway("pgw-b")]
        self.pending: list[UsageRecord] = []
        self.sent: list[UsageRecord] = []
        self.delivered: dict[tuple[object, ...], int] = {}
        self.truth: dict[int, int] = {}

    def teardown(self) -> None:
        self.fam.ow.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _period(self) -> int:
        return self.fam.pool.period(self.fam.sub_id).id

    @rule(
        name=st.sampled_from(NAMES),
        gw=st.integers(0, 1),
        octets=st.integers(1, POOL // 3),
    )
    def carry(self, name: str, gw: int, octets: int) -> None:
        period = self._period()
        record = self.gateways[gw].carry(self.fam.devices[name].iccid, period, octets).record
        self.pending.append(record)
        self.truth[period] = self.truth.get(period, 0) + octets

    @rule(gw=st.integers(0, 1))
    def restart(self, gw: int) -> None:
        self.gateways[gw] = self.gateways[gw].restarted()

    @precondition(lambda self: self.pending or self.sent)
    @rule(data=st.data(), duplicate=st.booleans())
    def deliver_one(self, data: st.DataObject, duplicate: bool) -> None:
        pool = self.sent if (duplicate and self.sent) or not self.pending else self.pending
        record = pool.pop(data.draw(st.integers(0, len(pool) - 1)))
        self._deliver([record])

    @rule()
    def deliver_all(self) -> None:
        batch, self.pending = self.pending[::-1], []
        self._deliver(batch)
        for period, octets in self.truth.items():
            assert self.fam.pool.view(self.fam.sub_id, period=period).pool_used == octets

    def _deliver(self, records: list[UsageRecord]) -> None:
        self.fam.pool.ingest_network_records(self.fam.sub_id, records)
        for record in records:
            self.delivered[record.key] = max(self.delivered.get(record.key, 0), record.octets)
            self.sent.append(record)

    @rule(add=st.integers(1, POOL))
    def top_up(self, add: int) -> None:
        self.fam.pool.top_up(self.fam.sub_id, add)

    @rule()
    def roll_over(self) -> None:
        period = self.fam.pool.period(self.fam.sub_id)
        self.fam.ow.clock.advance(period.end - self.fam.ow.clock())
        self.fam.pool.roll_over(self.fam.sub_id)

    @invariant()
    def totals_are_the_sum_of_the_largest_delivered(self) -> None:
        period = self._period()
        expected = sum(v for k, v in self.delivered.items() if k[3] == period)
        assert self.fam.pool.view(self.fam.sub_id).pool_used == expected

    @invariant()
    def each_alert_fires_once(self) -> None:
        ids = [a.id for a in self.fam.fired]
        assert len(ids) == len(set(ids))
        assert set(ids) == {a.id for a in self.fam.pool.alerts(self.fam.sub_id)}

    @invariant()
    def enforcement_matches_quotas(self) -> None:
        view = self.fam.pool.view(self.fam.sub_id)
        pool_out = view.pool_used >= view.pool_limit
        for line in view.devices:
            quota_out = bool(line.quota) and line.used >= (line.quota or 0)
            assert (line.action is Action.BAR) == (pool_out or quota_out)
            if quota_out:
                assert line.reason == "quota"
            assert line.quota in (None, 0, QUOTA)


TestPoolMachine = PoolMachine.TestCase
TestPoolMachine.settings = settings(max_examples=8, stateful_step_count=20, deadline=None)
