"""The sans-IO failover machine alone, against a tiny eUICC model (many more runs than the
real-eUICC state machine can afford).

The model is the eUICC's behaviour as SGP.22 states it: EnableProfile is one
atomic operation that disables the enabled profile; it is refused when the
enabled profile's PPR1 is set.  Crashes drop the driver between the journal
and the Enable, or between the Enable and the journal update.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from rspfed.lpa._failover_state import (
    AWAY_PHASES,
    Attached,
    Choose,
    Enable,
    Enabled,
    EnableFailed,
    EuiccView,
    Event,
    FailoverState,
    Phase,
    Restart,
    Scan,
    SetBackup,
    Tick,
    Timers,
    step,
)

A, B, P = "8900001000000000001", "8900002000000000002", "8900003000000000003"
START = datetime(2026, 1, 1, tzinfo=UTC)

scans = st.builds(Scan, st.booleans(), st.booleans())
attaches = st.builds(Attached, st.sampled_from([A, B, P]), st.booleans())
events = st.one_of(
    scans,
    scans,
    scans,
    attaches,
    attaches,
    st.builds(Tick),
    st.builds(Tick),
    st.builds(Tick),
    st.builds(Choose, st.sampled_from([A, A, A, A, B, B, P])),
    st.builds(SetBackup, st.sampled_from([A, B, B, B, None])),
    st.builds(Restart),
)
moves = st.tuples(
    st.sampled_from([0, 1, 2, 5, 10, 20, 40]),  # seconds that pass first
    events,
    st.sampled_from(["none", "none", "none", "before-enable", "after-enable"]),
)


@settings(max_examples=400)
@given(
    lost=st.integers(0, 20),
    seen=st.integers(0, 20),
    trial=st.integers(0, 20),
    hold=st.integers(1, 40),
    script=st.lists(moves, min_size=10, max_size=80),
)
def test_machine_against_an_euicc_model(
    lost: int, seen: int, trial: int, hold: int, script: list[tuple[int, Event, str]]
) -> None:
    timers = Timers(*(timedelta(seconds=s) for s in (lost, seen, trial, hold)))
    profiles = frozenset({A, B, P})
    enabled: str | None = A
    now = START
    state = FailoverState()
    automatic: list[datetime] = []

    def card() -> EuiccView:
        return EuiccView(enabled, profiles, frozenset({P}))

    def run(event: Event, crash: str) -> None:
        nonlocal state, enabled
        queue: list[Event] = [event]
        while queue:
            result = step(state, queue.pop(0), card=card(), now=now, timers=timers)
            state = result.state
            assert FailoverState.from_json(state.to_json()) == state
            for action in result.actions:
                if not isinstance(action, Enable):
                    continue
                if crash == "before-enable":
                    return  # the journal is written, the Enable never sent
                before = enabled
                if before == P and action.iccid != P:
                    raise AssertionError("the machine tried to leave the PPR1 profile")
                if action.iccid not in profiles:
                    queue.append(EnableFailed(action.iccid, "no such profile"))
                    continue
                enabled = action.iccid
                sw = state.switch
                assert sw is not None
                if sw.automatic and before != enabled:
                    automatic.append(now)
                if crash == "after-enable":
                    return  # enabled, the journal not updated
                queue.append(Enabled(action.iccid))

    run(Restart(), "none")
    run(SetBackup(B), "none")
    for seconds, event, crash in script:
        now += timedelta(seconds=seconds)
        run(event, crash)
        if crash != "none":
            run(Restart(), "none")  # the LPA starts again
        assert enabled is not None  # never zero enabled profiles
        # hysteresis: automatic switches at least `hold` apart
        for earlier, later in itertools.pairwise(automatic):
            assert later - earlier >= timers.hold
        if state.phase is not Phase.SWITCHING:
            assert state.switch is None
            # the phase agrees with the eUICC
            if state.phase in AWAY_PHASES:
                assert enabled != state.primary
            else:
                assert enabled == state.primary
            if state.phase is Phase.IDLE:
                assert state.backup in (None, state.primary)
