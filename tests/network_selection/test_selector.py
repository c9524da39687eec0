"""NetworkSelector: the automatic mode loop with the EF.HPPLMN timer (injected time).

Examples: staying on a network while it is visible; reselecting on loss; the
periodic higher priority search while roaming (only at the timer, only to a
higher priority network of the same country, the period scalable); a
"PLMN not allowed" refusal forbidding the PLMN; other refusals.  Then a
hypothesis run over random scans, refusals and ticks with the invariants:
never a forbidden PLMN selected, a selection is always in the last scan and
on an allowed RAT, and a selection never changes while its network is
visible except by the higher priority search at or after its deadline.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import UsageError
from rspfed.network.errors import RefusalReason
from rspfed.network.radio import Rat, VisibleNetwork
from rspfed.network.selection import (
    NetworkSelected,
    NetworkSelector,
    NoNetwork,
    NoNetworkReason,
    PlmnForbidden,
    PlmnLists,
    PriorityClass,
    SelectionReason,
)

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
MIN = timedelta(minutes=1)
LISTS = PlmnLists(
    "00101",
    operator=(("20801", frozenset()), ("20810", frozenset())),
    hpplmn_period=timedelta(minutes=6),
)


def net(plmn: str, dbm: int = -90, country: str = "FR", rat: Rat = Rat.EUTRAN) -> VisibleNetwork:
    return VisibleNetwork(plmn, rat, dbm, country)


def selected(events: Sequence[object]) -> NetworkSelected:
    (event,) = [e for e in events if isinstance(e, NetworkSelected)]
    return event


def test_initial_stay_and_lost() -> None:
    sel = NetworkSelector(LISTS)
    first = selected(sel.on_scan([net("20820", -60), net("00101", -115)], T0))
    assert first.reason is SelectionReason.INITIAL
    assert first.selection.network.plmn == "00101"
    assert not first.selection.roaming
    assert sel.next_search is None  # at home: no periodic search
    # a much stronger network does not pull the device over
    assert sel.on_scan([net("20801", -50), net("00101", -118)], T0 + MIN) == []
    assert sel.selected is not None
    assert sel.selected.network.signal_dbm == -118
    lost = selected(sel.on_scan([net("20810", -100), net("20801", -105)], T0 + 2 * MIN))
    assert lost.reason is SelectionReason.LOST
    assert lost.selection.network.plmn == "20801"  # list order, not signal
    assert lost.previous is not None
    assert lost.previous.network.plmn == "00101"
    assert sel.next_search == T0 + 8 * MIN
    (none,) = sel.on_scan([], T0 + 3 * MIN)
    assert isinstance(none, NoNetwork)
    assert none.reason is NoNetworkReason.NONE_VISIBLE
    state: tuple[object, object] = (sel.selected, sel.next_search)
    assert state == (None, None)


def test_higher_priority_search_at_the_timer_only() -> None:
    sel = NetworkSelector(LISTS)
    start = selected(sel.on_scan([net("20820", -70)], T0))
    assert start.selection.priority is PriorityClass.OTHER_HIGH_QUALITY
    assert sel.next_search == T0 + 6 * MIN
    assert sel.period == 6 * MIN
    better = [net("20820", -70), net("20810", -100), net("00101", -112, country="DE")]
    # before the deadline: no change, whatever appears
    assert sel.on_scan(better, T0 + 5 * MIN) == []
    assert not sel.search_due(T0 + 5 * MIN)
    assert sel.search_due(T0 + 6 * MIN)
    moved = selected(sel.on_scan(better, T0 + 6 * MIN))
    assert moved.reason is SelectionReason.HIGHER_PRIORITY
    # the home network is in another country (DE): the search stays in the country
    assert moved.selection.network.plmn == "20810"
    assert sel.next_search == T0 + 12 * MIN
    both = [*better, net("20801", -108)]
    assert sel.tick(T0 + 11 * MIN) == []
    again = selected(sel.on_scan(both, T0 + 12 * MIN))
    assert again.selection.network.plmn == "20801"  # an earlier entry of the same list
    assert sel.on_scan(both, T0 + 18 * MIN) == []  # nothing better in the country
    assert sel.next_search == T0 + 24 * MIN


def test_tick_searches_the_last_scan_and_home_stops_the_timer() -> None:
    sel = NetworkSelector(LISTS, period=timedelta(minutes=6), scale=1 / 360)  # 6 min -> 1 s
    assert sel.period == timedelta(seconds=1)
    scan = [net("20801", -80), net("00101", -120, country="")]
    sel.on_scan([net("20801", -80)], T0)
    sel.on_scan(scan, T0 + timedelta(milliseconds=500))
    assert sel.selected is not None
    assert sel.selected.network.plmn == "20801"
    # countries: "" on one side compares MCCs (001 vs 208): not the same country
    assert sel.tick(T0 + timedelta(seconds=1)) == []
    home = [net("20801", -80), net("00101", -120)]
    sel.on_scan(home, T0 + timedelta(seconds=1, milliseconds=100))
    moved = selected(sel.tick(T0 + timedelta(seconds=2)))
    assert moved.selection.priority is PriorityClass.HPLMN
    assert not moved.selection.roaming
    assert sel.next_search is None


def test_no_period() -> None:
    for sel in (
        NetworkSelector(PlmnLists("00101", operator=LISTS.operator)),  # EF.HPPLMN '00'
        NetworkSelector(LISTS, period=None),
    ):
        sel.on_scan([net("20810")], T0)
        assert sel.next_search is None
        assert sel.on_scan([net("20810"), net("20801"), net("00101")], T0 + 24 * 60 * MIN) == []


def test_plmn_not_allowed_forbids_and_reselects() -> None:
    sel = NetworkSelector(LISTS)
    scan = [net("20820", -60), net("20830", -70), net("20810", -130)]
    assert selected(sel.on_scan(scan, T0)).selection.network.plmn == "20810"
    events = sel.on_refused("20810", RefusalReason.ROAMING_NOT_ALLOWED, T0)
    assert events[0] == PlmnForbidden("20810", ("20810",))
    nxt = selected(events)
    assert nxt.reason is SelectionReason.REFUSED
    assert nxt.selection.network.plmn == "20820"
    assert sel.forbidden == ("20810",)
    assert sel.lists.forbidden == ("20810",)
    # no coverage: skipped until the next scan, not forbidden
    events = sel.on_refused("20820", RefusalReason.NO_COVERAGE, T0)
    assert selected(events).selection.network.plmn == "20830"
    assert sel.forbidden == ("20810",)
    events = sel.on_refused("20830", RefusalReason.ROAMING_NOT_ALLOWED, T0)
    assert isinstance(events[-1], NoNetwork)
    assert events[-1].reason is NoNetworkReason.ALL_FORBIDDEN
    # the next scan may try 20820 again; the forbidden ones never
    assert selected(sel.on_scan(scan, T0 + MIN)).selection.network.plmn == "20820"


def test_home_refusal_is_not_forbidden_and_other_refusals_halt() -> None:
    sel = NetworkSelector(LISTS)
    sel.on_scan([net("00101"), net("20801")], T0)
    events = sel.on_refused("00101", RefusalReason.ROAMING_NOT_ALLOWED, T0)
    assert not any(isinstance(e, PlmnForbidden) for e in events)
    assert selected(events).selection.network.plmn == "20801"
    (halt,) = sel.on_refused("20801", RefusalReason.BARRED, T0)
    assert isinstance(halt, NoNetwork)
    assert halt.refusal is RefusalReason.BARRED
    assert sel.on_scan([net("00101")], T0 + MIN) == []  # halted until reset
    sel.reset()
    assert selected(sel.on_scan([net("00101")], T0 + 2 * MIN)).reason is SelectionReason.INITIAL


def test_bad_input() -> None:
    with pytest.raises(UsageError):
        NetworkSelector(LISTS, scale=0)
    with pytest.raises(UsageError):
        NetworkSelector(LISTS, rats=frozenset())
    with pytest.raises(UsageError):
        NetworkSelector(LISTS, period=timedelta(0))
    sel = NetworkSelector(LISTS)
    with pytest.raises(UsageError):
        sel.on_scan([], datetime(2026, 1, 1))  # naive
    with pytest.raises(UsageError):
        sel.on_refused("2080", RefusalReason.BARRED, T0)


PLMNS = ["00101", "20801", "20810", "20820", "20830", "26201"]
scan_st = st.lists(
    st.builds(
        VisibleNetwork,
        plmn=st.sampled_from(PLMNS),
        rat=st.sampled_from([Rat.EUTRAN, Rat.GSM]),
        signal_dbm=st.integers(-130, -50),
        country=st.sampled_from(["FR", "DE"]),
    ),
    max_size=6,
)
step_st = st.one_of(
    st.tuples(st.just("scan"), scan_st),
    st.tuples(st.just("tick"), st.none()),
    st.tuples(
        st.just("refuse"),
        st.sampled_from(
            [RefusalReason.ROAMING_NOT_ALLOWED, RefusalReason.NO_COVERAGE, RefusalReason.BARRED]
        ),
    ),
)


@given(
    steps=st.lists(st.tuples(step_st, st.integers(0, 400)), max_size=25),
    forbidden=st.lists(st.sampled_from(PLMNS), max_size=2, unique=True),
)
def test_selector_invariants(
    steps: list[tuple[tuple[str, object], int]], forbidden: list[str]
) -> None:
    lists = PlmnLists(
        "00101",
        operator=(("20801", frozenset()), ("20810", frozenset({Rat.EUTRAN}))),
        forbidden=tuple(forbidden),
        hpplmn_period=timedelta(minutes=6),
    )
    sel = NetworkSelector(lists, rats=frozenset({Rat.EUTRAN}))
    now = T0
    last: list[VisibleNetwork] = []
    for (kind, arg), seconds in steps:
        now += timedelta(seconds=seconds)
        before = sel.selected
        due = sel.next_search is not None and now >= sel.next_search
        if kind == "scan":
            assert isinstance(arg, list)
            last = arg
            events = sel.on_scan(last, now)
            still = before is not None and any(
                (n.plmn, n.rat) == (before.network.plmn, before.network.rat) for n in last
            )
            changes = [e for e in events if isinstance(e, NetworkSelected)]
            if still and changes:
                assert due
                assert changes[0].reason is SelectionReason.HIGHER_PRIORITY
        elif kind == "tick":
            events = sel.tick(now)
            if events:
                assert due
        else:
            assert isinstance(arg, RefusalReason)
            if before is None:
                continue
            events = sel.on_refused(before.network.plmn, arg, now)
        current = sel.selected
        for event in events:
            if isinstance(event, NetworkSelected):
                assert event.selection.network.plmn not in sel.forbidden
        if current is not None:
            assert current.network.plmn not in sel.forbidden
            assert current.network.rat is Rat.EUTRAN
            assert current.network.plmn in {n.plmn for n in last}
            assert (sel.next_search is not None) == current.roaming
