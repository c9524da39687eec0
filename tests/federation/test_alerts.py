"""Usage alerts: 50/75/90/100 % of the pool and of each device quota, each exactly once.

Checked against a model written from docs/ledger.md (the threshold rule, the
closed-epoch rule and the opening-ratio rule), under permuted and duplicated
delivery.  Alert ids are checked against SHA-256 of the asn1tools encoding in
test_ledger_codec.py; here, their determinism and distinctness.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import UsageError
from rspfed.federation.alerts import (
    ALERT_ID_SIZE,
    DEFAULT_THRESHOLDS,
    Alert,
    alert_id,
    due_alerts,
    fire_alerts,
)
from rspfed.federation.ledger import (
    AlertKey,
    EpochReason,
    LedgerState,
    PoolEpoch,
    SourceKind,
    UsageRecord,
    change_plan,
    decode_state,
    encode_state,
    enforcement,
    open_period,
    period_usage,
    top_up,
)
from rspfed.federation.types import Plan
from tests.federation.ledger_strategies import ICCIDS, SUB, alert_keys

A, B, C = ICCIDS[:3]
P = 1_764_000_000
NEXT = P + 30 * 86400
POOL = 1000
PLAN = Plan(pool_bytes=POOL, device_limit=5)
QUOTAS: dict[str, int | None] = {A: 400, B: 200, C: None}


def _net(iccid: str, octets: int, *, period: int = P, source: str = "pgw-1") -> UsageRecord:
    return UsageRecord(SourceKind.NETWORK, source, iccid, period, 0, octets)


Fired = set[tuple[str | None, int, int]]


def _fire(state: LedgerState, period: int = P, quotas: Mapping[str, int | None] = QUOTAS) -> Fired:
    return {
        (a.iccid, a.threshold, a.key.pool_epoch)
        for a in fire_alerts(state, plan=PLAN, period=period, quotas=quotas)
    }


def _model(state: LedgerState, period: int, quotas: Mapping[str, int | None]) -> Fired:
    """The alerts due by docs/ledger.md, from the state's fields (not from alerts.py)."""
    epochs = sorted((e for (p, _), e in state.epochs.items() if p == period), key=lambda e: e.index)
    if not epochs or epochs[0].index != 0:
        epochs.insert(0, PoolEpoch(period, 0, EpochReason.PERIOD, PLAN.pool_bytes))
    pool = 0
    device: dict[str, int] = {}
    for (kind, _s, iccid, p, _e, _plmn), octets in state.counters.items():
        if kind == SourceKind.NETWORK and p == period:
            pool += octets
            device[iccid] = device.get(iccid, 0) + octets
    out: set[tuple[str | None, int, int]] = set()
    for i, epoch in enumerate(epochs):
        closing = epochs[i + 1] if i + 1 < len(epochs) else None
        scopes: list[tuple[str | None, int, int, int]] = [
            (
                None,
                epoch.limit,
                epoch.opening_used,
                closing.opening_used if closing else max(pool, epoch.opening_used),
            )
        ]
        for iccid, quota in quotas.items():
            if not quota:
                continue
            opening = dict(epoch.opening_device_used).get(iccid, 0)
            used = (
                dict(closing.opening_device_used).get(iccid, 0)
                if closing
                else max(device.get(iccid, 0), opening)
            )
            scopes.append((iccid, quota, opening, used))
        for scope, limit, opening, used in scopes:
            for t in DEFAULT_THRESHOLDS:
                if t * limit > opening * 100 and used * 100 >= t * limit:
                    out.add((scope, t, epoch.index))
    return out


# -- the thresholds -------------------------------------------------------------------


def test_pool_and_device_thresholds_fire_as_usage_crosses_them() -> None:
    state = LedgerState(SUB)
    open_period(state, PLAN, P)
    assert _fire(state) == set()
    state.add_records([_net(A, 199)])  # A 49.75 % of its quota, pool 19.9 %
    assert _fire(state) == set()
    state.add_records([_net(A, 200)])  # A 50 %
    assert _fire(state) == {(A, 50, 0)}
    state.add_records([_net(A, 360), _net(B, 150)])  # A 90 %, B 75 %, pool 51 %
    assert _fire(state) == {(A, 75, 0), (A, 90, 0), (B, 50, 0), (B, 75, 0), (None, 50, 0)}
    assert _fire(state) == set()
    state.add_records([_net(A, 400), _net(B, 200), _net(C, 150)])  # 100 %, 100 %, pool 75 %
    assert _fire(state) == {(A, 100, 0), (B, 90, 0), (B, 100, 0), (None, 75, 0)}
    state.add_records([_net(C, 400)])  # pool 100 %; C has no quota
    assert _fire(state) == {(None, 90, 0), (None, 100, 0)}
    state.add_records([_net(C, 5000)])  # past 100 %: nothing more
    assert _fire(state) == set()
    assert len(state.fired) == 12


