"""The profile policy and the failover machine, scenario by scenario, on a real eUICC
with profiles from two SM-DP+ cores (see :mod:`tests.carrier.world`)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from rspfed.errors import PolicyError, StorageError, UsageError
from rspfed.lpa._failover_state import (
    TABLE,
    Attached,
    FailoverState,
    Log,
    Phase,
    Scan,
    Tick,
    Timers,
)
from rspfed.lpa.failover import Failover
from rspfed.lpa.policy import ProfilePolicy, country_decision
from rspfed.lpa.settings import (
    SCHEMA_VERSION,
    CountryRule,
    LpaSettings,
    NetworkLists,
    default_path,
)
from tests.carrier.world import DP1, DP2, Device, device
from tests.smdp.helpers import Clock

TIMERS = Timers(
    lost_after=timedelta(seconds=10),
    seen_for=timedelta(seconds=10),
    trial_timeout=timedelta(seconds=5),
    hold=timedelta(seconds=30),
)


class Crash(Exception):
    pass


class Rig:
    def __init__(self, d: Device) -> None:
        self.d = d
        self.clock = Clock()
        self.settings = LpaSettings.open(d.settings_path)
        self.attach_ok: dict[str, bool] = {d.a: True, d.b: True, d.p: True}
        self.crash_at: str | None = None
        self.failover = self.make()

    async def _attach(self, iccid: str) -> bool:
        return self.attach_ok[iccid]

    def _checkpoint(self, point: str) -> None:
        if point == self.crash_at:
            self.crash_at = None
            raise Crash(point)

    def make(self) -> Failover:
        return Failover(
            self.d.lpa(),
            self.settings,
            now=self.clock,
            timers=TIMERS,
            attach=self._attach,
            deliver=self.d.deliver,
            checkpoint=self._checkpoint,
        )

    @property
    def policy(self) -> ProfilePolicy:
        return ProfilePolicy(self.failover)

    def run(self, coro: object) -> list[Log]:
        return asyncio.run(coro)  # type: ignore[arg-type]

    def phase(self) -> Phase:
        return self.failover.state.phase

    def enabled(self) -> str | None:
        return self.failover.view().enabled

    def watch(self, primary: bool, backup: bool = True, seconds: int = 5) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        self.run(self.failover.dispatch(Scan(primary, backup)))

    def restart(self) -> None:
        self.settings.close()
        self.d.reopen()
        self.settings = LpaSettings.open(self.d.settings_path)
        self.failover = self.make()
        self.run(self.failover.restart())


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig(device())
    r.run(r.failover.restart())
    yield r
    r.settings.close()
    r.d.close()


def test_fail_over_and_back(rig: Rig) -> None:
    d = rig.d
    rig.run(rig.policy.set_backup(d.b))
    assert rig.phase() is Phase.ON_PRIMARY
    rig.watch(primary=False)  # lost at t=5
    assert rig.phase() is Phase.PRIMARY_LOST
    rig.watch(primary=False)  # 5 s lost: not yet
    assert rig.enabled() == d.a
    rig.watch(primary=False)  # 10 s lost: fail over
    assert rig.enabled() == d.b
    assert rig.phase() is Phase.ON_BACKUP
    switched_at = rig.clock()
    # the primary comes back: seen for 10 s, but hold (30 s) keeps the backup until then
    for _ in range(5):
        rig.watch(primary=True)
        assert rig.enabled() == d.b
    rig.watch(primary=True)
    assert rig.clock() - switched_at >= TIMERS.hold
    assert rig.enabled() == d.a  # trial, and the attach worked: failback confirmed
    assert rig.phase() is Phase.ON_PRIMARY
    # each SM-DP+ received its own profile's enable and disable
    received = d.received()
    assert [(i, e) for i, _, e in received[DP1]][-2:] == [(d.a, "disable"), (d.a, "enable")]
    assert [(i, e) for i, _, e in received[DP2]][-2:] == [(d.b, "enable"), (d.b, "disable")]


def test_trial_reverted_when_attach_fails(rig: Rig) -> None:
    d = rig.d
    rig.run(rig.policy.set_backup(d.b))
    for _ in range(3):
        rig.watch(primary=False)
    assert rig.enabled() == d.b
    rig.attach_ok[d.a] = False  # the primary's network is visible but refuses us
    for _ in range(8):
        rig.watch(primary=True)
    # trial at the first moment hold allowed, attach failed; revert waits for hold again
    assert rig.phase() in (Phase.TRIAL_FAILED, Phase.ON_BACKUP, Phase.PRIMARY_SEEN)
    for _ in range(7):
        rig.watch(primary=True)
    assert rig.enabled() == d.b
    logs = [line for line in d.received()[DP1] if line[2] == "enable"]
    assert len(logs) >= 2  # the trial enable of A reached dp1


def test_trial_times_out_without_attach(rig: Rig) -> None:
    d = rig.d
    rig.run(rig.policy.set_backup(d.b))
    state = rig.failover.state
    rig.settings.put_failover_state(state)
    for _ in range(3):
        rig.watch(primary=False)
    assert rig.enabled() == d.b
    # no attach callback: the trial gets no attach result and times out
    rig.failover = Failover(d.lpa(), rig.settings, now=rig.clock, timers=TIMERS, deliver=d.deliver)
    while rig.enabled() == d.b:
        rig.watch(primary=True)
    assert rig.phase() is Phase.TRIAL
    rig.clock.advance(TIMERS.trial_timeout)
    rig.run(rig.failover.dispatch(Tick()))
    assert rig.phase() is Phase.TRIAL_FAILED
    rig.clock.advance(TIMERS.hold)
    rig.run(rig.failover.dispatch(Tick()))
    assert rig.enabled() == d.b


def test_user_switch_notifies_both_smdp_and_queues_when_unreachable(rig: Rig) -> None:
    d = rig.d
    d.es9[DP2].online = False
    lines = rig.run(rig.policy.switch(d.b))
    assert rig.enabled() == d.b
    assert rig.policy.primary == d.b
    assert any("queued" in line.text for line in lines)
    queued = d.lpa().notifications()
    assert [(n.iccid, n.event, n.address) for n in queued] == [(d.b, "enable", DP2)]
    assert d.received()[DP1][-1][0::2] == (d.a, "disable")
    d.es9[DP2].online = True
    rig.run(rig.failover.flush())
    assert d.lpa().notifications() == []
    assert d.received()[DP2][-1][0::2] == (d.b, "enable")


def test_ppr1_profile_is_never_left(rig: Rig) -> None:
    d = rig.d
    rig.run(rig.policy.switch(d.p))
    rig.run(rig.policy.set_backup(d.b))
    with pytest.raises(PolicyError, match="PPR1"):
        rig.run(rig.policy.switch(d.a))
    for _ in range(10):
        rig.watch(primary=False, seconds=20)
    assert rig.enabled() == d.p
    held = rig.failover.state.blocked
    assert held is not None
    assert "PPR1" in held


def test_unknown_profile_refused(rig: Rig) -> None:
    with pytest.raises(UsageError):
        rig.run(rig.policy.switch("8900009999999999999"))
    with pytest.raises(UsageError):
        rig.run(rig.policy.set_backup("8900009999999999999"))
    with pytest.raises(UsageError):
        rig.run(rig.policy.switch("12"))


@pytest.mark.parametrize("point", ["journal", "enabled"])
def test_crash_in_the_middle_of_a_switch(rig: Rig, point: str) -> None:
    d = rig.d
    rig.run(rig.policy.set_backup(d.b))
    rig.watch(primary=False)
    rig.watch(primary=False)
    rig.crash_at = point
    with pytest.raises(Crash):
        rig.watch(primary=False)
    journal = rig.settings.failover_state()
    assert journal.phase is Phase.SWITCHING
    assert journal.switch is not None
    assert journal.switch.target == d.b
    # "journal": the crash came after the journal was written, before the Enable
    assert rig.enabled() == (d.a if point == "journal" else d.b)
    rig.restart()
    state = rig.failover.state
    if point == "enabled":
        assert state.phase is Phase.ON_BACKUP
        assert d.lpa().notifications() == []  # delivered at the restart
        assert d.received()[DP2][-1][0::2] == (d.b, "enable")
    else:
        assert state.phase is Phase.PRIMARY_LOST
        assert rig.enabled() == d.a
        rig.watch(primary=False, seconds=10)
        assert rig.enabled() == d.b  # the timer ran again, then the switch


def test_no_profile_enabled_is_repaired_at_restart(rig: Rig) -> None:
    d = rig.d
    d.lpa().disable(d.a)
    assert rig.enabled() is None
    rig.restart()
    assert rig.enabled() == d.a


def test_enabled_outside_the_policy_becomes_primary(rig: Rig) -> None:
    d = rig.d
    rig.run(rig.policy.set_backup(d.b))
    d.lpa().enable(d.p)
    rig.watch(primary=True)
    assert rig.policy.primary == d.p


def test_country_rules(rig: Rig) -> None:
    d = rig.d
    settings = rig.settings
    settings.add_rule("fr", d.b)
    settings.add_rule("DE", d.a)
    with pytest.raises(UsageError):
        settings.add_rule("FR", d.a)
    with pytest.raises(UsageError):
        settings.add_rule("France", d.a)
    assert [(r.country, r.iccid) for r in settings.rules()] == [("FR", d.b), ("DE", d.a)]
    rig.run(rig.policy.on_network("FR"))
    assert rig.enabled() == d.b
    # once per arrival: a manual switch while in France stays
    rig.run(rig.policy.switch(d.a))
    rig.run(rig.policy.on_network("FR"))
    rig.run(rig.policy.on_network(None))  # a coverage gap is not a departure
    rig.run(rig.policy.on_network("FR"))
    assert rig.enabled() == d.a
    rig.run(rig.policy.on_network("DE"))
    assert rig.enabled() == d.a
    rig.run(rig.policy.on_network("FR"))
    assert rig.enabled() == d.b
    assert settings.remove_rule("FR")
    assert not settings.remove_rule("FR")


def test_country_decision() -> None:
    rules = [CountryRule(1, "FR", "1" * 19), CountryRule(2, "DE", "2" * 19)]
    assert country_decision(rules, None, "fr") == rules[0]
    assert country_decision(rules, "FR", "FR") is None
    assert country_decision(rules, "FR", None) is None
    assert country_decision(rules, "FR", "IT") is None
    assert country_decision(rules, "IT", "DE") == rules[1]


def test_settings_store(tmp_path: Path) -> None:
    path = default_path(tmp_path / "euicc.db")
    assert path.name == "euicc.db.lpa"
    with LpaSettings.open(path) as s:
        assert s.failover_state() == FailoverState()
        s.set_operator_url("8900001000000000001", "https://op1.example")
        lists = NetworkLists(("00101",), ("00102",), ("00103",))
        s.set_networks("8900001000000000001", lists)
        assert lists.allows("00102")
        assert not lists.allows("00103")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with LpaSettings.open(path) as s:
        assert s.operator_url("8900001000000000001") == "https://op1.example"
        assert s.networks("8900001000000000001") == lists
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StorageError):
        LpaSettings.open(path)
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(StorageError):
        LpaSettings.open(other)


def test_state_json_round_trip(rig: Rig) -> None:
    rig.run(rig.policy.set_backup(rig.d.b))
    rig.crash_at = "enabled"
    with pytest.raises(Crash):
        rig.run(rig.policy.switch(rig.d.p))
    state = rig.settings.failover_state()
    assert state.switch is not None
    assert FailoverState.from_json(state.to_json()) == state


def test_table_rows_are_reachable_phases() -> None:
    # every row starts from, and goes to, a phase of the machine; the switching rows
    # are the only ones that leave the enabled profile
    for (phase, _signal), row in TABLE.items():
        assert phase is not Phase.SWITCHING
        assert isinstance(row.target, Phase)


def test_attach_of_the_backup_does_not_move_the_primary(rig: Rig) -> None:
    rig.run(rig.policy.set_backup(rig.d.b))
    rig.run(rig.failover.dispatch(Attached(rig.d.b, False)))
    assert rig.phase() is Phase.ON_PRIMARY


def test_country_rule_on_selector_events(rig: Rig) -> None:
    from rspfed.network.radio import Rat, VisibleNetwork
    from rspfed.network.selection import (
        NetworkSelected,
        NoNetwork,
        NoNetworkReason,
        PriorityClass,
        Selection,
        SelectionReason,
    )

    d = rig.d
    rig.settings.add_rule("IT", d.b)
    abroad = VisibleNetwork("22201", Rat.EUTRAN, -85, "IT", "Rete")
    selected = NetworkSelected(
        Selection(abroad, PriorityClass.OTHER, roaming=True), SelectionReason.INITIAL
    )
    rig.run(rig.policy.on_selection(NoNetwork(NoNetworkReason.NONE_VISIBLE)))
    assert rig.enabled() == d.a
    lines = rig.run(rig.policy.on_selection(selected))
    assert rig.enabled() == d.b
    assert any("country rule IT" in line.text for line in lines)
    assert rig.policy.primary == d.b
