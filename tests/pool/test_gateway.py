"""The sans-IO packet gateway alone: cumulative counters, epochs, grants, bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import UsageError
from rspfed.federation.ledger import (
    MAX_OCTETS,
    LedgerState,
    SourceKind,
    UsageRecord,
    period_usage,
)
from rspfed.network import NetworkRefusedError, RefusalReason
from rspfed.network.gateway import Gateway, Grant

ICCID = "89000000000000000012"
OTHER = "89000000000000000020"
PERIOD = 1_795_000_000


def test_counters_are_cumulative_per_iccid_period_and_network() -> None:
    gw = Gateway("pgw-7", counter_epoch=3)
    assert gw.carry(ICCID, PERIOD, 10).counter == 10
    assert gw.carry(ICCID, PERIOD, 5).counter == 15
    assert gw.carry(ICCID, PERIOD + 1, 7).counter == 7
    roaming = gw.carry(ICCID, PERIOD, 4, "26201")
    assert roaming.counter == 4
    assert roaming.record == UsageRecord(SourceKind.NETWORK, "pgw-7", ICCID, PERIOD, 3, 4, "26201")
    assert gw.carry(OTHER, PERIOD, 2).record.octets == 2
    assert {(r.iccid, r.period, r.visited_plmn, r.octets) for r in gw.records()} == {
        (ICCID, PERIOD, "", 15),
        (ICCID, PERIOD + 1, "", 7),
        (ICCID, PERIOD, "26201", 4),
        (OTHER, PERIOD, "", 2),
    }
    assert all(r.counter_epoch == 3 and r.source_id == "pgw-7" for r in gw.records())


def test_restart_counts_from_zero_under_the_next_epoch() -> None:
    gw = Gateway("pgw-1")
    first = gw.carry(ICCID, PERIOD, 100).record
    again = gw.restarted()
    assert again.counter_epoch == 1
    assert again.counter(ICCID, PERIOD) == 0
    second = again.carry(ICCID, PERIOD, 30).record
    assert first.key != second.key
    state = LedgerState("sub")
    state.add_records([second, first, first, second])
    assert period_usage(state, PERIOD).total == 130


def test_grants_limit_then_refuse() -> None:
    gw = Gateway("pgw-1")
    gw.set_grant(ICCID, Grant(remaining=50, refusal=RefusalReason.QUOTA_EXHAUSTED))
    assert gw.carry(ICCID, PERIOD, 30).octets == 30
    partial = gw.carry(ICCID, PERIOD, 30)
    assert (partial.octets, partial.counter) == (20, 50)
    with pytest.raises(NetworkRefusedError) as refused:
        gw.carry(ICCID, PERIOD, 1)
    assert refused.value.reason is RefusalReason.QUOTA_EXHAUSTED
    assert gw.counter(ICCID, PERIOD) == 50
    assert gw.carry(OTHER, PERIOD, 1000).octets == 1000  # another profile is not touched
    gw.set_grant(ICCID, Grant(throttled=True))
    carried = gw.carry(ICCID, PERIOD, 10)
    assert carried.throttled
    assert carried.octets == 10


def test_bad_input_leaves_the_gateway_unchanged() -> None:
    gw = Gateway("pgw-1")
    gw.carry(ICCID, PERIOD, 10)
    for iccid, period, octets, plmn in (
        ("not-an-iccid", PERIOD, 1, ""),
        (ICCID, -1, 1, ""),
        (ICCID, PERIOD, -1, ""),
        (ICCID, PERIOD, True, ""),
        (ICCID, PERIOD, 1, "x"),
        (ICCID, PERIOD, MAX_OCTETS, ""),  # 10 + MAX_OCTETS would overflow the counter
    ):
        with pytest.raises(UsageError):
            gw.carry(iccid, period, octets, plmn)
    assert [(r.iccid, r.octets) for r in gw.records()] == [(ICCID, 10)]
    assert gw.carry(ICCID, PERIOD, MAX_OCTETS - 10).counter == MAX_OCTETS
    for source, epoch in (("", 0), ("x" * 65, 0), ("pgw", -1), ("pgw", True)):
        with pytest.raises(UsageError):
            Gateway(source, counter_epoch=epoch)


@given(
    st.lists(
        st.tuples(st.sampled_from([ICCID, OTHER]), st.integers(0, 1 << 40), st.booleans()),
        max_size=30,
    )
)
def test_any_delivery_of_any_records_sums_to_what_was_carried(
    steps: list[tuple[str, int, bool]],
) -> None:
    gw = Gateway("pgw-1")
    delivered: list[UsageRecord] = []
    truth = {ICCID: 0, OTHER: 0}
    for iccid, octets, restart in steps:
        if restart:
            gw = gw.restarted()
        delivered.append(gw.carry(iccid, PERIOD, octets).record)
        truth[iccid] += octets
    state = LedgerState("sub")
    state.add_records(reversed(delivered + delivered[::2]))  # late, twice, out of order
    usage = period_usage(state, PERIOD)
    assert usage.total == sum(truth.values())
    assert {i: usage.by_iccid.get(i, 0) for i in truth} == truth
