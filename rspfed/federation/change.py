"""Device change, operator side: a subscription's device record moves to a new eUICC.

The old device (signed with its own key, primary or secondary) asks for a
change to the new EID: the operator orders a NEW profile (new ICCID, IMSI,
K/OPc) bound by ES2+ to that EID and records a :class:`DeviceChange`.  The
new device downloads it, enables it and its LPA sends the signed *enable*
notification to the SM-DP+.  :meth:`DeviceChanges.sync` (run by
:meth:`Operator.sync <rspfed.federation.operator.Operator.sync>`, so before
every public call) drives the change::

    ordered   --SM-DP+ says installed-->   installed  (new IMSI provisioned PENDING)
    installed --new eUICC's enable note--> switched   (Auc.switch: new served, old removed)
    switched  --old eUICC's delete note--> completed  (or complete_device_change)
    ordered|installed --cancel / order_ttl lapsed--> cancelled (pending IMSI removed)

Network invariant: while a change is open the AuC serves exactly one of the
old and the new IMSI.  The flip is ONE transaction of the subscriber store
(:meth:`rspfed.network.Auc.switch`).  The operator store follows in its own
transaction; every step writes the network first and the operator store
after, and :meth:`DeviceChanges.sync` repairs a crash between the two from
the AuC's state: an open change whose new IMSI is served is recorded
switched, one whose new IMSI is removed is recorded cancelled.  Each step is
idempotent.

At the switch the device record takes the new EID, ICCID and IMSI (keeping
its id, slot, role, class, name, quota and services; a new name or class
given with the request applies), the old device's keys are retired (a
primary's outstanding tokens die with its key), and a linked device of the
subscription the new eUICC held is removed in the same network transaction
(its slot freed).  The new device then registers its own key with EAP-AKA'
(:meth:`Operator.eap_start`, purpose ``register``, with the new EID); a
primary's becomes the subscription's federation key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from rspfed.errors import (
    AuthorizationError,
    DecodeError,
    NotFoundError,
    PolicyError,
    StateError,
    TokenScopeError,
    UsageError,
)
from rspfed.federation import _state
from rspfed.federation._state import Event
from rspfed.federation.store import ChangeRecord
from rspfed.federation.token import DeviceClass
from rspfed.federation.types import (
    Caller,
    ChangeState,
    Device,
    DeviceChange,
    DeviceChangeOrder,
    DeviceRole,
    DeviceState,
)
from rspfed.lpa.activation import ActivationCode
from rspfed.network.auc import Subscriber, SubscriberState
from rspfed.network.errors import NetworkRefusedError
from rspfed.network.service import ServicePolicy
from rspfed.pki.eid import is_valid_eid
from rspfed.smdp import InventoryItem, ItemState

if TYPE_CHECKING:
    from rspfed.federation.operator import Operator

__all__ = [
    "DeviceChanges",
    "device_change_from_json",
    "device_change_order_from_json",
    "device_change_order_to_json",
    "device_change_to_json",
]

_MAX_NAME = 64
_CANCELLED_ORDER = frozenset({ItemState.AVAILABLE, ItemState.UNAVAILABLE})
"""Only the operator cancels its orders: an open change's order in these states was
cancelled by an interrupted cancel or lapse, which sync finishes."""


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


def _check_eid(eid: str) -> str:
    if not isinstance(eid, str) or not is_valid_eid(eid):
        raise DecodeError("not a valid EID", type_name="EID")
    return eid


class DeviceChanges:
    """The device-change part of an :class:`~rspfed.federation.operator.Operator`
    (see the module doc); the operator's methods delegate here."""

    def __init__(self, operator: Operator) -> None:
        self._op = operator

    def __repr__(self) -> str:
        return f"DeviceChanges({self._op!r})"

    # -- requests -------------------------------------------------------------------

    def request(
        self,
        caller: Caller,
        new_eid: str,
        *,
        name: str | None = None,
        device_class: DeviceClass | None = None,
    ) -> DeviceChangeOrder:
        """:meth:`Operator.device_change <rspfed.federation.operator.Operator.device_change>`."""
        op = self._op
        store = op.store
        _check_eid(new_eid)
        if name is not None and (
            not isinstance(name, str) or not 1 <= len(name) <= _MAX_NAME or not name.isprintable()
        ):
            raise UsageError(f"a device name is 1 to {_MAX_NAME} printable characters")
        try:
            cls = None if device_class is None else DeviceClass(device_class)
        except ValueError:
            raise UsageError("unknown device class") from None
        op.sync()
        now = op._now()
        device = store.device(caller.device_id)
        if device is None or device.subscription_id != caller.subscription_id:
            raise NotFoundError("no such device")
        if device.state is not DeviceState.ACTIVE:
            raise StateError("only an active device can move to a new eUICC")
        if device.eid == new_eid:
            history = store.changes_of_device(device.id)
            if history and history[0].change.new_eid == new_eid and not history[0].change.open:
                raise StateError("the device moved to this eUICC already (its change switched)")
            raise UsageError("the new eUICC is the device's own")
        sub = op.subscription(device.subscription_id)
        cls = cls or device.device_class
        if cls not in sub.plan.device_classes:
            raise TokenScopeError(f"the plan does not allow a {cls.value}")
        if device.role is DeviceRole.PRIMARY and cls is not DeviceClass.PHONE:
            raise TokenScopeError("the primary device is a phone")
        open_ = [r for r in store.changes_of_device(device.id) if r.change.open]
        if open_:
            record = open_[0]
            if record.change.new_eid != new_eid:
                raise StateError("another device change is open for this device: cancel it first")
            return self._again(record, device, name=name, device_class=cls, now=now)
        replaced = self._replaced(device, new_eid)
        for other in store.changes_to_eid(new_eid):
            if other.change.open:
                raise StateError("another device change is moving onto this eUICC")
        new_iccid, new_imsi, code = self._order(sub.profile_type, new_eid)
        secret = self._secret()
        change = DeviceChange(
            id=op._id("c"),
            subscription_id=device.subscription_id,
            device_id=device.id,
            state=_state.move(_state.CHANGE_TRANSITIONS, Event.CREATE, None),
            old_eid=device.eid,
            old_iccid=device.iccid,
            old_imsi=device.imsi,
            new_eid=new_eid,
            new_iccid=new_iccid,
            new_imsi=new_imsi,
            replaced_device_id=None if replaced is None else replaced.id,
            replaced_iccid=None if replaced is None else replaced.iccid,
            created=now,
            expires=now + op.config.order_ttl,
        )
        try:
            store.put_change(ChangeRecord(change, name or device.name, cls, code, _hash(secret)))
        except BaseException:
            self._cancel_order(new_iccid, new_imsi)
            raise
        return DeviceChangeOrder(change, code, secret)

    def _again(
        self,
        record: ChangeRecord,
        device: Device,
        *,
        name: str | None,
        device_class: DeviceClass,
        now: datetime,
    ) -> DeviceChangeOrder:
        """The same change again (resumption): a new secret; a fresh order if it failed."""
        change = record.change
        code = record.activation_code
        secret = self._secret()
        reordered: tuple[str, str] | None = None
        if change.state is ChangeState.ORDERED:
            item = self._op.smdp.item(change.new_iccid)
            if item is None or item.state is ItemState.ERROR:
                sub = self._op.subscription(change.subscription_id)
                iccid, imsi, code = self._order(sub.profile_type, change.new_eid)
                reordered = (iccid, imsi)
                state = _state.move(_state.CHANGE_TRANSITIONS, Event.REORDER, change.state)
                change = attrs.evolve(
                    change,
                    state=state,
                    new_iccid=iccid,
                    new_imsi=imsi,
                    expires=now + self._op.config.order_ttl,
                )
        fresh = attrs.evolve(
            record,
            change=change,
            name=name or record.name,
            device_class=device_class,
            activation_code=code,
            secret_hash=_hash(secret),
        )
        try:
            self._op.store.put_change(fresh)
        except BaseException:
            if reordered is not None:
                self._cancel_order(*reordered)
            raise
        if reordered is not None and reordered[0] != record.change.new_iccid:
            self._cancel_order(record.change.new_iccid, record.change.new_imsi)
        return DeviceChangeOrder(change, code, secret)

    def _replaced(self, device: Device, new_eid: str) -> Device | None:
        """The linked device of the subscription the new eUICC holds (removed at the switch)."""
        replaced = None
        for other in self._op.store.devices(device.subscription_id):
            if other.eid != new_eid or not other.occupies_slot or other.id == device.id:
                continue
            if other.state is not DeviceState.ACTIVE:
                raise StateError("the new eUICC has an order of this subscription pending")
            if other.role is DeviceRole.PRIMARY:
                raise StateError("the new eUICC holds the subscription's primary")
            replaced = other
        return replaced

    def _secret(self) -> str:
        raw = self._op._rand(18)
        if len(raw) != 18:
            raise UsageError("the randomness source returned the wrong length")
        return base64.urlsafe_b64encode(raw).decode("ascii")

    def _order(self, profile_type: str, eid: str) -> tuple[str, str, str]:
        """ES2+ DownloadOrder + ConfirmOrder bound to ``eid``: ICCID, IMSI, activation code."""
        smdp = self._op.smdp
        requester = self._op.config.requester
        iccid = smdp.download_order(profile_type=profile_type, eid=eid, requester=requester)
        try:
            confirmed = smdp.confirm_order(
                iccid=iccid, eid=eid, release_flag=True, requester=requester
            )
            item = smdp.item(iccid)
            if item is None:  # pragma: no cover - just ordered
                raise StateError("the SM-DP+ lost the order")
            code = ActivationCode(
                address=confirmed.smdp_address, matching_id=confirmed.matching_id
            ).to_text()
        except BaseException:
            self._cancel_order(iccid, "")
            raise
        return iccid, item.imsi, code

    def _cancel_order(self, iccid: str, imsi: str) -> None:
        """Cancel an order (best effort); retired, not returned, if the AuC knows its IMSI."""
        known = bool(imsi) and self._subscriber(imsi) is not None
        self._op._cancel_order(iccid, final="Unavailable" if known else "Available")

    def _subscriber(self, imsi: str) -> Subscriber | None:
        try:
            return self._op.auc.subscriber(imsi)
        except NetworkRefusedError:
            return None

    # -- reading ----------------------------------------------------------------------

    def _record(self, change_id: str, secret: str) -> ChangeRecord:
        if not isinstance(change_id, str) or not isinstance(secret, str):
            raise UsageError("a change id and secret are text")
        record = self._op.store.change(change_id)
        if record is None:
            raise NotFoundError("no such device change")
        if not hmac.compare_digest(_hash(secret), record.secret_hash):
            raise AuthorizationError("wrong device change secret")
        return record

    def status(self, change_id: str, secret: str) -> DeviceChange:
        """:meth:`Operator.device_change_status
        <rspfed.federation.operator.Operator.device_change_status>`."""
        self._record(change_id, secret)
        self._op.sync()
        return self._record(change_id, secret).change

    def latest(self, caller: Caller) -> DeviceChange | None:
        """:meth:`Operator.device_change_for
        <rspfed.federation.operator.Operator.device_change_for>`."""
        self._op.sync()
        found = self._op.store.changes_of_device(caller.device_id)
        return found[0].change if found else None

    # -- cancel and complete ----------------------------------------------------------

    def cancel(self, caller: Caller, change_id: str) -> DeviceChange:
        """:meth:`Operator.cancel_device_change
        <rspfed.federation.operator.Operator.cancel_device_change>`."""
        self._op.sync()
        record = self._op.store.change(change_id)
        if record is None or record.change.subscription_id != caller.subscription_id:
            raise NotFoundError("no such device change")
        if record.change.device_id != caller.device_id and caller.role is not DeviceRole.PRIMARY:
            raise AuthorizationError("only the moving device or the primary may cancel")
        if record.change.state is ChangeState.CANCELLED:
            return record.change
        if not record.change.open:
            raise StateError("the device change has switched already: it cannot be cancelled")
        return self._cancel(record)

    def _cancel(self, record: ChangeRecord) -> DeviceChange:
        """Network first (pending IMSI removed), then the SM-DP+ order, then the record."""
        change = record.change
        auc = self._op.auc
        new = self._subscriber(change.new_imsi)
        if new is not None and new.state is SubscriberState.PENDING:
            auc.remove(change.new_imsi)
        self._cancel_order(change.new_iccid, change.new_imsi)
        state = _state.move(_state.CHANGE_TRANSITIONS, Event.CANCEL, change.state)
        cancelled = attrs.evolve(change, state=state)
        self._op.store.put_change(attrs.evolve(record, change=cancelled))
        return cancelled

    def complete(self, change_id: str, secret: str) -> DeviceChange:
        """:meth:`Operator.complete_device_change
        <rspfed.federation.operator.Operator.complete_device_change>`."""
        self._record(change_id, secret)
        self._op.sync()
        record = self._record(change_id, secret)
        if record.change.state is ChangeState.COMPLETED:
            return record.change
        if record.change.state is not ChangeState.SWITCHED:
            raise StateError(f"the device change is {record.change.state.value}, not switched")
        return self._complete(record)

    def _complete(self, record: ChangeRecord) -> DeviceChange:
        state = _state.move(_state.CHANGE_TRANSITIONS, Event.COMPLETE, record.change.state)
        done = attrs.evolve(record.change, state=state)
        self._op.store.put_change(attrs.evolve(record, change=done))
        return done

    # -- reconciliation -----------------------------------------------------------------

    def open_iccids(self) -> set[str]:
        """The new ICCIDs of open changes (orders the operator knows)."""
        return {
            r.change.new_iccid
            for r in self._op.store.changes_in_state(ChangeState.ORDERED, ChangeState.INSTALLED)
        }

    def sync(self, now: datetime) -> None:
        """Drive every open change (and switched ones to completed); idempotent."""
        for record in self._op.store.changes_in_state(
            ChangeState.ORDERED, ChangeState.INSTALLED, ChangeState.SWITCHED
        ):
            # one change that cannot move now never blocks the others (or the caller)
            with contextlib.suppress(NotFoundError, StateError, PolicyError):
                self._sync_one(record, now)

    def _notes(self, iccid: str, event: str, eid: str | None) -> list[datetime]:
        return [
            n.received
            for n in self._op.smdp.notifications(iccid)
            if n.event == event and n.iccid == iccid and (eid is None or n.eid == eid)
        ]

    def _installed(self, change: DeviceChange, item: InventoryItem) -> bool:
        return item.state is ItemState.INSTALLED or bool(
            self._notes(change.new_iccid, "install", change.new_eid)
        )

    def _sync_one(self, record: ChangeRecord, now: datetime) -> None:
        change = record.change
        if change.state is ChangeState.SWITCHED:
            if self._notes(change.old_iccid, "delete", change.old_eid):
                self._complete(record)
            return
        # repair from the AuC first: the network is the truth for the flip
        new = self._subscriber(change.new_imsi)
        if new is not None and new.state in (SubscriberState.ACTIVE, SubscriberState.BARRED):
            self._record_switch(record, now)
            return
        if new is not None and new.state is SubscriberState.REMOVED:
            self._cancel(record)
            return
        if change.state is ChangeState.ORDERED:
            item = self._op.smdp.item(change.new_iccid)
            if item is not None and self._installed(change, item):
                record = self._provision(record, item)
                change = record.change
            elif now >= change.expires or (item is not None and item.state in _CANCELLED_ORDER):
                self._cancel(record)
                return
        if change.state is ChangeState.INSTALLED:
            enabled = self._notes(change.new_iccid, "enable", change.new_eid)
            if any(when < change.expires for when in enabled):
                self._switch(record, now)
            elif now >= change.expires:
                self._cancel(record)

    def _provision(self, record: ChangeRecord, item: InventoryItem) -> ChangeRecord:
        """The new IMSI PENDING in the AuC (network first), then INSTALLED."""
        change = record.change
        op = self._op
        device = op.store.device(change.device_id)
        if device is None:
            raise NotFoundError("the device of the change is gone")
        sub = op.subscription(change.subscription_id)
        policy = ServicePolicy(record.device_class, sub.plan.services & device.services)
        if self._subscriber(change.new_imsi) is None:
            op.auc.provision(
                Subscriber(
                    imsi=change.new_imsi,
                    k=item.k,
                    opc=item.opc,
                    policy=policy,
                    state=SubscriberState.PENDING,
                )
            )
        state = _state.move(_state.CHANGE_TRANSITIONS, Event.INSTALLED, change.state)
        installed = attrs.evolve(record, change=attrs.evolve(change, state=state))
        op.store.put_change(installed)
        return installed

    def _switch(self, record: ChangeRecord, now: datetime) -> None:
        """The network's one transaction, then the operator's record."""
        change = record.change
        also: tuple[str, ...] = ()
        replaced = self._replaced_now(change)
        if replaced is not None:
            also = (replaced.imsi,)
        self._op.auc.switch(change.old_imsi, change.new_imsi, also_remove=also)
        self._record_switch(record, now)

    def _replaced_now(self, change: DeviceChange) -> Device | None:
        if change.replaced_device_id is None:
            return None
        replaced = self._op.store.device(change.replaced_device_id)
        if replaced is None or replaced.state is DeviceState.REMOVED:
            return None
        return replaced

    def _record_switch(self, record: ChangeRecord, now: datetime) -> None:
        """The operator store brought in line with a switch the network made (one transaction)."""
        op = self._op
        store = op.store
        change = record.change
        device = store.device(change.device_id)
        if device is None:
            raise NotFoundError("the device of the change is gone")
        replaced = self._replaced_now(change)
        state = _state.move(_state.CHANGE_TRANSITIONS, Event.SWITCH, change.state)
        switched = attrs.evolve(change, state=state, switched=now)
        with store.transaction():
            store.retire_keys(device.id)
            store.put_device(
                attrs.evolve(
                    device,
                    eid=change.new_eid,
                    iccid=change.new_iccid,
                    imsi=change.new_imsi,
                    name=record.name,
                    device_class=record.device_class,
                    device_key=None,
                    device_key_id=None,
                    activation_code=record.activation_code,
                )
            )
            if device.role is DeviceRole.PRIMARY:
                sub = op.subscription(device.subscription_id)
                store.put_subscription(attrs.evolve(sub, primary_key=None, primary_key_id=None))
            if replaced is not None:
                gone = _state.move(_state.DEVICE_TRANSITIONS, Event.REMOVE, replaced.state)
                store.retire_keys(replaced.id)
                store.put_device(attrs.evolve(replaced, state=gone, order_expires=None))
            store.put_change(attrs.evolve(record, change=switched))


