"""The driver of the failover machine: one event in, the eUICC and the journal updated.

:class:`Failover` runs :func:`rspfed.lpa._failover_state.step` against a
real eUICC (through an :class:`~rspfed.lpa.lpa.Lpa`) and the LPA settings
store (:class:`~rspfed.lpa.settings.LpaSettings`):

1. read the persisted state and what the eUICC shows (enabled profile,
   profiles, PPR1 flags);
2. step the machine and **persist the new state before acting** (when the
   step asks for an Enable, the state is SWITCHING: the journal);
3. carry out the actions: ES10c.EnableProfile (its outcome is fed back as
   ``Enabled`` / ``EnableFailed`` and persisted again), the delivery of the
   eUICC's pending notifications to each one's own SM-DP+
   (:meth:`Lpa.deliver_notifications`; undelivered ones stay queued on the
   eUICC and :meth:`Failover.flush` retries them), an attach through the
   ``attach`` callback (fed back as ``Attached``), and the decision lines.

A crash at any point leaves either the state before the step, or the
journal with the eUICC before or after the Enable; the next step (or
:meth:`Failover.restart`) reconciles them (see :mod:`rspfed.lpa._failover_state`).
``checkpoint`` is called with ``"journal"`` after each persist and
``"enabled"`` right after an Enable (before its outcome is persisted): tests
raise there to crash the driver at those points.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from rspfed.errors import RspfedError
from rspfed.lpa._failover_state import (
    Action,
    Attach,
    Attached,
    DeliverNotifications,
    Enable,
    Enabled,
    EnableFailed,
    EuiccView,
    Event,
    FailoverState,
    Log,
    Refused,
    Restart,
    Timers,
    step,
)
from rspfed.lpa.lpa import Lpa
from rspfed.lpa.notifications import Delivery
from rspfed.lpa.settings import LpaSettings

__all__ = ["Failover", "euicc_view"]

_MAX_ROUNDS = 8


def euicc_view(lpa: Lpa) -> EuiccView:
    """What the eUICC behind ``lpa`` shows: enabled profile, profiles, PPR1 flags."""
    profiles = lpa.profiles()
    enabled = next((p.iccid for p in profiles if p.enabled), None)
    return EuiccView(
        enabled,
        frozenset(p.iccid for p in profiles),
        frozenset(p.iccid for p in profiles if "ppr1" in p.profile_policy_rules),
    )


async def _deliver_all(lpa: Lpa) -> list[Delivery]:
    return await lpa.deliver_notifications()


class Failover:
    """Runs the failover machine on one eUICC (see the module doc).

    ``now`` is the clock; ``attach(iccid)`` attaches with the enabled profile and
    says whether it worked (``None``: no attach after a switch; the caller feeds
    :class:`~rspfed.lpa._failover_state.Attached` itself); ``deliver(lpa)``
    delivers the pending notifications (default :meth:`Lpa.deliver_notifications`).
    """

    def __init__(
        self,
        lpa: Lpa,
        settings: LpaSettings,
        *,
        now: Callable[[], datetime],
        timers: Timers | None = None,
        attach: Callable[[str], Awaitable[bool]] | None = None,
        deliver: Callable[[Lpa], Awaitable[list[Delivery]]] | None = None,
        checkpoint: Callable[[str], None] | None = None,
    ) -> None:
        self.lpa = lpa
        self.settings = settings
        self.timers = timers or Timers()
        self._now = now
        self._attach = attach
        self._deliver = deliver or _deliver_all
        self._checkpoint = checkpoint or (lambda _: None)
        self.deliveries: list[Delivery] = []
        """Every delivery attempt of this driver, in order."""

    @property
    def state(self) -> FailoverState:
        """The persisted state."""
        return self.settings.failover_state()

    def view(self) -> EuiccView:
        """What the eUICC shows now."""
        return euicc_view(self.lpa)

    async def restart(self) -> list[Action]:
        """Reconcile the journal with the eUICC (call once when the LPA starts)."""
        return await self.dispatch(Restart())

    async def dispatch(self, event: Event) -> list[Action]:
        """Step the machine with ``event`` and carry out what it asks; the decisions
        (:class:`Log` and :class:`Refused`) in order."""
        out: list[Action] = []
        queue: list[Event] = [event]
        rounds = 0
        while queue and rounds < _MAX_ROUNDS:
            rounds += 1
            current = queue.pop(0)
            result = step(
                self.settings.failover_state(),
                current,
                card=self.view(),
                now=self._now(),
                timers=self.timers,
            )
            self.settings.put_failover_state(result.state)
            self._checkpoint("journal")
            for action in result.actions:
                if isinstance(action, Log | Refused):
                    out.append(action)
                elif isinstance(action, Enable):
                    try:
                        self.lpa.enable(action.iccid)
                    except RspfedError as exc:
                        queue.append(EnableFailed(action.iccid, str(exc)))
                        continue
                    self._checkpoint("enabled")
                    queue.append(Enabled(action.iccid))
                elif isinstance(action, DeliverNotifications):
                    out.extend(await self.flush())
                elif isinstance(action, Attach) and self._attach is not None:
                    ok = await self._attach(action.iccid)
                    queue.append(Attached(action.iccid, ok))
        return out

    async def flush(self) -> list[Log]:
        """Deliver the eUICC's pending notifications; one decision line per notification."""
        deliveries = await self._deliver(self.lpa)
        self.deliveries.extend(deliveries)
        lines = []
        for d in deliveries:
            n = d.notification
            what = "delivered" if d.delivered else f"queued ({d.error})"
            lines.append(
                Log(f"notification #{n.seq_number} {n.event} {n.iccid} -> {n.address}: {what}")
            )
        return lines
