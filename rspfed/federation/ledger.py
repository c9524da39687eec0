"""The shared data pool's usage ledger: a convergent replicated counter (sans-IO).

Usage arrives as **records**: a source (a packet gateway or charging system of
the network, or a device metering itself), the profile (ICCID), the billing
period, the source's *counter epoch* (a gateway restart resets its counter and
starts a new epoch), optionally the visited network (PLMN), and the
*cumulative* octets of that counter.  Records arrive late, twice, out of order.

The ledger keeps, per subscription, a state-based CRDT (:class:`LedgerState`):

* **counters**: for each key ``(kind, source id, ICCID, period, counter epoch,
  visited PLMN)`` the largest cumulative value seen -- a G-counter of maxima.
  Merge is the pointwise maximum: commutative, associative, idempotent.  The
  usage of a profile in a period is the sum over the sources *of one kind*,
  their counter epochs and visited networks of those maxima: each gateway
  meters distinct traffic (a data session is anchored on one gateway), each
  counter epoch starts at zero, each visited network has its own counter.
  Network figures (``SourceKind.NETWORK``) and device figures
  (``SourceKind.DEVICE``) are never added together: billing, enforcement and
  alerts follow the network's; the device's are for offline display and early
  warning.
* **pool epochs** (:class:`PoolEpoch`): the pool's limit within a billing
  period; a top-up or plan change opens a new epoch, recording the usage the
  operator knew at that moment.  Only the operator writes them; merge is the
  union by ``(period, index)`` (a conflicting duplicate, which a single writer
  never produces, resolves to the larger by a fixed order so that merge stays
  a join).
* **fired alerts** (:class:`AlertKey`): a grow-only set (see
  :mod:`rspfed.federation.alerts`).

The state travels as the DER ``LedgerState`` of the ASN.1 module
``RSPFedLedger`` (:func:`encode_state`, :func:`decode_state`); a *delta* is a
state holding only what grew, merged the same way.  Devices sign their own
counters in batches (``DeviceUsageBatch``: :func:`sign_device_batch`,
:func:`verify_device_batch`); the signature is checked once per batch at
ingest, never in the merge.  The format is specified in ``docs/ledger.md``.

Hot path: counters are a plain ``dict`` from a key tuple (:data:`CounterKey`)
to an ``int``; :meth:`LedgerState.merge_counters` takes ``(key, value)`` pairs
and trusts them (they are checked where they enter: :class:`UsageRecord`,
:func:`decode_state`, :func:`verify_device_batch`).
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Container, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta

import attrs
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed import asn1
from rspfed.asn1 import ledger as schema
from rspfed.crypto import signature as ecdsa
from rspfed.errors import (
    AuthorizationError,
    DecodeError,
    EncodeError,
    NotFoundError,
    ReplayError,
    SignatureError,
    UsageError,
)
from rspfed.federation.token import primary_key_id
from rspfed.federation.types import Plan
from rspfed.saip.identifiers import decode_iccid, encode_iccid

__all__ = [
    "LEDGER_VERSION",
    "MAX_BATCH_RECORDS",
    "MAX_OCTETS",
    "Action",
    "AlertKey",
    "AutoTopUp",
    "BillingPeriod",
    "CounterKey",
    "Decision",
    "DeviceUsageBatch",
    "EnforcementPolicy",
    "EpochReason",
    "LedgerState",
    "PeriodUsage",
    "PoolEpoch",
    "SourceKind",
    "UsageRecord",
    "alert_key_der",
    "auto_top_up",
    "billing_period",
    "change_plan",
    "current_epoch",
    "decode_plmn",
    "decode_state",
    "encode_plmn",
    "encode_state",
    "enforcement",
    "ingest_device_batch",
    "ingest_network_records",
    "open_period",
    "parse_device_batch",
    "period_usage",
    "pool_epochs",
    "sign_device_batch",
    "top_up",
    "verify_device_batch",
]

LEDGER_VERSION = 1
"""The ``version`` this implementation writes and accepts (``v1``)."""

MAX_OCTETS = (1 << 63) - 1
"""Largest octet count, counter epoch, period id or epoch index (``UInt63``)."""

MAX_BATCH_RECORDS = 4096
"""Most records a device batch may carry (readers reject more)."""

_MAX_ID = 64
_KEY_ID_SIZE = 20
_TBS_TAG = b"\xa0"


class SourceKind(enum.IntEnum):
    """ASN.1 ``SourceKind``: who metered a record."""

    NETWORK = 0
    """A packet gateway or charging system; ``source_id`` names it.  Billing follows these."""
    DEVICE = 1
    """A device metering itself; ``source_id`` is its device id.  Display and early warning."""


CounterKey = tuple[int, str, str, int, int, str]
"""``(kind, source_id, iccid, period, counter_epoch, visited_plmn)``; ``""`` for no PLMN."""

_KIND_NAMES = {SourceKind.NETWORK: "network", SourceKind.DEVICE: "device"}
_KIND_BY_NAME = {v: k for k, v in _KIND_NAMES.items()}


def _kind(value: SourceKind | int) -> SourceKind:
    if isinstance(value, bool):
        raise UsageError("unknown source kind")
    try:
        return SourceKind(value)
    except ValueError:
        raise UsageError("unknown source kind") from None


# --------------------------------------------------------------------------
# identifiers


def _check_uint(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_OCTETS:
        raise UsageError(f"{name} must be an integer from 0 to 2**63-1")
    return value


def _check_id(value: object, name: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= _MAX_ID:
        raise UsageError(f"{name} must be 1 to {_MAX_ID} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: not representable in a UTF8String
        raise UsageError(f"{name} must be valid Unicode text (no surrogates)") from None
    return value


def _check_iccid(value: object) -> str:
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        raise UsageError("an ICCID is 18 to 20 decimal digits")
    if not 18 <= len(value) <= 20:
        raise UsageError("an ICCID is 18 to 20 decimal digits")
    return value


def _check_plmn(value: object) -> str:
    if not isinstance(value, str):
        raise UsageError("a visited PLMN is a string of 5 or 6 digits (MCC MNC), or ''")
    if value and not (value.isascii() and value.isdigit() and len(value) in (5, 6)):
        raise UsageError("a visited PLMN is a string of 5 or 6 digits (MCC MNC), or ''")
    return value


def encode_plmn(plmn: str) -> bytes:
    """A PLMN identity ``MCC || MNC`` (5 or 6 digits) as 3 octets (3GPP TS 24.008 §10.5.1.13).

    Octets: ``MCC2 MCC1``, ``MNC3 MCC3``, ``MNC2 MNC1`` (high nibble first),
    ``MNC3`` = ``F`` for a two-digit MNC.  ``"310260"`` -> ``13 00 62``;
    ``"26201"`` -> ``62 F2 10``.
    """
    _check_plmn(plmn)
    if not plmn:
        raise UsageError("no PLMN to encode")
    d = [int(c) for c in plmn]
    mnc3 = d[5] if len(d) == 6 else 0xF
    return bytes(((d[1] << 4) | d[0], (mnc3 << 4) | d[2], (d[4] << 4) | d[3]))


def decode_plmn(data: bytes) -> str:
    """The ``MCC || MNC`` digits of a 3-octet PLMN identity (see :func:`encode_plmn`)."""
    if len(data) != 3:
        raise DecodeError("a PLMN identity is 3 octets", type_name="PlmnId")
    nibbles = [data[0] & 0xF, data[0] >> 4, data[1] & 0xF, data[2] & 0xF, data[2] >> 4]
    mnc3 = data[1] >> 4
    if any(n > 9 for n in nibbles) or (mnc3 > 9 and mnc3 != 0xF):
        raise DecodeError("a PLMN identity holds BCD digits", type_name="PlmnId")
    return "".join(str(n) for n in nibbles) + ("" if mnc3 == 0xF else str(mnc3))


def _iccid_octets(iccid: str) -> bytes:
    try:
        return encode_iccid(iccid)
    except EncodeError as exc:  # pragma: no cover - checked on construction
        raise UsageError(str(exc)) from None


def _iccid_from(octets: bytes, type_name: str) -> str:
    iccid = decode_iccid(octets)
    if not 18 <= len(iccid) <= 20 or encode_iccid(iccid) != octets:
        raise DecodeError("non-canonical ICCID", type_name=type_name)
    return iccid


# --------------------------------------------------------------------------
# records, epochs, alert keys


@attrs.frozen
class UsageRecord:
    """One usage report: the cumulative octets of one counter.

    ``period`` is the billing period's id (:attr:`BillingPeriod.id`, its start
    in Unix seconds); ``counter_epoch`` changes whenever the source's counter
    restarts from zero (e.g. the gateway's boot count); ``visited_plmn`` is
    ``MCC || MNC`` of the visited network, ``""`` when not reported.  A source
    that reports visited networks keeps one counter per network (they are
    summed), so the same traffic must never be reported both with and without
    a PLMN.
    """

    kind: SourceKind = attrs.field(converter=_kind)
    source_id: str = attrs.field(validator=lambda _i, _a, v: _check_id(v, "source_id"))
    iccid: str = attrs.field(validator=lambda _i, _a, v: _check_iccid(v))
    period: int = attrs.field(validator=lambda _i, _a, v: _check_uint(v, "period"))
    counter_epoch: int = attrs.field(validator=lambda _i, _a, v: _check_uint(v, "counter_epoch"))
    octets: int = attrs.field(validator=lambda _i, _a, v: _check_uint(v, "octets"))
    visited_plmn: str = attrs.field(default="", validator=lambda _i, _a, v: _check_plmn(v))

    @property
    def key(self) -> CounterKey:
        """The counter this record reports."""
        return (
            int(self.kind),
            self.source_id,
            self.iccid,
            self.period,
            self.counter_epoch,
            self.visited_plmn,
        )

    @classmethod
    def from_counter(cls, key: CounterKey, octets: int) -> UsageRecord:
        """The record of one counter of a state."""
        kind, source_id, iccid, period, epoch, plmn = key
        return cls(SourceKind(kind), source_id, iccid, period, epoch, octets, plmn)


class EpochReason(enum.Enum):
    """ASN.1 ``EpochReason``: why a pool epoch opened."""

    PERIOD = "period"
    """A billing period started (epoch 0)."""
    TOP_UP = "topUp"
    AUTO_TOP_UP = "autoTopUp"
    PLAN_CHANGE = "planChange"


_REASON_ORDER = {r: i for i, r in enumerate(EpochReason)}


def _reason(value: EpochReason | str) -> EpochReason:
    try:
        return EpochReason(value)
    except ValueError:
        raise UsageError("unknown pool epoch reason") from None


def _opening_devices(
    value: Iterable[tuple[str, int]] | Mapping[str, int],
) -> tuple[tuple[str, int], ...]:
    items = list(value.items() if isinstance(value, Mapping) else value)
    for iccid, octets in items:
        _check_iccid(iccid)
        _check_uint(octets, "opening device usage")
    out = tuple(sorted((k, v) for k, v in items if v))
    if len({k for k, _ in out}) != len(out):
        raise UsageError("an ICCID appears twice in the opening device usage")
    return out


@attrs.frozen
class PoolEpoch:
    """ASN.1 ``PoolEpoch``: the pool limit of a billing period from a moment on.

    ``index`` 0 opens with the period (the plan's pool); each top-up or plan
    change opens the next index with the new ``limit``.  ``opening_used`` and
    ``opening_device_used`` (ICCID -> octets; zero entries dropped) are the
    network usage the operator knew when the epoch opened: the alert
    thresholds at or below the opening ratio do not fire in this epoch, and
    they are the closing usage of the previous epoch.
    """

    period: int = attrs.field(validator=lambda _i, _a, v: _check_uint(v, "period"))
    index: int = attrs.field(validator=lambda _i, _a, v: _check_uint(v, "index"))
    reason: EpochReason = attrs.field(converter=_reason)
    limit: int = attrs.field(validator=lambda _i, _a, v: _check_uint(v, "limit"))
    opening_used: int = attrs.field(
        default=0, validator=lambda _i, _a, v: _check_uint(v, "opening_used")
    )
    opening_device_used: tuple[tuple[str, int], ...] = attrs.field(
        default=(), converter=_opening_devices
    )

    def __attrs_post_init__(self) -> None:
        if self.limit <= 0:
            raise UsageError("a pool epoch's limit must be positive")

    def opening_for(self, iccid: str) -> int:
        """The device's usage when the epoch opened (0 if not recorded)."""
        for key, octets in self.opening_device_used:
            if key == iccid:
                return octets
        return 0

    def _order(self) -> tuple[int, int, int, tuple[tuple[str, int], ...]]:
        return (self.limit, self.opening_used, _REASON_ORDER[self.reason], self.opening_device_used)


@attrs.frozen(order=False)
class AlertKey:
    """ASN.1 ``AlertKey``: what an alert is about; fired at most once per subscription.

    ``device`` is the ICCID for a device-quota alert, ``None`` for the pool;
    ``threshold`` a percentage (1 to 1000) of the pool limit or device quota.
    """

    device: str | None
    threshold: int
    period: int
    pool_epoch: int

    def __attrs_post_init__(self) -> None:
        if self.device is not None:
            _check_iccid(self.device)
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int):
            raise UsageError("an alert threshold is an integer percentage")
        if not 1 <= self.threshold <= 1000:
            raise UsageError("an alert threshold is 1 to 1000 percent")
        _check_uint(self.period, "period")
        _check_uint(self.pool_epoch, "pool_epoch")

    def sort_key(self) -> tuple[int, int, str, int]:
        """The order in which a ``LedgerState`` lists fired alerts."""
        return (self.period, self.pool_epoch, self.device or "", self.threshold)


# --------------------------------------------------------------------------
# the state


def _epoch_join(a: PoolEpoch, b: PoolEpoch) -> PoolEpoch:
    return a if a._order() >= b._order() else b


class LedgerState:
    """One subscription's replicated ledger: counters, pool epochs, fired alerts.

    Mutable (a replica); every mutation is a join with something else, so any
    two replicas that have received the same information are equal, in
    whatever order and however many times it arrived.  The ``merge*`` and
    ``add*`` methods return what grew, as a delta (a :class:`LedgerState` or a
    dict): forward it to other replicas instead of the whole state.
    """

    __slots__ = ("counters", "epochs", "fired", "subscription_id")

    def __init__(
        self,
        subscription_id: str,
        counters: Mapping[CounterKey, int] | None = None,
        epochs: Iterable[PoolEpoch] = (),
        fired: Iterable[AlertKey] = (),
    ) -> None:
        self.subscription_id: str = _check_id(subscription_id, "subscription_id")
        self.counters: dict[CounterKey, int] = dict(counters or {})
        """Counter key -> largest cumulative octets seen."""
        self.epochs: dict[tuple[int, int], PoolEpoch] = {}
        """``(period, index)`` -> pool epoch."""
        self.fired: set[AlertKey] = set(fired)
        """Alerts fired (grow-only)."""
        for epoch in epochs:
            self.add_epoch(epoch)

    def __repr__(self) -> str:
        return (
            f"LedgerState({self.subscription_id!r}, {len(self.counters)} counters, "
            f"{len(self.epochs)} epochs, {len(self.fired)} fired)"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LedgerState):
            return NotImplemented
        return (
            self.subscription_id == other.subscription_id
            and self.counters == other.counters
            and self.epochs == other.epochs
            and self.fired == other.fired
        )

    def copy(self) -> LedgerState:
        """An independent replica with the same contents."""
        out = LedgerState(self.subscription_id, self.counters, (), self.fired)
        out.epochs = dict(self.epochs)
        return out

    def is_empty(self) -> bool:
        """Whether the state holds nothing (an empty delta)."""
        return not (self.counters or self.epochs or self.fired)

    # -- joins -------------------------------------------------------------

    def merge_counters(self, items: Iterable[tuple[CounterKey, int]]) -> dict[CounterKey, int]:
        """Pointwise maximum with ``(key, octets)`` pairs; the counters that grew.

        The hot path: the pairs are trusted (check untrusted input through
        :class:`UsageRecord`, :func:`decode_state` or
        :func:`verify_device_batch` first).
        """
        counters = self.counters
        get = counters.get
        grown: dict[CounterKey, int] = {}
        for key, value in items:
            if value > get(key, -1):
                counters[key] = value
                grown[key] = value
        return grown

    def add_records(self, records: Iterable[UsageRecord]) -> LedgerState:
        """Merge usage records; the delta (counters that grew)."""
        grown = self.merge_counters((r.key, r.octets) for r in records)
        return LedgerState(self.subscription_id, grown)

    def add_epoch(self, epoch: PoolEpoch) -> bool:
        """Merge one pool epoch; whether the state changed."""
        if not isinstance(epoch, PoolEpoch):
            raise UsageError("add_epoch takes a PoolEpoch")
        slot = (epoch.period, epoch.index)
        known = self.epochs.get(slot)
        joined = epoch if known is None else _epoch_join(known, epoch)
        if joined == known:
            return False
        self.epochs[slot] = joined
        return True

    def add_fired(self, keys: Iterable[AlertKey]) -> set[AlertKey]:
        """Add fired alerts; those that were not there yet."""
        new = {k for k in keys if k not in self.fired}
        self.fired |= new
        return new

    def merge(self, other: LedgerState) -> LedgerState:
        """Join ``other`` into this state (in place); the delta of what grew.

        Raises :class:`~rspfed.errors.UsageError` for another subscription's state.
        """
        if not isinstance(other, LedgerState):
            raise UsageError("merge takes a LedgerState")
        if other.subscription_id != self.subscription_id:
            raise UsageError("cannot merge the ledgers of two subscriptions")
        grown = self.merge_counters(other.counters.items())
        epochs = [e for e in other.epochs.values() if self.add_epoch(e)]
        delta = LedgerState(self.subscription_id, grown, (), self.add_fired(other.fired))
        for epoch in epochs:
            delta.epochs[(epoch.period, epoch.index)] = self.epochs[(epoch.period, epoch.index)]
        return delta

    def records(self) -> Iterator[UsageRecord]:
        """Every counter as a :class:`UsageRecord` (in key order)."""
        for key in sorted(self.counters):
            yield UsageRecord.from_counter(key, self.counters[key])


# --------------------------------------------------------------------------
# billing periods, views


@attrs.frozen
class BillingPeriod:
    """A billing period ``[start, end)``; its ``id`` is ``start`` in Unix seconds."""

    start: datetime
    end: datetime

    @property
    def id(self) -> int:
        """The period id records and epochs carry."""
        return int(self.start.timestamp())


def billing_period(anchor: datetime, length: timedelta, now: datetime) -> BillingPeriod:
    """The billing period holding ``now``: periods of ``length`` from ``anchor``.

    ``anchor`` is typically the subscription's creation time and ``length``
    its plan's ``period`` (both truncated to whole seconds).  Times before
    ``anchor`` fall in the first period.  Raises
    :class:`~rspfed.errors.UsageError` for naive datetimes or a length under
    one second.
    """
    for name, when in (("anchor", anchor), ("now", now)):
        if when.tzinfo is None or when.utcoffset() is None:
            raise UsageError(f"{name} must be a timezone-aware datetime")
    seconds = int(length.total_seconds())
    if seconds < 1:
        raise UsageError("a billing period lasts at least one second")
    start0 = int(anchor.timestamp())
    index = max(0, (int(now.timestamp()) - start0) // seconds)
    start = start0 + index * seconds
    return BillingPeriod(
        datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(start + seconds, UTC)
    )


@attrs.frozen
class PeriodUsage:
    """The usage of one source kind in one billing period.

    ``total`` is the pool used; ``by_iccid`` each profile's use; ``by_plmn``
    the use per visited network (``""``: not reported); ``by_source`` per
    gateway (network) or device (device).
    """

    period: int
    kind: SourceKind
    total: int
    by_iccid: Mapping[str, int]
    by_plmn: Mapping[str, int]
    by_source: Mapping[str, int]


def period_usage(
    state: LedgerState, period: int, *, kind: SourceKind = SourceKind.NETWORK
) -> PeriodUsage:
    """Sum the counters of one kind in one period (one pass over the state)."""
    kind_value = int(kind)
    by_iccid: dict[str, int] = {}
    by_plmn: dict[str, int] = {}
    by_source: dict[str, int] = {}
    total = 0
    for (k, source, iccid, p, _epoch, plmn), value in state.counters.items():
        if k != kind_value or p != period:
            continue
        total += value
        by_iccid[iccid] = by_iccid.get(iccid, 0) + value
        by_plmn[plmn] = by_plmn.get(plmn, 0) + value
        by_source[source] = by_source.get(source, 0) + value
    return PeriodUsage(period, SourceKind(kind), total, by_iccid, by_plmn, by_source)


def pool_epochs(state: LedgerState, plan: Plan | int, period: int) -> list[PoolEpoch]:
    """The pool epochs of a period in order; epoch 0 from the plan if not recorded.

    ``plan`` is the subscription's current :class:`Plan` (or its pool size):
    it only matters for a period whose epoch 0 was never recorded (see
    :func:`open_period`).
    """
    found = sorted((e for (p, _), e in state.epochs.items() if p == period), key=lambda e: e.index)
    if not found or found[0].index != 0:
        pool = plan.pool_bytes if isinstance(plan, Plan) else _check_uint(plan, "pool")
        found.insert(0, PoolEpoch(period, 0, EpochReason.PERIOD, pool))
    return found


def current_epoch(state: LedgerState, plan: Plan | int, period: int) -> PoolEpoch:
    """The latest pool epoch of a period."""
    return pool_epochs(state, plan, period)[-1]


def open_period(state: LedgerState, plan: Plan, period: int) -> PoolEpoch:
    """Record epoch 0 of a billing period (the rollover); the epoch (existing or new).

    Call it when a period starts so that every replica sees the period's
    limit even if the plan changes later.
    """
    known = state.epochs.get((period, 0))
    if known is not None:
        return known
    epoch = PoolEpoch(period, 0, EpochReason.PERIOD, plan.pool_bytes)
    state.add_epoch(epoch)
    return epoch


def _open_epoch(
    state: LedgerState, plan: Plan | int, period: int, reason: EpochReason, limit: int
) -> PoolEpoch:
    epochs = pool_epochs(state, plan, period)
    if (period, 0) not in state.epochs:
        state.add_epoch(epochs[0])
    usage = period_usage(state, period)
    epoch = PoolEpoch(
        period, epochs[-1].index + 1, reason, limit, usage.total, dict(usage.by_iccid)
    )
    state.add_epoch(epoch)
    return epoch


def top_up(
    state: LedgerState,
    plan: Plan | int,
    period: int,
    add_bytes: int,
    *,
    reason: EpochReason = EpochReason.TOP_UP,
) -> PoolEpoch:
    """Add ``add_bytes`` to the pool: open the next epoch (limit + ``add_bytes``); the epoch.

    The new epoch records the state's network usage as its opening usage.
    Only the operator opens epochs.
    """
    if _check_uint(add_bytes, "add_bytes") == 0:
        raise UsageError("a top-up adds at least one octet")
    limit = current_epoch(state, plan, period).limit + add_bytes
    if limit > MAX_OCTETS:
        raise UsageError("the pool limit would exceed 2**63-1")
    return _open_epoch(state, plan, period, reason, limit)


def _topped_up(epochs: list[PoolEpoch]) -> int:
    added = 0
    for before, epoch in itertools.pairwise(epochs):
        if epoch.reason in (EpochReason.TOP_UP, EpochReason.AUTO_TOP_UP):
            added += max(0, epoch.limit - before.limit)
    return added


def change_plan(state: LedgerState, old_plan: Plan, new_plan: Plan, period: int) -> PoolEpoch:
    """A plan change within a period: open the next epoch; the epoch.

    Its limit is the new plan's pool plus the octets this period's top-ups added.
    """
    epochs = pool_epochs(state, old_plan, period)
    limit = min(MAX_OCTETS, new_plan.pool_bytes + _topped_up(epochs))
    return _open_epoch(state, old_plan, period, EpochReason.PLAN_CHANGE, limit)


@attrs.frozen
class AutoTopUp:
    """A rule such as "add 5 GB at 90 %, at most twice a period"."""

    add_bytes: int = attrs.field(validator=lambda _i, _a, v: _check_uint(v, "add_bytes"))
    at_percent: int = 90
    max_per_period: int = 2

    def __attrs_post_init__(self) -> None:
        if self.add_bytes <= 0:
            raise UsageError("an automatic top-up adds at least one octet")
        if not 1 <= self.at_percent <= 1000 or self.max_per_period < 0:
            raise UsageError("at_percent is 1 to 1000 and max_per_period not negative")


def auto_top_up(
    state: LedgerState, plan: Plan | int, period: int, rule: AutoTopUp
) -> list[PoolEpoch]:
    """Apply an automatic top-up rule; the epochs it opened (possibly none).

    While the pool's network usage is at or above ``at_percent`` of the
    current limit and fewer than ``max_per_period`` automatic top-ups
    happened in the period, open a top-up epoch (reason ``autoTopUp``).
    """
    opened: list[PoolEpoch] = []
    used = period_usage(state, period).total
    while True:
        epochs = pool_epochs(state, plan, period)
        done = sum(1 for e in epochs if e.reason is EpochReason.AUTO_TOP_UP)
        if done >= rule.max_per_period or used * 100 < rule.at_percent * epochs[-1].limit:
            return opened
        opened.append(top_up(state, plan, period, rule.add_bytes, reason=EpochReason.AUTO_TOP_UP))


class Action(enum.Enum):
    """What the network does with a profile's data service."""

    ALLOW = "allowed"
    THROTTLE = "throttled"
    BAR = "barred"


_SEVERITY = {Action.ALLOW: 0, Action.THROTTLE: 1, Action.BAR: 2}


@attrs.frozen
class EnforcementPolicy:
    """The plan's rule when the pool or a device quota is used up."""

    pool_exhausted: Action = Action.BAR
    quota_exhausted: Action = Action.BAR


@attrs.frozen
class Decision:
    """The enforcement decision for one profile.

    ``reason`` is ``"pool"`` or ``"quota"`` when not allowed (``"quota"`` wins
    a tie in severity), ``""`` otherwise; ``remaining`` the octets the
    profile may still use before a limit (pool or quota, the smaller) is
    reached, 0 when one is.
    """

    iccid: str
    action: Action
    reason: str
    used: int
    remaining: int


def enforcement(
    state: LedgerState,
    plan: Plan | int,
    period: int,
    quotas: Mapping[str, int | None],
    policy: EnforcementPolicy | None = None,
) -> dict[str, Decision]:
    """Allowed / throttled / barred for each ICCID of ``quotas`` (network figures).

    A pure function of the state, the plan, the period and the per-device
    quotas (``Device.quota_bytes``; ``None`` or 0: no quota).  The pool is
    exhausted when its usage reaches the current epoch's limit; a device's
    quota when its usage reaches the quota.  The network applies the result.
    A quota that is not ``None`` or a non-negative integer raises
    :class:`~rspfed.errors.UsageError`.
    """
    policy = policy or EnforcementPolicy()
    for quota in quotas.values():
        if quota is not None and (
            isinstance(quota, bool) or not isinstance(quota, int) or quota < 0
        ):
            raise UsageError("a device quota is None or a non-negative integer")
    usage = period_usage(state, period)
    limit = current_epoch(state, plan, period).limit
    pool_left = max(0, limit - usage.total)
    out: dict[str, Decision] = {}
    for iccid, quota in quotas.items():
        used = usage.by_iccid.get(iccid, 0)
        action, reason, remaining = Action.ALLOW, "", pool_left
        if pool_left == 0:
            action, reason = policy.pool_exhausted, "pool"
        if quota:
            remaining = min(remaining, max(0, quota - used))
            if used >= quota and _SEVERITY[policy.quota_exhausted] >= _SEVERITY[action]:
                action, reason = policy.quota_exhausted, "quota"
        out[iccid] = Decision(
            iccid, action, reason if action is not Action.ALLOW else "", used, remaining
        )
    return out


# --------------------------------------------------------------------------
# ingest


def ingest_network_records(
    state: LedgerState, records: Iterable[UsageRecord], *, known_iccids: Container[str]
) -> LedgerState:
    """Merge a gateway's records; the delta.

    All records are checked before any is merged: each must be a
    :class:`UsageRecord` of kind ``NETWORK`` (:class:`~rspfed.errors.UsageError`)
    for an ICCID in ``known_iccids`` -- the subscription's profiles that may
    be billed (:class:`~rspfed.errors.NotFoundError` for an unknown or removed
    one).
    """
    batch = list(records)
    for record in batch:
        if not isinstance(record, UsageRecord) or record.kind is not SourceKind.NETWORK:
            raise UsageError("network ingest takes UsageRecords of kind NETWORK")
        if record.iccid not in known_iccids:
            raise NotFoundError("a usage record names an ICCID this subscription does not bill")
    return state.add_records(batch)


# --------------------------------------------------------------------------
# the LedgerState message


def _der_int(value: int) -> bytes:
    """Contents of a DER INTEGER/ENUMERATED for a non-negative value (minimal two's complement)."""
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def _entry_der(key: CounterKey, octets: int) -> bytes:
    """The DER of one ``UsageEntry`` (written directly: the codec's hot path)."""
    kind, source, iccid, period, epoch, plmn = key
    source_octets = source.encode("utf-8")
    period_octets = _der_int(period)
    epoch_octets = _der_int(epoch)
    value_octets = _der_int(octets)
    body = b"".join(
        (
            b"\x80\x01",
            bytes((kind,)),
            b"\x81",
            _der_length(len(source_octets)),
            source_octets,
            b"\x82\x0a",
            _iccid_octets(iccid),
            b"\x83",
            bytes((len(period_octets),)),
            period_octets,
            b"\x84",
            bytes((len(epoch_octets),)),
            epoch_octets,
            b"\x85\x03" + encode_plmn(plmn) if plmn else b"",
            b"\x86",
            bytes((len(value_octets),)),
            value_octets,
        )
    )
    return b"\x30" + _der_length(len(body)) + body


def _tlv_end(der: bytes, offset: int) -> int:
    """The offset just past the (definite-length, one-octet tag) TLV at ``offset``."""
    first = der[offset + 1]
    if first < 0x80:
        return offset + 2 + first
    count = first & 0x7F
    length = int.from_bytes(der[offset + 2 : offset + 2 + count], "big")
    return offset + 2 + count + length


def encode_state(state: LedgerState) -> bytes:
    """The DER ``LedgerState`` of a state or delta (entries, epochs, alerts in canonical order).

    The entries are written directly (checked against ``asn1tools`` by the
    tests); the rest goes through :func:`rspfed.asn1.encode`.
    """
    counters = state.counters
    entries = b"".join(_entry_der(key, counters[key]) for key in sorted(counters))
    epochs = [
        {
            "period": e.period,
            "index": e.index,
            "reason": e.reason.value,
            "limit": e.limit,
            "openingUsed": e.opening_used,
            "openingDeviceUsed": [
                {"iccid": _iccid_octets(i), "octets": o} for i, o in e.opening_device_used
            ],
        }
        for _, e in sorted(state.epochs.items())
    ]
    fired = [_alert_key_value(k) for k in sorted(state.fired, key=AlertKey.sort_key)]
    value = schema.LedgerState(
        {
            "version": LEDGER_VERSION,
            "subscriptionId": state.subscription_id,
            "entries": [],
            "poolEpochs": epochs,
            "firedAlerts": fired,
        }
    )
    try:
        shell = asn1.encode(value)
    except EncodeError as exc:  # pragma: no cover - every field is checked on entry
        raise UsageError(f"cannot encode the ledger state: {exc}") from None
    # splice the entries into the empty [2] SEQUENCE OF (A2 00) after version and subscriptionId
    content_at = 2 if shell[1] < 0x80 else 2 + (shell[1] & 0x7F)
    cut = _tlv_end(shell, _tlv_end(shell, content_at))
    if shell[cut : cut + 2] != b"\xa2\x00":  # pragma: no cover - fixed by the schema
        raise UsageError("unexpected LedgerState layout")
    content = b"".join(
        (
            shell[content_at:cut],
            b"\xa2",
            _der_length(len(entries)),
            entries,
            shell[cut + 2 :],
        )
    )
    return b"\x30" + _der_length(len(content)) + content


def _alert_key_value(key: AlertKey) -> dict[str, object]:
    value: dict[str, object] = {
        "threshold": key.threshold,
        "period": key.period,
        "poolEpoch": key.pool_epoch,
    }
    if key.device is not None:
        value["device"] = _iccid_octets(key.device)
    return value


def alert_key_der(subscription_id: str, key: AlertKey) -> bytes:
    """The DER ``AlertIdInput`` of an alert (hashed into its id)."""
    value = schema.AlertIdInput(
        {
            "subscriptionId": _check_id(subscription_id, "subscription_id"),
            "key": _alert_key_value(key),
        }
    )
    return asn1.encode(value)


_STATE = "LedgerState"


def _version(value: object, type_name: str) -> None:
    if value != LEDGER_VERSION:
        raise DecodeError(f"unsupported ledger version {value!r}", type_name=type_name)


def decode_state(der: bytes) -> LedgerState:
    """Decode a ``LedgerState`` message (strict DER) into a state to merge.

    Raises :class:`~rspfed.errors.DecodeError` for malformed DER, a version
    other than 1, a non-canonical ICCID or PLMN, an unknown source kind or
    epoch reason, a zero pool limit, or lists not in strictly increasing
    canonical order (which also rules out duplicates).
    """
    if not isinstance(der, (bytes, bytearray, memoryview)):
        raise UsageError("a ledger state is bytes")
    value = asn1.decode(schema.LedgerState, bytes(der))
    _version(int(value["version"]), _STATE)
    try:
        state = LedgerState(value["subscriptionId"].native)
    except UsageError:
        raise DecodeError("bad subscriptionId", type_name=_STATE) from None
    previous: CounterKey | None = None
    counters = state.counters
    for entry in value["entries"]:
        kind_name = entry["sourceKind"].native
        if kind_name not in _KIND_BY_NAME:
            raise DecodeError("unknown sourceKind", type_name="UsageEntry")
        plmn_value = entry["visitedPlmn"]
        plmn = decode_plmn(plmn_value.native) if plmn_value.native is not None else ""
        key: CounterKey = (
            int(_KIND_BY_NAME[kind_name]),
            entry["sourceId"].native,
            _iccid_from(entry["iccid"].native, "UsageEntry"),
            entry["period"].native,
            entry["counterEpoch"].native,
            plmn,
        )
        if previous is not None and key <= previous:
            raise DecodeError("entries not in strictly increasing order", type_name=_STATE)
        previous = key
        counters[key] = entry["octets"].native
    last_slot: tuple[int, int] | None = None
    for item in value["poolEpochs"]:
        reason = item["reason"].native
        try:
            epoch = PoolEpoch(
                item["period"].native,
                item["index"].native,
                EpochReason(reason),
                item["limit"].native,
                item["openingUsed"].native,
                _opening_from(item["openingDeviceUsed"]),
            )
        except (UsageError, ValueError):
            raise DecodeError("bad pool epoch", type_name="PoolEpoch") from None
        slot = (epoch.period, epoch.index)
        if last_slot is not None and slot <= last_slot:
            raise DecodeError("pool epochs not in strictly increasing order", type_name=_STATE)
        last_slot = slot
        state.epochs[slot] = epoch
    last_alert: tuple[int, int, str, int] | None = None
    for item in value["firedAlerts"]:
        device = item["device"].native
        try:
            alert = AlertKey(
                None if device is None else _iccid_from(device, "AlertKey"),
                item["threshold"].native,
                item["period"].native,
                item["poolEpoch"].native,
            )
        except UsageError:
            raise DecodeError("bad alert key", type_name="AlertKey") from None
        order = alert.sort_key()
        if last_alert is not None and order <= last_alert:
            raise DecodeError("fired alerts not in strictly increasing order", type_name=_STATE)
        last_alert = order
        state.fired.add(alert)
    return state


def _opening_from(items: schema.PoolEpoch_openingDeviceUsed) -> tuple[tuple[str, int], ...]:
    out: list[tuple[str, int]] = []
    for item in items:
        iccid = _iccid_from(item["iccid"].native, "DeviceUse")
        octets = item["octets"].native
        if not octets or (out and iccid <= out[-1][0]):
            raise DecodeError(
                "opening device usage: zero, unsorted or repeated", type_name="PoolEpoch"
            )
        out.append((iccid, octets))
    return tuple(out)


# --------------------------------------------------------------------------
# signed device batches


@attrs.frozen
class DeviceUsageBatch:
    """A device's signed batch of its own counters (``TBSDeviceUsageBatch``).

    ``records`` are :class:`UsageRecord` of kind ``DEVICE`` whose
    ``source_id`` is ``device_id``.
    """

    subscription_id: str
    device_id: str
    device_key_id: bytes
    sequence: int
    records: tuple[UsageRecord, ...]
    version: int = LEDGER_VERSION


_BATCH = "DeviceUsageBatch"


def _batch_record_key(record: UsageRecord) -> tuple[str, int, int, str]:
    return (record.iccid, record.period, record.counter_epoch, record.visited_plmn)


def sign_device_batch(
    *,
    device_key: ec.EllipticCurvePrivateKey,
    subscription_id: str,
    device_id: str,
    sequence: int,
    records: Iterable[UsageRecord],
    deterministic: bool = False,
) -> bytes:
    """Sign a batch of the device's own counters; its DER (``DeviceUsageBatch``).

    ``records`` must be of kind ``DEVICE`` with ``source_id == device_id``;
    they are written in canonical order (by ICCID, period, counter epoch,
    PLMN), one per counter (the largest value is kept when a counter repeats).
    ``sequence`` must grow from batch to batch (the operator refuses one it
    has seen).  ``deterministic`` signs with RFC 6979 nonces (test vectors).
    Raises :class:`~rspfed.errors.UsageError` for a non-P-256 key, bad ids,
    records of another kind or device, or more than
    :data:`MAX_BATCH_RECORDS` counters.
    """
    if not isinstance(device_key, ec.EllipticCurvePrivateKey) or not isinstance(
        device_key.curve, ec.SECP256R1
    ):
        raise UsageError("device batches are signed with a P-256 private key")
    _check_id(subscription_id, "subscription_id")
    _check_id(device_id, "device_id")
    _check_uint(sequence, "sequence")
    best: dict[tuple[str, int, int, str], UsageRecord] = {}
    for record in records:
        if not isinstance(record, UsageRecord) or record.kind is not SourceKind.DEVICE:
            raise UsageError("a device batch holds UsageRecords of kind DEVICE")
        if record.source_id != device_id:
            raise UsageError("a device batch holds the signing device's own records only")
        slot = _batch_record_key(record)
        if slot not in best or best[slot].octets < record.octets:
            best[slot] = record
    if len(best) > MAX_BATCH_RECORDS:
        raise UsageError(f"a device batch holds at most {MAX_BATCH_RECORDS} counters")
    items = []
    for slot in sorted(best):
        record = best[slot]
        item: dict[str, object] = {
            "iccid": _iccid_octets(record.iccid),
            "period": record.period,
            "counterEpoch": record.counter_epoch,
            "octets": record.octets,
        }
        if record.visited_plmn:
            item["visitedPlmn"] = encode_plmn(record.visited_plmn)
        items.append(item)
    tbs = schema.TBSDeviceUsageBatch(
        {
            "version": LEDGER_VERSION,
            "subscriptionId": subscription_id,
            "deviceId": device_id,
            "deviceKeyId": primary_key_id(device_key.public_key()),
            "sequence": sequence,
            "records": items,
        }
    )
    try:
        tbs_der = asn1.encode(tbs)
    except EncodeError as exc:  # pragma: no cover - every field is checked above
        raise UsageError(f"cannot encode the batch: {exc}") from None
    # The signature covers tbsBatch as it appears in DeviceUsageBatch: [0] constructed (A0).
    signed = _TBS_TAG + tbs_der[1:]
    signature = ecdsa.sign(device_key, signed, deterministic=deterministic)
    content = signed + b"\x81\x40" + signature
    return b"\x30" + _der_length(len(content)) + content


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def _decode_batch(der: bytes) -> tuple[DeviceUsageBatch, bytes, bytes]:
    if not isinstance(der, (bytes, bytearray, memoryview)):
        raise UsageError("a device batch is bytes")
    value = asn1.decode(schema.DeviceUsageBatch, bytes(der))
    tbs = value["tbsBatch"]
    _version(int(tbs["version"]), _BATCH)
    subscription_id = tbs["subscriptionId"].native
    device_id = tbs["deviceId"].native
    items = tbs["records"]
    if len(items) > MAX_BATCH_RECORDS:
        raise DecodeError(f"more than {MAX_BATCH_RECORDS} records", type_name=_BATCH)
    records: list[UsageRecord] = []
    previous: tuple[str, int, int, str] | None = None
    for item in items:
        plmn_native = item["visitedPlmn"].native
        try:
            record = UsageRecord(
                SourceKind.DEVICE,
                device_id,
                _iccid_from(item["iccid"].native, "DeviceUsageRecord"),
                item["period"].native,
                item["counterEpoch"].native,
                item["octets"].native,
                "" if plmn_native is None else decode_plmn(plmn_native),
            )
        except UsageError:
            raise DecodeError("bad device usage record", type_name="DeviceUsageRecord") from None
        slot = _batch_record_key(record)
        if previous is not None and slot <= previous:
            raise DecodeError("records not in strictly increasing order", type_name=_BATCH)
        previous = slot
        records.append(record)
    batch = DeviceUsageBatch(
        subscription_id,
        device_id,
        tbs["deviceKeyId"].native,
        tbs["sequence"].native,
        tuple(records),
    )
    return batch, asn1.received_der(tbs), value["signature"].native


def parse_device_batch(der: bytes) -> DeviceUsageBatch:
    """Decode a device batch *without* checking its signature (to find the device's key).

    Raises :class:`~rspfed.errors.DecodeError` for malformed input.
    """
    return _decode_batch(der)[0]


def verify_device_batch(
    der: bytes,
    *,
    device_public_key: ec.EllipticCurvePublicKey,
    subscription_id: str,
    device_id: str,
    iccids: Container[str],
    after_sequence: int | None = None,
) -> DeviceUsageBatch:
    """Check a device batch at ingest; the batch, whose records may then be merged.

    In this order: strict DER decode (:class:`~rspfed.errors.DecodeError`);
    ``deviceKeyId`` names ``device_public_key`` and the ECDSA signature over
    ``tbsBatch`` verifies (:class:`~rspfed.errors.SignatureError`); the batch
    is for ``subscription_id`` and ``device_id`` and every record's ICCID is
    in ``iccids`` -- the device's own profile(s) -- (else
    :class:`~rspfed.errors.AuthorizationError`: a device reporting for
    another); ``sequence`` is above ``after_sequence``, the last sequence
    accepted from this device (else :class:`~rspfed.errors.ReplayError`).
    """
    if not isinstance(device_public_key, ec.EllipticCurvePublicKey) or not isinstance(
        device_public_key.curve, ec.SECP256R1
    ):
        raise UsageError("the device key must be a P-256 public key")
    batch, tbs_der, signature = _decode_batch(der)
    if batch.device_key_id != primary_key_id(device_public_key):
        raise SignatureError("the batch names another device key")
    ecdsa.verify(device_public_key, tbs_der, signature)
    if batch.subscription_id != subscription_id or batch.device_id != device_id:
        raise AuthorizationError("the batch is for another subscription or device")
    if any(r.iccid not in iccids for r in batch.records):
        raise AuthorizationError("the batch reports usage of another device's profile")
    if after_sequence is not None and batch.sequence <= after_sequence:
        raise ReplayError("the batch's sequence number was already used")
    return batch


def ingest_device_batch(
    state: LedgerState,
    der: bytes,
    *,
    device_public_key: ec.EllipticCurvePublicKey,
    device_id: str,
    iccids: Container[str],
    after_sequence: int | None = None,
) -> tuple[DeviceUsageBatch, LedgerState]:
    """:func:`verify_device_batch` for ``state``'s subscription, then merge; (batch, delta).

    Store ``batch.sequence`` as the device's ``after_sequence`` for the next call.
    """
    batch = verify_device_batch(
        der,
        device_public_key=device_public_key,
        subscription_id=state.subscription_id,
        device_id=device_id,
        iccids=iccids,
        after_sequence=after_sequence,
    )
    return batch, state.add_records(batch.records)
