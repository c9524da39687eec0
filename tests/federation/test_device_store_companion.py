"""The device store's companion table (schema version 2, issue H)."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from rspfed.errors import StateError, StorageError, UsageError
from rspfed.federation.device import (
    MIGRATIONS,
    SCHEMA_VERSION,
    CompanionRecord,
    DeviceRecord,
    DeviceStore,
    migrate,
)

WATCH = CompanionRecord(
    name="Ana's watch",
    eid="89049032123451234512345678901235",
    peer_role="watch",
    reconnection_id=bytes(range(16)),
    psk=bytes(range(100, 132)),
    transport="ble",
    paired=datetime(2026, 11, 28, 19, 0, tzinfo=timezone(timedelta(hours=2))),
)


def test_version_1_file_with_data_gains_the_companion_table(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(db, MIGRATIONS[:1]) == 0
    db.execute("INSERT INTO record (id, operator_url, role) VALUES (1, 'https://op', 'primary')")
    db.close()
    os.chmod(path, 0o600)
    with DeviceStore.open(path) as store:
        assert store.record() == DeviceRecord(operator_url="https://op", role="primary")
        assert store.companions() == []
        store.set_companion(WATCH)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    # the psk is never stored as given with a passphrase; without one it is (file mode 0600)
    db.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_round_trip_replace_and_drop(tmp_path: Path) -> None:
    with DeviceStore.create(tmp_path / "d.db") as store:
        with pytest.raises(StateError):
            store.companion()
        store.set_companion(WATCH)
        got = store.companion()
        assert got == CompanionRecord(
            name=WATCH.name,
            eid=WATCH.eid,
            peer_role="watch",
            reconnection_id=WATCH.reconnection_id,
            psk=WATCH.psk,
            transport="ble",
            paired=WATCH.paired.astimezone(UTC),
        )
        assert got.paired == WATCH.paired
        # a new pairing with the same watch replaces the old record
        again = CompanionRecord(
            name="Ana's watch",
            eid=WATCH.eid,
            peer_role="watch",
            reconnection_id=bytes(16),
            psk=bytes(32),
            transport="lan",
            paired=datetime(2026, 11, 29, tzinfo=UTC),
        )
        store.set_companion(again)
        assert store.companions() == [again]
        other = CompanionRecord(
            name="Bo's watch",
            eid="8" * 32,
            peer_role="watch",
            reconnection_id=b"\x01" * 16,
            psk=b"\x02" * 32,
            transport="ble",
            paired=datetime(2026, 11, 30, tzinfo=UTC),
        )
        store.set_companion(other)
        with pytest.raises(StateError, match="several"):
            store.companion()
        assert store.companion("8" * 32) == other
        assert store.drop_companion(WATCH.eid)
        assert not store.drop_companion(WATCH.eid)
        assert store.companion() == other
        assert "psk" not in repr(other) or repr(other.psk) not in repr(other)


def test_psk_sealed_with_the_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    with DeviceStore.create(path, passphrase=b"correct horse") as store:
        store.set_companion(WATCH)
    raw = sqlite3.connect(path).execute("SELECT psk FROM companion").fetchone()[0]
    assert WATCH.psk not in bytes(raw)
    with DeviceStore.open(path, passphrase=b"correct horse") as store:
        assert store.companion().psk == WATCH.psk
    with DeviceStore.open(path, passphrase=b"wrong") as store, pytest.raises(UsageError):
        store.companions()
    with DeviceStore.open(path) as store, pytest.raises(UsageError, match="passphrase"):
        store.companions()


def test_bad_records_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        CompanionRecord("w", "123", "watch", bytes(16), bytes(32), "ble", WATCH.paired)
    with pytest.raises(UsageError):
        CompanionRecord("w", WATCH.eid, "tablet", bytes(16), bytes(32), "ble", WATCH.paired)
    with pytest.raises(UsageError):
        CompanionRecord("w", WATCH.eid, "watch", bytes(15), bytes(32), "ble", WATCH.paired)
    with pytest.raises(UsageError):
        CompanionRecord("w", WATCH.eid, "watch", bytes(16), bytes(32), "nfc", WATCH.paired)
    with pytest.raises(UsageError):
        CompanionRecord("w", WATCH.eid, "watch", bytes(16), bytes(32), "ble", datetime(2026, 1, 1))
    path = tmp_path / "d.db"
    with DeviceStore.create(path) as store:
        store.set_companion(WATCH)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE companion SET psk = x'00'")
    db.close()
    with DeviceStore.open(path) as store, pytest.raises(StorageError):
        store.companions()
