"""The SQLite subscriber store: round trip, 0600, WAL, migration, fault injection."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from rspfed.errors import StorageError
from rspfed.network import (
    Auc,
    DeviceClass,
    Service,
    ServicePolicy,
    SqliteSubscriberStore,
    Subscriber,
    SubscriberState,
)
from rspfed.network.store import SCHEMA_VERSION

K = bytes(range(16))
OPC = bytes(range(16, 32))


class Boom(Exception):
    pass


def _sub(imsi: str = "001010000000001") -> Subscriber:
    return Subscriber(
        imsi,
        k=K,
        opc=OPC,
        amf=b"\x80\x00",
        seq_he=7,
        ind=3,
        policy=ServicePolicy(DeviceClass.WATCH, {Service.DATA, Service.SMS}),
    )


def test_round_trip_mode_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "auc.db"
    store = SqliteSubscriberStore(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.schema_version == SCHEMA_VERSION
    store.put(_sub())
    store.close()
    again = SqliteSubscriberStore(path)
    assert again.get("001010000000001") == _sub()
    assert again.get("001010000000002") is None
    assert again.imsis() == ["001010000000001"]
    again.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migration_from_version_1(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE subscribers (
            imsi TEXT PRIMARY KEY, k BLOB NOT NULL, opc BLOB NOT NULL,
            algorithm TEXT NOT NULL, amf BLOB NOT NULL, state TEXT NOT NULL,
            seq_he INTEGER NOT NULL, ind INTEGER NOT NULL, policy TEXT NOT NULL);
        PRAGMA user_version = 1;
        """
    )
    db.execute(
        "INSERT INTO subscribers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            "001010000000009",
            K,
            OPC,
            "test",
            b"\x80\x00",
            "barred",
            42,
            5,
            '{"device_class": "laptop", "plan_services": ["data", "voice"]}',
        ),
    )
    db.commit()
    db.close()
    store = SqliteSubscriberStore(path)
    assert store.schema_version == SCHEMA_VERSION
    sub = store.get("001010000000009")
    assert sub is not None
    assert sub.res_length == 16
    assert sub.state is SubscriberState.BARRED
    assert sub.seq_he == 42
    assert sub.policy.allowed == {Service.DATA}
    store.close()


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError):
        SqliteSubscriberStore(path)


def _changes(auc: Auc, imsi: str) -> None:
    """A fixed sequence of changes; each is one store write."""
    auc.generate_vector(imsi)
    auc.bar(imsi)
    auc.unbar(imsi)
    auc.generate_vector(imsi)
    auc.remove(imsi)


def test_fault_at_every_write_leaves_old_or_new_state(tmp_path: Path) -> None:
    imsi = "001010000000001"
    # count the hook calls of a clean run
    labels: list[str] = []
    SqliteSubscriberStore(tmp_path / "clean.db").close()  # schema created without faults
    clean = SqliteSubscriberStore(tmp_path / "clean.db", fault=labels.append)
    Auc(clean, rand=lambda n: bytes(n)).provision(_sub(imsi))
    _changes(Auc(clean, rand=lambda n: bytes(n)), imsi)
    clean.close()
    assert "commit" in labels
    assert "insert" in labels

    for failing in range(len(labels)):
        path = tmp_path / f"f{failing}.db"
        calls = 0

        def fault(label: str, failing: int = failing) -> None:
            nonlocal calls
            calls += 1
            if calls - 1 == failing:
                raise Boom(label)

        SqliteSubscriberStore(path).close()
        store = SqliteSubscriberStore(path, fault=fault)
        auc = Auc(store, rand=lambda n: bytes(n))
        try:
            auc.provision(_sub(imsi))
            for step in (
                auc.generate_vector,
                auc.bar,
                auc.unbar,
                auc.generate_vector,
                auc.remove,
            ):
                before = store.get(imsi)
                try:
                    step(imsi)
                except Boom:
                    # the failed change left exactly the old state, on disk too
                    store.close()
                    reopened = SqliteSubscriberStore(path)
                    assert reopened.get(imsi) == before
                    reopened.close()
                    break
        except Boom:
            store.close()
            reopened = SqliteSubscriberStore(path)
            assert reopened.get(imsi) is None
            reopened.close()
        else:
            store.close()


def test_fault_during_migration_leaves_old_version(tmp_path: Path) -> None:
    labels: list[str] = []
    SqliteSubscriberStore(tmp_path / "clean.db", fault=labels.append).close()
    assert len(labels) >= 2
    for failing in range(len(labels)):
        path = tmp_path / f"m{failing}.db"
        calls = 0

        def fault(label: str, failing: int = failing) -> None:
            nonlocal calls
            calls += 1
            if calls - 1 == failing:
                raise Boom(label)

        with pytest.raises(Boom):
            SqliteSubscriberStore(path, fault=fault)
        with sqlite3.connect(path) as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
        assert 0 <= version < SCHEMA_VERSION
        store = SqliteSubscriberStore(path)  # a clean reopen finishes the migration
        assert store.schema_version == SCHEMA_VERSION
        store.put(_sub())
        assert store.get(_sub().imsi) == _sub()
        store.close()
