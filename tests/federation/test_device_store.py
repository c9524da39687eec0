"""The device store: real files, modes, passphrase, rotation, migration, faults, a model."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from rspfed.errors import StateError, StorageError, UsageError
from rspfed.federation import DeviceClass
from rspfed.federation.device import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    DeviceRecord,
    DeviceStore,
    PendingJoin,
    migrate,
)
from tests.paths import REPO

EID = "89049032123451234512345678901235"
EXPIRES = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
RECORD = DeviceRecord(
    operator_url="https://operator.example:8443",
    subscription_id="sub-1",
    device_id="dev-1",
    role="primary",
    eid=EID,
    device_class=DeviceClass.PHONE,
    name="phone",
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _point(key: ec.EllipticCurvePrivateKey | None) -> bytes | None:
    if key is None:
        return None
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _snapshot(store: DeviceStore) -> tuple[Any, ...]:
    return (
        store.record(),
        _point(store.private_key()),
        _point(store.pending_key()),
        tuple(store.joins()),
    )


def _fresh(path: Path) -> tuple[Any, ...]:
    with DeviceStore.open(path) as other:
        return _snapshot(other)


# --------------------------------------------------------------------------
# Basics


def test_create_open_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    with DeviceStore.create(path) as store:
        assert store.record() is None
        assert store.private_key() is None
        assert store.pending_key() is None
        assert store.joins() == []
        store.set_record(RECORD)
        key = store.generate_key()
        store.commit_key()
        store.add_join("req-2", "s2", "sub-1", EXPIRES + timedelta(hours=1))
        store.add_join("req-1", "s1", "sub-1", EXPIRES.astimezone(timezone(timedelta(hours=2))))
    with DeviceStore.open(path) as store:
        assert store.record() == RECORD
        assert _point(store.private_key()) == _point(key)
        assert store.pending_key() is None
        assert store.joins() == [
            PendingJoin("req-1", "s1", "sub-1", EXPIRES),
            PendingJoin("req-2", "s2", "sub-1", EXPIRES + timedelta(hours=1)),
        ]
        assert store.joins()[0].expires.tzinfo == UTC
        assert store.drop_join("req-1") is True
        assert store.drop_join("req-1") is False
        assert [j.request_id for j in store.joins()] == ["req-2"]
        store.set_record(DeviceRecord("https://other.example"))
        assert store.record() == DeviceRecord("https://other.example")


def test_create_refuses_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    DeviceStore.create(path).close()
    with pytest.raises(UsageError):
        DeviceStore.create(path)


def test_open_refuses_missing_corrupt_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        DeviceStore.open(tmp_path / "missing.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(StorageError):
        DeviceStore.open(junk)
    foreign = tmp_path / "foreign.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(StorageError, match="not an rspfed device store"):
        DeviceStore.open(foreign)
    other_app = tmp_path / "other.db"
    db = sqlite3.connect(other_app)
    db.execute("PRAGMA user_version = 1")
    db.close()
    with pytest.raises(StorageError, match="not an rspfed device store"):
        DeviceStore.open(other_app)


def test_mode_0600_on_create_and_fixed_on_open(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "device.db"
        with DeviceStore.create(path) as store:
            store.generate_key()
            for suffix in ("", "-wal", "-shm"):
                companion = path.with_name(path.name + suffix)
                if companion.exists():
                    assert _mode(companion) == 0o600, suffix
        os.chmod(path, 0o644)
        with DeviceStore.open(path) as store:
            assert _mode(path) == 0o600
            assert store.pending_key() is not None
            for suffix in ("-wal", "-shm"):
                companion = path.with_name(path.name + suffix)
                if companion.exists():
                    assert _mode(companion) == 0o600, suffix
    finally:
        os.umask(old)


def test_values_are_validated(tmp_path: Path) -> None:
    for bad in (
        {"operator_url": ""},
        {"operator_url": "https://x", "role": "owner"},
        {"operator_url": "https://x", "eid": "1234"},
        {"operator_url": "https://x", "device_class": "phone"},
        {"operator_url": "https://x", "name": ""},
        {"operator_url": "https://x", "subscription_id": 5},
    ):
        with pytest.raises(UsageError):
            DeviceRecord(**bad)
    with DeviceStore.create(tmp_path / "d.db") as store:
        with pytest.raises(UsageError):
            store.add_join("r", "s", "sub", datetime(2026, 1, 1))
        with pytest.raises(UsageError):
            store.add_join("", "s", "sub", EXPIRES)
        with pytest.raises(UsageError):
            store.set_record("https://x")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        DeviceStore.create(tmp_path / "e.db", passphrase=b"")


def test_repr_has_no_secrets(tmp_path: Path) -> None:
    with DeviceStore.create(tmp_path / "d.db", passphrase=b"hunter2-passphrase") as store:
        key = store.generate_key()
        join = store.add_join("req-1", "the-join-secret", "sub-1", EXPIRES)
        text = repr(store) + repr(join) + repr(store.joins())
        assert "hunter2" not in text
        assert "the-join-secret" not in text
        assert str(key.private_numbers().private_value) not in text


# --------------------------------------------------------------------------
# Passphrase


def test_passphrase_round_trip_and_wrong_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    with DeviceStore.create(path, passphrase=b"correct horse") as store:
        key = store.generate_key()
        store.commit_key()
        store.set_record(RECORD)
    raw = sqlite3.connect(path).execute("SELECT pem FROM keys").fetchone()[0]
    assert b"ENCRYPTED PRIVATE KEY" in raw
    with DeviceStore.open(path, passphrase=b"correct horse") as store:
        assert _point(store.private_key()) == _point(key)
    for wrong in (b"wrong horse", None):
        # the record is readable; the key is not, with a clear UsageError
        with DeviceStore.open(path, passphrase=wrong) as store:
            assert store.record() == RECORD
            with pytest.raises(UsageError, match="passphrase") as info:
                store.private_key()
            assert "horse" not in str(info.value)


def test_unencrypted_key_with_a_passphrase_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    with DeviceStore.create(path) as store:
        store.generate_key()
        store.commit_key()
    raw = sqlite3.connect(path).execute("SELECT pem FROM keys").fetchone()[0]
    assert b"-----BEGIN PRIVATE KEY-----" in raw
    with DeviceStore.open(path, passphrase=b"pw") as store, pytest.raises(UsageError):
        store.private_key()


# --------------------------------------------------------------------------
# Rotation


def test_rotation(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    with DeviceStore.create(path) as store:
        with pytest.raises(StateError):
            store.commit_key()
        first = store.generate_key()
        assert isinstance(first.curve, ec.SECP256R1)
        assert store.private_key() is None
        assert _point(store.pending_key()) == _point(first)
        store.commit_key()
        assert _point(store.private_key()) == _point(first)
        assert store.pending_key() is None
        with pytest.raises(StateError):
            store.commit_key()
        # a rotation: the old key stays current until commit, also across a reopen
        second = store.generate_key()
        third = store.generate_key()  # replaces the pending one
        assert _point(second) != _point(third)
    with DeviceStore.open(path) as store:
        assert _point(store.private_key()) == _point(first)
        assert _point(store.pending_key()) == _point(third)
        assert store.discard_pending_key() is True
        assert store.discard_pending_key() is False
        assert store.pending_key() is None
        assert _point(store.private_key()) == _point(first)
        fourth = store.generate_key()
        store.commit_key()
        assert _point(store.private_key()) == _point(fourth)
    with DeviceStore.open(path) as store:
        assert _point(store.private_key()) == _point(fourth)
        assert store.pending_key() is None


# --------------------------------------------------------------------------
# Schema versions


def test_empty_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    path.touch(mode=0o600)  # a version-0 (empty) file, as a crash inside create leaves
    with DeviceStore.open(path) as store:
        store.set_record(RECORD)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    db.close()


def test_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    DeviceStore.create(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StorageError, match="newer"):
        DeviceStore.open(path)


def test_older_file_is_migrated_step_by_step(tmp_path: Path) -> None:
    """The mechanism with a future step: a version-1 file with data gains version 2."""
    path = tmp_path / "device.db"
    with DeviceStore.create(path) as store:
        store.set_record(RECORD)
        store.add_join("req-1", "s1", "sub-1", EXPIRES)
    step2 = "ALTER TABLE record ADD COLUMN extra TEXT; UPDATE record SET extra = 'x'"
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(db, (*MIGRATIONS, step2)) == SCHEMA_VERSION
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    assert db.execute("SELECT extra, device_id FROM record").fetchall() == [("x", "dev-1")]
    # from an empty file the whole chain runs
    db.close()
    empty = tmp_path / "empty.db"
    db = sqlite3.connect(empty, isolation_level=None)
    assert migrate(db, (*MIGRATIONS, "CREATE TABLE later (x)")) == 0
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    db.close()


def test_failed_migration_step_leaves_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    with DeviceStore.create(path) as store:
        store.set_record(RECORD)
    bad = "CREATE TABLE added (x); INSERT INTO no_such_table VALUES (1)"
    db = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(StorageError, match=f"version {SCHEMA_VERSION + 1}"):
        migrate(db, (*MIGRATIONS, bad))
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'added'").fetchall() == []
    db.close()
    with DeviceStore.open(path) as store:
        assert store.record() == RECORD


# --------------------------------------------------------------------------
# Fault injection: every write holds the old state or the new one, never a mix


def _interrupt_at_every_step(
    path: Path, store: DeviceStore, write: Callable[[], object], ok: Callable[[Any, Any], bool]
) -> int:
    """Run ``write`` with SQLite interrupted after n VM steps, n = 1, 2, ... until it succeeds.

    After each failure, the store (same connection and a fresh one) must hold the
    state before or a state ``ok(before, state)`` accepts as the new one.
    """
    before = _snapshot(store)
    n = 0
    while True:
        n += 1
        budget = n

        def abort() -> int:
            nonlocal budget
            budget -= 1
            return 1 if budget <= 0 else 0

        store.connection.set_progress_handler(abort, 1)
        try:
            write()
        except StorageError:
            store.connection.set_progress_handler(None, 1)
            for state in (_snapshot(store), _fresh(path)):
                assert state == before or ok(before, state)
            if _snapshot(store) != before:
                return n  # the failure hit COMMIT after it was durable
            continue
        store.connection.set_progress_handler(None, 1)
        return n


def test_interrupted_writes_leave_old_or_new_state(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    store = DeviceStore.create(path)
    new_record = RECORD

    def record_is(rec: DeviceRecord) -> Callable[[Any, Any], bool]:
        return lambda b, s: s == (rec, *b[1:])

    def pending_new(b: Any, s: Any) -> bool:
        return bool(s[0] == b[0] and s[1] == b[1] and s[3] == b[3] and s[2] not in (None, b[2]))

    def committed(b: Any, s: Any) -> bool:
        return bool(s == (b[0], b[2], None, b[3]))

    join = PendingJoin("req-1", "secret", "sub-1", EXPIRES)
    steps: list[tuple[Callable[[], object], Callable[[Any, Any], bool]]] = [
        (lambda: store.set_record(new_record), record_is(new_record)),
        (store.generate_key, pending_new),
        (store.commit_key, committed),
        (store.generate_key, pending_new),
        (
            lambda: store.add_join(join.request_id, join.secret, join.subscription_id, EXPIRES),
            lambda b, s: s == (*b[:3], (join,)),
        ),
        (
            lambda: store.set_record(DeviceRecord("https://b.example", name="tablet")),
            record_is(DeviceRecord("https://b.example", name="tablet")),
        ),
        (store.commit_key, committed),
        (store.discard_pending_key, lambda b, s: s == b),
        (lambda: store.drop_join("req-1"), lambda b, s: s == (*b[:3], ())),
    ]
    for write, ok in steps:
        before = _snapshot(store)
        steps_needed = _interrupt_at_every_step(path, store, write, ok)
        assert steps_needed > 3
        after = _snapshot(store)
        assert ok(before, after) or (write is store.discard_pending_key and after == before)
        assert _fresh(path) == after
    store.close()


CHILD = textwrap.dedent(
    """
    import os, sys
    from datetime import UTC, datetime
    from rspfed.federation.device import DeviceRecord, DeviceStore
    path, op, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = DeviceStore.open(path)
    left = kill_at
    def tick():
        global left
        left -= 1
        if left <= 0:
            os._exit(9)
        return 0
    store.connection.set_progress_handler(tick, 1)
    if op == "commit":
        store.commit_key()
    elif op == "join":
        store.add_join("req-9", "s9", "sub-9", datetime(2027, 1, 1, tzinfo=UTC))
    else:
        store.set_record(DeviceRecord("https://new.example", device_id="dev-9"))
    os._exit(0)
    """
)


@pytest.mark.parametrize("op", ["commit", "join", "record"])
def test_killed_mid_write_reopens_old_or_new(tmp_path: Path, op: str) -> None:
    outcomes = set()
    for kill_at in (1, 4, 8, 13, 20, 30, 45, 70):
        path = tmp_path / f"{op}-{kill_at}.db"
        with DeviceStore.create(path) as store:
            store.set_record(RECORD)
            store.generate_key()
            store.commit_key()
            store.generate_key()
            before = _snapshot(store)
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), op, str(kill_at)],
            cwd=REPO,
            capture_output=True,
            check=False,
            timeout=60,
        )
        assert result.returncode in (0, 9), result.stderr.decode()
        after = _fresh(path)
        if op == "commit":
            new = (before[0], before[2], None, before[3])
        elif op == "join":
            new = (
                *before[:3],
                (PendingJoin("req-9", "s9", "sub-9", datetime(2027, 1, 1, tzinfo=UTC)),),
            )
        else:
            new = (DeviceRecord("https://new.example", device_id="dev-9"), *before[1:])
        assert after in (before, new)
        outcomes.add((result.returncode, after == new))
        assert _mode(path) == 0o600
    assert (9, False) in outcomes  # some kills came before the commit
    assert any(landed for _, landed in outcomes)  # and the write completes when left alone


# --------------------------------------------------------------------------
# A state machine against a model

_TEXT = st.text(alphabet="abcdefghij-0123456789", min_size=1, max_size=12)
_RECORDS = st.builds(
    DeviceRecord,
    operator_url=st.sampled_from(["https://a.example", "http://127.0.0.1:8080"]),
    subscription_id=st.none() | _TEXT,
    device_id=st.none() | _TEXT,
    role=st.sampled_from([None, "primary", "secondary"]),
    eid=st.sampled_from([None, EID]),
    device_class=st.none() | st.sampled_from(DeviceClass),
    name=st.none() | st.text(min_size=1, max_size=20),
)
_REQUEST_IDS = st.sampled_from(["req-1", "req-2", "req-3"])


class DeviceStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "device.db"
        self.store = DeviceStore.create(self.path)
        self.record: DeviceRecord | None = None
        self.current: bytes | None = None
        self.pending: bytes | None = None
        self.joins: dict[str, PendingJoin] = {}

    def teardown(self) -> None:
        self.store.close()
        self.dir.cleanup()

    @rule(record=_RECORDS)
    def set_record(self, record: DeviceRecord) -> None:
        self.store.set_record(record)
        self.record = record

    @rule()
    def generate(self) -> None:
        self.pending = _point(self.store.generate_key())

    @rule()
    def commit(self) -> None:
        if self.pending is None:
            with pytest.raises(StateError):
                self.store.commit_key()
        else:
            self.store.commit_key()
            self.current, self.pending = self.pending, None

    @rule()
    def discard(self) -> None:
        assert self.store.discard_pending_key() is (self.pending is not None)
        self.pending = None

    @rule(
        request_id=_REQUEST_IDS,
        secret=_TEXT,
        subscription_id=_TEXT,
        minutes=st.integers(min_value=-100, max_value=10_000),
    )
    def add_join(self, request_id: str, secret: str, subscription_id: str, minutes: int) -> None:
        expires = EXPIRES + timedelta(minutes=minutes)
        self.store.add_join(request_id, secret, subscription_id, expires)
        self.joins[request_id] = PendingJoin(request_id, secret, subscription_id, expires)

    @rule(request_id=_REQUEST_IDS)
    def drop_join(self, request_id: str) -> None:
        assert self.store.drop_join(request_id) is (request_id in self.joins)
        self.joins.pop(request_id, None)

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = DeviceStore.open(self.path)

    @invariant()
    def matches_the_model(self) -> None:
        assert self.store.record() == self.record
        assert _point(self.store.private_key()) == self.current
        assert _point(self.store.pending_key()) == self.pending
        expected = sorted(self.joins.values(), key=lambda j: (j.expires, j.request_id))
        assert self.store.joins() == expected


DeviceStoreMachine.TestCase.settings = settings(
    max_examples=max(5, settings().max_examples // 4), stateful_step_count=20
)
test_device_store_machine = DeviceStoreMachine.TestCase


def test_corrupt_rows_are_storage_errors(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    with DeviceStore.create(path) as store:
        store.set_record(RECORD)
        store.add_join("req-1", "s1", "sub-1", EXPIRES)
        store.generate_key()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE record SET device_class = 'toaster'")
    db.execute("UPDATE joins SET expires = 'soon'")
    db.execute("UPDATE keys SET pem = X'00'")
    db.close()
    with DeviceStore.open(path) as store:
        with pytest.raises(StorageError):
            store.record()
        with pytest.raises(StorageError):
            store.joins()
        with pytest.raises(StorageError, match="corrupt"):
            store.pending_key()


def test_nothing_secret_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    path = tmp_path / "device.db"
    with DeviceStore.create(path, passphrase=b"log-passphrase") as store:
        key = store.generate_key()
        store.commit_key()
        store.add_join("req-1", "log-join-secret", "sub-1", EXPIRES)
    os.chmod(path, 0o640)
    with DeviceStore.open(path, passphrase=b"log-passphrase") as store:
        assert _point(store.private_key()) == _point(key)
    assert "mode" in caplog.text  # the mode fix is reported ...
    assert "log-passphrase" not in caplog.text  # ... and nothing secret
    assert "log-join-secret" not in caplog.text
    assert "PRIVATE KEY" not in caplog.text
