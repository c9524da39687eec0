"""The shared data pool of a subscription: metering, ledger, quotas, alerts, sync.

:class:`PoolService` sits beside the :class:`~rspfed.federation.operator.Operator`
and keeps each subscription's usage ledger (:mod:`rspfed.federation.ledger`)
in the operator's store (schema v2 tables).  Sans-IO: the clock and
randomness are injected; the HTTPS routes are in :mod:`rspfed.federation.http`.

Theory of operation
-------------------
* **Metering**: the service hosts one in-process packet gateway
  (:class:`~rspfed.network.gateway.Gateway`).  An attached device opens a
  short-lived *bearer* (:meth:`PoolService.open_bearer`) and carries traffic
  on it (:meth:`PoolService.use`); the gateway's cumulative counter is
  ingested at once.  Each :class:`PoolService` instance (a process start) takes
  the next gateway counter epoch from the store, so a restart never loses or
  double counts usage, and worker processes sharing a store never share a
  counter.
* **Ingest**: :meth:`ingest_network_records` (the gateway's or another
  network source's records, ICCIDs the subscription bills) and
  :meth:`ingest_device_batch` (a device's signed counters, verified once
  per batch with the key the device registered, its sequence above the last
  one accepted).  Both run in one store transaction: load the ledger, merge,
  open the period's epoch 0 (rollover), apply the automatic top-up rule,
  fire the due alerts, write only what grew.
* **Enforcement** follows the network's figures
  (:func:`~rspfed.federation.ledger.enforcement`) and is applied by the
  gateway (the PCEF), per ICCID, before each carry: a device at its quota is
  refused data (``quota-exhausted``), every device when the pool is used up
  (``pool-exhausted``); a top-up or the next period lifts it.  The AuC is not
  touched: a data quota bars data, not attach, voice or SMS.
* **Alerts** fired by an ingest are recorded once (the fired set), queued in
  an outbox for the primary and the affected device (delivered at least
  once until acknowledged by id, :meth:`pending_alerts` /
  :meth:`ack_alerts`) and handed to ``on_alert`` after the commit.  The
  callback should not raise: an exception propagates to the caller (a
  :meth:`use` then fails although its octets were carried and counted) and
  the alerts after it in that write are not handed over (they stay in the
  outbox).
* **Device changes** (:mod:`rspfed.federation.change`): a device's figures
  follow the device, not the profile.  After a switch the device record
  holds a new ICCID; its usage in a period is the sum over every ICCID it
  has held (its current one and the ``old_iccid`` of each of its switched or
  completed changes, :meth:`SqliteOperatorStore.switched_iccids`), and so
  are its per-device line, its quota enforcement and its per-device alerts
  (an alert that fired under the old ICCID does not fire again under the
  new one).  The ledger itself keeps the ICCIDs as metered (its wire format
  is unchanged); :func:`fold_switched_iccids` computes the per-device view
  of it for each request.
* **Sync**: every write bumps the subscription's ledger version and stamps
  the rows it wrote; :meth:`state_since` answers the delta since a version
  (the whole state for version 0), which a device merges into its replica.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import AuthorizationError, NotFoundError, ReplayError, UsageError
from rspfed.federation.alerts import DEFAULT_THRESHOLDS, Alert, alert_id, due_alerts
from rspfed.federation.ledger import (
    Action,
    AlertKey,
    AutoTopUp,
    BillingPeriod,
    CounterKey,
    Decision,
    EnforcementPolicy,
    EpochReason,
    LedgerState,
    PoolEpoch,
    SourceKind,
    UsageRecord,
    auto_top_up,
    billing_period,
    change_plan,
    current_epoch,
    enforcement,
    ingest_network_records,
    open_period,
    parse_device_batch,
    period_usage,
    sign_device_batch,
    top_up,
    verify_device_batch,
)
from rspfed.federation.operator import Operator, _public_key
from rspfed.federation.store import SqliteOperatorStore
from rspfed.federation.token import DeviceClass, Service
from rspfed.federation.types import Device, DeviceRole, DeviceState, Plan, Subscription
from rspfed.network.errors import NetworkRefusedError, RefusalReason
from rspfed.network.gateway import Gateway, Grant

__all__ = [
    "DeviceMeter",
    "DeviceUsage",
    "FiredAlert",
    "PoolService",
    "UsagePoint",
    "UsageResult",
    "UsageView",
    "fold_switched_iccids",
]


@attrs.frozen
class DeviceUsage:
    """One device's line of the usage view (network figures; ``reported`` the device's own)."""

    device_id: str
    name: str
    device_class: DeviceClass
    role: DeviceRole
    state: DeviceState
    iccid: str
    used: int
    quota: int | None
    reported: int
    action: Action
    reason: str


@attrs.frozen
class FiredAlert:
    """An alert as recorded when it fired (``device_id`` is None for the pool)."""

    id: bytes
    subscription_id: str
    key: AlertKey
    device_id: str | None
    used: int
    limit: int
    fired: datetime

    @property
    def threshold(self) -> int:
        """The percentage crossed."""
        return self.key.threshold

    @property
    def scope(self) -> str:
        """``"pool"`` or ``"device"``."""
        return "pool" if self.key.device is None else "device"


@attrs.frozen
class UsagePoint:
    """The pool's network usage at one moment (a sample taken when it grew)."""

    at: datetime
    used: int


