"""Device change, operator side, end to end in process (operator core, SM-DP+
core, AuC and real software eUICCs): order -> download (disabled) -> enable
and its signed notification -> the switch -> the old profile's delete."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rspfed.federation.types import ChangeState, DeviceRole, DeviceState
from rspfed.network import NetworkRefusedError, RefusalReason, SubscriberState
from tests.federation.change_world import delete_and_notify, download_only, enable_and_notify
from tests.federation.test_operator import caller_for, primary_of
from tests.federation.world import OperatorWorld, make_operator_world
from tests.smdp.helpers import make_world


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_world(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def ow(tmp_path: Path, shared_world) -> Iterator[OperatorWorld]:  # type: ignore[no-untyped-def]
    w = make_operator_world(tmp_path, shared_world)
    yield w
    w.close()


def test_primary_moves_to_a_new_phone(ow: OperatorWorld) -> None:
    _sub_id, phone, caller = primary_of(ow)
    old_imsi = ow.operator.store.device(caller.device_id).imsi  # type: ignore[union-attr]
    new = ow.euicc()
    order = ow.operator.device_change(caller, new.eid)
    change = order.change
    assert change.state is ChangeState.ORDERED
    assert change.old_imsi == old_imsi
    assert change.new_eid == new.eid
    iccid = download_only(ow, new, order.activation_code)
    assert iccid == change.new_iccid
    ow.operator.sync()
    status = ow.operator.device_change_status(change.id, order.secret)
    assert status.state is ChangeState.INSTALLED
    assert ow.auc.subscriber(change.new_imsi).state is SubscriberState.PENDING
    # enabled but not notified: still pending, attach refused with a clear reason
    enable_and_notify(ow, new, iccid, notify=False)
    with pytest.raises(NetworkRefusedError) as info:
        ow.attach(new)
    assert info.value.reason is RefusalReason.PENDING
    ow.attach(phone)  # the old one still serves
    from tests.federation.change_world import deliver

    deliver(ow, new, "enable")
    status = ow.operator.device_change_status(change.id, order.secret)
    assert status.state is ChangeState.SWITCHED
    assert ow.auc.subscriber(change.new_imsi).state is SubscriberState.ACTIVE
    assert ow.auc.subscriber(old_imsi).state is SubscriberState.REMOVED
    device = ow.operator.store.device(caller.device_id)
    assert device is not None
    assert (device.eid, device.iccid, device.imsi) == (new.eid, iccid, change.new_imsi)
    assert device.role is DeviceRole.PRIMARY
    assert device.state is DeviceState.ACTIVE
    ow.attach(new)
    with pytest.raises(NetworkRefusedError):
        ow.attach(phone)
    registered = ow.register(new)
    assert registered.id == caller.device_id
    new_caller = caller_for(ow, new)
    assert new_caller.device_id == caller.device_id
    delete_and_notify(ow, phone, phone.iccid)  # type: ignore[arg-type]
    done = ow.operator.device_change_status(change.id, order.secret)
    assert done.state is ChangeState.COMPLETED
