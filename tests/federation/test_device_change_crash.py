"""Crash injection at EVERY write of both operator-side stores during a device change.

The operator's store and the network's subscriber store each call a fault
hook before every write statement and every commit; :class:`Faults` counts
those instants over a whole device-change flow and, run after run, crashes
at each one in turn.  After a crash the operator "restarts": both stores are
reopened from disk, a new :class:`Operator` is built and ``sync()``\\ s, the
step that crashed is retried and the flow goes on.  Checked throughout:

* at every write instant (before each write of either store) the committed
  network state serves EXACTLY ONE of the old and the new IMSI;
* right after the crash, after the restart's sync and after every step, the
  same; after the switch only the new one, after a cancel only the old one;
* the flow ends where it should (completed with the new device registered
  and attaching, or cancelled with the old one attaching).

Flows: the primary to a fresh phone; the primary onto the laptop's eUICC
(the linked laptop is replaced in the switch's transaction); a secondary
(tablet to a new tablet); a cancel; a lapse by the clock.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from rspfed.errors import SignatureError
from rspfed.federation.types import ChangeState, DeviceRole, DeviceState
from rspfed.network import Auc, SqliteSubscriberStore, SubscriberState
from tests.federation.change_world import (
    Base,
    Crash,
    DiskWorld,
    Faults,
    build_base,
    delete_and_notify,
    download_only,
    enable_and_notify,
    open_copy,
    served,
)

Step = Callable[["Run"], None]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    return build_base(tmp_path_factory.mktemp("change-crash"))


@attrs.define
class Run:
    """One run of a flow from the base snapshot, with at most one injected crash."""

    dw: DiskWorld
    reader: Auc
    mover: str
    target: str
    ctx: dict[str, Any] = attrs.Factory(dict)
    crashes: int = 0

    def imsis(self) -> tuple[str, str] | None:
        change = self.ctx.get("change")
        if change is None:
            return None
        return change.old_imsi, change.new_imsi

    def check_network(self) -> None:
        """Exactly one of the two IMSIs is served (the committed state)."""
        pair = self.imsis()
        if pair is None:
            return
        found = served(self.reader, pair)
        assert len(found) == 1, (pair, found)
        record = self.dw.store.change(self.ctx["change"].id) if self.ctx.get("settled") else None
        if record is not None and record.change.state in (
            ChangeState.SWITCHED,
            ChangeState.COMPLETED,
        ):
            assert found == [pair[1]]
        if record is not None and record.change.state is ChangeState.CANCELLED:
            assert found == [pair[0]]

    def check_consistent(self) -> None:
        """After a sync: the operator's record agrees with the network."""
        self.ctx["settled"] = True
        self.check_network()
        pair = self.imsis()
        if pair is None:
            return
        record = self.dw.store.change(self.ctx["change"].id)
        if record is None:
            return
        device = self.dw.store.device(record.change.device_id)
        assert device is not None
        [imsi] = served(self.reader, pair)
        if record.change.state in (ChangeState.SWITCHED, ChangeState.COMPLETED):
            assert device.imsi == imsi == pair[1]
            assert device.eid == record.change.new_eid
        else:
            assert device.imsi == imsi == pair[0]


def _open_run(base: Base, tmp: Path, mover: str, target: str, crash_at: int | None) -> Run:
    faults = Faults(crash_at=crash_at)
    dw = open_copy(base, tmp, faults)
    reader = Auc(SqliteSubscriberStore(tmp / "network.sqlite"), rand=os.urandom)
    run = Run(dw, reader, mover, target)
    faults.check = run.check_network
    return run


# -- steps ---------------------------------------------------------------------------


def request(run: Run) -> None:
    order = run.dw.operator.device_change(run.dw.caller(run.mover), run.dw.phone(run.target).eid)
    run.ctx.update(change=order.change, secret=order.secret, code=order.activation_code)


def download(run: Run) -> None:
    run.ctx["new_iccid"] = download_only(run.dw, run.dw.phone(run.target), run.ctx["code"])


def sync(run: Run) -> None:
    run.dw.operator.sync()


def enable(run: Run) -> None:
    enable_and_notify(run.dw, run.dw.phone(run.target), run.ctx["new_iccid"])


def register_new(run: Run) -> None:
    phone = run.dw.phone(run.target)
    device = run.dw.view().register(phone)
    assert phone.key is not None
    run.dw.keys[run.target] = phone.key
    assert device.id == run.ctx["change"].device_id