@attrs.frozen
class UsageView:
    """A subscription's pool in one billing period, for displays and dashboards."""

    subscription_id: str
    period: BillingPeriod
    pool_limit: int
    pool_used: int
    pool_epoch: int
    devices: tuple[DeviceUsage, ...]
    alerts: tuple[FiredAlert, ...]
    points: tuple[UsagePoint, ...]
    by_plmn: Mapping[str, int] = attrs.field(factory=dict)

    @property
    def percent(self) -> float:
        """Pool used, in percent of the current limit."""
        return 100.0 * self.pool_used / self.pool_limit if self.pool_limit else 0.0


@attrs.frozen
class UsageResult:
    """What :meth:`PoolService.use` carried: ``refusal`` set when not all of it was.

    ``counter`` is the gateway's counter (of the profile ``iccid``), ``used``
    the device's network use in the billing period ``period`` (its id): over
    every ICCID the device has held, when it changed device in the period.
    """

    iccid: str
    requested: int
    carried: int
    counter: int
    used: int
    throttled: bool
    refusal: RefusalReason | None
    period: int = 0


def _t(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def fold_switched_iccids(state: LedgerState, aliases: Mapping[str, str]) -> LedgerState:
    """The per-device view of a ledger: each old ICCID's figures under its device's current one.

    ``aliases`` maps an ICCID a device held before a device change to the
    ICCID the device holds now (from
    :meth:`~rspfed.federation.store.SqliteOperatorStore.switched_iccids`).
    In the result, counters of an old ICCID are keyed by the current ICCID
    (two counters meeting on one key are *added*: they count different
    traffic), the pool epochs' opening device usage is summed likewise, and
    fired device alerts are re-keyed, so that
    :func:`~rspfed.federation.ledger.period_usage`,
    :func:`~rspfed.federation.ledger.enforcement` and
    :func:`~rspfed.federation.alerts.due_alerts` see one figure per device.
    Pool totals are unchanged.  The result is a read-only computation, not
    a replica: never merge or store it.  ``state`` itself is returned when
    there is nothing to fold.
    """
    if not aliases:
        return state
    counters: dict[CounterKey, int] = {}
    for key, octets in state.counters.items():
        current = aliases.get(key[2])
        if current is not None:
            key = (key[0], key[1], current, key[3], key[4], key[5])
        counters[key] = counters.get(key, 0) + octets
    fired = {
        attrs.evolve(k, device=aliases[k.device])
        if k.device is not None and k.device in aliases
        else k
        for k in state.fired
    }
    out = LedgerState(state.subscription_id, counters, (), fired)
    for slot, epoch in state.epochs.items():
        if not any(iccid in aliases for iccid, _ in epoch.opening_device_used):
            out.epochs[slot] = epoch
            continue
        opening: dict[str, int] = {}
        for iccid, octets in epoch.opening_device_used:
            current = aliases.get(iccid, iccid)
            opening[current] = opening.get(current, 0) + octets
        out.epochs[slot] = attrs.evolve(epoch, opening_device_used=opening)
    return out


class PoolService:
    """The shared data pool over an :class:`Operator` (see the module doc)."""

    def __init__(
        self,
        operator: Operator,
        *,
        now: Callable[[], datetime],
        rand: Callable[[int], bytes],
        gateway_id: str = "pgw-1",
        on_alert: Callable[[FiredAlert], None] | None = None,
        policy: EnforcementPolicy | None = None,
        thresholds: Iterable[int] = DEFAULT_THRESHOLDS,
        bearer_ttl: timedelta = timedelta(minutes=15),
    ) -> None:
        self._op = operator
        self._store: SqliteOperatorStore = operator.store
        self._clock = now
        self._rand = rand
        self._on_alert = on_alert
        self._policy = policy or EnforcementPolicy()
        self._thresholds = tuple(thresholds)
        self._bearer_ttl = bearer_ttl
        with self._store.transaction():
            rows = self._store.pool_rows(
                "SELECT counter_epoch FROM gateway WHERE source_id = ?", (gateway_id,)
            )
            epoch = rows[0][0] + 1 if rows else 0
            self._store.pool_exec(
                "INSERT OR REPLACE INTO gateway VALUES (?, ?)", (gateway_id, epoch)
            )
        self._gateway = Gateway(gateway_id, counter_epoch=epoch)

    def __repr__(self) -> str:
        return f"PoolService({self._store!r}, {self._gateway!r})"

    @property
    def operator(self) -> Operator:
        """The operator core."""
        return self._op

    @property
    def gateway(self) -> Gateway:
        """The in-process packet gateway."""
        return self._gateway

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise UsageError("the clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    # -- reading ---------------------------------------------------------------

    def _subscription(self, subscription_id: str) -> Subscription:
        return self._op.subscription(subscription_id)

    def period(self, subscription_id: str, when: datetime | None = None) -> BillingPeriod:
        """The billing period holding ``when`` (default now), anchored at the subscription."""
        sub = self._subscription(subscription_id)
        return billing_period(sub.created, sub.plan.period, when or self._now())

    def ledger(self, subscription_id: str) -> LedgerState:
        """The subscription's ledger state as stored (a fresh replica)."""
        self._subscription(subscription_id)
        return self._load(subscription_id)

    def _load(
        self, subscription_id: str, since: int = 0, periods: Iterable[int] | None = None
    ) -> LedgerState:
        """The stored state written after ``since``; only ``periods`` when given."""
        state = LedgerState(subscription_id)
        if periods is None:
            slices: list[tuple[int, int]] = [(-1, (1 << 63) - 1)]
        else:
            slices = [(p, p) for p in sorted(set(periods))]
        for low, high in slices:
            params = (subscription_id, since, low, high)
            rows = self._store.pool_rows(
                "SELECT kind, source_id, iccid, period, counter_epoch, plmn, octets"
                " FROM ledger_counter WHERE subscription_id = ? AND version > ?"
                " AND period BETWEEN ? AND ?",
                params,
            )
            state.counters.update((tuple(r[:6]), r[6]) for r in rows)
            for r in self._store.pool_rows(
                "SELECT period, idx, reason, lim, opening_used, opening_devices FROM pool_epoch"
                " WHERE subscription_id = ? AND version > ? AND period BETWEEN ? AND ?",
                params,
            ):
                devices = {k: int(v) for k, v in json.loads(r[5]).items()}
                state.add_epoch(PoolEpoch(r[0], r[1], EpochReason(r[2]), r[3], r[4], devices))
            state.add_fired(
                AlertKey(r[0], r[1], r[2], r[3])
                for r in self._store.pool_rows(
                    "SELECT iccid, threshold, period, pool_epoch FROM fired_alert"
                    " WHERE subscription_id = ? AND version > ? AND period BETWEEN ? AND ?",
                    params,
                )
            )
        return state

    def version(self, subscription_id: str) -> int:
        """The subscription's ledger version (grows with every write)."""
        rows = self._store.pool_rows(
            "SELECT version FROM ledger_version WHERE subscription_id = ?", (subscription_id,)
        )
        return int(rows[0][0]) if rows else 0

    def state_since(self, subscription_id: str, version: int = 0) -> tuple[LedgerState, int]:
        """The delta written after ``version`` (the whole state for 0) and the current version.

        Read in one transaction, so the delta and the version agree.
        """
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise UsageError("the version is a non-negative integer")
        self._subscription(subscription_id)
        with self._store.transaction():
            return self._load(subscription_id, version), self.version(subscription_id)

    def _devices(self, subscription_id: str) -> list[Device]:
        return self._store.devices(subscription_id)

    @staticmethod
    def _quotas(devices: Iterable[Device]) -> dict[str, int | None]:
        return {d.iccid: d.quota_bytes for d in devices if d.state is DeviceState.ACTIVE}

    def _aliases(self, subscription_id: str) -> dict[str, str]:
        """Old ICCID -> the device's current ICCID, for each switched device change."""
        return {old: now for old, _, now in self._store.switched_iccids(subscription_id)}

    def alerts(self, subscription_id: str) -> list[FiredAlert]:
        """Every alert fired for the subscription, oldest first.

        Alerts one write fired are in pool epoch, then scope (the pool first,
        then each device by ICCID), then threshold order.
        """
        rows = self._store.pool_rows(
            "SELECT alert_id, iccid, threshold, period, pool_epoch, used, lim, fired"
            " FROM fired_alert WHERE subscription_id = ?"
            " ORDER BY fired, version, pool_epoch, iccid IS NOT NULL, iccid, threshold, alert_id",
            (subscription_id,),
        )
        held = self._held(subscription_id)
        return [self._fired(subscription_id, r, held) for r in rows]

    def _held(self, subscription_id: str) -> dict[str, str]:
        """Old ICCID -> device id, for each switched device change of the subscription."""
        return {old: device for old, device, _ in self._store.switched_iccids(subscription_id)}

    def _fired(self, subscription_id: str, r: Sequence[Any], held: Mapping[str, str]) -> FiredAlert:
        iccid = r[1]
        device_id = None
        if isinstance(iccid, str):
            found = self._store.pool_rows("SELECT id FROM device WHERE iccid = ?", (iccid,))
            device_id = found[0][0] if found else held.get(iccid)
        key = AlertKey(iccid, int(r[2]), int(r[3]), int(r[4]))
        return FiredAlert(
            bytes(r[0]),
            subscription_id,
            key,
            device_id,
            int(r[5]),
            int(r[6]),
            datetime.fromisoformat(str(r[7])),
        )

    def view(self, subscription_id: str, *, period: int | None = None) -> UsageView:
        """The pool in the current billing period (or the period with id ``period``)."""
        sub = self._subscription(subscription_id)
        if period is None:
            bp = billing_period(sub.created, sub.plan.period, self._now())
        else:
            if isinstance(period, bool) or not isinstance(period, int):
                raise UsageError("a period id is an integer")
            try:
                when = datetime.fromtimestamp(period, UTC)
            except (OverflowError, OSError, ValueError):
                raise UsageError("no billing period has this id") from None
            bp = billing_period(sub.created, sub.plan.period, when)
        state = self._load(subscription_id, periods=[bp.id])
        folded = fold_switched_iccids(state, self._aliases(subscription_id))
        devices = self._devices(subscription_id)
        usage = period_usage(folded, bp.id)
        reported = period_usage(folded, bp.id, kind=SourceKind.DEVICE)
        decisions = enforcement(folded, sub.plan, bp.id, self._quotas(devices), self._policy)
        lines = []
        for d in devices:
            if d.state is DeviceState.ORDERED:
                continue
            decision = decisions.get(d.iccid)
            lines.append(
                DeviceUsage(
                    d.id,
                    d.name,
                    d.device_class,
                    d.role,
                    d.state,
                    d.iccid,
                    usage.by_iccid.get(d.iccid, 0),
                    d.quota_bytes,
                    reported.by_iccid.get(d.iccid, 0),
                    Action.ALLOW if decision is None else decision.action,
                    "" if decision is None else decision.reason,
                )
            )
        epoch = current_epoch(state, sub.plan, bp.id)
        alerts = tuple(a for a in self.alerts(subscription_id) if a.key.period == bp.id)
        points = tuple(
            UsagePoint(datetime.fromisoformat(r[0]), int(r[1]))
            for r in self._store.pool_rows(
                "SELECT at, used FROM usage_sample WHERE subscription_id = ? AND period = ?"
                " ORDER BY at, used",
                (subscription_id, bp.id),
            )
        )
        return UsageView(
            subscription_id,
            bp,
            epoch.limit,
            usage.total,
            epoch.index,
            tuple(lines),
            alerts,
            points,
            dict(usage.by_plmn),
        )

    def decision(self, iccid: str) -> Decision:
        """The enforcement decision in force for one active profile.

        Its device's usage counts every ICCID the device has held (device
        changes), so a change of device never renews a quota.
        """
        device = self._device_by_iccid(iccid)
        sub = self._subscription(device.subscription_id)
        bp = billing_period(sub.created, sub.plan.period, self._now())
        state = fold_switched_iccids(self._load(sub.id, periods=[bp.id]), self._aliases(sub.id))
        return enforcement(state, sub.plan, bp.id, {iccid: device.quota_bytes}, self._policy)[iccid]

    def _device_by_iccid(self, iccid: str) -> Device:
        rows = self._store.pool_rows("SELECT id FROM device WHERE iccid = ?", (iccid,))
        device = self._store.device(rows[0][0]) if rows else None
        if device is None or device.state is not DeviceState.ACTIVE:
            raise NotFoundError("no active device holds this ICCID")
        return device

    # -- writing ---------------------------------------------------------------

    def _commit(
        self,
        sub: Subscription,
        change: Callable[[LedgerState, int], object],
        periods: Iterable[int] = (),
    ) -> tuple[LedgerState, list[FiredAlert]]:
        """Load, change, roll over, auto top-up, fire alerts, save what grew; (delta, alerts).

        Only the current period and ``periods`` (those the change touches)
        are loaded: the cost does not grow with the subscription's history.
        """
        now = self._now()
        fired: list[FiredAlert] = []
        with self._store.transaction():
            sub = self._subscription(sub.id)
            period = billing_period(sub.created, sub.plan.period, now).id
            state = self._load(sub.id, periods={period, *periods})
            before = state.copy()
            open_period(state, sub.plan, period)
            change(state, period)
            rule = self.auto_top_up_rule(sub.id)
            if rule is not None:
                auto_top_up(state, sub.plan, period, rule)
            devices = self._devices(sub.id)
            alerts = due_alerts(
                fold_switched_iccids(state, self._aliases(sub.id)),
                plan=sub.plan,
                period=period,
                quotas=self._quotas(devices),
                thresholds=self._thresholds,
            )
            state.add_fired(a.key for a in alerts)
            delta = self._save(sub.id, before, state, alerts, devices, now)
            fired = [self._as_fired(sub.id, a, devices, now) for a in alerts]
            old_total = period_usage(before, period).total
            new_total = period_usage(state, period).total
            if new_total != old_total:
                self._store.pool_exec(
                    "INSERT INTO usage_sample VALUES (?, ?, ?, ?)",
                    (sub.id, period, _t(now), new_total),
                )
        if self._on_alert is not None:
            for alert in fired:
                self._on_alert(alert)
        return delta, fired

    @staticmethod
    def _as_fired(
        subscription_id: str, alert: Alert, devices: list[Device], now: datetime
    ) -> FiredAlert:
        device_id = next((d.id for d in devices if d.iccid == alert.iccid), None)
        return FiredAlert(
            alert.id, subscription_id, alert.key, device_id, alert.used, alert.limit, now
        )

    def _save(
        self,
        subscription_id: str,
        before: LedgerState,
        state: LedgerState,
        alerts: list[Alert],
        devices: list[Device],
        now: datetime,
    ) -> LedgerState:
        grown = {k: v for k, v in state.counters.items() if before.counters.get(k, -1) < v}
        epochs = [e for s, e in state.epochs.items() if before.epochs.get(s) != e]
        new_fired = state.fired - before.fired
        delta = LedgerState(subscription_id, grown, epochs, new_fired)
        if delta.is_empty():
            return delta
        version = self.version(subscription_id) + 1
        self._store.pool_exec(
            "INSERT OR REPLACE INTO ledger_version VALUES (?, ?)", (subscription_id, version)
        )
        for key, octets in grown.items():
            self._store.pool_exec(
                "INSERT INTO ledger_counter VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO UPDATE SET octets = excluded.octets, version = excluded.version"
                " WHERE excluded.octets > ledger_counter.octets",
                (subscription_id, *key, octets, version),
            )
        for e in epochs:
            self._store.pool_exec(
                "INSERT OR REPLACE INTO pool_epoch VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    subscription_id,
                    e.period,
                    e.index,
                    e.reason.value,
                    e.limit,
                    e.opening_used,
                    json.dumps(dict(e.opening_device_used)),
                    version,
                ),
            )
        by_key = {a.key: a for a in alerts}
        primaries = [d.id for d in devices if d.role is DeviceRole.PRIMARY]
        for fired_key in new_fired:
            alert = by_key.get(fired_key)
            used, limit = (0, 0) if alert is None else (alert.used, alert.limit)
            aid = alert_id(subscription_id, fired_key)
            self._store.pool_exec(
                "INSERT OR IGNORE INTO fired_alert VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    aid,
                    subscription_id,
                    fired_key.device,
                    fired_key.threshold,
                    fired_key.period,
                    fired_key.pool_epoch,
                    used,
                    limit,
                    _t(now),
                    version,
                ),
            )
            recipients = set(primaries)
            recipients.update(
                d.id for d in devices if fired_key.device and d.iccid == fired_key.device
            )
            for device_id in sorted(recipients):
                self._store.pool_exec(
                    "INSERT OR IGNORE INTO alert_outbox VALUES (?, ?, 0)", (aid, device_id)
                )
        return delta

    def ingest_network_records(
        self, subscription_id: str, records: Iterable[UsageRecord]
    ) -> list[FiredAlert]:
        """Merge a network source's records (ICCIDs this subscription bills); new alerts.

        The ICCIDs billed are those of the active devices and those the
        active devices held before a device change (a late record of the old
        profile still counts, for its device).
        :class:`~rspfed.errors.NotFoundError` for an unknown or removed ICCID,
        :class:`~rspfed.errors.UsageError` for a record not of kind network;
        nothing of the batch is merged then.
        """
        sub = self._subscription(subscription_id)
        batch = list(records)
        known = set(self._quotas(self._devices(sub.id)))
        known.update(old for old, now in self._aliases(sub.id).items() if now in known)

        def change(state: LedgerState, _period: int) -> None:
            ingest_network_records(state, batch, known_iccids=known)

        return self._commit(sub, change, {r.period for r in batch if isinstance(r, UsageRecord)})[1]

    def ingest_device_batch(self, der: bytes, *, device_id: str | None = None) -> LedgerState:
        """Verify a device's signed batch (once) and merge it; the delta.

        ``device_id``: the authenticated caller, when the batch came over a
        signed request (a device reporting as another is refused).  Raises
        :class:`~rspfed.errors.DecodeError`,
        :class:`~rspfed.errors.SignatureError`,
        :class:`~rspfed.errors.AuthorizationError` (another device's batch or
        profile), :class:`~rspfed.errors.ReplayError` (a sequence seen
        before) or :class:`~rspfed.errors.NotFoundError` (unknown or removed
        device).
        """
        claimed = parse_device_batch(der)
        if device_id is not None and claimed.device_id != device_id:
            raise AuthorizationError("the batch is another device's")
        device = self._store.device(claimed.device_id)
        if device is None or device.state is not DeviceState.ACTIVE:
            raise NotFoundError("no active device sent this batch")
        if device.device_key is None:
            raise NotFoundError("the device has not registered a key")
        rows = self._store.pool_rows(
            "SELECT sequence FROM device_batch WHERE device_id = ?", (device.id,)
        )
        batch = verify_device_batch(
            der,
            device_public_key=_public_key(device.device_key),
            subscription_id=device.subscription_id,
            device_id=device.id,
            iccids={device.iccid},
            after_sequence=int(rows[0][0]) if rows else None,
        )
        sub = self._subscription(device.subscription_id)

        def change(state: LedgerState, _period: int) -> None:
            moved = self._store.pool_exec(
                "INSERT INTO device_batch VALUES (?, ?) ON CONFLICT DO UPDATE"
                " SET sequence = excluded.sequence WHERE excluded.sequence > device_batch.sequence",
                (device.id, batch.sequence),
            )
            if not moved:
                raise ReplayError("the batch's sequence number was already used")
            state.add_records(batch.records)

        return self._commit(sub, change, {r.period for r in batch.records})[0]

    def top_up(self, subscription_id: str, add_bytes: int) -> PoolEpoch:
        """Add ``add_bytes`` to this period's pool (a new pool epoch); the epoch."""
        sub = self._subscription(subscription_id)
        opened: list[PoolEpoch] = []

        def change(state: LedgerState, period: int) -> None:
            opened.append(top_up(state, sub.plan, period, add_bytes))

        self._commit(sub, change)
        return opened[0]

    def change_plan(self, subscription_id: str, plan: Plan) -> PoolEpoch:
        """Move the subscription to ``plan`` within the period (a new pool epoch); the epoch.

        The billing period's length stays: :class:`~rspfed.errors.UsageError`
        for a plan with another ``period`` (periods are counted from the
        subscription's creation, so a new length would move the current
        period's start and drop the usage already counted in it).
        """
        if not isinstance(plan, Plan):
            raise UsageError("change_plan takes a Plan")
        old = self._subscription(subscription_id)
        opened: list[PoolEpoch] = []

        def change(state: LedgerState, period: int) -> None:
            current = self._subscription(subscription_id)  # in the transaction: no lost update
            if plan.period != current.plan.period:
                raise UsageError("a plan change keeps the billing period's length")
            opened.append(change_plan(state, current.plan, plan, period))
            self._store.put_subscription(attrs.evolve(current, plan=plan))

        self._commit(old, change)
        return opened[0]

    def roll_over(self, subscription_id: str) -> list[FiredAlert]:
        """Open the current period's pool (done by every write anyway); alerts it fired."""
        sub = self._subscription(subscription_id)
        return self._commit(sub, lambda _s, _p: None)[1]

    def set_auto_top_up(self, subscription_id: str, rule: AutoTopUp | None) -> None:
        """Set (or clear with ``None``) the automatic top-up rule; applied at each ingest."""
        self._subscription(subscription_id)
        if rule is None:
            self._store.pool_exec(
                "DELETE FROM pool_rule WHERE subscription_id = ?", (subscription_id,)
            )
            return
        if not isinstance(rule, AutoTopUp):
            raise UsageError("set_auto_top_up takes an AutoTopUp rule")
        self._store.pool_exec(
            "INSERT OR REPLACE INTO pool_rule VALUES (?, ?, ?, ?)",
            (subscription_id, rule.add_bytes, rule.at_percent, rule.max_per_period),
        )
        self.roll_over(subscription_id)

    def auto_top_up_rule(self, subscription_id: str) -> AutoTopUp | None:
        """The subscription's automatic top-up rule, if any."""
        rows = self._store.pool_rows(
            "SELECT add_bytes, at_percent, max_per_period FROM pool_rule WHERE subscription_id = ?",
            (subscription_id,),
        )
        return AutoTopUp(*rows[0]) if rows else None

    # -- alerts delivery -------------------------------------------------------

    def pending_alerts(self, device_id: str) -> list[FiredAlert]:
        """Alerts queued for ``device_id`` and not acknowledged (oldest first)."""
        device = self._store.device(device_id)
        if device is None:
            raise NotFoundError("no such device")
        rows = self._store.pool_rows(
            "SELECT f.alert_id, f.iccid, f.threshold, f.period, f.pool_epoch, f.used, f.lim,"
            " f.fired FROM alert_outbox o JOIN fired_alert f ON f.alert_id = o.alert_id"
            " WHERE o.device_id = ? AND o.acked = 0"
            " ORDER BY f.fired, f.version, f.pool_epoch, f.iccid IS NOT NULL, f.threshold",
            (device_id,),
        )
        held = self._held(device.subscription_id)
        return [self._fired(device.subscription_id, r, held) for r in rows]

    def ack_alerts(self, device_id: str, alert_ids: Iterable[bytes]) -> int:
        """Acknowledge delivered alerts by id (unknown ids are ignored); how many were pending."""
        count = 0
        with self._store.transaction():
            for aid in alert_ids:
                count += self._store.pool_exec(
                    "UPDATE alert_outbox SET acked = 1"
                    " WHERE alert_id = ? AND device_id = ? AND acked = 0",
                    (bytes(aid), device_id),
                )
        return count

    # -- bearers and traffic ---------------------------------------------------

    def open_bearer(self, imsi: str, visited_plmn: str = "") -> tuple[str, datetime]:
        """A data bearer for an attached ``imsi`` (after EAP-AKA' attach): its id and expiry.

        The AuC must grant the IMSI data (:class:`NetworkRefusedError` if not).
        ``visited_plmn`` (``MCC || MNC``, ``""`` at home) is the network the
        attach went through: the bearer's traffic is metered against it
        (the ledger's ``visited_plmn``).
        """
        if visited_plmn and not (visited_plmn.isdigit() and len(visited_plmn) in (5, 6)):
            raise UsageError("visited_plmn is MCC || MNC (5 or 6 digits) or empty")
        self._op.check_service(imsi, Service.DATA)
        device = self._store.device_by_imsi(imsi)
        if device is None or device.state is not DeviceState.ACTIVE:
            raise NetworkRefusedError(RefusalReason.UNKNOWN_SUBSCRIBER)
        raw = self._rand(16)
        if len(raw) != 16:
            raise UsageError("the randomness source returned the wrong length")
        bearer = "b" + raw.hex()
        now = self._now()
        expires = now + self._bearer_ttl
        with self._store.transaction():
            self._store.pool_exec("DELETE FROM bearer WHERE expires <= ?", (_t(now),))
            self._store.pool_exec(
                "INSERT INTO bearer (id, imsi, expires, plmn) VALUES (?, ?, ?, ?)",
                (bearer, imsi, _t(expires), visited_plmn),
            )
        return bearer, expires

    def use(self, bearer_id: str, octets: int) -> UsageResult:
        """Carry ``octets`` on a bearer: metered by the gateway, ingested, enforced.

        Carries what the pool and the device's quota allow; ``refusal`` says
        why the rest was refused.  :class:`NetworkRefusedError` (``no-bearer``)
        for an unknown or expired bearer, (``barred``/``removed``) when the
        AuC no longer serves the IMSI.
        """
        if isinstance(octets, bool) or not isinstance(octets, int) or octets <= 0:
            raise UsageError("carry at least one octet")
        rows = self._store.pool_rows(
            "SELECT imsi, expires, plmn FROM bearer WHERE id = ?", (bearer_id,)
        )
        now = self._now()
        if not rows or datetime.fromisoformat(rows[0][1]) <= now:
            raise NetworkRefusedError(RefusalReason.NO_BEARER)
        imsi, plmn = str(rows[0][0]), str(rows[0][2])
        self._op.check_service(imsi, Service.DATA)
        device = self._store.device_by_imsi(imsi)
        if device is None or device.state is not DeviceState.ACTIVE:
            raise NetworkRefusedError(RefusalReason.REMOVED)
        sub = self._subscription(device.subscription_id)
        period = billing_period(sub.created, sub.plan.period, now).id
        decision = self.decision(device.iccid)
        refusal: RefusalReason | None = None
        carried = 0
        throttled = False
        counter = self._gateway.counter(device.iccid, period, plmn)
        # Carry what the grant allows and ingest it; an ingest may lift the
        # limit (an automatic top-up at its threshold), so carry the rest
        # under the new decision while each round carries something.
        for _ in range(_MAX_ROUNDS):
            self._gateway.set_grant(device.iccid, _grant(decision))
            throttled = throttled or decision.action is Action.THROTTLE
            try:
                result = self._gateway.carry(device.iccid, period, octets - carried, plmn)
            except NetworkRefusedError as exc:
                refusal = exc.reason
                break
            carried, counter = carried + result.octets, result.counter
            if result.octets:
                self.ingest_network_records(sub.id, [result.record])
            decision = self.decision(device.iccid)
            if carried == octets or not result.octets:
                break
        if carried < octets and refusal is None:
            refusal = _grant(decision).refusal or _refusal(decision.reason)
        used = decision.used
        return UsageResult(device.iccid, octets, carried, counter, used, throttled, refusal, period)


