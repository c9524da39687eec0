"""select_network / rank_networks: properties of TS 23.122 §4.4.3.1.1 automatic mode.

The expected order is computed here independently (a straightforward
reading of the spec's list: class, then the place in the list, then signal),
and the properties below hold for any lists and any scan:
never a forbidden PLMN; class order; signal ranks only within one class (and
one list entry); the RAT filter; EHPLMN replacing the HPLMN.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import UsageError
from rspfed.network.radio import Cell, RadioEnvironment, Rat, VisibleNetwork, mcc_country
from rspfed.network.selection import (
    HIGH_QUALITY_DBM,
    PlmnLists,
    PriorityClass,
    classify,
    rank_networks,
    select_network,
)

POOL = ["00101", "00102", "20801", "20810", "20820", "26201", "310410", "23415"]
plmn_st = st.sampled_from(POOL)
rats_st = st.frozensets(st.sampled_from(list(Rat)), max_size=2)
nets = st.builds(
    VisibleNetwork,
    plmn=plmn_st,
    rat=st.sampled_from(list(Rat)),
    signal_dbm=st.integers(-140, -40),
    country=st.sampled_from(["", "FR", "DE"]),
)
lists_st = st.builds(
    PlmnLists,
    hplmn=plmn_st,
    ehplmn=st.lists(plmn_st, max_size=2, unique=True).map(tuple),
    user=st.lists(st.tuples(plmn_st, rats_st), max_size=3).map(tuple),
    operator=st.lists(st.tuples(plmn_st, rats_st), max_size=3).map(tuple),
    forbidden=st.lists(plmn_st, max_size=3, unique=True).map(tuple),
)
scans = st.lists(nets, max_size=10)
rat_filters = st.frozensets(st.sampled_from(list(Rat)), min_size=1)


def expected_class(lists: PlmnLists, net: VisibleNetwork) -> tuple[int, int] | None:
    """The spec's order, written out plainly (independent of the implementation)."""
    if net.plmn in lists.forbidden:
        return None
    home = list(lists.ehplmn) if lists.ehplmn else [lists.hplmn]
    if net.plmn in home:
        return (0, home.index(net.plmn))
    for cls, entries in ((1, lists.user), (2, lists.operator)):
        for i, (plmn, rats) in enumerate(entries):
            if plmn == net.plmn and (not rats or net.rat in rats):
                return (cls, i)
    threshold = {Rat.GSM: -85, Rat.UTRAN: -95, Rat.EUTRAN: -110, Rat.NGRAN: -110}[net.rat]
    return (3, 0) if net.signal_dbm >= threshold else (4, 0)


@given(lists=lists_st, scan=scans, rats=rat_filters)
def test_never_forbidden_and_rat_filter(
    lists: PlmnLists, scan: list[VisibleNetwork], rats: frozenset[Rat]
) -> None:
    ranked = rank_networks(lists, scan, rats=rats)
    assert all(s.network.plmn not in lists.forbidden for s in ranked)
    assert all(s.network.rat in rats for s in ranked)
    allowed = {(n.plmn, n.rat) for n in scan if n.plmn not in lists.forbidden and n.rat in rats}
    assert {(s.network.plmn, s.network.rat) for s in ranked} == allowed
    chosen = select_network(lists, scan, rats=rats)
    assert chosen == (ranked[0] if ranked else None)


@given(lists=lists_st, scan=scans, exclude=st.frozensets(plmn_st))
def test_exclude(lists: PlmnLists, scan: list[VisibleNetwork], exclude: frozenset[str]) -> None:
    assert all(s.network.plmn not in exclude for s in rank_networks(lists, scan, exclude=exclude))


@given(lists=lists_st, scan=scans)
def test_class_order_and_signal_only_within_a_class(
    lists: PlmnLists, scan: list[VisibleNetwork]
) -> None:
    ranked = rank_networks(lists, scan)
    keys = [expected_class(lists, s.network) for s in ranked]
    assert None not in keys
    assert [s.priority for s in ranked] == [PriorityClass(k[0]) for k in keys if k is not None]
    # class (and list place) never decreases along the ranking
    assert keys == sorted(keys, key=lambda k: k if k is not None else (9, 9))
    # signal decides only between networks of one class and one list entry
    for a, b in itertools.pairwise(ranked):
        if expected_class(lists, a.network) == expected_class(lists, b.network):
            assert a.network.signal_dbm >= b.network.signal_dbm
    for s in ranked:
        assert s.roaming == (s.network.plmn not in (lists.ehplmn or (lists.hplmn,)))
        assert classify(lists, s.network) is s.priority


@given(lists=lists_st, scan=scans)
def test_a_better_class_wins_whatever_the_signal(
    lists: PlmnLists, scan: list[VisibleNetwork]
) -> None:
    chosen = select_network(lists, scan)
    if chosen is None:
        return
    best = expected_class(lists, chosen.network)
    for net in scan:
        key = expected_class(lists, net)
        if key is not None:
            assert best is not None
            assert best <= key


def net(plmn: str, dbm: int, rat: Rat = Rat.EUTRAN, country: str = "FR") -> VisibleNetwork:
    return VisibleNetwork(plmn, rat, dbm, country)