# -- JSON (the HTTP routes and the client) ----------------------------------------------


def _time(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def device_change_to_json(change: DeviceChange) -> dict[str, Any]:
    """A :class:`DeviceChange` as the routes' JSON object (ISO 8601 times)."""
    return {
        "id": change.id,
        "subscription-id": change.subscription_id,
        "device-id": change.device_id,
        "state": change.state.value,
        "old-eid": change.old_eid,
        "old-iccid": change.old_iccid,
        "old-imsi": change.old_imsi,
        "new-eid": change.new_eid,
        "new-iccid": change.new_iccid,
        "new-imsi": change.new_imsi,
        "replaced-device-id": change.replaced_device_id,
        "replaced-iccid": change.replaced_iccid,
        "created": _time(change.created),
        "expires": _time(change.expires),
        "switched": _time(change.switched),
    }


def _text(obj: dict[str, Any], name: str, *, optional: bool = False) -> Any:
    value = obj.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise DecodeError(f"{name!r} must be a non-empty string", type_name="DeviceChange")
    return value


def _parse_time(obj: dict[str, Any], name: str, *, optional: bool = False) -> datetime | None:
    text = _text(obj, name, optional=optional)
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise DecodeError(f"{name!r} is not an ISO 8601 time", type_name="DeviceChange") from None
    if when.tzinfo is None:
        raise DecodeError(f"{name!r} has no time zone", type_name="DeviceChange")
    return when


def device_change_from_json(obj: Any) -> DeviceChange:
    """The inverse of :func:`device_change_to_json`; :class:`DecodeError` if malformed."""
    if not isinstance(obj, dict):
        raise DecodeError("a device change is a JSON object", type_name="DeviceChange")
    try:
        state = ChangeState(obj.get("state"))
    except ValueError:
        raise DecodeError("unknown device change state", type_name="DeviceChange") from None
    created = _parse_time(obj, "created")
    expires = _parse_time(obj, "expires")
    if created is None or expires is None:  # pragma: no cover - not optional
        raise DecodeError("a device change needs its times", type_name="DeviceChange")
    return DeviceChange(
        id=_text(obj, "id"),
        subscription_id=_text(obj, "subscription-id"),
        device_id=_text(obj, "device-id"),
        state=state,
        old_eid=_text(obj, "old-eid", optional=True),
        old_iccid=_text(obj, "old-iccid"),
        old_imsi=_text(obj, "old-imsi"),
        new_eid=_text(obj, "new-eid"),
        new_iccid=_text(obj, "new-iccid"),
        new_imsi=_text(obj, "new-imsi"),
        replaced_device_id=_text(obj, "replaced-device-id", optional=True),
        replaced_iccid=_text(obj, "replaced-iccid", optional=True),
        created=created,
        expires=expires,
        switched=_parse_time(obj, "switched", optional=True),
    )


def device_change_order_to_json(order: DeviceChangeOrder) -> dict[str, Any]:
    """``{"change": DeviceChange, "activation-code", "secret"}``."""
    return {
        "change": device_change_to_json(order.change),
        "activation-code": order.activation_code,
        "secret": order.secret,
    }


def device_change_order_from_json(obj: Any) -> DeviceChangeOrder:
    """The inverse of :func:`device_change_order_to_json`."""
    if not isinstance(obj, dict):
        raise DecodeError("a device change order is a JSON object", type_name="DeviceChangeOrder")
    return DeviceChangeOrder(
        device_change_from_json(obj.get("change")),
        _text(obj, "activation-code"),
        _text(obj, "secret"),
    )
