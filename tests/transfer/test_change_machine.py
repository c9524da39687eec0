"""A hypothesis state machine over a device change (rspfed.transfer.change) in process.

The three parties -- the old device, the new device and the operator (its
core, its store and the network's subscriber store) -- take their steps in
any order hypothesis chooses: the old device requests the change, sends the
order, resumes (finishing after the switch, or abandoning it: a rollback);
the new device applies the order (over a link that may lose the
notifications) and resumes; the operator process restarts; the clock moves
(past the order's lapse too).  Any step may crash at any later write of any
store: everything is then reopened from disk and the operator syncs.

Invariants after every step: the network serves EXACTLY ONE of the old and
the new IMSI, and the served one's profile is enabled on its device.  At the
end both sides resume until they are done (the old one abandoning the change
if the example says so, while it is open), and the change either went
through (new served, old profile deleted, both journals done, the change
completed) or rolled back (old served, the order cancelled, no new profile
on the new device).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from rspfed.errors import TransportError
from tests.transfer.change_env import (
    Base,
    ChangeEnv,
    Crash,
    Driver,
    Faults,
    _run,
    build_base,
    fast_dir,
)

FLOWS = {
    "primary": ("phone", "newphone"),
    "secondary": ("tablet", "newtablet"),
    "replace": ("phone", "laptop"),
}
_FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"

_BASE: dict[str, Base] = {}


@pytest.fixture(scope="module", autouse=True)
def base(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    where = fast_dir(tmp_path_factory.mktemp("change-machine"))
    _BASE["base"] = build_base(where)
    yield
    _BASE.clear()
    shutil.rmtree(where, ignore_errors=True)


class _Deaf:
    """An ES9+ link that downloads but loses every notification (a cut link)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def handle_notification(self, request: object) -> None:
        raise TransportError("link cut")


crash_in = st.integers(min_value=1, max_value=60) | st.none()


class ChangeMachine(RuleBasedStateMachine):
    env: ChangeEnv
    driver: Driver
    runs = 0

    @initialize(
        flow=st.sampled_from(sorted(FLOWS)),
        abandon=st.booleans(),
        crash=st.integers(min_value=1, max_value=40) | st.none(),
    )
    def start(self, flow: str, abandon: bool, crash: int | None) -> None:
        base = _BASE["base"]
        ChangeMachine.runs += 1
        self.where = base.path.parent / f"machine-{os.getpid()}-{ChangeMachine.runs}"
        self.faults = Faults()
        self.env = ChangeEnv.open(base, self.where, self.faults)
        mover, target = FLOWS[flow]
        self.driver = Driver.start(self.env, mover, target)
        self.crashes = 0
        self.abandon = abandon
        self._act(self.driver.request, crash)

    def teardown(self) -> None:
        env = getattr(self, "env", None)
        if env is None:
            return
        try:
            self.faults.armed = False
            self.driver.recover()
            self.driver.converge(abandon=self.abandon)
            self.driver.check_usable()
            old = self._old_phase()
            event(f"outcome: {old}, crashes: {min(self.crashes, 3)}")
            if old == "done":
                self.driver.assert_switched()
            else:
                assert old in (None, "cancelled"), old
                self.driver.assert_rolled_back()
        finally:
            env.close()
            shutil.rmtree(self.where, ignore_errors=True)

    # -- helpers ------------------------------------------------------------------------

    def _old_phase(self) -> str | None:
        j = self.driver.old.store.change()
        return None if j is None else j.phase

    def _new_phase(self) -> str | None:
        j = self.driver.new.store.change()
        return None if j is None else j.phase

    def _act(self, action: Callable[[], None], crash: int | None) -> None:
        if crash is not None:
            self.faults.crash_at = self.faults.count + crash
            self.faults.armed = True
        try:
            action()
        except Crash:
            self.crashes += 1
            self.faults.armed = False
            self.driver.recover()
        finally:
            self.faults.armed = False

    # -- the old device ---------------------------------------------------------------

    @precondition(lambda self: self._old_phase() is None)
    @rule(crash=crash_in)
    def old_request(self, crash: int | None) -> None:
        self._act(self.driver.request, crash)

    @precondition(lambda self: self._old_phase() == "requested")
    @rule(crash=crash_in)
    def old_sends_order(self, crash: int | None) -> None:
        self._act(self.driver.order_sent, crash)

    @precondition(lambda self: self._old_phase() not in (None, "done", "cancelled"))
    @rule(crash=crash_in, abandon=st.booleans())
    def old_resumes(self, crash: int | None, abandon: bool) -> None:
        self._act(lambda: self.driver.finish_old(abandon=abandon), crash)

    # -- the new device ---------------------------------------------------------------

    @precondition(
        lambda self: (
            self._old_phase() in ("order_sent", "switched", "cancelled")
            and self._new_phase() is None
        )
    )
    @rule(crash=crash_in, deaf=st.booleans())
    def new_applies(self, crash: int | None, deaf: bool) -> None:
        old = self.driver.old.store.change()
        assert old is not None
        from rspfed.transfer.change import ticket_from_journal

        self.driver.ticket = ticket_from_journal(old)
        es9 = _Deaf(self.env.es9) if deaf else None
        self._act(lambda: self.driver.apply(es9=es9), crash)

    @precondition(lambda self: self._new_phase() not in (None, "done", "cancelled"))
    @rule(crash=crash_in)
    def new_resumes(self, crash: int | None) -> None:
        self._act(self.driver.finish_new, crash)

    @precondition(lambda self: self._new_phase() in ("order_received", "downloaded"))
    @rule(crash=crash_in)
    def new_cancels(self, crash: int | None) -> None:
        from rspfed.transfer.change import cancel

        env = self.env
        new = self.driver.new
        self._act(lambda: _run(cancel(env.operator, new.store, new.lpa, now=env.clock)), crash)

    # -- the operator and the clock ---------------------------------------------------

    @rule(crash=crash_in)
    def operator_restarts(self, crash: int | None) -> None:
        def restart() -> None:
            self.env.dw.reopen_operator()
            self.env.dw.operator.sync()

        self._act(restart, crash)

    @rule(minutes=st.sampled_from([1, 30, 60 * 24 * 8]))
    def time_passes(self, minutes: int) -> None:
        self.env.clock.advance(timedelta(minutes=minutes))

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def exactly_one_served_and_usable(self) -> None:
        if getattr(self, "driver", None) is None:
            return
        self.driver._pair()
        self.driver.check_usable()


ChangeMachine.TestCase.settings = settings(
    max_examples=1000 if _FUZZ else 16,
    stateful_step_count=10,
    deadline=None,
)
TestChangeMachine = ChangeMachine.TestCase


def test_machine_module_has_base(tmp_path: Path) -> None:
    """The machine's world is built (the fixture ran)."""
    assert "base" in _BASE
