"""The operator store's schema v2 (the pool's tables) and the v1 -> v2 migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rspfed.federation.store import MIGRATIONS, SCHEMA_VERSION, SqliteOperatorStore

POOL_TABLES = {
    "ledger_counter",
    "pool_epoch",
    "fired_alert",
    "alert_outbox",
    "ledger_version",
    "usage_sample",
    "device_batch",
    "pool_rule",
    "bearer",
    "gateway",
}


def tables(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        db.close()


def test_v1_store_migrates_to_v2_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "op.sqlite"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[1]:
        db.execute(statement)
    db.execute(
        "INSERT INTO subscription VALUES ('s1', 'ts48', ?, '2026-01-01T00:00:00+00:00',"
        " NULL, NULL, NULL)",
        (
            '{"pool_bytes": 100, "device_limit": 2, "period": 2592000,'
            ' "device_classes": ["phone"], "services": ["data"]}',
        ),
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    assert not POOL_TABLES & tables(path)
    store = SqliteOperatorStore(path)
    try:
        assert store.schema_version == SCHEMA_VERSION >= 2  # v3 (radio) follows
        assert store.subscription_ids() == ["s1"]
    finally:
        store.close()
    assert tables(path) >= POOL_TABLES
