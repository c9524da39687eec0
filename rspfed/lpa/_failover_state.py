"""The LPA's failover and failback machine, as a table (sans-IO).

Theory of operation
-------------------
A device holds a *primary* profile (the one the user, or a country rule,
chose last) and maybe a *backup* (the marker set with ``rspfed lpa backup
set``).  The machine watches connectivity signals for the primary and moves
the enabled profile between the two; it never disables a profile on its own
(every switch is one ES10c.EnableProfile, which disables the other profile in
the same atomic operation), so the eUICC is never left with none enabled.

Signals (:class:`Signal`), derived from events by :func:`step`:

* ``SEEN`` / ``GONE``: a scan did / did not show a network the primary may use
  (its HPLMN, EHPLMN, user or operator list, never a forbidden one);
* ``ATTACH_OK`` / ``ATTACH_FAILED``: an attach with the primary's USIM;
* ``TICK``: time passed (every event is followed by one ``TICK`` check, so
  the timers fire on scans and attaches as well as on ticks).

The table (:data:`TABLE`, ``(phase, signal) -> row``; no row: nothing happens)::

    ON_PRIMARY   --GONE | ATTACH_FAILED-->          PRIMARY_LOST (since = now)
    PRIMARY_LOST --ATTACH_OK-->                     ON_PRIMARY
    PRIMARY_LOST --TICK [lost for lost_after]-->    SWITCHING to the backup  (FAIL_OVER)
    ON_BACKUP    --SEEN-->                          PRIMARY_SEEN (since = now)
    PRIMARY_SEEN --GONE-->                          ON_BACKUP
    PRIMARY_SEEN --TICK [seen for seen_for]-->      SWITCHING to the primary (FAIL_BACK)
    TRIAL        --ATTACH_OK-->                     ON_PRIMARY (failback confirmed)
    TRIAL        --ATTACH_FAILED | GONE-->          TRIAL_FAILED
    TRIAL        --TICK [trial_timeout over]-->     TRIAL_FAILED
    TRIAL_FAILED --TICK [may switch]-->             SWITCHING to the backup  (REVERT)

``SWITCHING`` is the *journal*: the machine has asked for an Enable and
persisted where it goes (:class:`Switch`: from, to, why, since when, the
phase on success and the phase on failure) before the driver sends it.
``Enabled`` completes it (FAIL_OVER → ``ON_BACKUP``, FAIL_BACK → ``TRIAL``,
REVERT → ``ON_BACKUP``), ``EnableFailed`` returns to the phase on failure
with its timer restarted (so a refused switch is retried only after the
timer runs again, never in a tight loop).

Guards of the automatic switches (the "may switch" of every SWITCHING row):

* *hold*: no automatic switch sooner than ``hold`` after the previous
  automatic one started (hysteresis against flapping; a trial that fails
  before ``hold`` is reverted when ``hold`` is over);
* *PPR1*: never away from an enabled profile whose PPR1 is set (SGP.22
  §2.9.2: its disabling is not allowed; the eUICC would refuse with
  ``disallowedByPolicy`` and the machine does not even try);
* the target exists on the eUICC and is not the enabled one; for a fail-over,
  the backup's networks were visible in the last scan (nothing to gain
  otherwise).

A guard that holds a switch back is logged once (:attr:`FailoverState.blocked`).

The little code that does not fit a table: user (or country rule)
switches (:class:`Choose`, which makes the chosen profile the primary),
the backup marker (:class:`SetBackup`), and reconciliation with the eUICC's
actual state (:func:`settle`, run before every event, and :class:`Restart`):

* no profile enabled while one exists → enable the primary (else the backup,
  else the first profile): never zero enabled profiles while one is usable;
* a journal left in SWITCHING by a crash: the eUICC shows the target → the
  switch completed (its notifications are delivered now); it shows the
  source → the switch never happened (back to the phase on failure, timers
  restarted); none → the target is enabled again;
* the primary or backup deleted → forgotten; an enabled profile the state
  does not expect (``rspfed lpa enable`` outside the policy) becomes the
  primary, unless the machine is away on purpose (``ON_BACKUP``,
  ``PRIMARY_SEEN``: it still gives back to the primary).

With no backup (or the backup being the primary) the phase is ``IDLE``:
nothing automatic happens.  Clearing the backup while on it does not strand
the device: the machine still gives back to the primary when it returns.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

import attrs

from rspfed.errors import DecodeError, UsageError

__all__ = [
    "AWAY_PHASES",
    "TABLE",
    "Action",
    "Attach",
    "Attached",
    "Choose",
    "DeliverNotifications",
    "Effect",
    "Enable",
    "EnableFailed",
    "Enabled",
    "EuiccView",
    "Event",
    "FailoverState",
    "Guard",
    "Log",
    "Phase",
    "Refused",
    "Restart",
    "Row",
    "Scan",
    "SetBackup",
    "Signal",
    "Step",
    "Switch",
    "Tick",
    "Timers",
    "settle",
    "step",
]


class Phase(enum.Enum):
    """Where the machine is (see the module doc)."""

    IDLE = "idle"
    ON_PRIMARY = "on-primary"
    PRIMARY_LOST = "primary-lost"
    ON_BACKUP = "on-backup"
    PRIMARY_SEEN = "primary-seen"
    TRIAL = "trial"
    TRIAL_FAILED = "trial-failed"
    SWITCHING = "switching"


AWAY_PHASES: Final = frozenset({Phase.ON_BACKUP, Phase.PRIMARY_SEEN})
"""Phases in which a profile other than the primary is enabled on purpose."""


class Signal(enum.Enum):
    """What an event means for the primary."""

    SEEN = "seen"
    GONE = "gone"
    ATTACH_OK = "attach-ok"
    ATTACH_FAILED = "attach-failed"
    TICK = "tick"


class Effect(enum.Enum):
    """What a row does besides changing the phase."""

    START = "start"
    """Start the phase's timer (``since = now``)."""
    KEEP = "keep"
    """Keep ``since``."""
    FAIL_OVER = "fail-over"
    """Enable the backup; then ``ON_BACKUP``, on failure ``PRIMARY_LOST``."""
    FAIL_BACK = "fail-back"
    """Enable the primary on trial; then ``TRIAL``, on failure ``ON_BACKUP``."""
    REVERT = "revert"
    """Enable the backup again; then ``ON_BACKUP``, on failure ``TRIAL_FAILED``."""