def test_ehplmn_replaces_the_hplmn() -> None:
    lists = PlmnLists("00101", ehplmn=("20810", "20801"))
    scan = [net("00101", -60), net("20801", -70), net("20810", -120)]
    chosen = select_network(lists, scan)
    assert chosen is not None
    # the EHPLMN list's first entry, however weak; the IMSI's own PLMN is just "other"
    assert (chosen.network.plmn, chosen.priority, chosen.roaming) == (
        "20810",
        PriorityClass.HPLMN,
        False,
    )
    assert classify(lists, scan[0]) is PriorityClass.OTHER_HIGH_QUALITY
    assert [s.network.plmn for s in rank_networks(lists, scan)] == ["20810", "20801", "00101"]
    assert select_network(PlmnLists("00101"), scan[:1]) == select_network(
        PlmnLists("00101", ehplmn=()), scan[:1]
    )


def test_lists_in_order_and_rats() -> None:
    lists = PlmnLists(
        "00101",
        user=(("26201", frozenset({Rat.GSM})),),
        operator=(("20820", frozenset()), ("20801", frozenset({Rat.EUTRAN}))),
        forbidden=("23415",),
    )
    scan = [
        net("20801", -60),
        net("20820", -118),
        net("26201", -70),  # E-UTRAN: the user entry names GSM only
        net("23415", -40),
        net("310410", -100, Rat.NGRAN),
        net("26201", -90, Rat.GSM),
    ]
    order = [(s.network.plmn, s.network.rat, s.priority) for s in rank_networks(lists, scan)]
    assert order == [
        ("26201", Rat.GSM, PriorityClass.USER),
        ("20820", Rat.EUTRAN, PriorityClass.OPERATOR),
        ("20801", Rat.EUTRAN, PriorityClass.OPERATOR),
        ("26201", Rat.EUTRAN, PriorityClass.OTHER_HIGH_QUALITY),
        ("310410", Rat.NGRAN, PriorityClass.OTHER_HIGH_QUALITY),
    ]
    assert select_network(lists, scan, rats=frozenset({Rat.NGRAN})) == rank_networks(lists, scan)[4]
    assert select_network(lists, [net("23415", -40)]) is None


def test_high_quality_thresholds() -> None:
    lists = PlmnLists("00101")
    for rat, threshold in HIGH_QUALITY_DBM.items():
        assert classify(lists, net("20801", threshold, rat)) is PriorityClass.OTHER_HIGH_QUALITY
        assert classify(lists, net("20801", threshold - 1, rat)) is PriorityClass.OTHER


def test_radio_environment_scan_follows_the_schedule() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    s = timedelta(seconds=1)
    home = Cell(
        "00101", Rat.EUTRAN, "", "Home", ((t0, -90), (t0 + 10 * s, None), (t0 + 20 * s, -80))
    )
    other = Cell("20801", Rat.EUTRAN, "FR", "Other", ((t0 + 5 * s, -70),))
    env = RadioEnvironment((home, other))
    assert [v.plmn for v in env.scan(t0 - s)] == []
    assert [v.plmn for v in env.scan(t0)] == ["00101"]
    assert [v.plmn for v in env.scan(t0 + 5 * s)] == ["20801", "00101"]
    assert [v.plmn for v in env.scan(t0 + 10 * s)] == ["20801"]
    assert [(v.plmn, v.signal_dbm) for v in env.scan(t0 + 25 * s)] == [
        ("00101", -80),
        ("20801", -70),
    ][::-1]
    assert env.next_change(t0) == t0 + 5 * s
    assert env.next_change(t0 + 20 * s) is None
    assert home.pruned(t0 + 15 * s).signal == home.signal[1:]
    moved = env.with_cell(home.with_step(t0 + 12 * s, -100))
    assert moved.cell("00101", Rat.EUTRAN) is not None
    assert [v.signal_dbm for v in moved.scan(t0 + 13 * s) if v.plmn == "00101"] == [-100]
    with pytest.raises(UsageError):
        RadioEnvironment((home, home))
    with pytest.raises(UsageError):
        Cell("00101", Rat.EUTRAN, "", "", ((t0, -90), (t0, -80)))
    with pytest.raises(UsageError):
        Cell("00101", Rat.EUTRAN, "", "", ((datetime(2026, 1, 1), -90),))  # naive
    with pytest.raises(UsageError):
        VisibleNetwork("0010", Rat.EUTRAN, -90, "")
    with pytest.raises(UsageError):
        VisibleNetwork("00101", Rat.EUTRAN, -20, "")
    with pytest.raises(UsageError):
        VisibleNetwork("00101", Rat.EUTRAN, -90, "fr")


def test_mcc_country() -> None:
    assert mcc_country("20801") == "FR"
    assert mcc_country("310410") == "US"
    assert mcc_country("001") == ""
    assert mcc_country("00101") == ""
    assert mcc_country("99999") == ""
    with pytest.raises(UsageError):
        mcc_country("2080")


@given(n=nets)
def test_visible_network_json_round_trip(n: VisibleNetwork) -> None:
    assert VisibleNetwork.from_json(n.to_json()) == n
