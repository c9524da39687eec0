"""Device change, device side (issue I): the old and the new device's steps, journaled.

Independent of transports: the pairing flows (``rspfed transfer send`` /
``receive``, :mod:`rspfed.transfer.change_flows`) carry the messages, these
functions do the work over the operator (:class:`ChangeOperator`: an
:class:`~rspfed.federation.client.OperatorClient`, or any object with the same
five coroutines), the LPA (:class:`~rspfed.lpa.Lpa`) and the device store
(:class:`~rspfed.federation.device.DeviceStore`).

The old device (its record moves away)::

    order = await old_request_change(op, store, new_eid=..., now=clock)   # journal: requested
    ... send changeOrder (ticket_from_order, or ticket_from_journal when resumed) ...
    old_order_sent(store, now=clock)                                      # order_sent
    ... wait for changeResult ...
    journal = await old_finish(op, store, lpa, now=clock)   # switched, old_deleted, done
    ... send changeDone (journal.old_iccid deleted, journal.companions) ...

The new device::

    journal = await new_apply_order(op, store, lpa, card, ticket, now=clock)
    # order_received -> downloaded -> enabled -> (operator switches) -> switched
    # -> registered (key registered, replaced linked profile deleted)
    ... send changeResult(switched journal.new_iccid), receive changeDone ...
    new_finish(store, companions, now=clock)                           # done

Either side after a crash or a cut: ``await resume(op, store, lpa, card, now=clock)``
continues from the journal; on the old side ``abandon=True`` (or the order's
lapse) rolls back with ``cancel_device_change`` while the change is open;
the new side deletes a never-switched profile once the change is cancelled.
:func:`cancel` cancels explicitly.

Journal (one SQLite transaction per phase, :class:`~rspfed.federation.device.ChangeJournal`):

* old: ``requested`` (after the operator answered; the secret is kept) ->
  ``order_sent`` -> ``switched`` (the operator said so: from here the old
  profile may go) -> ``old_deleted`` (the profile is deleted on the eUICC)
  -> ``done`` (the operator completed; the device record no longer names
  the subscription), or ``cancelled``.
* new: ``order_received`` (before the download; the new ICCID from the
  operator) -> ``downloaded`` -> ``enabled`` (before the enable
  notification is sent: sending it triggers the switch) -> ``switched`` (in
  one transaction with the new :class:`~rspfed.federation.device.DeviceRecord`)
  -> ``registered`` (the key is the store's current key) -> ``done``, or
  ``cancelled`` (the never-switched profile deleted).

Each phase is written before anything relies on the step it announces, and
every step re-checks the eUICC's and the operator's state before acting, so
running a step twice (after a crash) is harmless.  The old profile is
deleted only after the operator reported the switch and the new profile is
enabled before its notification goes out: the network never serves a
profile that is not enabled on its device (no moment without service).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import attrs

from rspfed.errors import (
    NotFoundError,
    ProtocolError,
    RspfedError,
    StateError,
    UsageError,
)
from rspfed.federation.device import ChangeJournal, CompanionRecord, DeviceRecord, DeviceStore
from rspfed.federation.token import DeviceClass
from rspfed.federation.types import (
    ChangeState,
    Device,
    DeviceChange,
    DeviceChangeOrder,
    DeviceRole,
)
from rspfed.lpa.notifications import deliver

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from rspfed.eap.machines import UsimAuthenticate
    from rspfed.euicc.card import Card
    from rspfed.lpa import Lpa
    from rspfed.lpa.es9 import Es9

__all__ = [
    "ChangeEvent",
    "ChangeOperator",
    "ChangeProgress",
    "ChangeStep",
    "ChangeTicket",
    "cancel",
    "new_apply_order",
    "new_finish",
    "old_finish",
    "old_order_sent",
    "old_request_change",
    "resume",
    "ticket_from_journal",
    "ticket_from_order",
]


class ChangeOperator(Protocol):
    """The operator calls a device change needs (:class:`~rspfed.federation.client.
    OperatorClient` has them; an in-process adapter over the operator core may too)."""

    async def device_change(
        self,
        key: ec.EllipticCurvePrivateKey,
        new_eid: str,
        *,
        name: str | None = None,
        device_class: DeviceClass | None = None,
    ) -> DeviceChangeOrder:
        """Order the change (signed by the moving device's key)."""
        ...

    async def device_change_status(self, change_id: str, secret: str) -> DeviceChange:
        """Read the change with its secret."""
        ...

    async def cancel_device_change(
        self, key: ec.EllipticCurvePrivateKey, change_id: str
    ) -> DeviceChange:
        """Cancel an open change (signed)."""
        ...

    async def complete_device_change(self, change_id: str, secret: str) -> DeviceChange:
        """The old profile is deleted: complete the switched change."""
        ...

    async def register(
        self,
        *,
        usim: UsimAuthenticate,
        imsi: str,
        mnc_length: int,
        eid: str,
        key: ec.EllipticCurvePrivateKey,
        network_name: bytes | None = None,
    ) -> Device:
        """Register ``key`` by EAP-AKA' with the enabled USIM."""
        ...


class ChangeStep(enum.Enum):
    """The steps announced to ``progress``."""

    REQUESTED = "requested"
    """Old: the operator ordered the new profile (the journal has the secret)."""
    ORDER_SENT = "order-sent"
    """Old: the order went to the new device."""
    ORDER_RECEIVED = "order-received"
    """New: the order is journaled."""
    DOWNLOADING = "downloading"
    """New: the LPA downloads the new profile."""
    DOWNLOADED = "downloaded"
    """New: the new profile is installed."""
    ENABLED = "enabled"
    """New: the new profile is enabled."""
    NOTIFIED = "notified"
    """Pending notifications went to the SM-DP+ (how many: in the text)."""
    WAITING = "waiting"
    """Waiting for the operator's switch."""
    SWITCHED = "switched"
    """The network serves the new profile."""
    REGISTERED = "registered"
    """New: the device's key is registered."""
    REPLACED_DELETED = "replaced-deleted"
    """New: the replaced linked profile is deleted."""
    OLD_DELETED = "old-deleted"
    """Old: the old profile is deleted."""
    COMPLETED = "completed"
    """Old: the operator completed the change."""
    CANCELLED = "cancelled"
    """The change is cancelled (rolled back)."""
    DONE = "done"
    """This side finished."""


@attrs.frozen
class ChangeEvent:
    """One step, with a one-line human ``text``."""

    step: ChangeStep
    text: str


ChangeProgress = Callable[[ChangeEvent], None]
"""The ``progress`` callback."""

Sleep = Callable[[float], Awaitable[None]]


def _ignore(_: ChangeEvent) -> None:
    return None


@attrs.frozen
class ChangeTicket:
    """What the new device gets from the old one (the changeOrder message)."""

    change_id: str
    secret: str = attrs.field(repr=False)
    activation_code: str = attrs.field(repr=False)
    operator_url: str
    subscription_id: str
    device_id: str
    role: str
    """``"primary"`` or ``"secondary"``."""
    replaced_iccid: str | None = None


def ticket_from_order(
    order: DeviceChangeOrder, operator_url: str, role: DeviceRole | str
) -> ChangeTicket:
    """The ticket the old device sends for ``order``."""
    value = role.value if isinstance(role, DeviceRole) else role
    change = order.change
    return ChangeTicket(
        change_id=change.id,
        secret=order.secret,
        activation_code=order.activation_code,
        operator_url=operator_url,
        subscription_id=change.subscription_id,
        device_id=change.device_id,
        role=value,
        replaced_iccid=change.replaced_iccid,
    )


def ticket_from_journal(journal: ChangeJournal) -> ChangeTicket:
    """The ticket again, from the old device's journal (to resend the order after a
    crash or a cut).  :class:`StateError` for a new-side journal."""
    if journal.side != "old" or journal.activation_code is None or journal.role is None:
        raise StateError("only the old device's journal holds the order")
    if journal.subscription_id is None or journal.device_id is None:
        raise StateError("the journal does not name the device that moves")
    return ChangeTicket(
        change_id=journal.change_id,
        secret=journal.secret,
        activation_code=journal.activation_code,
        operator_url=journal.operator_url,
        subscription_id=journal.subscription_id,
        device_id=journal.device_id,
        role=journal.role,
        replaced_iccid=journal.replaced_iccid,
    )


# --------------------------------------------------------------------------
# helpers


def _journal(store: DeviceStore, side: str) -> ChangeJournal:
    journal = store.change()
    if journal is None or journal.side != side:
        raise StateError(f"no device change under way on this ({side}) device")
    return journal


def _step(
    store: DeviceStore,
    journal: ChangeJournal,
    phase: str,
    now: datetime,
    *,
    record: DeviceRecord | None = None,
    **changes: object,
) -> ChangeJournal:
    moved = journal.at(phase, now, **changes)
    store.set_change(moved, record=record)
    return moved


def _profiles(lpa: Lpa) -> dict[str, bool]:
    return {p.iccid: p.enabled for p in lpa.profiles()}


async def _deliver(lpa: Lpa, es9: Es9 | None) -> int:
    """Send every pending notification (best effort); how many were delivered."""
    notes = lpa.notifications()
    if not notes:
        return 0
    if es9 is None:
        results = await deliver(lpa.es10, notes, lpa.settings, lpa.ci_pkids_for_verification())
    else:
        clients = {n.address: es9 for n in notes}
        results = await deliver(lpa.es10, notes, lpa.settings, None, clients=clients)
    return sum(1 for d in results if d.delivered)


async def _poll(
    operator: ChangeOperator,
    journal: ChangeJournal,
    *,
    wait: float,
    interval: float,
    sleep: Sleep,
    before: Callable[[], Awaitable[object]] | None = None,
) -> DeviceChange:
    """Read the change until it left ordered/installed or ``wait`` seconds passed."""
    rounds = 1 + max(0, math.ceil(wait / interval)) if interval > 0 else 1
    change: DeviceChange | None = None
    for i in range(rounds):
        if before is not None:
            await before()
        change = await operator.device_change_status(journal.change_id, journal.secret)
        if not change.open or i == rounds - 1:
            break
        await sleep(interval)
    assert change is not None
    return change


# --------------------------------------------------------------------------
# the old device


async def old_request_change(
    operator: ChangeOperator,
    store: DeviceStore,
    *,
    new_eid: str,
    now: Callable[[], datetime],
    name: str | None = None,
    device_class: DeviceClass | None = None,
    progress: ChangeProgress = _ignore,
) -> DeviceChangeOrder:
    """Old device: ask the operator (signed with the store's key) to move this device's
    record to ``new_eid``; journal ``requested`` with the secret, the activation code
    and the companions to carry.  Asking again for the same EID (a resumed request)
    renews the secret.  :class:`StateError` when another change is under way."""
    record = store.record()
    key = store.private_key()
    if record is None or key is None or record.device_id is None or record.role is None:
        raise StateError("this device is not registered with an operator")
    journal = store.change()
    if (
        journal is not None
        and not journal.finished
        and (journal.side != "old" or journal.new_eid != new_eid)
    ):
        raise StateError("another device change is under way: resume or cancel it first")
    order = await operator.device_change(key, new_eid, name=name, device_class=device_class)
    change = order.change
    at = now()
    fresh = ChangeJournal(
        side="old",
        change_id=change.id,
        phase="requested",
        secret=order.secret,
        operator_url=record.operator_url,
        created=at if journal is None or journal.change_id != change.id else journal.created,
        updated=at,
        activation_code=order.activation_code,
        new_eid=change.new_eid,
        old_iccid=change.old_iccid,
        new_iccid=change.new_iccid,
        role=record.role,
        subscription_id=change.subscription_id,
        device_id=change.device_id,
        replaced_iccid=change.replaced_iccid,
        companions=tuple(store.companions()[:8]),
    )
    store.set_change(fresh)
    progress(ChangeEvent(ChangeStep.REQUESTED, f"the operator ordered a profile for {new_eid}"))
    return order


def old_order_sent(
    store: DeviceStore, *, now: Callable[[], datetime], progress: ChangeProgress = _ignore
) -> ChangeJournal:
    """Old device: the order went to the new device (journal ``order_sent``)."""
    journal = _journal(store, "old")
    if journal.phase != "requested":
        return journal
    progress(ChangeEvent(ChangeStep.ORDER_SENT, "the order went to the new device"))
    return _step(store, journal, "order_sent", now())


async def old_finish(
    operator: ChangeOperator,
    store: DeviceStore,
    lpa: Lpa,
    *,
    now: Callable[[], datetime],
    es9: Es9 | None = None,
    wait: float = 120.0,
    interval: float = 2.0,
    sleep: Sleep = asyncio.sleep,
    progress: ChangeProgress = _ignore,
) -> ChangeJournal:
    """Old device: once the operator switched, disable and delete the old profile, send
    its delete notification and complete the change (journal ``switched``,
    ``old_deleted``, ``done``).  Waits up to ``wait`` seconds for the switch
    (:class:`StateError` if it did not come: the journal is unchanged, resume later);
    a cancelled change ends as ``cancelled``.  At ``done`` the companion records
    carried (kept in the journal, to resend in changeDone) leave this device's store."""
    journal = _journal(store, "old")
    if journal.phase == "cancelled":
        return journal
    if journal.phase in ("requested", "order_sent"):
        progress(ChangeEvent(ChangeStep.WAITING, "waiting for the operator's switch"))
        try:
            change = await _poll(operator, journal, wait=wait, interval=interval, sleep=sleep)
        except NotFoundError:
            return _cancelled(store, journal, now, progress)
        if change.state is ChangeState.CANCELLED:
            return _cancelled(store, journal, now, progress)
        if change.open:
            raise StateError("the operator has not switched yet: resume later")
        journal = _step(store, journal, "switched", now())
        progress(ChangeEvent(ChangeStep.SWITCHED, f"the network serves {change.new_iccid}"))
    if journal.phase == "switched":
        old = journal.old_iccid
        profiles = _profiles(lpa)
        if old is not None and old in profiles:
            if profiles[old]:
                lpa.disable(old)
            lpa.delete(old)
        journal = _step(store, journal, "old_deleted", now())
        progress(ChangeEvent(ChangeStep.OLD_DELETED, f"profile {old} deleted"))
    if journal.phase == "old_deleted":
        sent = await _deliver(lpa, es9)
        progress(ChangeEvent(ChangeStep.NOTIFIED, f"{sent} notification(s) sent"))
        change = await operator.complete_device_change(journal.change_id, journal.secret)
        progress(ChangeEvent(ChangeStep.COMPLETED, f"the change is {change.state.value}"))
        record = store.record()
        gone = None
        if record is not None:
            gone = attrs.evolve(record, subscription_id=None, device_id=None, role=None)
        journal = _step(store, journal, "done", now(), record=gone)
        progress(ChangeEvent(ChangeStep.DONE, "the subscription moved to the new device"))
    if journal.phase == "done":
        # the companions went with the subscription (the journal keeps them to resend)
        for companion in journal.companions:
            store.drop_companion(companion.eid)
    return journal


def _cancelled(
    store: DeviceStore, journal: ChangeJournal, now: Callable[[], datetime], say: ChangeProgress
) -> ChangeJournal:
    say(ChangeEvent(ChangeStep.CANCELLED, "the device change is cancelled"))
    return _step(store, journal, "cancelled", now())


async def _old_resume(
    operator: ChangeOperator,
    store: DeviceStore,
    lpa: Lpa,
    journal: ChangeJournal,
    *,
    now: Callable[[], datetime],
    es9: Es9 | None,
    abandon: bool,
    wait: float,
    interval: float,
    sleep: Sleep,
    progress: ChangeProgress,
) -> ChangeJournal:
    if journal.phase in ("requested", "order_sent"):
        try:
            change = await operator.device_change_status(journal.change_id, journal.secret)
        except NotFoundError:
            return _cancelled(store, journal, now, progress)
        if change.state is ChangeState.CANCELLED:
            return _cancelled(store, journal, now, progress)
        if change.open:
            if abandon or now() >= change.expires:
                return await cancel(operator, store, lpa, now=now, es9=es9, progress=progress)
            with contextlib.suppress(StateError):
                return await old_finish(
                    operator,
                    store,
                    lpa,
                    now=now,
                    es9=es9,
                    wait=wait,
                    interval=interval,
                    sleep=sleep,
                    progress=progress,
                )
            return _journal(store, "old")
    return await old_finish(
        operator, store, lpa, now=now, es9=es9, wait=0, sleep=sleep, progress=progress
    )


# --------------------------------------------------------------------------
# the new device


async def new_apply_order(
    operator: ChangeOperator,
    store: DeviceStore,
    lpa: Lpa,
    card: Card,
    ticket: ChangeTicket,
    *,
    now: Callable[[], datetime],
    es9: Es9 | None = None,
    wait: float = 120.0,
    interval: float = 2.0,
    sleep: Sleep = asyncio.sleep,
    progress: ChangeProgress = _ignore,
) -> ChangeJournal:
    """New device: journal the order, download and enable the new profile, send its
    notifications, wait (up to ``wait`` s, polling every ``interval`` s) for the
    operator's switch, write the device record, register the device's key by
    EAP-AKA' with the new USIM (a primary's becomes the federation key) and delete
    the replaced linked profile; the journal ends at ``registered`` (``done`` after
    :func:`new_finish`) or ``cancelled`` (the order was cancelled: the new profile
    is deleted again).  :class:`StateError` if the switch did not come in time (the
    journal keeps the phase: :func:`resume` later); :class:`UsageError` if the
    order is for another eUICC."""
    journal = store.change()
    if journal is not None and journal.side == "new" and journal.change_id == ticket.change_id:
        if journal.finished:
            return journal
        if (journal.secret, journal.activation_code) != (ticket.secret, ticket.activation_code):
            # the order was sent again (a re-request renews the secret, a failed order
            # comes back with a fresh activation code)
            journal = journal.at(
                journal.phase, now(), secret=ticket.secret, activation_code=ticket.activation_code
            )
            store.set_change(journal)
    if (
        journal is None
        or journal.finished
        or journal.side != "new"
        or (journal.change_id != ticket.change_id)
    ):
        if (
            journal is not None
            and not journal.finished
            and (journal.side != "new" or journal.change_id != ticket.change_id)
        ):
            raise StateError("another device change is under way: resume or cancel it first")
        eid = lpa.eid()
        change = await operator.device_change_status(ticket.change_id, ticket.secret)
        if change.new_eid != eid:
            raise UsageError("the device change is for another eUICC")
        at = now()
        journal = ChangeJournal(
            side="new",
            change_id=ticket.change_id,
            phase="order_received",
            secret=ticket.secret,
            operator_url=ticket.operator_url,
            created=at,
            updated=at,
            activation_code=ticket.activation_code,
            new_eid=eid,
            old_iccid=change.old_iccid,
            new_iccid=change.new_iccid,
            role=ticket.role,
            subscription_id=ticket.subscription_id,
            device_id=ticket.device_id,
            replaced_iccid=ticket.replaced_iccid,
        )
        store.set_change(journal)
        progress(ChangeEvent(ChangeStep.ORDER_RECEIVED, f"order for profile {change.new_iccid}"))
        if change.state is ChangeState.CANCELLED:
            return await _new_rollback(store, lpa, journal, now=now, es9=es9, progress=progress)
    return await _new_continue(
        operator,
        store,
        lpa,
        card,
        journal,
        now=now,
        es9=es9,
        wait=wait,
        interval=interval,
        sleep=sleep,
        progress=progress,
    )


async def _new_continue(
    operator: ChangeOperator,
    store: DeviceStore,
    lpa: Lpa,
    card: Card,
    journal: ChangeJournal,
    *,
    now: Callable[[], datetime],
    es9: Es9 | None,
    wait: float,
    interval: float,
    sleep: Sleep,
    progress: ChangeProgress,
) -> ChangeJournal:
    iccid = journal.new_iccid
    if iccid is None:  # pragma: no cover - always set by new_apply_order
        raise StateError("the journal does not name the new profile")
    if journal.phase == "order_received":
        if iccid not in _profiles(lpa):
            change = await operator.device_change_status(journal.change_id, journal.secret)
            if change.state is ChangeState.CANCELLED:
                return await _new_rollback(store, lpa, journal, now=now, es9=es9, progress=progress)
            if change.new_iccid != iccid:  # the operator re-ordered a failed order
                iccid = change.new_iccid
                journal = _step(store, journal, "order_received", now(), new_iccid=iccid)
            progress(ChangeEvent(ChangeStep.DOWNLOADING, f"downloading profile {iccid}"))
            if journal.activation_code is None:  # pragma: no cover - set from the ticket
                raise StateError("the journal has no activation code")
            try:
                await lpa.download(journal.activation_code, es9=es9)
            except RspfedError:
                if iccid not in _profiles(lpa):
                    raise
            if iccid not in _profiles(lpa):
                raise ProtocolError("the download installed another profile than ordered")
        journal = _step(store, journal, "downloaded", now())
        progress(ChangeEvent(ChangeStep.DOWNLOADED, f"profile {iccid} installed"))
    if journal.phase == "downloaded":
        profiles = _profiles(lpa)
        if iccid not in profiles:
            raise StateError(f"profile {iccid} is gone from the eUICC")
        if not profiles[iccid]:
            lpa.enable(iccid)
        journal = _step(store, journal, "enabled", now())
        progress(ChangeEvent(ChangeStep.ENABLED, f"profile {iccid} enabled"))
    if journal.phase == "enabled":
        progress(ChangeEvent(ChangeStep.WAITING, "waiting for the operator's switch"))

        async def notify() -> None:
            sent = await _deliver(lpa, es9)
            if sent:
                progress(ChangeEvent(ChangeStep.NOTIFIED, f"{sent} notification(s) sent"))

        change = await _poll(
            operator, journal, wait=wait, interval=interval, sleep=sleep, before=notify
        )
        if change.state is ChangeState.CANCELLED:
            return await _new_rollback(store, lpa, journal, now=now, es9=es9, progress=progress)
        if change.open:
            raise StateError("the operator has not switched yet: resume later")
        record = store.record()
        moved = DeviceRecord(
            operator_url=journal.operator_url,
            subscription_id=journal.subscription_id,
            device_id=journal.device_id,
            role=journal.role,
            eid=journal.new_eid,
            device_class=None if record is None else record.device_class,
            name=None if record is None else record.name,
        )
        journal = _step(store, journal, "switched", now(), record=moved)
        progress(ChangeEvent(ChangeStep.SWITCHED, f"the network serves {iccid}"))
    if journal.phase == "switched":
        device = await _register(operator, store, card, journal)
        record = DeviceRecord(
            operator_url=journal.operator_url,
            subscription_id=device.subscription_id,
            device_id=device.id,
            role="primary" if device.role is DeviceRole.PRIMARY else "secondary",
            eid=journal.new_eid,
            device_class=device.device_class,
            name=device.name,
        )
        journal = _step(store, journal, "registered", now(), record=record)
        text = f"this device's key is registered ({device.role.value})"
        progress(ChangeEvent(ChangeStep.REGISTERED, text))
    if journal.phase == "registered":
        replaced = journal.replaced_iccid
        profiles = _profiles(lpa)
        if replaced is not None and replaced in profiles:
            if profiles[replaced]:  # pragma: no cover - the new profile is the enabled one
                lpa.disable(replaced)
            lpa.delete(replaced)
            progress(ChangeEvent(ChangeStep.REPLACED_DELETED, f"profile {replaced} deleted"))
        with contextlib.suppress(RspfedError):
            await _deliver(lpa, es9)
    return journal


async def _register(
    operator: ChangeOperator, store: DeviceStore, card: Card, journal: ChangeJournal
) -> Device:
    from rspfed.network.usim import eap_usim, read_usim_identity

    if journal.new_eid is None:  # pragma: no cover - always set
        raise StateError("the journal does not name the new eUICC")
    try:
        imsi, mnc_length = read_usim_identity(card)
    except ProtocolError as exc:
        raise StateError(f"no usable USIM ({exc}): is the new profile enabled?") from None
    key = store.generate_key()
    try:
        device = await operator.register(
            usim=eap_usim(card), imsi=imsi, mnc_length=mnc_length, eid=journal.new_eid, key=key
        )
    except RspfedError:
        store.discard_pending_key()
        raise
    store.commit_key()
    return device


async def _new_rollback(
    store: DeviceStore,
    lpa: Lpa,
    journal: ChangeJournal,
    *,
    now: Callable[[], datetime],
    es9: Es9 | None,
    progress: ChangeProgress,
) -> ChangeJournal:
    """The change was cancelled before the switch: delete the new profile (re-enabling
    the replaced one if it was enabled before), then journal ``cancelled``."""
    iccid = journal.new_iccid
    profiles = _profiles(lpa)
    if iccid is not None and iccid in profiles:
        if profiles[iccid]:
            replaced = journal.replaced_iccid
            if replaced is not None and replaced in profiles:
                lpa.enable(replaced)
            else:
                lpa.disable(iccid)
        lpa.delete(iccid)
    with contextlib.suppress(RspfedError):
        await _deliver(lpa, es9)
    return _cancelled(store, journal, now, progress)


def new_finish(
    store: DeviceStore,
    companions: Sequence[CompanionRecord] = (),
    *,
    now: Callable[[], datetime],
    progress: ChangeProgress = _ignore,
) -> ChangeJournal:
    """New device: keep the companion records handed over (changeDone) and journal
    ``done``.  :class:`StateError` before ``registered``."""
    journal = _journal(store, "new")
    if journal.phase == "done":
        return journal
    if journal.phase != "registered":
        raise StateError(f"the device change is at {journal.phase}, not registered")
    for companion in companions:
        store.set_companion(companion)
    progress(ChangeEvent(ChangeStep.DONE, "this device took over the subscription"))
    return _step(store, journal, "done", now())


# --------------------------------------------------------------------------
# either side


async def resume(
    operator: ChangeOperator,
    store: DeviceStore,
    lpa: Lpa,
    card: Card | None = None,
    *,
    now: Callable[[], datetime],
    es9: Es9 | None = None,
    abandon: bool = False,
    wait: float = 0.0,
    interval: float = 2.0,
    sleep: Sleep = asyncio.sleep,
    progress: ChangeProgress = _ignore,
) -> ChangeJournal | None:
    """Continue the journaled change of either side (``None`` if there is none).

    Old side: before the switch, ``abandon`` (or the order's lapse) cancels the
    change at the operator; otherwise it waits up to ``wait`` s for the switch
    and returns the journal unchanged if it did not come; after the switch it
    deletes the old profile and completes.  New side (``card`` needed for the
    registration): continues the download/enable/wait/register steps, or
    deletes the never-switched profile once the change is cancelled; a switch
    still awaited is a :class:`StateError` after ``wait`` s.  A change at
    ``registered`` ends ``done`` (without companions)."""
    journal = store.change()
    if journal is None or journal.finished:
        return journal
    if journal.side == "old":
        return await _old_resume(
            operator,
            store,
            lpa,
            journal,
            now=now,
            es9=es9,
            abandon=abandon,
            wait=wait,
            interval=interval,
            sleep=sleep,
            progress=progress,
        )
    if card is None:
        raise UsageError("the new device's card is needed to resume its change")
    journal = await _new_continue(
        operator,
        store,
        lpa,
        card,
        journal,
        now=now,
        es9=es9,
        wait=wait,
        interval=interval,
        sleep=sleep,
        progress=progress,
    )
    if journal.phase == "registered":
        journal = new_finish(store, (), now=now, progress=progress)
    return journal


async def cancel(
    operator: ChangeOperator,
    store: DeviceStore,
    lpa: Lpa,
    *,
    now: Callable[[], datetime],
    es9: Es9 | None = None,
    progress: ChangeProgress = _ignore,
) -> ChangeJournal:
    """Cancel this device's change before the switch.

    Old side: ``cancel_device_change`` at the operator (signed), then
    ``cancelled``; if the operator switched meanwhile it is finished instead
    (:func:`old_finish`).  New side: only before its profile is enabled (after
    that only the old device can cancel): the downloaded profile is deleted.
    :class:`StateError` when it is too late."""
    found = store.change()
    if found is None:
        raise StateError("no device change under way on this device")
    journal = found
    if journal.finished:
        return journal
    if journal.side == "old":
        if journal.phase not in ("requested", "order_sent"):
            raise StateError("the device change has switched already: finish it instead")
        key = store.private_key()
        if key is None:
            raise StateError("this device has no key to sign the cancel with")
        try:
            await operator.cancel_device_change(key, journal.change_id)
        except StateError:
            return await old_finish(
                operator, store, lpa, now=now, es9=es9, wait=0, progress=progress
            )
        return _cancelled(store, journal, now, progress)
    if journal.phase not in ("order_received", "downloaded"):
        raise StateError("the new profile is enabled: only the old device can cancel now")
    return await _new_rollback(store, lpa, journal, now=now, es9=es9, progress=progress)