class Guard(enum.Enum):
    """The condition of a row."""

    ALWAYS = "always"
    LOST_FOR = "lost-for"
    """``lost_after`` has passed since the primary was lost, and may switch."""
    SEEN_FOR = "seen-for"
    """The primary has been seen for ``seen_for``, and may switch."""
    TRIAL_OVER = "trial-over"
    """``trial_timeout`` has passed since the trial began without an attach."""
    MAY_SWITCH = "may-switch"
    """Hold over, no PPR1 on the enabled profile, a target to go to."""


@attrs.frozen
class Row:
    """One cell of :data:`TABLE`."""

    target: Phase
    effect: Effect
    guard: Guard = Guard.ALWAYS


_P, _S, _F = Phase, Signal, Effect

TABLE: Mapping[tuple[Phase, Signal], Row] = MappingProxyType(
    {
        (_P.ON_PRIMARY, _S.GONE): Row(_P.PRIMARY_LOST, _F.START),
        (_P.ON_PRIMARY, _S.ATTACH_FAILED): Row(_P.PRIMARY_LOST, _F.START),
        (_P.PRIMARY_LOST, _S.ATTACH_OK): Row(_P.ON_PRIMARY, _F.START),
        (_P.PRIMARY_LOST, _S.TICK): Row(_P.SWITCHING, _F.FAIL_OVER, Guard.LOST_FOR),
        (_P.ON_BACKUP, _S.SEEN): Row(_P.PRIMARY_SEEN, _F.START),
        (_P.PRIMARY_SEEN, _S.GONE): Row(_P.ON_BACKUP, _F.START),
        (_P.PRIMARY_SEEN, _S.TICK): Row(_P.SWITCHING, _F.FAIL_BACK, Guard.SEEN_FOR),
        (_P.TRIAL, _S.ATTACH_OK): Row(_P.ON_PRIMARY, _F.START),
        (_P.TRIAL, _S.ATTACH_FAILED): Row(_P.TRIAL_FAILED, _F.KEEP),
        (_P.TRIAL, _S.GONE): Row(_P.TRIAL_FAILED, _F.KEEP),
        (_P.TRIAL, _S.TICK): Row(_P.TRIAL_FAILED, _F.KEEP, Guard.TRIAL_OVER),
        (_P.TRIAL_FAILED, _S.TICK): Row(_P.SWITCHING, _F.REVERT, Guard.MAY_SWITCH),
    }
)
"""``(phase, signal) -> row``: every automatic move of the machine."""

