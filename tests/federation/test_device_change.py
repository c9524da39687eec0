"""Device change, operator side, in process (operator core, SM-DP+ core, AuC and
real software eUICCs): order -> download (the profile stays disabled) ->
ES10c.EnableProfile and its signed notification -> the switch -> the old
profile's delete; the federation carried over; refusals; lapse and cancel."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from rspfed.errors import (
    AuthorizationError,
    DecodeError,
    NotFoundError,
    SignatureError,
    StateError,
    TokenRevokedError,
    TokenScopeError,
    UsageError,
)
from rspfed.federation import DeviceClass, Service
from rspfed.federation.store import MIGRATIONS, SCHEMA_VERSION, SqliteOperatorStore
from rspfed.federation.types import ChangeState, DeviceRole, DeviceState, Plan
from rspfed.network import NetworkRefusedError, RefusalReason, SubscriberState
from rspfed.smdp import ItemState
from tests.federation.change_world import (
    delete_and_notify,
    deliver,
    download_only,
    enable_and_notify,
    reject_download,
)
from tests.federation.test_operator import caller_for, primary_of
from tests.federation.world import GB, OperatorWorld, Phone, make_operator_world
from tests.smdp.helpers import World, make_world, state_of


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def ow(tmp_path: Path, shared_world: World) -> Iterator[OperatorWorld]:
    w = make_operator_world(tmp_path, shared_world)
    yield w
    w.close()


def linked(
    ow: OperatorWorld, phone: Phone, sub_id: str, device_class: DeviceClass, name: str
) -> Phone:
    """A linked device: token, redemption, download, registration."""
    device = ow.euicc()
    services = frozenset({Service.DATA, Service.VOICE})
    if device_class is DeviceClass.LAPTOP:
        services = frozenset({Service.DATA})
    token = ow.token(phone, sub_id, device.eid, device_class, services)
    ow.download(device, ow.operator.redeem(token, device.eid, name=name).activation_code)
    ow.operator.sync()
    ow.register(device)
    return device


def refused(ow: OperatorWorld, device: Phone) -> RefusalReason:
    with pytest.raises(NetworkRefusedError) as info:
        ow.attach(device)
    return info.value.reason


def test_primary_moves_to_a_new_phone(ow: OperatorWorld) -> None:
    sub_id, phone, caller = primary_of(ow)
    laptop = linked(ow, phone, sub_id, DeviceClass.LAPTOP, "laptop")
    stale_eid = ow.euicc().eid
    stale_token = ow.token(phone, sub_id, stale_eid, DeviceClass.TABLET)
    before = ow.operator.store.device(caller.device_id)
    assert before is not None
    slots = ow.operator.store.slots_used(sub_id)
    new = ow.euicc()

    order = ow.operator.device_change(caller, new.eid, name="new phone")
    change = order.change
    assert change.state is ChangeState.ORDERED
    assert (change.old_imsi, change.old_iccid, change.old_eid) == (
        before.imsi,
        before.iccid,
        phone.eid,
    )
    assert change.new_eid == new.eid
    assert change.new_imsi != before.imsi
    assert change.replaced_device_id is None
    assert change.expires == change.created + ow.operator.config.order_ttl
    assert "secret" not in repr(order)
    assert order.secret not in repr(order)
    item = ow.smdp.item(change.new_iccid)
    assert item is not None
    assert item.eid == new.eid  # the order is bound to the new eUICC
    assert ow.operator.device_change_for(caller) == change

    iccid = download_only(ow, new, order.activation_code)
    assert iccid == change.new_iccid
    status = ow.operator.device_change_status(change.id, order.secret)
    assert status.state is ChangeState.INSTALLED
    assert ow.auc.subscriber(change.new_imsi).state is SubscriberState.PENDING
    ow.attach(phone)  # the old profile serves

    # enabled but the notification not sent yet: pending, refused with its reason
    enable_and_notify(ow, new, iccid, notify=False)
    assert refused(ow, new) is RefusalReason.PENDING
    assert ow.operator.device_change_status(change.id, order.secret).state is (
        ChangeState.INSTALLED
    )
    deliver(ow, new, "enable")
    status = ow.operator.device_change_status(change.id, order.secret)
    assert status.state is ChangeState.SWITCHED
    assert status.switched == ow.clock()
    assert ow.auc.subscriber(change.new_imsi).state is SubscriberState.ACTIVE
    assert ow.auc.subscriber(change.old_imsi).state is SubscriberState.REMOVED
    device = ow.operator.store.device(caller.device_id)
    assert device is not None
    assert (device.eid, device.iccid, device.imsi) == (new.eid, iccid, change.new_imsi)
    assert (device.role, device.state, device.device_class) == (
        DeviceRole.PRIMARY,
        DeviceState.ACTIVE,
        DeviceClass.PHONE,
    )
    assert device.name == "new phone"
    assert device.device_key is None  # the old key is retired; the new one registers
    assert ow.operator.store.slots_used(sub_id) == slots
    assert ow.attach(new) >= {Service.DATA, Service.VOICE}
    assert refused(ow, phone) is RefusalReason.REMOVED
    with pytest.raises(TokenRevokedError):  # the old primary key's tokens die with it
        ow.operator.redeem(stale_token, stale_eid)
    with pytest.raises(SignatureError):
        caller_for(ow, phone)  # the old key no longer signs

    # the linked laptop keeps working: its IMSI attaches, its key signs
    assert ow.attach(laptop) == frozenset({Service.DATA})
    assert caller_for(ow, laptop).role is DeviceRole.SECONDARY

    # the new phone registers its key with the new USIM: the federation key
    registered = ow.register(new)
    assert registered.id == caller.device_id
    assert ow.operator.subscription(sub_id).primary_key == new.point
    new_caller = caller_for(ow, new)
    assert new_caller.device_id == caller.device_id
    assert new_caller.role is DeviceRole.PRIMARY
    watch = ow.euicc()
    token = ow.token(new, sub_id, watch.eid, DeviceClass.WATCH)
    assert ow.operator.redeem(token, watch.eid).device_id  # tokens it signs are redeemable

    # the old eUICC deletes its profile and notifies: completed
    with pytest.raises(AuthorizationError):
        ow.operator.complete_device_change(change.id, "wrong")
    delete_and_notify(ow, phone, before.iccid)
    assert ow.operator.device_change_status(change.id, order.secret).state is (
        ChangeState.COMPLETED
    )
    assert ow.operator.complete_device_change(change.id, order.secret).state is (
        ChangeState.COMPLETED
    )
    with pytest.raises(StateError):
        ow.operator.cancel_device_change(new_caller, change.id)


def test_secondary_moves_to_a_new_tablet(ow: OperatorWorld) -> None:
    sub_id, phone, primary = primary_of(ow)
    tablet = linked(ow, phone, sub_id, DeviceClass.TABLET, "tablet")
    caller = caller_for(ow, tablet)
    old = ow.operator.store.device(caller.device_id)
    assert old is not None
    watch = ow.euicc()
    token = ow.token(phone, sub_id, watch.eid, DeviceClass.WATCH)
    new = ow.euicc()
    order = ow.operator.device_change(caller, new.eid)
    iccid = download_only(ow, new, order.activation_code)
    enable_and_notify(ow, new, iccid)
    ow.operator.sync()
    change = ow.operator.device_change_status(order.change.id, order.secret)
    assert change.state is ChangeState.SWITCHED
    device = ow.operator.store.device(caller.device_id)
    assert device is not None
    assert (device.role, device.device_class, device.name, device.services, device.quota_bytes) == (
        old.role,
        old.device_class,
        old.name,
        old.services,
        old.quota_bytes,
    )
    assert device.iccid == iccid
    assert ow.attach(new, Service.VOICE) >= {Service.VOICE}
    assert refused(ow, tablet) is RefusalReason.REMOVED
    with pytest.raises(SignatureError):
        caller_for(ow, tablet)
    # no primary key involved: the primary still signs and its tokens still redeem
    assert caller_for(ow, phone).device_id == primary.device_id
    assert ow.operator.subscription(sub_id).primary_key == phone.point
    assert ow.operator.store.slots_used(sub_id) == 2
    assert ow.operator.redeem(token, watch.eid).device_id
    registered = ow.register(new)
    assert registered.role is DeviceRole.SECONDARY
    assert caller_for(ow, new).device_id == caller.device_id
    assert ow.operator.complete_device_change(order.change.id, order.secret).state is (
        ChangeState.COMPLETED
    )


def test_a_change_onto_a_linked_device_replaces_it(ow: OperatorWorld) -> None:
    sub_id, phone, caller = primary_of(ow)
    laptop = linked(ow, phone, sub_id, DeviceClass.LAPTOP, "laptop")
    laptop_caller = caller_for(ow, laptop)
    laptop_record = ow.operator.store.device(laptop_caller.device_id)
    assert laptop_record is not None
    assert ow.operator.store.slots_used(sub_id) == 2
    order = ow.operator.device_change(caller, laptop.eid)
    assert order.change.replaced_device_id == laptop_record.id
    assert order.change.replaced_iccid == laptop_record.iccid
    iccid = download_only(ow, laptop, order.activation_code)
    ow.operator.sync()
    assert ow.attach(laptop) == frozenset({Service.DATA})  # still the linked profile
    enable_and_notify(ow, laptop, iccid)
    ow.operator.sync()
    assert ow.operator.device_change_status(order.change.id, order.secret).state is (
        ChangeState.SWITCHED
    )
    gone = ow.operator.store.device(laptop_record.id)
    assert gone is not None
    assert gone.state is DeviceState.REMOVED
    assert ow.auc.subscriber(laptop_record.imsi).state is SubscriberState.REMOVED
    assert ow.operator.store.slots_used(sub_id) == 1  # the laptop's slot is free
    with pytest.raises(SignatureError):
        caller_for(ow, laptop)  # the replaced device's key is retired
    assert ow.attach(laptop) >= {Service.VOICE}  # the eUICC now serves as the primary
    delete_and_notify(ow, laptop, laptop_record.iccid)  # the new device drops the linked one
    ow.register(laptop)
    assert ow.operator.subscription(sub_id).primary_key == laptop.point


def test_re_request_and_refusals(ow: OperatorWorld) -> None:
    plan = Plan(
        pool_bytes=20 * GB,
        device_limit=4,
        device_classes=frozenset({DeviceClass.PHONE, DeviceClass.LAPTOP}),
    )
    sub_id, phone, caller = primary_of(ow, plan)
    laptop = linked(ow, phone, sub_id, DeviceClass.LAPTOP, "laptop")
    laptop_caller = caller_for(ow, laptop)
    new, other = ow.euicc(), ow.euicc()
    with pytest.raises(UsageError):
        ow.operator.device_change(caller, phone.eid)
    with pytest.raises(DecodeError):
        ow.operator.device_change(caller, "1234")
    with pytest.raises(TokenScopeError):
        ow.operator.device_change(laptop_caller, new.eid, device_class=DeviceClass.TABLET)
    with pytest.raises(TokenScopeError):
        ow.operator.device_change(caller, new.eid, device_class=DeviceClass.LAPTOP)
    with pytest.raises(UsageError):
        ow.operator.device_change(caller, new.eid, name="")

    first = ow.operator.device_change(caller, new.eid)
    again = ow.operator.device_change(caller, new.eid)
    assert again.change == first.change
    assert again.activation_code == first.activation_code
    assert again.secret != first.secret
    with pytest.raises(AuthorizationError):
        ow.operator.device_change_status(first.change.id, first.secret)
    assert ow.operator.device_change_status(first.change.id, again.secret) == first.change
    with pytest.raises(NotFoundError):
        ow.operator.device_change_status("cnothing", again.secret)
    with pytest.raises(StateError):
        ow.operator.device_change(caller, other.eid)
    with pytest.raises(StateError):  # another device may not move onto the same eUICC
        ow.operator.device_change(laptop_caller, new.eid)
    with pytest.raises(StateError):  # nor may a token bring a linked profile onto it
        ow.operator.redeem(ow.token(phone, sub_id, new.eid, DeviceClass.LAPTOP), new.eid)
    with pytest.raises(StateError):
        ow.operator.complete_device_change(first.change.id, again.secret)

    # the order failed for good (the user rejected the download): asking again orders afresh
    reject_download(ow, new, again.activation_code)
    assert state_of(ow.smdp, first.change.new_iccid) is ItemState.ERROR
    ow.operator.sync()
    assert ow.operator.device_change_status(first.change.id, again.secret).state is (
        ChangeState.ORDERED
    )
    fresh = ow.operator.device_change(caller, new.eid)
    assert fresh.change.id == first.change.id
    item = ow.smdp.item(fresh.change.new_iccid)
    assert item is not None
    assert item.state is ItemState.RELEASED  # a live order again (maybe the same ICCID)
    assert fresh.activation_code != first.activation_code
    iccid = download_only(ow, new, fresh.activation_code)
    enable_and_notify(ow, new, iccid)
    ow.operator.sync()
    assert ow.operator.device_change_status(fresh.change.id, fresh.secret).state is (
        ChangeState.SWITCHED
    )

    # a removed device cannot move; a device with an open change cannot be removed
    new_caller_device = ow.register(new)
    primary2 = caller_for(ow, new)
    assert primary2.device_id == new_caller_device.id
    tablet_eid = ow.euicc().eid
    moving = ow.operator.device_change(laptop_caller, tablet_eid)
    with pytest.raises(StateError):
        ow.operator.remove(primary2, laptop_caller.device_id)
    ow.operator.cancel_device_change(primary2, moving.change.id)  # the primary may cancel
    ow.operator.remove(primary2, laptop_caller.device_id)
    with pytest.raises(StateError):
        ow.operator.device_change(laptop_caller, tablet_eid)


def test_lapse_cancels_an_ordered_change(ow: OperatorWorld) -> None:
    _sub_id, phone, caller = primary_of(ow)
    new = ow.euicc()
    order = ow.operator.device_change(caller, new.eid)
    ow.clock.advance(ow.operator.config.order_ttl)
    ow.operator.sync()
    change = ow.operator.device_change_status(order.change.id, order.secret)
    assert change.state is ChangeState.CANCELLED
    assert state_of(ow.smdp, change.new_iccid) is ItemState.AVAILABLE
    assert ow.attach(phone)
    # a new change may be asked for now
    again = ow.operator.device_change(caller, new.eid)
    assert again.change.id != change.id


def test_lapse_cancels_an_installed_change(ow: OperatorWorld) -> None:
    _sub_id, phone, caller = primary_of(ow)
    new = ow.euicc()
    order = ow.operator.device_change(caller, new.eid)
    iccid = download_only(ow, new, order.activation_code)
    ow.operator.sync()
    assert ow.auc.subscriber(order.change.new_imsi).state is SubscriberState.PENDING
    ow.clock.advance(ow.operator.config.order_ttl + timedelta(seconds=1))
    enable_and_notify(ow, new, iccid)  # too late: received after the change expired
    ow.operator.sync()
    change = ow.operator.device_change_status(order.change.id, order.secret)
    assert change.state is ChangeState.CANCELLED
    assert ow.auc.subscriber(change.new_imsi).state is SubscriberState.REMOVED
    assert refused(ow, new) is RefusalReason.REMOVED
    assert ow.attach(phone)


def test_an_enable_received_in_time_switches_even_if_synced_late(ow: OperatorWorld) -> None:
    _sub_id, _phone, caller = primary_of(ow)
    new = ow.euicc()
    order = ow.operator.device_change(caller, new.eid)
    iccid = download_only(ow, new, order.activation_code)
    enable_and_notify(ow, new, iccid)
    ow.clock.advance(ow.operator.config.order_ttl * 2)
    ow.operator.sync()
    assert ow.operator.device_change_status(order.change.id, order.secret).state is (
        ChangeState.SWITCHED
    )


def test_cancel_before_and_after_the_switch(ow: OperatorWorld) -> None:
    sub_id, phone, caller = primary_of(ow)
    laptop = linked(ow, phone, sub_id, DeviceClass.LAPTOP, "laptop")
    new = ow.euicc()
    order = ow.operator.device_change(caller, new.eid)
    iccid = download_only(ow, new, order.activation_code)
    ow.operator.sync()
    with pytest.raises(AuthorizationError):  # another secondary may not cancel
        ow.operator.cancel_device_change(caller_for(ow, laptop), order.change.id)
    cancelled = ow.operator.cancel_device_change(caller, order.change.id)
    assert cancelled.state is ChangeState.CANCELLED
    assert ow.operator.cancel_device_change(caller, order.change.id) == cancelled
    assert ow.auc.subscriber(cancelled.new_imsi).state is SubscriberState.REMOVED
    enable_and_notify(ow, new, iccid)  # enabling afterwards switches nothing
    ow.operator.sync()
    assert ow.operator.device_change_status(order.change.id, order.secret).state is (
        ChangeState.CANCELLED
    )
    assert ow.attach(phone)
    with pytest.raises(StateError):
        ow.operator.complete_device_change(order.change.id, order.secret)

    other = ow.euicc()
    second = ow.operator.device_change(caller, other.eid)
    enable_and_notify(ow, other, download_only(ow, other, second.activation_code))
    ow.operator.sync()
    with pytest.raises(StateError):  # switched: nothing can be cancelled
        ow.operator.cancel_device_change(caller, second.change.id)
    # the old device acknowledges its deletion with the secret (no notification)
    done = ow.operator.complete_device_change(second.change.id, second.secret)
    assert done.state is ChangeState.COMPLETED


def test_a_v3_operator_store_migrates_to_v4(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    for version in range(1, 4):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
    db.execute(
        "INSERT INTO subscription VALUES (?, ?, ?, ?, NULL, NULL, NULL)",
        (
            "s1",
            "ts48",
            '{"classes": ["phone"], "devices": 2, "period": 86400, "pool": 1000,'
            ' "services": ["data"]}',
            "2026-01-01T00:00:00+00:00",
        ),
    )
    db.execute("PRAGMA user_version = 3")
    db.close()
    store = SqliteOperatorStore(path)
    try:
        assert SCHEMA_VERSION == 4
        assert store.schema_version == 4
        assert store.subscription("s1") is not None
        assert store.changes_in_state(*ChangeState) == []
        assert store.change("c1") is None
    finally:
        store.close()
