"""A hypothesis state machine: replicas of the usage ledger against simulated true traffic.

The model: devices (ICCIDs) send traffic through two gateways that restart at
random (each restart resets the gateway's counters and starts a counter
epoch); every device also meters its own traffic (and restarts its own
counter now and then).  Every metering emits a cumulative record.  Three
replicas receive records in any order, any number of times, late or never
until the end, and sync through encoded ``LedgerState`` deltas and full
states; replica 0 is the operator, which opens top-ups and fires alerts.

Invariants after every step: no replica counts more than the true usage of
any profile in any period (network and device figures apart); the operator
never fires an alert twice.  At the end every replica receives everything
and syncs with every other: all replicas are equal, their network totals
equal the true traffic exactly, their device totals equal the device-metered
traffic, and they agree on the fired alerts.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from rspfed.federation.alerts import fire_alerts
from rspfed.federation.ledger import (
    CounterKey,
    LedgerState,
    SourceKind,
    decode_state,
    encode_state,
    open_period,
    period_usage,
    top_up,
)
from rspfed.federation.types import Plan
from tests.federation.ledger_strategies import ICCIDS, SUB

GATEWAYS = ["pgw-1", "pgw-2"]
PLMNS = ["", "26201", "310260"]
PERIOD_LENGTH = 30 * 86400
PLAN = Plan(pool_bytes=5000, device_limit=5)
QUOTAS: dict[str, int | None] = {ICCIDS[0]: 1500, ICCIDS[1]: None, ICCIDS[2]: 800}


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.period = 1_764_000_000
        self.gateway_epoch = dict.fromkeys(GATEWAYS, 0)
        self.device_epoch = dict.fromkeys(ICCIDS[:3], 0)
        self.counters: dict[CounterKey, int] = {}
        self.emitted: list[tuple[CounterKey, int]] = []
        self.truth: dict[tuple[int, str], int] = {}
        self.device_truth: dict[tuple[int, str], int] = {}
        self.replicas = [LedgerState(SUB) for _ in range(3)]
        self.last_delta = [LedgerState(SUB) for _ in range(3)]
        self.fired_ids: list[bytes] = []
        open_period(self.replicas[0], PLAN, self.period)

    def _emit(self, key: CounterKey, octets: int) -> None:
        self.counters[key] = self.counters.get(key, 0) + octets
        self.emitted.append((key, self.counters[key]))

    @rule(
        device=st.sampled_from(ICCIDS[:3]),
        gateway=st.sampled_from(GATEWAYS),
        plmn=st.sampled_from(PLMNS),
        octets=st.integers(1, 700),
    )
    def traffic(self, device: str, gateway: str, plmn: str, octets: int) -> None:
        p = self.period
        net: CounterKey = (0, gateway, device, p, self.gateway_epoch[gateway], plmn)
        own: CounterKey = (1, "dev-" + device[-2:], device, p, self.device_epoch[device], plmn)
        self._emit(net, octets)
        self._emit(own, octets)
        self.truth[(p, device)] = self.truth.get((p, device), 0) + octets
        self.device_truth[(p, device)] = self.device_truth.get((p, device), 0) + octets

    @rule(gateway=st.sampled_from(GATEWAYS))
    def gateway_restart(self, gateway: str) -> None:
        self.gateway_epoch[gateway] += 1

    @rule(device=st.sampled_from(ICCIDS[:3]))
    def device_restart(self, device: str) -> None:
        self.device_epoch[device] += 1

    @rule(replica=st.integers(0, 2), data=st.data())
    def deliver(self, replica: int, data: st.DataObject) -> None:
        if not self.emitted:
            return
        index = data.draw(st.integers(0, len(self.emitted) - 1))
        delta = self.replicas[replica].merge_counters([self.emitted[index]])
        self.last_delta[replica] = LedgerState(SUB, delta)

    @rule(source=st.integers(0, 2), into=st.integers(0, 2), full=st.booleans())
    def sync(self, source: int, into: int, full: bool) -> None:
        message = self.replicas[source] if full else self.last_delta[source]
        received = decode_state(encode_state(message))
        self.replicas[into].merge(received)

    @rule(add=st.integers(1, 3000))
    def operator_top_up(self, add: int) -> None:
        top_up(self.replicas[0], PLAN, self.period, add)

    @rule()
    def rollover(self) -> None:
        self.period += PERIOD_LENGTH
        open_period(self.replicas[0], PLAN, self.period)

    @rule()
    def operator_fires_alerts(self) -> None:
        for period in {p for p, _ in self.truth} | {self.period}:
            alerts = fire_alerts(self.replicas[0], plan=PLAN, period=period, quotas=QUOTAS)
            self.fired_ids.extend(a.id for a in alerts)

    @invariant()
    def never_more_than_true_usage(self) -> None:
        for replica in self.replicas:
            for (period, iccid), true in self.truth.items():
                network = period_usage(replica, period).by_iccid.get(iccid, 0)
                device = period_usage(replica, period, kind=SourceKind.DEVICE)
                assert network <= true
                assert device.by_iccid.get(iccid, 0) <= self.device_truth[(period, iccid)]

    @invariant()
    def each_alert_fired_once(self) -> None:
        assert len(self.fired_ids) == len(set(self.fired_ids))
        assert len(self.fired_ids) == len(self.replicas[0].fired)

    def teardown(self) -> None:
        # every replica eventually receives everything, in reverse order, twice
        for replica in self.replicas:
            replica.merge_counters(reversed(self.emitted))
            replica.merge_counters(self.emitted)
        for source in self.replicas:
            for target in self.replicas:
                target.merge(decode_state(encode_state(source)))
        first = self.replicas[0]
        for replica in self.replicas[1:]:
            assert replica == first
        for (period, iccid), true in self.truth.items():
            assert period_usage(first, period).by_iccid[iccid] == true
            device = period_usage(first, period, kind=SourceKind.DEVICE)
            assert device.by_iccid[iccid] == self.device_truth[(period, iccid)]
        for period in {p for p, _ in self.truth}:
            assert period_usage(first, period).total == sum(
                n for (p, _), n in self.truth.items() if p == period
            )
        # with the same information, non-operator replicas find no alert left to fire
        for replica in self.replicas[1:]:
            for period in {p for p, _ in self.truth} | {self.period}:
                before = set(replica.fired)
                fire_alerts(replica, plan=PLAN, period=period, quotas=QUOTAS)
                fire_alerts(first, plan=PLAN, period=period, quotas=QUOTAS)
                assert before <= replica.fired
        assert self.replicas[1].fired == self.replicas[2].fired == first.fired


LedgerMachine.TestCase.settings = settings(
    LedgerMachine.TestCase.settings, max_examples=60, stateful_step_count=40
)
TestLedgerMachine = LedgerMachine.TestCase
