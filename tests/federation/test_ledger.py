"""The usage ledger: records, merge laws, views, pool epochs, enforcement, ingest checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import NotFoundError, UsageError
from rspfed.federation.ledger import (
    Action,
    AutoTopUp,
    EnforcementPolicy,
    EpochReason,
    LedgerState,
    PoolEpoch,
    SourceKind,
    UsageRecord,
    auto_top_up,
    billing_period,
    change_plan,
    current_epoch,
    decode_plmn,
    encode_plmn,
    enforcement,
    ingest_network_records,
    open_period,
    period_usage,
    pool_epochs,
    top_up,
)
from rspfed.federation.types import Plan
from tests.federation.ledger_strategies import ICCIDS, SUB, states

A, B, C = ICCIDS[:3]
P = 1_764_000_000
GB = 10**9


def _net(
    iccid: str, octets: int, *, source: str = "pgw-1", epoch: int = 0, plmn: str = ""
) -> UsageRecord:
    return UsageRecord(SourceKind.NETWORK, source, iccid, P, epoch, octets, plmn)


# -- merge laws ----------------------------------------------------------------


def _merged(*parts: LedgerState) -> LedgerState:
    out = LedgerState(SUB)
    for part in parts:
        out.merge(part)
    return out


@given(states(), states())
def test_merge_is_commutative(a: LedgerState, b: LedgerState) -> None:
    assert _merged(a, b) == _merged(b, a)


@given(states(), states(), states())
def test_merge_is_associative(a: LedgerState, b: LedgerState, c: LedgerState) -> None:
    left = _merged(a, b)
    left.merge(c)
    bc = _merged(b, c)
    right = a.copy()
    right.merge(bc)
    assert left == right


@given(states(), states())
def test_merge_is_idempotent_and_the_delta_reaches_the_same_state(
    a: LedgerState, b: LedgerState
) -> None:
    once = a.copy()
    delta = once.merge(b)
    twice = once.copy()
    assert twice.merge(b).is_empty()
    assert twice.merge(once).is_empty()
    assert twice == once
    # the delta alone brings a copy of `a` to the merged state
    via_delta = a.copy()
    via_delta.merge(delta)
    assert via_delta == once
    # merge is an upper bound: every counter is at least both inputs'
    for key, value in b.counters.items():
        assert once.counters[key] >= value
    for key, value in a.counters.items():
        assert once.counters[key] >= value


def test_merge_refuses_another_subscription() -> None:
    with pytest.raises(UsageError):
        LedgerState("sub-a").merge(LedgerState("sub-b"))


def test_conflicting_epochs_join_deterministically() -> None:
    low = PoolEpoch(P, 1, EpochReason.TOP_UP, 5 * GB, 1 * GB)
    high = PoolEpoch(P, 1, EpochReason.TOP_UP, 6 * GB, 1 * GB)
    one = LedgerState(SUB, epochs=[low, high])
    two = LedgerState(SUB, epochs=[high, low])
    assert one == two
    assert one.epochs[(P, 1)] == high


# -- records ------------------------------------------------------------------------


def test_records_take_the_maximum_per_counter() -> None:
    state = LedgerState(SUB)
    state.add_records([_net(A, 300), _net(A, 100), _net(A, 300)])
    delta = state.add_records([_net(A, 200)])
    assert delta.is_empty()
    assert period_usage(state, P).total == 300
    grown = state.add_records([_net(A, 450)])
    assert grown.counters == {_net(A, 450).key: 450}


def test_counter_epochs_sources_and_networks_add_up() -> None:
    state = LedgerState(SUB)
    state.add_records(
        [
            _net(A, 700, epoch=0),
            _net(A, 50, epoch=1),  # the gateway restarted: its counter began again
            _net(A, 20, source="pgw-2"),  # another gateway meters other traffic
            _net(B, 5, plmn="26201"),
            _net(B, 7, plmn="310260"),
            UsageRecord(SourceKind.DEVICE, "dev-a", A, P, 0, 999),  # never in network figures
        ]
    )
    usage = period_usage(state, P)
    assert usage.total == 700 + 50 + 20 + 5 + 7
    assert usage.by_iccid == {A: 770, B: 12}
    assert usage.by_plmn == {"": 770, "26201": 5, "310260": 7}
    assert usage.by_source == {"pgw-1": 762, "pgw-2": 20}
    device = period_usage(state, P, kind=SourceKind.DEVICE)
    assert device.total == 999
    assert device.by_source == {"dev-a": 999}
    assert period_usage(state, P + 1).total == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": 7},
        {"kind": True},
        {"source_id": ""},
        {"source_id": "x" * 65},
        {"iccid": "89490000000000001"},  # 17 digits
        {"iccid": "894900000000000000a"},
        {"period": -1},
        {"counter_epoch": 1 << 63},
        {"octets": -5},
        {"octets": True},
        {"visited_plmn": "2620"},
        {"visited_plmn": "26201a"},
    ],
)
def test_bad_records_are_refused(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "kind": SourceKind.NETWORK,
        "source_id": "pgw-1",
        "iccid": A,
        "period": P,
        "counter_epoch": 0,
        "octets": 1,
        "visited_plmn": "",
    }
    fields.update(kwargs)
    with pytest.raises(UsageError):
        UsageRecord(**fields)  # type: ignore[arg-type]


def test_plmn_encoding_follows_ts_24008() -> None:
    # TS 24.008 §10.5.1.13 layout; well-known identities: 262-01, 310-260
    assert encode_plmn("26201") == bytes.fromhex("62f210")
    assert encode_plmn("310260") == bytes.fromhex("130062")
    assert decode_plmn(bytes.fromhex("62f210")) == "26201"
    assert decode_plmn(bytes.fromhex("130062")) == "310260"


@given(st.from_regex(r"\A[0-9]{5,6}\Z"))
def test_plmn_round_trip(plmn: str) -> None:
    assert decode_plmn(encode_plmn(plmn)) == plmn


# -- billing periods -------------------------------------------------------------


def test_billing_period_rollover() -> None:
    created = datetime(2026, 11, 1, 8, 30, 15, 500000, tzinfo=UTC)
    first = billing_period(created, timedelta(days=30), created + timedelta(days=3))
    assert first.start == datetime(2026, 11, 1, 8, 30, 15, tzinfo=UTC)
    assert first.end == first.start + timedelta(days=30)
    assert first.id == int(first.start.timestamp())
    second = billing_period(created, timedelta(days=30), first.end)
    assert second.start == first.end
    assert billing_period(created, timedelta(days=30), first.end - timedelta(seconds=1)) == first
    assert billing_period(created, timedelta(days=30), created - timedelta(days=9)) == first
    with pytest.raises(UsageError):
        billing_period(created.replace(tzinfo=None), timedelta(days=30), created)
    with pytest.raises(UsageError):
        billing_period(created, timedelta(0), created)


def test_usage_of_one_period_does_not_leak_into_the_next() -> None:
    plan = Plan(pool_bytes=10 * GB, device_limit=3)
    state = LedgerState(SUB)
    state.add_records([_net(A, 10 * GB)])
    assert enforcement(state, plan, P, {A: None})[A].action is Action.BAR
    nxt = P + 30 * 86400
    open_period(state, plan, nxt)
    assert enforcement(state, plan, nxt, {A: None})[A].action is Action.ALLOW
    assert current_epoch(state, plan, nxt) == PoolEpoch(nxt, 0, EpochReason.PERIOD, 10 * GB)


# -- pool epochs -------------------------------------------------------------------


def test_top_up_and_plan_change_open_epochs_with_the_opening_usage() -> None:
    plan = Plan(pool_bytes=20 * GB, device_limit=5)
    state = LedgerState(SUB)
    state.add_records([_net(A, 12 * GB), _net(B, 6 * GB)])
    assert pool_epochs(state, plan, P) == [PoolEpoch(P, 0, EpochReason.PERIOD, 20 * GB)]
    epoch = top_up(state, plan, P, 5 * GB)
    assert epoch == PoolEpoch(P, 1, EpochReason.TOP_UP, 25 * GB, 18 * GB, {A: 12 * GB, B: 6 * GB})
    assert epoch.opening_for(C) == 0
    # epoch 0 was recorded too, so every replica knows the period's limit
    assert (P, 0) in state.epochs
    bigger = Plan(pool_bytes=50 * GB, device_limit=5)
    changed = change_plan(state, plan, bigger, P)
    assert changed.index == 2
    assert changed.reason is EpochReason.PLAN_CHANGE
    assert changed.limit == 55 * GB  # the new pool plus this period's top-up
    with pytest.raises(UsageError):
        top_up(state, plan, P, 0)


def test_auto_top_up_at_most_twice_a_period() -> None:
    plan = Plan(pool_bytes=20 * GB, device_limit=5)
    rule = AutoTopUp(add_bytes=5 * GB, at_percent=90, max_per_period=2)
    state = LedgerState(SUB)
    state.add_records([_net(A, 17 * GB)])
    assert auto_top_up(state, plan, P, rule) == []
    state.add_records([_net(A, 18 * GB)])
    first = auto_top_up(state, plan, P, rule)
    assert [(e.index, e.limit, e.reason) for e in first] == [(1, 25 * GB, EpochReason.AUTO_TOP_UP)]
    assert auto_top_up(state, plan, P, rule) == []  # 72 %
    # a jump past 90 % of 25 GB and of 30 GB: one more top-up only (the cap)
    state.add_records([_net(A, 29 * GB)])
    second = auto_top_up(state, plan, P, rule)
    assert [e.limit for e in second] == [30 * GB]
    assert auto_top_up(state, plan, P, rule) == []
    # the next period has its own allowance
    assert len(auto_top_up(state, plan, P + 1, rule)) == 0


# -- enforcement -------------------------------------------------------------------


def test_enforcement_follows_quotas_the_pool_and_the_policy() -> None:
    plan = Plan(pool_bytes=10 * GB, device_limit=3)
    state = LedgerState(SUB)
    state.add_records([_net(A, 4 * GB), _net(B, 1 * GB)])
    # device figures never count
    state.add_records([UsageRecord(SourceKind.DEVICE, "dev-b", B, P, 0, 9 * GB)])
    quotas = {A: 4 * GB, B: 2 * GB, C: None}
    decisions = enforcement(state, plan, P, quotas)
    assert decisions[A].action is Action.BAR
    assert decisions[A].reason == "quota"
    assert decisions[A].remaining == 0
    assert decisions[B].action is Action.ALLOW
    assert decisions[B].remaining == 1 * GB
    assert decisions[C].action is Action.ALLOW
    assert decisions[C].remaining == 5 * GB
    throttle = EnforcementPolicy(pool_exhausted=Action.THROTTLE, quota_exhausted=Action.THROTTLE)
    assert enforcement(state, plan, P, quotas, throttle)[A].action is Action.THROTTLE
    state.add_records([_net(C, 5 * GB)])
    pool_out = enforcement(state, plan, P, quotas, EnforcementPolicy(Action.THROTTLE, Action.BAR))
    assert pool_out[C].action is Action.THROTTLE
    assert pool_out[C].reason == "pool"
    assert pool_out[A].action is Action.BAR
    assert pool_out[A].reason == "quota"
    assert pool_out[B].used == 1 * GB
    top_up(state, plan, P, 5 * GB)
    assert enforcement(state, plan, P, quotas)[C].action is Action.ALLOW


@given(
    st.dictionaries(st.sampled_from(ICCIDS), st.integers(0, 30), min_size=1),
    st.dictionaries(st.sampled_from(ICCIDS), st.none() | st.integers(0, 20)),
    st.integers(1, 60),
)
def test_enforcement_matches_the_quotas(
    used: dict[str, int], quotas: dict[str, int | None], pool: int
) -> None:
    plan = Plan(pool_bytes=pool, device_limit=5)
    state = LedgerState(SUB)
    state.add_records(_net(i, n) for i, n in used.items())
    total = sum(used.values())
    for iccid, decision in enforcement(state, plan, P, quotas).items():
        quota = quotas[iccid]
        over_quota = bool(quota) and used.get(iccid, 0) >= (quota or 0)
        assert (decision.action is Action.BAR) == (over_quota or total >= pool)
        if decision.action is Action.ALLOW:
            assert 0 < decision.remaining <= pool - total


# -- ingest -------------------------------------------------------------------------


def test_network_ingest_refuses_unknown_iccids_and_merges_nothing() -> None:
    state = LedgerState(SUB)
    with pytest.raises(NotFoundError):
        ingest_network_records(state, [_net(A, 1), _net(C, 2)], known_iccids={A, B})
    assert state.is_empty()
    device_record = UsageRecord(SourceKind.DEVICE, "dev-a", A, P, 0, 1)
    with pytest.raises(UsageError):
        ingest_network_records(state, [device_record], known_iccids={A})
    delta = ingest_network_records(state, [_net(A, 1), _net(B, 2)], known_iccids={A, B})
    assert sorted(r.iccid for r in delta.records()) == [A, B]
    assert list(state.records()) == [_net(A, 1), _net(B, 2)]
