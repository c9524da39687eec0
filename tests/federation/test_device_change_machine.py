"""A hypothesis state machine over the operator core's device change.

Steps, in any order: request (again: the same change, a new secret),
download on the new eUICC, enable + its notification, sync, cancel by the
old device, lapse by the clock, and a crash of either store (the operator
store or the network's subscriber store) at one of its next writes, after
which the operator restarts from disk and syncs.  Invariants after every
step: for the latest change, exactly one of its two IMSIs is served while it
is open; after a cancel only the old one, after the switch only the new one;
a cancelled change's new IMSI is never served.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from rspfed.errors import RspfedError, StateError
from rspfed.federation.types import Caller, ChangeState
from rspfed.network import Auc, SqliteSubscriberStore
from tests.federation.change_world import (
    Base,
    Crash,
    DiskWorld,
    Faults,
    build_base,
    download_only,
    enable_and_notify,
    open_copy,
    served,
)

_BASE: list[Base] = []


def _base() -> Base:
    if not _BASE:
        _BASE.append(build_base(Path(tempfile.mkdtemp(prefix="change-machine-"))))
    return _BASE[0]


class TargetedFaults(Faults):
    """Crash at the ``k``-th next write of one store."""

    store: str = ""
    left: int = 0

    def hook(self, store: str) -> Callable[[str], None]:
        def fault(label: str) -> None:
            if self.left and store == self.store:
                self.left -= 1
                if not self.left:
                    raise Crash(f"{store}:{label}")

        return fault


class ChangeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        base = _base()
        self.tmp = Path(tempfile.mkdtemp(prefix="run-"))
        self.faults = TargetedFaults()
        self.dw: DiskWorld = open_copy(base, self.tmp / "w", self.faults)
        self.reader_store = SqliteSubscriberStore(self.tmp / "w" / "network.sqlite")
        self.reader = Auc(self.reader_store, os.urandom)
        self.caller: Caller = self.dw.caller("phone")
        self.new_eid = self.dw.phone("newphone").eid
        self.change_id: str | None = None
        self.code = ""
        self.downloaded: dict[str, str] = {}  # change id -> ICCID on the new eUICC
        self.enabled: set[str] = set()
        self.crashes = 0

    def teardown(self) -> None:
        self.dw.close()
        with contextlib.suppress(Exception):
            self.reader_store.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _do(self, action: Any) -> Any:
        try:
            return action()
        except Crash:
            self.crashes += 1
            self.faults.left = 0
            self.dw.reopen_operator()
            self.check_network()
            self.dw.operator.sync()
            return None

    def _state(self) -> ChangeState | None:
        if self.change_id is None:
            return None
        record = self.dw.store.change(self.change_id)
        return None if record is None else record.change.state

    # -- steps ---------------------------------------------------------------------

    @initialize(store=st.sampled_from(["operator", "network"]), k=st.integers(0, 6))
    def first_request(self, store: str, k: int) -> None:
        """The old device asks (maybe crashing at one of the writes this causes)."""
        self.crash_soon(store, k)
        self.request()

    @precondition(lambda self: self._state() not in (ChangeState.SWITCHED, ChangeState.COMPLETED))
    @rule()
    def request(self) -> None:
        try:
            order = self._do(lambda: self.dw.operator.device_change(self.caller, self.new_eid))
        except StateError:  # its sync found the enable notification: switched meanwhile
            assert self._state() in (ChangeState.SWITCHED, ChangeState.COMPLETED)
            return
        if order is not None:
            if order.change.id == self.change_id:
                assert order.activation_code == self.code or (self.change_id not in self.downloaded)
            self.change_id = order.change.id
            self.code = order.activation_code

    @precondition(lambda self: self.change_id is not None)
    @rule()
    def download(self) -> None:
        if self.change_id in self.downloaded:
            return
        try:
            iccid = download_only(self.dw, self.dw.phone("newphone"), self.code)
        except RspfedError:
            # only an order that is no longer live refuses the download
            assert self._state() is not ChangeState.ORDERED or self._lapsed()
            return
        assert self.change_id is not None
        self.downloaded[self.change_id] = iccid

    def _lapsed(self) -> bool:
        record = self.dw.store.change(self.change_id or "")
        return record is not None and self.dw.clock() >= record.change.expires

    @precondition(
        lambda self: self.change_id in self.downloaded and self.change_id not in self.enabled
    )
    @rule()
    def enable(self) -> None:
        assert self.change_id is not None
        enable_and_notify(self.dw, self.dw.phone("newphone"), self.downloaded[self.change_id])
        self.enabled.add(self.change_id)

    @rule()
    def sync(self) -> None:
        self._do(self.dw.operator.sync)

    @precondition(lambda self: self.change_id is not None)
    @rule(often=st.integers(0, 3))
    def cancel(self, often: int) -> None:
        assert self.change_id is not None
        if often:  # a quarter of the time: the flow should get to the switch as well
            return
        change_id = self.change_id
        try:
            self._do(lambda: self.dw.operator.cancel_device_change(self.caller, change_id))
        except StateError:
            assert self._state() in (ChangeState.SWITCHED, ChangeState.COMPLETED)

    @rule(often=st.integers(0, 3))
    def lapse(self, often: int) -> None:
        if often:
            return
        self.dw.clock.advance(self.dw.operator.config.order_ttl + timedelta(seconds=1))

    @rule(store=st.sampled_from(["operator", "network"]), k=st.integers(1, 6))
    def crash_soon(self, store: str, k: int) -> None:
        self.faults.store = store
        self.faults.left = k

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def check_network(self) -> None:
        for record in self.dw.store.changes_of_device(self.caller.device_id):
            change = record.change
            found = served(self.reader, (change.old_imsi, change.new_imsi))
            if change.id != self.change_id:
                current = self.dw.store.change(self.change_id or "")
                # a cancelled order's ICCID and IMSI may come back in a later order
                if current is None or current.change.new_imsi != change.new_imsi:
                    assert change.new_imsi not in found
                continue
            if change.state is ChangeState.CANCELLED:
                assert found == [change.old_imsi]
            elif change.state in (ChangeState.SWITCHED, ChangeState.COMPLETED):
                assert found == [change.new_imsi]
            else:
                assert len(found) == 1, found


TestChangeMachine = ChangeMachine.TestCase
TestChangeMachine.settings = settings(
    settings.default, max_examples=min(settings().max_examples, 30), stateful_step_count=20
)