def test_alert_fields() -> None:
    state = LedgerState(SUB)
    state.add_records([_net(A, 300), _net(B, 260)])
    seen: list[Alert] = []
    alerts = fire_alerts(state, plan=PLAN, period=P, quotas=QUOTAS, on_alert=seen.append)
    assert seen == alerts
    pool = [a for a in alerts if a.iccid is None]
    assert [(a.threshold, a.used, a.limit) for a in pool] == [(50, 560, POOL)]
    a75 = next(a for a in alerts if a.iccid == A and a.threshold == 75)
    assert (a75.used, a75.limit, a75.subscription_id) == (300, 400, SUB)
    assert a75.key == AlertKey(A, 75, P, 0)
    assert a75.id == alert_id(SUB, a75.key)
    assert len(a75.id) == ALERT_ID_SIZE
    # listed pool first, then devices by ICCID, each by threshold
    assert [(a.iccid or "", a.threshold) for a in alerts] == [
        ("", 50),
        (A, 50),
        (A, 75),
        (B, 50),
        (B, 75),
        (B, 90),
        (B, 100),
    ]


def test_device_figures_never_raise_alerts() -> None:
    state = LedgerState(SUB)
    state.add_records([UsageRecord(SourceKind.DEVICE, "dev-a", A, P, 0, 10**9)])
    assert due_alerts(state, plan=PLAN, period=P, quotas=QUOTAS) == []


def test_a_zero_or_absent_quota_has_no_alerts() -> None:
    state = LedgerState(SUB)
    state.add_records([_net(A, 700), _net(B, 50)])
    assert _fire(state, quotas={A: 0, B: None}) == {(None, 50, 0), (None, 75, 0)}


def test_thresholds_are_checked() -> None:
    state = LedgerState(SUB)
    for bad in ([0], [1001], [True], [50.0]):
        with pytest.raises(UsageError):
            due_alerts(state, plan=PLAN, period=P, quotas={}, thresholds=bad)  # type: ignore[arg-type]
    for bad_quota in ("5", -1, 1.5, True):
        with pytest.raises(UsageError):
            due_alerts(state, plan=PLAN, period=P, quotas={A: bad_quota})  # type: ignore[dict-item]
        with pytest.raises(UsageError):
            enforcement(state, PLAN, P, {A: bad_quota})  # type: ignore[dict-item]
    with pytest.raises(UsageError):
        due_alerts(state, plan=PLAN, period=P, quotas={}, thresholds=[50, "75"])  # type: ignore[list-item]
    state.add_records([_net(A, 250)])
    custom = due_alerts(state, plan=PLAN, period=P, quotas={}, thresholds=[25, 20, 25])
    assert [a.threshold for a in custom] == [20, 25]


# -- epochs: top-ups, plan changes, rollover -------------------------------------------


def test_a_top_up_opening_at_80_percent_re_arms_only_90_and_100() -> None:
    state = LedgerState(SUB)
    open_period(state, PLAN, P)
    state.add_records([_net(A, 360), _net(C, 600)])  # pool 96 %, A 90 %
    assert _fire(state) == {
        (None, 50, 0),
        (None, 75, 0),
        (None, 90, 0),
        (A, 50, 0),
        (A, 75, 0),
        (A, 90, 0),
    }
    epoch = top_up(state, PLAN, P, 200)  # 960 of 1200: opens at 80 %
    assert (epoch.index, epoch.limit, epoch.opening_used) == (1, 1200, 960)
    assert _fire(state) == set()  # nothing at or below 80 % again; A still at 90 %
    state.add_records([_net(C, 719)])  # 1079 < 90 % of 1200
    assert _fire(state) == set()
    state.add_records([_net(C, 720)])  # 1080 = 90 %
    assert _fire(state) == {(None, 90, 1)}
    state.add_records([_net(A, 400), _net(C, 800)])  # 1200 = 100 %; A 100 %
    assert _fire(state) == {(None, 100, 1), (A, 100, 1)}
    assert _fire(state) == set()
    # epoch 0's 100 % never fires: its usage closed at 960
    assert AlertKey(None, 100, P, 0) not in state.fired


def test_a_late_evaluation_fires_what_was_crossed_before_the_top_up() -> None:
    state = LedgerState(SUB)
    state.add_records([_net(C, 920)])
    top_up(state, PLAN, P, 1000)  # nobody fired at 92 %: epoch 0 closes at 920
    state.add_records([_net(C, 1500)])  # 75 % of 2000
    assert _fire(state) == {
        (None, 50, 0),
        (None, 75, 0),
        (None, 90, 0),
        (None, 50, 1),
        (None, 75, 1),
    }


def test_a_plan_change_re_arms_above_its_opening_ratio() -> None:
    state = LedgerState(SUB)
    state.add_records([_net(C, 800)])
    assert _fire(state) == {(None, 50, 0), (None, 75, 0)}
    change_plan(state, PLAN, Plan(pool_bytes=2000, device_limit=5), P)  # opens at 40 %
    assert _fire(state) == set()
    state.add_records([_net(C, 1000)])
    assert _fire(state) == {(None, 50, 1)}