_PLANS: Final[Mapping[Effect, tuple[bool, Phase, Phase]]] = MappingProxyType(
    {
        # effect: (to the backup?, phase on success, phase on failure)
        Effect.FAIL_OVER: (True, Phase.ON_BACKUP, Phase.PRIMARY_LOST),
        Effect.FAIL_BACK: (False, Phase.TRIAL, Phase.ON_BACKUP),
        Effect.REVERT: (True, Phase.ON_BACKUP, Phase.TRIAL_FAILED),
    }
)


# -- values -------------------------------------------------------------------------


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: timedelta) -> None:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise UsageError(f"{attribute.name} must be a non-negative timedelta")


@attrs.frozen
class Timers:
    """The machine's timers (shorten them in tests and demos)."""

    lost_after: timedelta = attrs.field(default=timedelta(seconds=30), validator=_non_negative)
    """The primary lost this long → fail over to the backup."""
    seen_for: timedelta = attrs.field(default=timedelta(seconds=60), validator=_non_negative)
    """The primary's network seen this long → trial switch back."""
    trial_timeout: timedelta = attrs.field(default=timedelta(seconds=30), validator=_non_negative)
    """No successful attach this long after a trial switch back → revert."""
    hold: timedelta = attrs.field(default=timedelta(seconds=120), validator=_non_negative)
    """Minimum time between two automatic switches."""


@attrs.frozen
class Switch:
    """The journal of a switch in progress."""

    source: str | None
    """The profile enabled before (``None``: none was)."""
    target: str
    reason: str
    automatic: bool
    started: datetime
    then: Phase
    """The phase once ``target`` is enabled."""
    otherwise: Phase
    """The phase if the switch fails or never happened."""
    primary: str | None
    """The primary once ``target`` is enabled."""


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("naive time")
    return moment


