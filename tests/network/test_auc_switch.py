"""The AuC's device-change part: PENDING subscribers and the atomic switch,
in memory and in SQLite (with a fault at every write of the switch)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rspfed.errors import UsageError
from rspfed.network import (
    Auc,
    MemorySubscriberStore,
    NetworkRefusedError,
    RefusalReason,
    SqliteSubscriberStore,
    Subscriber,
    SubscriberState,
    SubscriberStore,
)
from rspfed.network.service import Service

K = bytes(range(16))
OPC = bytes(range(16, 32))
OLD, NEW, LINKED = "001010000000001", "001010000000002", "001010000000003"


class Boom(Exception):
    pass


def _auc(store: SubscriberStore) -> Auc:
    auc = Auc(store, rand=os.urandom)
    auc.provision(Subscriber(OLD, k=K, opc=OPC))
    auc.provision(Subscriber(LINKED, k=K, opc=OPC))
    auc.provision(Subscriber(NEW, k=K, opc=OPC, state=SubscriberState.PENDING))
    return auc


def _states(auc: Auc) -> tuple[SubscriberState, ...]:
    return tuple(auc.subscriber(i).state for i in (OLD, NEW, LINKED))


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_pending_is_refused_until_the_switch(tmp_path: Path, kind: str) -> None:
    store = MemorySubscriberStore() if kind == "memory" else SqliteSubscriberStore(tmp_path / "n")
    auc = _auc(store)
    for refuse in (
        lambda: auc.generate_vector(NEW),
        lambda: auc.check_service(NEW, Service.DATA),
        lambda: auc.unbar(NEW),
        lambda: auc.bar(NEW),
    ):
        with pytest.raises(NetworkRefusedError) as info:
            refuse()
        assert info.value.reason is RefusalReason.PENDING
    auc.generate_vector(OLD)
    auc.switch(OLD, NEW, also_remove=(LINKED,))
    assert _states(auc) == (
        SubscriberState.REMOVED,
        SubscriberState.ACTIVE,
        SubscriberState.REMOVED,
    )
    auc.generate_vector(NEW)
    with pytest.raises(NetworkRefusedError) as info:
        auc.generate_vector(OLD)
    assert info.value.reason is RefusalReason.REMOVED
    auc.switch(OLD, NEW, also_remove=(LINKED,))  # idempotent
    assert _states(auc) == (
        SubscriberState.REMOVED,
        SubscriberState.ACTIVE,
        SubscriberState.REMOVED,
    )


def test_switch_refusals_and_carried_bar() -> None:
    auc = _auc(MemorySubscriberStore())
    with pytest.raises(UsageError):
        auc.switch(OLD, OLD)
    with pytest.raises(UsageError):
        auc.switch(OLD, NEW, also_remove=(NEW,))
    with pytest.raises(NetworkRefusedError) as info:
        auc.switch(OLD, "001010000000009")
    assert info.value.reason is RefusalReason.UNKNOWN_SUBSCRIBER
    with pytest.raises(NetworkRefusedError) as info:
        auc.switch(NEW, OLD)  # the "old" one is pending
    assert info.value.reason is RefusalReason.PENDING
    with pytest.raises(UsageError):
        auc.provision(Subscriber("001010000000007", k=K, state=SubscriberState.REMOVED))
    auc.bar(OLD)
    auc.switch(OLD, NEW)
    assert auc.subscriber(NEW).state is SubscriberState.BARRED  # the bar moves along
    auc.unbar(NEW)
    assert auc.subscriber(NEW).state is SubscriberState.ACTIVE


def test_a_removed_new_subscriber_cannot_be_switched_to() -> None:
    auc = _auc(MemorySubscriberStore())
    auc.remove(NEW)  # a cancelled change
    with pytest.raises(NetworkRefusedError) as info:
        auc.switch(OLD, NEW)
    assert info.value.reason is RefusalReason.REMOVED
    assert auc.subscriber(OLD).state is SubscriberState.ACTIVE


@pytest.mark.parametrize("at", [1, 2, 3, 4])  # three inserts, then the commit
def test_a_fault_at_any_write_of_the_switch_changes_nothing(tmp_path: Path, at: int) -> None:
    count = 0
    armed = False
    labels: list[str] = []

    def fault(label: str) -> None:
        nonlocal count
        if armed:
            count += 1
            labels.append(label)
            if count == at:
                raise Boom(label)

    store = SqliteSubscriberStore(tmp_path / "n.sqlite", fault=fault)
    auc = _auc(store)
    armed = True
    with pytest.raises(Boom):
        auc.switch(OLD, NEW, also_remove=(LINKED,))
    armed = False
    store.close()
    again = Auc(SqliteSubscriberStore(tmp_path / "n.sqlite"), rand=os.urandom)
    assert _states(again) == (
        SubscriberState.ACTIVE,
        SubscriberState.PENDING,
        SubscriberState.ACTIVE,
    )
    again.switch(OLD, NEW, also_remove=(LINKED,))
    assert _states(again) == (
        SubscriberState.REMOVED,
        SubscriberState.ACTIVE,
        SubscriberState.REMOVED,
    )