def test_rollover_re_arms_every_threshold() -> None:
    state = LedgerState(SUB)
    state.add_records([_net(A, 400), _net(C, 600)])
    assert len(_fire(state)) == 8  # pool and A: 4 each
    open_period(state, PLAN, NEXT)
    state.add_records([_net(A, 400, period=NEXT), _net(C, 600, period=NEXT)])
    again = fire_alerts(state, plan=PLAN, period=NEXT, quotas=QUOTAS)
    assert {(a.iccid, a.threshold) for a in again} == {
        (i, t) for i in (None, A) for t in DEFAULT_THRESHOLDS
    }
    assert {a.key.period for a in again} == {NEXT}
    assert _fire(state, P) == set()


# -- exactly once, whatever the order ---------------------------------------------------

traffic = st.lists(
    st.tuples(st.sampled_from([A, B, C]), st.sampled_from(["pgw-1", "pgw-2"]), st.integers(1, 150)),
    min_size=1,
    max_size=25,
)


def _records(steps: list[tuple[str, str, int]]) -> list[UsageRecord]:
    counters: dict[tuple[str, str], int] = {}
    out = []
    for iccid, source, octets in steps:
        counters[(iccid, source)] = counters.get((iccid, source), 0) + octets
        out.append(_net(iccid, counters[(iccid, source)], source=source))
    return out


@given(traffic, st.data())
def test_each_alert_fires_once_whatever_the_order(
    steps: list[tuple[str, str, int]], data: st.DataObject
) -> None:
    records = _records(steps)
    # the operator opens top-ups at moments of its own (in true order)
    operator = LedgerState(SUB)
    open_period(operator, PLAN, P)
    top_ups = data.draw(st.sets(st.integers(0, len(records) - 1), max_size=2))
    for i, record in enumerate(records):
        operator.add_records([record])
        if i in top_ups:
            top_up(operator, PLAN, P, data.draw(st.integers(1, 600)))
    epochs = list(operator.epochs.values())
    expected = _model(operator, P, QUOTAS)
    # two replicas receive the epochs and the records permuted, duplicated, in any order
    finals = []
    for _ in range(2):
        delivery = data.draw(
            st.permutations(records + data.draw(st.lists(st.sampled_from(records))))
        )
        replica = LedgerState(SUB, epochs=epochs)
        fired: list[tuple[str | None, int, int]] = []
        ids: list[bytes] = []
        for record in delivery:
            replica.add_records([record])
            for alert in fire_alerts(replica, plan=PLAN, period=P, quotas=QUOTAS):
                fired.append((alert.iccid, alert.threshold, alert.key.pool_epoch))
                ids.append(alert.id)
        assert len(fired) == len(set(fired))
        assert len(ids) == len(set(ids))
        assert set(fired) == expected
        finals.append(replica)
    assert finals[0] == finals[1]
    # the thresholds at or below an epoch's opening ratio never fire in it
    for epoch in epochs:
        for key in finals[0].fired:
            if key.pool_epoch == epoch.index and key.device is None:
                assert key.threshold * epoch.limit > epoch.opening_used * 100


@given(traffic, st.data())
def test_replicas_syncing_states_fire_nothing_twice(
    steps: list[tuple[str, str, int]], data: st.DataObject
) -> None:
    """The operator fires; a device replica that merged its state finds nothing left."""
    records = _records(steps)
    operator = LedgerState(SUB)
    device = LedgerState(SUB)
    fired: list[AlertKey] = []
    for record in data.draw(st.permutations(records)):
        operator.add_records([record])
        fired.extend(a.key for a in fire_alerts(operator, plan=PLAN, period=P, quotas=QUOTAS))
        if data.draw(st.booleans()):
            device.merge(decode_state(encode_state(operator)))
    device.merge(decode_state(encode_state(operator)))
    assert len(fired) == len(set(fired)) == len(operator.fired)
    assert due_alerts(device, plan=PLAN, period=P, quotas=QUOTAS) == []
    usage = period_usage(operator, P)
    assert {(k.device, k.threshold) for k in fired} == {
        (scope, t)
        for scope, used, limit in [
            (None, usage.total, POOL),
            (A, usage.by_iccid.get(A, 0), 400),
            (B, usage.by_iccid.get(B, 0), 200),
        ]
        for t in DEFAULT_THRESHOLDS
        if used * 100 >= t * limit
    }


# -- ids -------------------------------------------------------------------------


@given(st.sets(alert_keys, min_size=2, max_size=10))
def test_alert_ids_are_deterministic_and_distinct(keys: set[AlertKey]) -> None:
    ids = {alert_id(SUB, k) for k in keys}
    assert len(ids) == len(keys)
    assert all(len(i) == ALERT_ID_SIZE for i in ids)
    again = {alert_id(SUB, AlertKey(k.device, k.threshold, k.period, k.pool_epoch)) for k in keys}
    assert again == ids
    assert ids.isdisjoint({alert_id("sub-0002", k) for k in keys})


def test_ids_differ_in_each_component() -> None:
    base = AlertKey(None, 50, P, 0)
    variants = [
        base,
        AlertKey(A, 50, P, 0),
        AlertKey(B, 50, P, 0),
        AlertKey(None, 75, P, 0),
        AlertKey(None, 50, NEXT, 0),
        AlertKey(None, 50, P, 1),
    ]
    assert len({alert_id(SUB, k) for k in variants}) == len(variants)