@attrs.frozen
class FailoverState:
    """The persisted state (see the module doc); :meth:`to_json` / :meth:`from_json`."""

    phase: Phase = Phase.IDLE
    primary: str | None = None
    backup: str | None = None
    since: datetime | None = None
    """When the current phase's condition began (lost, seen, trial)."""
    last_automatic: datetime | None = None
    """When the last automatic switch started (for ``hold``)."""
    backup_visible: bool = True
    """Whether the last scan showed a network the backup may use (unknown: ``True``)."""
    blocked: str | None = None
    """Why a due switch is held back (logged once)."""
    switch: Switch | None = None

    def to_json(self) -> str:
        """The state as JSON text."""

        def t(v: datetime | None) -> str | None:
            return None if v is None else v.isoformat()

        sw = self.switch
        return json.dumps(
            {
                "phase": self.phase.value,
                "primary": self.primary,
                "backup": self.backup,
                "since": t(self.since),
                "last_automatic": t(self.last_automatic),
                "backup_visible": self.backup_visible,
                "blocked": self.blocked,
                "switch": None
                if sw is None
                else {
                    "source": sw.source,
                    "target": sw.target,
                    "reason": sw.reason,
                    "automatic": sw.automatic,
                    "started": sw.started.isoformat(),
                    "then": sw.then.value,
                    "otherwise": sw.otherwise.value,
                    "primary": sw.primary,
                },
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> FailoverState:
        """The state from :meth:`to_json` text (:class:`~rspfed.errors.DecodeError` if bad)."""
        try:
            d = json.loads(text)
            sw = d["switch"]
            switch = None
            if sw is not None:
                started = _time(sw["started"])
                assert started is not None
                switch = Switch(
                    sw["source"],
                    str(sw["target"]),
                    str(sw["reason"]),
                    bool(sw["automatic"]),
                    started,
                    Phase(sw["then"]),
                    Phase(sw["otherwise"]),
                    sw["primary"],
                )
            return cls(
                Phase(d["phase"]),
                d["primary"],
                d["backup"],
                _time(d["since"]),
                _time(d["last_automatic"]),
                bool(d["backup_visible"]),
                d["blocked"],
                switch,
            )
        except (ValueError, KeyError, TypeError, AssertionError) as exc:
            raise DecodeError(f"not a failover state: {exc}", type_name="FailoverState") from None


@attrs.frozen
class EuiccView:
    """What the eUICC shows now (read by the driver before each step)."""

    enabled: str | None
    profiles: frozenset[str]
    ppr1: frozenset[str] = frozenset()
    """Profiles whose PPR1 ("disabling not allowed") is set."""


# -- events --------------------------------------------------------------------------


@attrs.frozen
class Scan:
    """A scan: whether a network the primary (the backup) may use was visible."""

    primary_visible: bool
    backup_visible: bool


@attrs.frozen
class Attached:
    """The outcome of an attach with the profile ``iccid``'s USIM."""

    iccid: str
    ok: bool


@attrs.frozen
class Tick:
    """Time passed."""


@attrs.frozen
class Choose:
    """The user (or a country rule) wants ``iccid`` enabled; it becomes the primary."""

    iccid: str
    reason: str = "user"


@attrs.frozen
class SetBackup:
    """Mark ``iccid`` as the backup (``None``: clear the marker)."""

    iccid: str | None


@attrs.frozen
class Enabled:
    """The Enable the machine asked for succeeded."""

    iccid: str


@attrs.frozen
class EnableFailed:
    """The Enable the machine asked for failed (``reason``: the error text)."""

    iccid: str
    reason: str


@attrs.frozen
class Restart:
    """The LPA (re)started: reconcile the state with the eUICC."""


Event = Scan | Attached | Tick | Choose | SetBackup | Enabled | EnableFailed | Restart
"""Everything :func:`step` takes."""


# -- actions -------------------------------------------------------------------------


@attrs.frozen
class Enable:
    """ES10c.EnableProfile ``iccid`` (then feed :class:`Enabled` or :class:`EnableFailed`)."""

    iccid: str
    reason: str


@attrs.frozen
class Attach:
    """Attach with the now enabled profile ``iccid`` (then feed :class:`Attached`)."""

    iccid: str


@attrs.frozen
class DeliverNotifications:
    """Deliver the eUICC's pending notifications, each to its own SM-DP+."""


@attrs.frozen
class Log:
    """A decision, one line of text."""

    text: str


@attrs.frozen
class Refused:
    """A request refused (``reason`` says why); nothing changed."""

    iccid: str | None
    reason: str


Action = Enable | Attach | DeliverNotifications | Log | Refused
"""What :func:`step` asks the driver to do."""


@attrs.frozen
class Step:
    """The new state and the actions to carry out, in order."""

    state: FailoverState
    actions: tuple[Action, ...] = ()


# -- the code that does not fit the table -----------------------------------------------


def _phase_for(primary: str | None, backup: str | None) -> Phase:
    return Phase.IDLE if backup is None or backup == primary else Phase.ON_PRIMARY


def settle(state: FailoverState, card: EuiccView, now: datetime) -> tuple[FailoverState, list[Log]]:
    """Reconcile a state that is not SWITCHING with what the eUICC shows (see the module doc;
    the case of no enabled profile is left to :func:`step`)."""
    logs: list[Log] = []
    primary = state.primary if state.primary in card.profiles else None
    backup = state.backup if state.backup in card.profiles else None
    if state.primary is not None and primary is None:
        logs.append(Log(f"primary {state.primary} is gone from the eUICC"))
    if state.backup is not None and backup is None:
        logs.append(Log(f"backup {state.backup} is gone from the eUICC"))
    enabled = card.enabled
    phase, since = state.phase, state.since
    if enabled is None:
        return attrs.evolve(state, primary=primary, backup=backup), logs
    if primary is None:
        primary = enabled
    if enabled == primary:
        want = _phase_for(primary, backup)
        if want is Phase.IDLE:
            phase = Phase.IDLE
        elif phase in AWAY_PHASES or phase is Phase.IDLE:
            phase, since = Phase.ON_PRIMARY, now
    elif phase not in AWAY_PHASES:
        if enabled == backup:
            phase, since = Phase.ON_BACKUP, now
        else:
            logs.append(Log(f"{enabled} was enabled outside the policy: it is the primary now"))
            primary = enabled
            phase, since = _phase_for(primary, backup), now
    if phase is not state.phase and phase is not Phase.SWITCHING:
        logs.append(Log(f"{state.phase.value} -> {phase.value} (the eUICC shows {enabled})"))
    new = attrs.evolve(state, phase=phase, primary=primary, backup=backup, since=since)
    if new.phase is not state.phase:
        new = attrs.evolve(new, blocked=None)
    return new, logs


def _may_switch(
    state: FailoverState, card: EuiccView, target: str | None, now: datetime, timers: Timers
) -> str | None:
    """``None`` when an automatic switch to ``target`` may happen now, else why not."""
    if target is None:
        return "no backup"
    if target not in card.profiles:
        return f"{target} is not on the eUICC"
    if target == card.enabled:
        return f"{target} is already enabled"
    if card.enabled is not None and card.enabled in card.ppr1:
        return f"PPR1: the enabled profile {card.enabled} may not be disabled"
    if state.last_automatic is not None and now < state.last_automatic + timers.hold:
        until = (state.last_automatic + timers.hold).isoformat(timespec="seconds")
        return f"hold: no automatic switch before {until}"
    return None


def _elapsed(state: FailoverState, span: timedelta, now: datetime) -> bool:
    return state.since is not None and now >= state.since + span


def _begin(
    state: FailoverState,
    card: EuiccView,
    target: str,
    reason: str,
    now: datetime,
    *,
    automatic: bool,
    then: Phase,
    otherwise: Phase,
    primary: str | None,
) -> Step:
    switch = Switch(card.enabled, target, reason, automatic, now, then, otherwise, primary)
    new = attrs.evolve(state, phase=Phase.SWITCHING, switch=switch, blocked=None)
    source = card.enabled or "none"
    return Step(new, (Log(f"switch {source} -> {target}: {reason}"), Enable(target, reason)))


def _run_row(
    state: FailoverState, signal: Signal, card: EuiccView, now: datetime, timers: Timers
) -> Step | None:
    row = TABLE.get((state.phase, signal))
    if row is None:
        return None
    guard = row.guard
    if guard is Guard.LOST_FOR and not _elapsed(state, timers.lost_after, now):
        return None
    if guard is Guard.SEEN_FOR and not _elapsed(state, timers.seen_for, now):
        return None
    if guard is Guard.TRIAL_OVER and not _elapsed(state, timers.trial_timeout, now):
        return None
    if row.target is Phase.SWITCHING:
        to_backup, then, otherwise = _PLANS[row.effect]
        target = state.backup if to_backup else state.primary
        why = _may_switch(state, card, target, now, timers)
        if why is None and to_backup and not state.backup_visible:
            why = "the backup's networks are not visible either"
        if why is not None:
            if why == state.blocked:
                return None
            return Step(attrs.evolve(state, blocked=why), (Log(f"{row.effect.value} held: {why}"),))
        assert target is not None
        reason = {
            Effect.FAIL_OVER: f"primary {state.primary} lost",
            Effect.FAIL_BACK: f"primary {state.primary} seen again (trial)",
            Effect.REVERT: f"trial of {state.primary} failed",
        }[row.effect]
        return _begin(
            state,
            card,
            target,
            reason,
            now,
            automatic=True,
            then=then,
            otherwise=otherwise,
            primary=state.primary,
        )
    since = now if row.effect is Effect.START else state.since
    new = attrs.evolve(state, phase=row.target, since=since, blocked=None)
    return Step(new, (Log(f"{state.phase.value} -> {row.target.value} ({signal.value})"),))


def _signal(state: FailoverState, event: Event) -> tuple[FailoverState, Signal | None]:
    if isinstance(event, Scan):
        state = attrs.evolve(state, backup_visible=event.backup_visible)
        return state, Signal.SEEN if event.primary_visible else Signal.GONE
    if isinstance(event, Attached):
        if event.iccid == state.primary:
            return state, Signal.ATTACH_OK if event.ok else Signal.ATTACH_FAILED
        if event.iccid == state.backup:
            state = attrs.evolve(state, backup_visible=event.ok or state.backup_visible)
        return state, None
    return state, None


def _complete(state: FailoverState, card: EuiccView, now: datetime, how: str) -> Step:
    sw = state.switch
    assert sw is not None
    new = attrs.evolve(
        state,
        phase=sw.then,
        primary=sw.primary,
        since=now,
        last_automatic=sw.started if sw.automatic else state.last_automatic,
        switch=None,
        blocked=None,
    )
    new, logs = settle(new, card, now)
    return Step(
        new,
        (
            Log(f"enabled {sw.target} ({sw.reason}){how}: {new.phase.value}"),
            *logs,
            DeliverNotifications(),
            Attach(sw.target),
        ),
    )


def _abandon(state: FailoverState, card: EuiccView, now: datetime, why: str) -> Step:
    sw = state.switch
    assert sw is not None
    new = attrs.evolve(state, phase=sw.otherwise, since=now, switch=None, blocked=None)
    new, logs = settle(new, card, now)
    return Step(new, (Log(f"switch to {sw.target} not done ({why}): {new.phase.value}"), *logs))


def _recover(state: FailoverState, card: EuiccView, now: datetime) -> Step:
    """A journal found in SWITCHING outside the switch (a crash): reconcile it."""
    sw = state.switch
    assert sw is not None
    if card.enabled == sw.target:
        return _complete(state, card, now, " before a restart")
    if card.enabled is None and sw.target in card.profiles:
        return Step(
            state,
            (Log(f"no profile enabled: enabling {sw.target} again"), Enable(sw.target, sw.reason)),
        )
    if card.enabled == sw.source or card.enabled is None:
        return _abandon(state, card, now, "interrupted before the eUICC enabled it")
    new = attrs.evolve(state, phase=sw.otherwise, switch=None, since=now, blocked=None)
    new, logs = settle(new, card, now)
    return Step(new, (Log(f"switch to {sw.target} superseded: {card.enabled} is enabled"), *logs))


def _rescue(state: FailoverState, card: EuiccView, now: datetime) -> Step | None:
    """No profile enabled: enable one (primary, backup, first)."""
    if card.enabled is not None or not card.profiles:
        return None
    target = next(
        p for p in (state.primary, state.backup, min(card.profiles)) if p in card.profiles
    )
    then = Phase.ON_PRIMARY if target == state.primary else Phase.ON_BACKUP
    return _begin(
        state,
        card,
        target,
        "no profile enabled",
        now,
        automatic=False,
        then=then,
        otherwise=state.phase,
        primary=state.primary or target,
    )


def _user(state: FailoverState, event: Choose | SetBackup, card: EuiccView, now: datetime) -> Step:
    if isinstance(event, SetBackup):
        if event.iccid is not None and event.iccid not in card.profiles:
            return Step(state, (Refused(event.iccid, f"no profile {event.iccid} on the eUICC"),))
        new, logs = settle(attrs.evolve(state, backup=event.iccid, blocked=None), card, now)
        text = "backup cleared" if event.iccid is None else f"backup set to {event.iccid}"
        return Step(new, (Log(f"{text}: {new.phase.value}"), *logs))
    iccid = event.iccid
    if iccid not in card.profiles:
        return Step(state, (Refused(iccid, f"no profile {iccid} on the eUICC"),))
    if card.enabled == iccid:
        new, logs = settle(
            attrs.evolve(state, primary=iccid, phase=Phase.IDLE, since=now), card, now
        )
        return Step(new, (Log(f"{iccid} is already enabled; it is the primary"), *logs))
    if card.enabled is not None and card.enabled in card.ppr1:
        return Step(
            state,
            (Refused(iccid, f"PPR1: the enabled profile {card.enabled} may not be disabled"),),
        )
    return _begin(
        state,
        card,
        iccid,
        event.reason,
        now,
        automatic=False,
        then=_phase_for(iccid, state.backup),
        otherwise=state.phase,
        primary=iccid,
    )


def step(
    state: FailoverState, event: Event, *, card: EuiccView, now: datetime, timers: Timers
) -> Step:
    """The machine's answer to ``event`` at ``now``, given what the eUICC shows (``card``)."""
    if now.tzinfo is None:
        raise UsageError("now must be timezone-aware")
    if isinstance(event, Enabled | EnableFailed):
        sw = state.switch
        if state.phase is not Phase.SWITCHING or sw is None or sw.target != event.iccid:
            return Step(state, (Log(f"ignored: no switch to {event.iccid} in progress"),))
        if isinstance(event, Enabled):
            return _complete(state, card, now, "")
        return _abandon(state, card, now, event.reason)
    if state.phase is Phase.SWITCHING and state.switch is not None:
        recovered = _recover(state, card, now)
        if recovered.state.phase is Phase.SWITCHING:
            return recovered
        rest = step(recovered.state, event, card=card, now=now, timers=timers)
        return Step(rest.state, recovered.actions + rest.actions)
    if state.phase is Phase.SWITCHING:  # a journal without a switch: treat as idle
        state = attrs.evolve(state, phase=Phase.IDLE)
    rescue = _rescue(state, card, now)
    if rescue is not None:
        return rescue
    state, logs = settle(state, card, now)
    actions: list[Action] = list(logs)
    if isinstance(event, Choose | SetBackup):
        done = _user(state, event, card, now)
        return Step(done.state, (*actions, *done.actions))
    state, signal = _signal(state, event)
    for sig in (signal, Signal.TICK, Signal.TICK):
        if sig is None:
            continue
        moved = _run_row(state, sig, card, now, timers)
        if moved is None:
            continue
        state = moved.state
        actions.extend(moved.actions)
        if state.phase is Phase.SWITCHING:
            break
    return Step(state, tuple(actions))