_MAX_ROUNDS = 8
"""Grants one :meth:`PoolService.use` goes through at most (a bound, not a rule)."""


def _refusal(reason: str) -> RefusalReason:
    return RefusalReason.QUOTA_EXHAUSTED if reason == "quota" else RefusalReason.POOL_EXHAUSTED


def _grant(decision: Decision) -> Grant:
    if decision.action is Action.BAR:
        return Grant(remaining=0, refusal=_refusal(decision.reason))
    if decision.action is Action.THROTTLE:
        return Grant(throttled=True)
    return Grant(remaining=decision.remaining)


class DeviceMeter:
    """A device's own meter: its counters, signed in batches with its device key.

    One cumulative counter per (period, visited network) of the device's
    ICCID under ``counter_epoch`` (change it whenever the counters restart
    from zero: a device that does not keep them across runs uses a new
    epoch each run, e.g. its start time).  :meth:`batch` signs them as a
    ``DeviceUsageBatch`` (:func:`~rspfed.federation.ledger.sign_device_batch`)
    for ``usage/report``; the operator shows them beside the network's
    figures, never bills them.
    """

    __slots__ = ("_counters", "counter_epoch", "device_id", "iccid")

    def __init__(self, device_id: str, iccid: str, *, counter_epoch: int = 0) -> None:
        self.device_id = device_id
        self.iccid = iccid
        self.counter_epoch = counter_epoch
        self._counters: dict[tuple[int, str], int] = {}
        self.records()  # checks the ids

    def __repr__(self) -> str:
        return f"DeviceMeter({self.device_id!r}, epoch {self.counter_epoch})"

    def add(self, period: int, octets: int, visited_plmn: str = "") -> int:
        """Count ``octets`` in ``period``; the counter's new value."""
        if isinstance(octets, bool) or not isinstance(octets, int) or octets < 0:
            raise UsageError("octets must be a non-negative integer")
        slot = (period, visited_plmn)
        value = self._counters.get(slot, 0) + octets
        self._counters[slot] = value
        return value

    def records(self) -> list[UsageRecord]:
        """The counters as records of kind ``DEVICE``."""
        return [
            UsageRecord(
                SourceKind.DEVICE, self.device_id, self.iccid, p, self.counter_epoch, v, plmn
            )
            for (p, plmn), v in sorted(self._counters.items())
        ]

    def batch(
        self, device_key: ec.EllipticCurvePrivateKey, subscription_id: str, sequence: int
    ) -> bytes:
        """The signed DER batch of every counter (``sequence`` must grow batch to batch)."""
        return sign_device_batch(
            device_key=device_key,
            subscription_id=subscription_id,
            device_id=self.device_id,
            sequence=sequence,
            records=self.records(),
        )