def attach_new(run: Run) -> None:
    run.dw.view().attach(run.dw.phone(run.target))


def delete_old(run: Run) -> None:
    change = run.ctx["change"]
    delete_and_notify(run.dw, run.dw.phone(run.mover), change.old_iccid)


def delete_replaced(run: Run) -> None:
    replaced = run.ctx["change"].replaced_iccid
    assert replaced is not None
    delete_and_notify(run.dw, run.dw.phone(run.target), replaced)


def cancel(run: Run) -> None:
    run.dw.operator.cancel_device_change(run.dw.caller(run.mover), run.ctx["change"].id)


def lapse(run: Run) -> None:
    run.dw.clock.advance(run.dw.operator.config.order_ttl + timedelta(seconds=1))


def attach_old(run: Run) -> None:
    run.dw.view().attach(run.dw.phone(run.mover))


SWITCH_FLOW: list[Step] = [
    request,
    download,
    sync,
    enable,
    sync,
    register_new,
    attach_new,
    delete_old,
    sync,
]
REPLACE_FLOW: list[Step] = [
    request,
    download,
    sync,
    enable,
    sync,
    delete_replaced,
    register_new,
    attach_new,
    delete_old,
    sync,
]
CANCEL_FLOW: list[Step] = [request, download, sync, cancel, attach_old]
LAPSE_FLOW: list[Step] = [request, download, sync, lapse, sync, attach_old]


def _play(run: Run, flow: list[Step]) -> None:
    for step in flow:
        try:
            step(run)
        except Crash:
            run.crashes += 1
            run.dw.reopen_operator()  # the operator restarts from its files
            run.check_network()
            run.dw.operator.sync()
            run.check_consistent()
            step(run)  # the step is retried
        run.check_consistent()


def _final(run: Run, outcome: ChangeState) -> None:
    record = run.dw.store.change(run.ctx["change"].id)
    assert record is not None
    change = record.change
    assert change.state is outcome
    old, new = change.old_imsi, change.new_imsi
    device = run.dw.store.device(change.device_id)
    assert device is not None
    if outcome is ChangeState.COMPLETED:
        assert served(run.reader, (old, new)) == [new]
        assert run.reader.subscriber(old).state is SubscriberState.REMOVED
        assert device.eid == change.new_eid
        assert device.device_key is not None  # the new device registered its key
        with pytest.raises(SignatureError):
            run.dw.caller(run.mover)  # the old key is retired
        if change.replaced_device_id is not None:
            replaced = run.dw.store.device(change.replaced_device_id)
            assert replaced is not None
            assert replaced.state is DeviceState.REMOVED
            assert run.reader.subscriber(replaced.imsi).state is SubscriberState.REMOVED
        if device.role is DeviceRole.SECONDARY:
            run.dw.caller("phone")  # the primary's key is untouched
    else:
        assert served(run.reader, (old, new)) == [old]
        assert device.eid == change.old_eid


FLOWS = {
    "primary": ("phone", "newphone", SWITCH_FLOW, ChangeState.COMPLETED),
    "replace-linked": ("phone", "laptop", REPLACE_FLOW, ChangeState.COMPLETED),
    "secondary": ("tablet", "newtablet", SWITCH_FLOW, ChangeState.COMPLETED),
    "cancel": ("phone", "newphone", CANCEL_FLOW, ChangeState.CANCELLED),
    "lapse": ("phone", "newphone", LAPSE_FLOW, ChangeState.CANCELLED),
}


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_crash_at_every_write(base: Base, tmp_path: Path, flow: str) -> None:
    mover, target, steps, outcome = FLOWS[flow]
    dry = _open_run(base, tmp_path / "dry", mover, target, None)
    dry.dw.faults.armed = True
    _play(dry, steps)
    dry.dw.faults.armed = False
    _final(dry, outcome)
    points = dry.dw.faults.count
    labels = list(dry.dw.faults.labels)
    dry.dw.close()
    assert points > 0
    assert any(label.startswith("network:") for label in labels)
    assert any(label.startswith("operator:") for label in labels)
    for n in range(1, points + 1):
        run = _open_run(base, tmp_path / f"crash{n}", mover, target, n)
        run.dw.faults.armed = True
        _play(run, steps)
        assert run.crashes == 1, (n, labels[n - 1])
        run.dw.faults.armed = False
        _final(run, outcome)
        run.dw.close()
    print(f"{flow}: {points} injection points")
