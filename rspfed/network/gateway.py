"""A sans-IO packet gateway: meters the octets each attached profile carries.

The gateway plays the part of a PGW/SMF with its charging function: a
bearer is opened for an attached IMSI (after EAP-AKA' ``attach``), traffic
is carried on it, and the gateway keeps one **cumulative** counter per
(ICCID, billing period, counter epoch).  Its records
(:class:`~rspfed.federation.ledger.UsageRecord`, kind ``NETWORK``,
``source_id`` the gateway's name) are the counters' current values, so a
record delivered late, twice or out of order changes nothing in the
operator's ledger (the merge keeps the maximum).  A restart loses the
counters held in memory, so the gateway starts again with the next
``counter_epoch`` (its boot count): the new counters start from zero under
a new key and nothing already reported is lost or double counted.

Enforcement (TS 23.203 PCEF): the operator hands the gateway a
:class:`Grant` per ICCID -- allowed with the octets remaining before a limit,
throttled, or barred with a reason -- and :meth:`Gateway.carry` carries at
most the grant, refusing the rest with
:class:`~rspfed.network.NetworkRefusedError` reason ``quota-exhausted`` or
``pool-exhausted``.  A data quota acts on data only: attach, voice and SMS
stay with the AuC.

No clock, no sockets: the billing period is passed in.
"""

from __future__ import annotations

import attrs

from rspfed.errors import UsageError
from rspfed.federation.ledger import MAX_OCTETS, SourceKind, UsageRecord
from rspfed.network.errors import NetworkRefusedError, RefusalReason

__all__ = ["Carried", "Gateway", "Grant"]


@attrs.frozen
class Grant:
    """What the gateway may carry for one ICCID.

    ``remaining`` octets before the first limit (``None``: unlimited);
    ``throttled`` when the plan throttles instead of barring (carried at a
    reduced rate, which the simulation only reports); ``refusal`` the reason
    once barred.
    """

    remaining: int | None = None
    throttled: bool = False
    refusal: RefusalReason | None = None


@attrs.frozen
class Carried:
    """The result of :meth:`Gateway.carry`: octets carried, the counter, throttling."""

    iccid: str
    octets: int
    counter: int
    throttled: bool
    record: UsageRecord


class Gateway:
    """One packet gateway (see the module doc).

    ``counter_epoch`` is the gateway's boot count: pass a larger one after
    every restart (the operator service keeps it in its store).
    """

    __slots__ = ("_counters", "_grants", "counter_epoch", "source_id")

    def __init__(self, source_id: str, *, counter_epoch: int = 0) -> None:
        if not isinstance(source_id, str) or not 1 <= len(source_id) <= 64:
            raise UsageError("the gateway's source id is 1 to 64 characters")
        if isinstance(counter_epoch, bool) or not isinstance(counter_epoch, int):
            raise UsageError("counter_epoch must be an integer")
        if counter_epoch < 0:
            raise UsageError("counter_epoch must not be negative")
        self.source_id = source_id
        self.counter_epoch = counter_epoch
        self._counters: dict[tuple[str, int, str], int] = {}
        self._grants: dict[str, Grant] = {}

    def __repr__(self) -> str:
        return f"Gateway({self.source_id!r}, epoch {self.counter_epoch})"

    def restarted(self) -> Gateway:
        """The gateway after a restart: counters lost, the next counter epoch."""
        return Gateway(self.source_id, counter_epoch=self.counter_epoch + 1)

    def set_grant(self, iccid: str, grant: Grant) -> None:
        """Install the operator's decision for one ICCID."""
        self._grants[iccid] = grant

    def grant(self, iccid: str) -> Grant:
        """The decision in force for ``iccid`` (unlimited until one is set)."""
        return self._grants.get(iccid, Grant())

    def counter(self, iccid: str, period: int, visited_plmn: str = "") -> int:
        """The cumulative octets metered for ``iccid`` in ``period`` this epoch."""
        return self._counters.get((iccid, period, visited_plmn), 0)

    def record(self, iccid: str, period: int, visited_plmn: str = "") -> UsageRecord:
        """The record of one counter (its current cumulative value)."""
        return UsageRecord(
            SourceKind.NETWORK,
            self.source_id,
            iccid,
            period,
            self.counter_epoch,
            self.counter(iccid, period, visited_plmn),
            visited_plmn,
        )

    def records(self) -> list[UsageRecord]:
        """Every counter's record (what a periodic charging report sends)."""
        return [self.record(i, p, v) for (i, p, v) in sorted(self._counters)]

    def carry(self, iccid: str, period: int, octets: int, visited_plmn: str = "") -> Carried:
        """Carry up to ``octets`` for ``iccid``; what was carried.

        ``visited_plmn`` (``MCC || MNC``) when roaming: one counter per
        visited network, so the pool shows usage per network.

        Carries at most the grant's ``remaining``; raises
        :class:`~rspfed.network.NetworkRefusedError` when nothing may be
        carried (the grant's refusal).  A partial carry returns normally
        with fewer octets (the next call is refused).
        :class:`~rspfed.errors.UsageError` for a bad ICCID, period or PLMN
        or a counter that would pass 2**63-1; the gateway is unchanged then.
        """
        if isinstance(octets, bool) or not isinstance(octets, int) or octets < 0:
            raise UsageError("octets must be a non-negative integer")
        grant = self.grant(iccid)
        allowed = octets if grant.remaining is None else min(octets, grant.remaining)
        if grant.refusal is not None and allowed == 0:
            raise NetworkRefusedError(grant.refusal, "data")
        slot = (iccid, period, visited_plmn)
        value = self._counters.get(slot, 0) + allowed
        if value > MAX_OCTETS:
            raise UsageError("the counter would pass 2**63-1 octets")
        # The record checks the ICCID, period and PLMN before anything changes:
        # a bad call leaves no counter that would spoil every later report.
        record = UsageRecord(
            SourceKind.NETWORK,
            self.source_id,
            iccid,
            period,
            self.counter_epoch,
            value,
            visited_plmn,
        )
        if grant.refusal is not None or grant.remaining is not None:
            left = None if grant.remaining is None else grant.remaining - allowed
            self._grants[iccid] = attrs.evolve(grant, remaining=left)
        self._counters[slot] = value
        return Carried(iccid, allowed, value, grant.throttled, record)
