"""The failover policy on a real software eUICC with profiles from two SM-DP+ cores.

A hypothesis state machine drives connectivity (each profile's network up or
down, attaches that work or fail), time, user switches, the backup marker,
SM-DP+ outages, crashes of the LPA (at the journal and between the Enable and
its journal update: the eUICC and settings stores are closed and reopened and
the machine restarted) and the PPR1 profile.  After every step:

* exactly one profile is enabled (there always is a usable one);
* the enabled profile changed automatically no sooner than ``hold`` after the
  previous automatic change (times from the test's clock, not the machine's);
* every enable/disable notification the eUICC made is either still queued on
  the eUICC or was received by *its own* SM-DP+ (A and P: dp1, B: dp2), and at
  the end, with both SM-DP+ reachable, all were delivered;
* an enabled PPR1 profile is never switched away from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from rspfed.errors import PolicyError
from rspfed.euicc._state import ProfileStatus
from rspfed.lpa._failover_state import Attached, Scan, Tick, Timers
from rspfed.lpa.failover import Failover
from rspfed.lpa.policy import ProfilePolicy
from rspfed.lpa.settings import LpaSettings
from rspfed.saip.identifiers import decode_iccid
from tests.carrier.world import DP1, DP2, Device, device
from tests.smdp.helpers import Clock

T = TypeVar("T")


class Crash(Exception):
    """The LPA process dies here."""


class FailoverMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.d: Device = device()
        self.clock = Clock()
        self.up: dict[str, bool] = {self.d.a: True, self.d.b: True, self.d.p: True}
        self.works: dict[str, bool] = {self.d.a: True, self.d.b: True, self.d.p: True}
        self.settings = LpaSettings.open(self.d.settings_path)
        self.crash_at: tuple[str, int] | None = None
        self.timers = Timers()
        self.failover: Failover | None = None
        self.last_auto: Any = None
        self.baseline = max(
            (n.seq_number for s in (self.d.smdp1, self.d.smdp2) for n in s.notifications()),
            default=0,
        )
        self.crashes = 0
        self.crashed = False

    # -- plumbing -----------------------------------------------------------------

    def _checkpoint(self, point: str) -> None:
        if self.crash_at is not None and self.crash_at[0] == point:
            left = self.crash_at[1]
            if left == 0:
                self.crash_at = None
                raise Crash(point)
            self.crash_at = (point, left - 1)

    async def _attach(self, iccid: str) -> bool:
        return self.up[iccid] and self.works[iccid]

    def _make(self) -> Failover:
        return Failover(
            self.d.lpa(),
            self.settings,
            now=self.clock,
            timers=self.timers,
            attach=self._attach,
            deliver=self.d.deliver,
            checkpoint=self._checkpoint,
        )

    def _enabled(self) -> list[str]:
        """The enabled profiles, as the eUICC's own state has them."""
        return [
            decode_iccid(p.iccid)
            for p in self.d.euicc.store.state.profiles
            if p.status is ProfileStatus.ENABLED
        ]

    def _run(self, make: Callable[[], Awaitable[T]], *, automatic: bool = True) -> T | None:
        before = self._enabled()
        self.crashed = False
        try:
            result: T | None = asyncio.run(make())  # type: ignore[arg-type]
        except Crash:
            result = None
            self.crashed = True
            self._restart()
        after = self._enabled()
        event(f"phase {self.f.state.phase.value}")
        for line in result if isinstance(result, list) else []:
            text = getattr(line, "text", "")
            if text.startswith("switch"):
                event("switch: " + text.rsplit(": ", 1)[-1].split(" ")[0])
        if before != after:
            if before and after and before[0] == self.d.p:
                raise AssertionError("switched away from the PPR1 profile")
            if automatic:
                now = self.clock()
                if self.last_auto is not None:
                    assert now - self.last_auto >= self.timers.hold, "flapping faster than hold"
                self.last_auto = now
        return result

    def _restart(self) -> None:
        """The LPA starts again after a crash (and may crash again while recovering)."""
        while True:
            self.crashes += 1
            self.settings.close()
            self.d.reopen()
            self.settings = LpaSettings.open(self.d.settings_path)
            self.failover = self._make()
            try:
                asyncio.run(self.failover.restart())
            except Crash:
                continue
            return

    @property
    def f(self) -> Failover:
        assert self.failover is not None
        return self.failover

    # -- rules ----------------------------------------------------------------------

    @initialize(
        lost=st.integers(0, 20),
        seen=st.integers(0, 10),
        trial=st.integers(0, 20),
        hold=st.integers(1, 20),
    )
    def start(self, lost: int, seen: int, trial: int, hold: int) -> None:
        self.timers = Timers(
            timedelta(seconds=lost),
            timedelta(seconds=seen),
            timedelta(seconds=trial),
            timedelta(seconds=hold),
        )
        self.failover = self._make()
        asyncio.run(self.f.restart())
        asyncio.run(ProfilePolicy(self.f).set_backup(self.d.b))

    @rule(which=st.sampled_from("abp"), up=st.booleans())
    def network(self, which: str, up: bool) -> None:
        self.up[getattr(self.d, which)] = up

    @rule(which=st.sampled_from("abp"), works=st.booleans())
    def attach_works(self, which: str, works: bool) -> None:
        self.works[getattr(self.d, which)] = works

    @rule()
    def scan(self) -> None:
        state = self.f.state
        event = Scan(
            self.up.get(state.primary or "", False), self.up.get(state.backup or "", False)
        )
        self._run(lambda: self.f.dispatch(event))

    @rule()
    def attach(self) -> None:
        enabled = self._enabled()[0]
        ok = self.up[enabled] and self.works[enabled]
        self._run(lambda: self.f.dispatch(Attached(enabled, ok)))

    @rule(seconds=st.integers(0, 15))
    def watch(self, seconds: int) -> None:
        """One round of the watch loop: time passes, a scan, an attach with the enabled profile."""
        self.clock.advance(timedelta(seconds=seconds))
        self.scan()
        self.attach()

    @rule(down=st.integers(0, 40), up=st.integers(0, 60), rounds=st.integers(2, 6))
    def outage(self, down: int, up: int, rounds: int) -> None:
        """The primary's network goes away for ``down`` seconds, then stays for ``up``
        seconds, with watch rounds throughout (the story the policy exists for)."""
        primary = self.f.state.primary
        if primary is None:
            return
        self.up[primary] = False
        for _ in range(rounds):
            self.watch(down // rounds)
        self.up[primary] = True
        for _ in range(rounds):
            self.watch(up // rounds)

    @rule(seconds=st.integers(0, 40))
    def tick(self, seconds: int) -> None:
        self.clock.advance(timedelta(seconds=seconds))
        self._run(lambda: self.f.dispatch(Tick()))

    @rule(which=st.sampled_from("abp"))
    def user_switch(self, which: str) -> None:
        target = getattr(self.d, which)
        enabled = self._enabled()[0]
        policy = ProfilePolicy(self.f)
        if enabled == self.d.p and target != enabled:
            self.crash_at = None
            with pytest.raises(PolicyError):
                asyncio.run(policy.switch(target))
            assert self._enabled() == [self.d.p]
            return
        self._run(lambda: policy.switch(target), automatic=False)
        if not self.crashed:
            state = self.f.state
            if state.switch is None:
                assert self._enabled() == [target]
                assert state.primary == target

    @rule(which=st.sampled_from(["a", "b", None]))
    def backup(self, which: str | None) -> None:
        policy = ProfilePolicy(self.f)
        if which is None:
            self._run(policy.clear_backup)
        else:
            self._run(lambda: policy.set_backup(getattr(self.d, which)))

    @rule(address=st.sampled_from([DP1, DP2]), online=st.booleans())
    def smdp_online(self, address: str, online: bool) -> None:
        self.d.es9[address].online = online

    @rule()
    def flush(self) -> None:
        self._run(self.f.flush)

    @rule(point=st.sampled_from(["journal", "enabled"]), after=st.integers(0, 2))
    def arm_crash(self, point: str, after: int) -> None:
        self.crash_at = (point, after)

    @rule()
    def crash_now(self) -> None:
        self._restart()

    @rule()
    def disabled_outside(self) -> None:
        """Another tool disables the enabled profile (the eUICC then has none); the LPA,
        at its next start, enables one again."""
        enabled = self._enabled()[0]
        if enabled == self.d.p:
            return
        self.d.lpa().disable(enabled)
        assert self._enabled() == []
        self._restart()

    # -- invariants -----------------------------------------------------------------

    @invariant()
    def one_enabled(self) -> None:
        if self.failover is not None:
            assert len(self._enabled()) == 1

    @invariant()
    def notifications_to_their_own_smdp(self) -> None:
        owner = {self.d.a: DP1, self.d.p: DP1, self.d.b: DP2}
        state = self.d.euicc.store.state
        pending = state.notifications
        for n in pending:
            assert n.iccid is not None
            assert n.address == owner[decode_iccid(n.iccid)]
        received: set[int] = set()
        for address, notes in self.d.received().items():
            for iccid, seq, _event in notes:
                assert iccid is not None
                assert owner[iccid] == address
                if seq > self.baseline:
                    received.add(seq)
        queued = {n.seq_number for n in pending}
        assert not (queued & received)
        seen = queued | received
        # nothing lost: every notification made since the start is queued or delivered
        assert seen == set(range(self.baseline + 1, state.next_seq))

    def teardown(self) -> None:
        try:
            if self.failover is not None:
                for es9 in self.d.es9.values():
                    es9.online = True
                asyncio.run(self.f.flush())
                assert self.d.euicc.store.state.notifications == ()
                self.notifications_to_their_own_smdp()
        finally:
            self.settings.close()
            self.d.close()


FailoverMachine.TestCase.settings = settings(
    settings(),
    max_examples=max(5, settings().max_examples // 5),
    stateful_step_count=40,
)
test_failover_machine = FailoverMachine.TestCase
