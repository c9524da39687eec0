"""Usage alerts at 50, 75, 90 and 100 % of the pool and of each device quota (sans-IO).

An alert is identified by an :class:`~rspfed.federation.ledger.AlertKey` --
(scope: the pool or one device's ICCID, threshold, billing period, pool
epoch) -- within a subscription, and its **id** is the first 16 octets of
SHA-256 over the DER ``AlertIdInput`` (:func:`alert_id`): deterministic, so
every replica computes the same id and receivers deduplicate by it.  The keys
of the alerts fired so far live in the ledger state
(:attr:`LedgerState.fired`), a grow-only set that merges with the rest.

When an alert is due is a function of the state alone, computed from the
**network** figures:

* In the *current* (latest) pool epoch of the period, the usage is the
  state's network usage (at least the epoch's opening usage); a pool
  threshold ``t`` is due when ``used * 100 >= t * limit``; a device threshold
  when ``used_d * 100 >= t * quota_d`` (devices without a quota have none).
* A *closed* epoch (one followed by another) ends with the usage the next
  epoch recorded when it opened (``opening_used``, ``opening_device_used``):
  its thresholds are judged against that, so a late evaluation still fires
  what was crossed before a top-up, and nothing more.
* A new epoch starts with the thresholds at or below its opening ratio
  already spent (``t * limit <= opening_used * 100``; per device likewise):
  they never fire in it, so only the thresholds above the opening ratio
  re-arm.  (They are not written into the fired set: that set lists alerts
  that were actually raised, for the alert history.)

Because usage only grows and epochs only accumulate, an alert that is due
stays due: replicas that received the same records and epochs, in any order
and any number of times, fire the same alerts, each once (the fired set
absorbs repeats).  The operator fires alerts; devices learn them through the
merged state.  An integrator calls :func:`fire_alerts` after each ingest and
hands the returned :class:`Alert` values to its callbacks and delivery.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping

import attrs

from rspfed.errors import UsageError
from rspfed.federation.ledger import (
    AlertKey,
    LedgerState,
    PoolEpoch,
    alert_key_der,
    period_usage,
    pool_epochs,
)
from rspfed.federation.types import Plan

__all__ = [
    "ALERT_ID_SIZE",
    "DEFAULT_THRESHOLDS",
    "Alert",
    "alert_id",
    "due_alerts",
    "fire_alerts",
]

DEFAULT_THRESHOLDS: tuple[int, ...] = (50, 75, 90, 100)
"""The percentages of the pool and of each device quota that raise an alert."""

ALERT_ID_SIZE = 16
"""Octets of an alert id (truncated SHA-256)."""


def alert_id(subscription_id: str, key: AlertKey) -> bytes:
    """An alert's id: SHA-256 of the DER ``AlertIdInput`` (subscription, key), first 16 octets."""
    return hashlib.sha256(alert_key_der(subscription_id, key)).digest()[:ALERT_ID_SIZE]


@attrs.frozen
class Alert:
    """One alert to deliver (at least once; receivers deduplicate by ``id``).

    ``used`` and ``limit`` are the figures that made it due: the pool's
    network usage and limit, or the device's usage and quota.
    """

    id: bytes
    subscription_id: str
    key: AlertKey
    used: int
    limit: int

    @property
    def iccid(self) -> str | None:
        """The device's ICCID for a device-quota alert, ``None`` for the pool."""
        return self.key.device

    @property
    def threshold(self) -> int:
        """The percentage crossed."""
        return self.key.threshold


def _check_thresholds(thresholds: Iterable[int]) -> tuple[int, ...]:
    given = list(thresholds)
    for t in given:
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= 1000:
            raise UsageError("alert thresholds are integer percentages from 1 to 1000")
    return tuple(sorted(set(given)))


def _check_quota(quota: object) -> None:
    if quota is None:
        return
    if isinstance(quota, bool) or not isinstance(quota, int) or quota < 0:
        raise UsageError("a device quota is None or a non-negative integer")


def due_alerts(
    state: LedgerState,
    *,
    plan: Plan | int,
    period: int,
    quotas: Mapping[str, int | None],
    thresholds: Iterable[int] = DEFAULT_THRESHOLDS,
) -> list[Alert]:
    """The alerts due in ``period`` that ``state.fired`` does not hold yet (pure).

    ``plan`` is the subscription's plan (or pool size; only used when the
    period's epoch 0 is not recorded); ``quotas`` maps each device's ICCID to
    its quota (``Device.quota_bytes``; ``None`` or 0: none).  Alerts are
    listed by epoch, then pool before devices (ICCID order), then threshold.
    Thresholds other than integers from 1 to 1000, or a quota other than
    ``None`` or a non-negative integer, raise
    :class:`~rspfed.errors.UsageError`.
    """
    levels = _check_thresholds(thresholds)
    for quota in quotas.values():
        _check_quota(quota)
    epochs = pool_epochs(state, plan, period)
    usage = period_usage(state, period)
    devices: list[tuple[str, int]] = sorted((i, q) for i, q in quotas.items() if q)
    fired = state.fired
    sub = state.subscription_id
    out: list[Alert] = []
    for position, epoch in enumerate(epochs):
        closing: PoolEpoch | None = epochs[position + 1] if position + 1 < len(epochs) else None
        used = max(usage.total, epoch.opening_used) if closing is None else closing.opening_used
        _scope(out, fired, sub, None, epoch, levels, epoch.opening_used, used, epoch.limit)
        for iccid, quota in devices:
            opening = epoch.opening_for(iccid)
            if closing is None:
                used_d = max(usage.by_iccid.get(iccid, 0), opening)
            else:
                used_d = closing.opening_for(iccid)
            _scope(out, fired, sub, iccid, epoch, levels, opening, used_d, quota)
    return out


def _scope(
    out: list[Alert],
    fired: set[AlertKey],
    subscription_id: str,
    device: str | None,
    epoch: PoolEpoch,
    levels: tuple[int, ...],
    opening: int,
    used: int,
    limit: int,
) -> None:
    for threshold in levels:
        if threshold * limit <= opening * 100:
            continue  # spent when the epoch opened
        if used * 100 < threshold * limit:
            break  # levels are sorted: none above is due either
        key = AlertKey(device, threshold, epoch.period, epoch.index)
        if key not in fired:
            out.append(Alert(alert_id(subscription_id, key), subscription_id, key, used, limit))


def fire_alerts(
    state: LedgerState,
    *,
    plan: Plan | int,
    period: int,
    quotas: Mapping[str, int | None],
    thresholds: Iterable[int] = DEFAULT_THRESHOLDS,
    on_alert: Callable[[Alert], None] | None = None,
) -> list[Alert]:
    """Fire the due alerts: add their keys to ``state.fired``; the new alerts.

    Call it after merging records or a delta into the operator's state (and
    after opening a pool epoch).  ``on_alert``, when given, is called with
    each new alert after the fired set is updated (deliver at least once;
    persist the state first if delivery must survive a crash).
    """
    alerts = due_alerts(state, plan=plan, period=period, quotas=quotas, thresholds=thresholds)
    state.add_fired(a.key for a in alerts)
    if on_alert is not None:
        for alert in alerts:
            on_alert(alert)
    return alerts
