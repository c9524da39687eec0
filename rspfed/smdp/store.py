"""The SM-DP+ store: the small :class:`SmdpStore` interface and its SQLite implementation.

:class:`SmdpStore` is what :class:`rspfed.smdp.Smdp` needs: profile types,
inventory items, RSP sessions, the one-time keys kept for the retry, received
notifications and pending download-progress events.  Every read-modify-write
of the core runs inside ``with store.transaction():``; the store makes that
atomic against other processes (SQLite: ``BEGIN IMMEDIATE``; a PostgreSQL
backend would use ``SERIALIZABLE`` or ``SELECT ... FOR UPDATE``).  Calls outside
a transaction are atomic one by one.

:class:`SqliteSmdpStore`
    One file, WAL journal (readers never block the writer), ``busy_timeout``
    so several worker processes share it, ``synchronous=FULL`` by default.
    ``PRAGMA user_version`` is the schema version; :data:`MIGRATIONS`
    ``[i]`` takes a version-``i`` file to ``i + 1`` and :meth:`SqliteSmdpStore.open`
    applies the missing steps.  The file and its WAL companions are mode 0600:
    they hold K and OPc.  Sessions are one row each (the compact
    :meth:`~rspfed.smdp.types.RspSession.to_bytes` record).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from rspfed.errors import StateError, StorageError, UsageError
from rspfed.es9p.codes import StatusCodeData
from rspfed.smdp._inventory import ItemState
from rspfed.smdp.types import (
    DownloadProgressEvent,
    InventoryItem,
    KeptBinding,
    NotificationRecord,
    ProfileType,
    RspSession,
    SessionStage,
    from_micros,
    to_micros,
)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SmdpStore",
    "SqliteSmdpStore",
    "migrate",
]


class SmdpStore(Protocol):
    """The storage interface of the SM-DP+ core (see the module doc)."""

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """Group the calls inside the ``with`` block atomically (nesting joins the outer one)."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...

    # profile types
    def put_profile_type(self, profile_type: ProfileType) -> None:
        """Register a new type (:class:`~rspfed.errors.StateError` if the name exists)."""
        ...

    def get_profile_type(self, name: str) -> ProfileType | None:
        """The type called ``name``."""
        ...

    def profile_type_names(self) -> list[str]:
        """Names of all registered types, sorted."""
        ...

    def next_counter(self, profile_type: str) -> int:
        """Increment and return the instance counter of ``profile_type`` (first is 1)."""
        ...

    # inventory
    def get_item(self, iccid: str) -> InventoryItem | None:
        """The item with this ICCID."""
        ...

    def find_item(
        self,
        *,
        matching_id: str | None = None,
        transaction_id: bytes | None = None,
        pending_eid: str | None = None,
    ) -> InventoryItem | None:
        """The item with this matchingId, or last transactionId, or the oldest
        order without matchingId bound to ``pending_eid`` in state released or
        downloaded (the default SM-DP+ case).  Exactly one criterion."""
        ...

    def first_available(self, profile_type: str) -> InventoryItem | None:
        """The oldest available item of ``profile_type``."""
        ...

    def put_item(self, item: InventoryItem) -> None:
        """Insert or replace ``item`` (as given, version included)."""
        ...

    def update_item(self, item: InventoryItem, previous: InventoryItem | None = None) -> bool:
        """Write ``item`` if the stored one still has ``item.version`` (then version + 1);
        ``False`` when it changed meanwhile (or is absent).  With ``previous`` (the
        item as read) only the fields that differ need to be written."""
        ...

    def items(self, profile_type: str | None = None) -> list[InventoryItem]:
        """All items (of one type), by ICCID."""
        ...

    def matching_id_known(self, matching_id: str) -> bool:
        """Whether ``matching_id`` is or was ever used (single use)."""
        ...

    def retire_matching_id(self, matching_id: str) -> None:
        """Remember ``matching_id`` as used after its item let it go."""
        ...

    # sessions
    def get_session(self, transaction_id: bytes) -> RspSession | None:
        """The session with this transactionId."""
        ...

    def put_session(self, session: RspSession) -> None:
        """Insert or replace ``session``."""
        ...

    def insert_session(self, session: RspSession) -> bool:
        """Insert ``session``; ``False`` if its transactionId exists already."""
        ...

    def update_session(self, session: RspSession, expected: SessionStage) -> bool:
        """Replace the session if it is still at stage ``expected``; ``False`` otherwise."""
        ...

    def delete_session(self, transaction_id: bytes) -> None:
        """Forget a session."""
        ...

    def purge_sessions(self, now: datetime) -> int:
        """Delete sessions expired at ``now``; how many."""
        ...

    # what is kept for the retry
    def get_binding(self, iccid: str) -> KeptBinding | None:
        """The binding kept for ``iccid``."""
        ...

    def put_binding(self, binding: KeptBinding) -> None:
        """Keep ``binding`` (replacing the one of its ICCID)."""
        ...

    def delete_binding(self, iccid: str) -> None:
        """Drop the binding of ``iccid``."""
        ...

    # notifications and progress events
    def add_notification(self, record: NotificationRecord) -> None:
        """Record a received notification."""
        ...

    def notifications(self, iccid: str | None = None) -> list[NotificationRecord]:
        """Received notifications (of one ICCID), oldest first."""
        ...

    def add_progress_event(self, event: DownloadProgressEvent) -> None:
        """Queue a HandleDownloadProgressInfo event."""
        ...

    def take_progress_events(self, limit: int) -> list[DownloadProgressEvent]:
        """Remove and return up to ``limit`` queued events, oldest first."""
        ...


# --------------------------------------------------------------------------
# SQLite

_V1 = """
CREATE TABLE profile_type (
    name TEXT PRIMARY KEY,
    package BLOB NOT NULL,
    metadata TEXT NOT NULL,
    counter INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE item (
    iccid TEXT PRIMARY KEY,
    profile_type TEXT NOT NULL REFERENCES profile_type(name),
    state TEXT NOT NULL,
    imsi TEXT NOT NULL,
    k BLOB NOT NULL,
    opc BLOB NOT NULL,
    eid TEXT,
    matching_id TEXT UNIQUE,
    cc_hash BLOB,
    release_flag INTEGER NOT NULL DEFAULT 0,
    cc_attempts INTEGER NOT NULL DEFAULT 0,
    download_attempts INTEGER NOT NULL DEFAULT 0,
    requester TEXT,
    transaction_id BLOB,
    euicc_public_key BLOB,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE INDEX item_type_state ON item(profile_type, state, created);
CREATE INDEX item_transaction ON item(transaction_id);
CREATE INDEX item_eid ON item(eid, state);
CREATE TABLE retired_matching_id (matching_id TEXT PRIMARY KEY);
CREATE TABLE session (
    transaction_id BLOB PRIMARY KEY,
    expires INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX session_expires ON session(expires);
CREATE TABLE bound_package (
    iccid TEXT PRIMARY KEY,
    euicc_otpk BLOB NOT NULL,
    bpp BLOB NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE notification (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received INTEGER NOT NULL,
    event TEXT NOT NULL,
    iccid TEXT,
    eid TEXT,
    transaction_id BLOB,
    seq_number INTEGER NOT NULL,
    der BLOB NOT NULL
);
CREATE INDEX notification_iccid ON notification(iccid);
CREATE TABLE progress_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    data TEXT NOT NULL,
    result_data BLOB
)
"""

_V2 = """
ALTER TABLE item ADD COLUMN smds_address TEXT
"""

_V3 = """
DROP TABLE bound_package;
CREATE TABLE kept_binding (
    iccid TEXT PRIMARY KEY,
    euicc_otpk BLOB NOT NULL,
    smdp_ot_key BLOB NOT NULL,
    created INTEGER NOT NULL
);
ALTER TABLE item ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE session ADD COLUMN stage INTEGER NOT NULL DEFAULT 0
"""

MIGRATIONS: Sequence[str] = (_V1, _V2, _V3)
"""Schema steps: ``MIGRATIONS[i]`` takes a version-``i`` file to version ``i + 1``
(statements separated by ``;``)."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes."""


def migrate(connection: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring ``connection``'s database to schema ``target``; the version found before.

    Each step runs in its own ``BEGIN IMMEDIATE`` transaction with its
    ``user_version``, so concurrent openers apply it once.  A file newer than
    this code raises :class:`~rspfed.errors.StorageError`.
    """
    found = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise StorageError(f"store schema {found} is newer than this rspfed ({SCHEMA_VERSION})")
    version = found
    while version < target:
        try:
            connection.execute("BEGIN IMMEDIATE")
            current = int(connection.execute("PRAGMA user_version").fetchone()[0])
            if current == version:
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            raise StorageError(f"migrating the store to schema {version + 1}: {exc}") from None
        version = max(version + 1, current)
    return found


def _private(path: Path) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


_ITEM_COLUMNS = (
    "iccid, profile_type, state, imsi, k, opc, eid, matching_id, cc_hash, release_flag, "
    "cc_attempts, download_attempts, requester, smds_address, transaction_id, "
    "euicc_public_key, created, updated, version"
)
_STATES = {s.value: s for s in ItemState}
# SQL built from the constant column list above only (never from input)
_SELECT_ITEM = "SELECT " + _ITEM_COLUMNS + " FROM item "  # noqa: S608
_INSERT_ITEM = (
    "INSERT OR REPLACE INTO item (" + _ITEM_COLUMNS + ") VALUES "  # noqa: S608
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATABLE = tuple(
    c.strip() for c in _ITEM_COLUMNS.split(",") if c.strip() not in ("iccid", "version")
)


def _item_values(item: InventoryItem) -> dict[str, object]:
    return {
        "profile_type": item.profile_type,
        "state": item.state.value,
        "imsi": item.imsi,
        "k": item.k,
        "opc": item.opc,
        "eid": item.eid,
        "matching_id": item.matching_id,
        "cc_hash": item.cc_hash,
        "release_flag": int(item.release_flag),
        "cc_attempts": item.cc_attempts,
        "download_attempts": item.download_attempts,
        "requester": item.requester,
        "smds_address": item.smds_address,
        "transaction_id": item.transaction_id,
        "euicc_public_key": item.euicc_public_key,
        "created": to_micros(item.created),
        "updated": to_micros(item.updated),
    }


_NOTE_COLUMNS = "received, event, iccid, eid, transaction_id, seq_number, der"
_SELECT_NOTE = "SELECT " + _NOTE_COLUMNS + " FROM notification "  # noqa: S608


def _item(row: Any) -> InventoryItem:
    return InventoryItem(
        iccid=row[0],
        profile_type=row[1],
        state=_STATES[row[2]],
        imsi=row[3],
        k=bytes(row[4]),
        opc=bytes(row[5]),
        eid=row[6],
        matching_id=row[7],
        cc_hash=None if row[8] is None else bytes(row[8]),
        release_flag=bool(row[9]),
        cc_attempts=row[10],
        download_attempts=row[11],
        requester=row[12],
        smds_address=row[13],
        transaction_id=None if row[14] is None else bytes(row[14]),
        euicc_public_key=None if row[15] is None else bytes(row[15]),
        created=from_micros(row[16]),
        updated=from_micros(row[17]),
        version=row[18],
    )


def _event_json(event: DownloadProgressEvent) -> str:
    status = None
    if event.status is not None:
        status = [
            event.status.subject_code,
            event.status.reason_code,
            event.status.subject_identifier,
            event.status.message,
        ]
    return json.dumps(
        [
            event.eid,
            event.iccid,
            event.profile_type,
            to_micros(event.timestamp),
            event.notification_point_id,
            status,
            event.callback_url,
            event.requester,
        ],
        separators=(",", ":"),
    )


def _event_from(event_id: int, text: str, result: bytes | None) -> DownloadProgressEvent:
    eid, iccid, ptype, ts, point, status, url, requester = json.loads(text)
    return DownloadProgressEvent(
        eid=eid,
        iccid=iccid,
        profile_type=ptype,
        timestamp=from_micros(ts),
        notification_point_id=point,
        status=None if status is None else StatusCodeData(*status),
        result_data=result,
        callback_url=url,
        requester=requester,
        event_id=event_id,
    )


class SqliteSmdpStore:
    """:class:`SmdpStore` on one SQLite file (see the module doc).

    Build with :meth:`create` (new file) or :meth:`open` (existing file,
    migrated).  ``":memory:"`` gives a private in-memory store for tests.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path | None) -> None:
        self._db = connection
        self._path = path
        self._depth = 0

    @classmethod
    def _connect(cls, path: str | os.PathLike[str], *, synchronous: str) -> sqlite3.Connection:
        if synchronous not in ("FULL", "NORMAL"):
            raise UsageError('synchronous is "FULL" or "NORMAL"')
        try:
            db = sqlite3.connect(
                os.fspath(path), isolation_level=None, timeout=30.0, check_same_thread=False
            )
            if os.fspath(path) != ":memory:":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the SM-DP+ store: {exc}") from None
        return db

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, synchronous: str = "FULL") -> SqliteSmdpStore:
        """A new store file at ``path`` (:class:`StorageError` if it exists)."""
        if os.fspath(path) == ":memory:":
            db = cls._connect(path, synchronous=synchronous)
            migrate(db)
            return cls(db, None)
        p = Path(path)
        if p.exists():
            raise StorageError(f"{p} exists already")
        _private(p)
        db = cls._connect(p, synchronous=synchronous)
        migrate(db)
        store = cls(db, p)
        store._fix_modes()
        return store

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, synchronous: str = "FULL") -> SqliteSmdpStore:
        """Open an existing store, applying missing migrations."""
        p = Path(path)
        if not p.is_file():
            raise StorageError(f"no SM-DP+ store at {p}")
        db = cls._connect(p, synchronous=synchronous)
        try:
            migrate(db)
        except BaseException:
            db.close()
            raise
        store = cls(db, p)
        store._fix_modes()
        return store

    def _fix_modes(self) -> None:
        if self._path is None:
            return
        for suffix in ("", "-wal", "-shm"):
            companion = Path(str(self._path) + suffix)
            if companion.exists():
                os.chmod(companion, 0o600)

    @property
    def path(self) -> Path | None:
        """The file (``None`` in memory)."""
        return self._path

    @property
    def schema_version(self) -> int:
        """``PRAGMA user_version`` of the file."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> SqliteSmdpStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on an exception); nesting joins."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot start a store transaction: {exc}") from None
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise StorageError(f"cannot commit to the store: {exc}") from None
        self._fix_modes_once()

    _modes_fixed = False

    def _fix_modes_once(self) -> None:
        if not self._modes_fixed:
            self._fix_modes()
            self._modes_fixed = True

    def _exec(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, tuple(args))
        except sqlite3.IntegrityError as exc:
            raise StateError(f"store constraint: {exc}") from None
        except sqlite3.Error as exc:
            raise StorageError(f"store: {exc}") from None

    # -- profile types -------------------------------------------------------

    def put_profile_type(self, profile_type: ProfileType) -> None:
        """Register a new type (:class:`StateError` if the name exists)."""
        with self.transaction():
            if self._exec(
                "SELECT 1 FROM profile_type WHERE name = ?", (profile_type.name,)
            ).fetchone():
                raise StateError(f"profile type {profile_type.name!r} exists already")
            self._exec(
                "INSERT INTO profile_type (name, package, metadata) VALUES (?, ?, ?)",
                (
                    profile_type.name,
                    profile_type.package,
                    json.dumps(profile_type.metadata(), sort_keys=True),
                ),
            )

    def get_profile_type(self, name: str) -> ProfileType | None:
        """The type called ``name``."""
        row = self._exec(
            "SELECT package, metadata FROM profile_type WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        return ProfileType.from_metadata(name, bytes(row[0]), json.loads(row[1]))

    def profile_type_names(self) -> list[str]:
        """Names of all registered types, sorted."""
        return [r[0] for r in self._exec("SELECT name FROM profile_type ORDER BY name")]

    def next_counter(self, profile_type: str) -> int:
        """Increment and return the instance counter of ``profile_type``."""
        with self.transaction():
            self._exec(
                "UPDATE profile_type SET counter = counter + 1 WHERE name = ?", (profile_type,)
            )
            row = self._exec(
                "SELECT counter FROM profile_type WHERE name = ?", (profile_type,)
            ).fetchone()
        if row is None:
            raise StateError(f"no profile type {profile_type!r}")
        return int(row[0])

    # -- inventory -----------------------------------------------------------

    def get_item(self, iccid: str) -> InventoryItem | None:
        """The item with this ICCID."""
        row = self._exec(_SELECT_ITEM + "WHERE iccid = ?", (iccid,)).fetchone()
        return None if row is None else _item(row)

    def find_item(
        self,
        *,
        matching_id: str | None = None,
        transaction_id: bytes | None = None,
        pending_eid: str | None = None,
    ) -> InventoryItem | None:
        """See :meth:`SmdpStore.find_item`."""
        given = [x is not None for x in (matching_id, transaction_id, pending_eid)]
        if sum(given) != 1:
            raise UsageError("find_item takes exactly one criterion")
        args: tuple[object, ...]
        if matching_id is not None:
            sql, args = "WHERE matching_id = ?", (matching_id,)
        elif transaction_id is not None:
            sql, args = "WHERE transaction_id = ?", (transaction_id,)
        else:
            sql = (
                "WHERE eid = ? AND matching_id IS NULL AND state IN ('released', 'downloaded') "
                "ORDER BY created LIMIT 1"
            )
            args = (pending_eid,)
        row = self._exec(_SELECT_ITEM + sql, args).fetchone()
        return None if row is None else _item(row)

    def first_available(self, profile_type: str) -> InventoryItem | None:
        """The oldest available item of ``profile_type``."""
        row = self._exec(
            _SELECT_ITEM + "WHERE profile_type = ? AND state = 'available' "
            "ORDER BY created, iccid LIMIT 1",
            (profile_type,),
        ).fetchone()
        return None if row is None else _item(row)

    def put_item(self, item: InventoryItem) -> None:
        """Insert or replace ``item``."""
        self._exec(
            _INSERT_ITEM,
            (
                item.iccid,
                item.profile_type,
                item.state.value,
                item.imsi,
                item.k,
                item.opc,
                item.eid,
                item.matching_id,
                item.cc_hash,
                int(item.release_flag),
                item.cc_attempts,
                item.download_attempts,
                item.requester,
                item.smds_address,
                item.transaction_id,
                item.euicc_public_key,
                to_micros(item.created),
                to_micros(item.updated),
                item.version,
            ),
        )

    def update_item(self, item: InventoryItem, previous: InventoryItem | None = None) -> bool:
        """Write ``item`` if the stored version is still ``item.version`` (then + 1).

        With ``previous`` only the columns whose values differ are written
        (fewer index entries to rewrite).
        """
        values = _item_values(item)
        if previous is None:
            columns = _UPDATABLE
        else:
            before = _item_values(previous)
            columns = tuple(c for c in _UPDATABLE if values[c] != before[c])
        assignments = "".join(f"{c} = ?, " for c in columns)
        cursor = self._exec(
            "UPDATE item SET " + assignments + "version = version + 1 "  # noqa: S608 - fixed names
            "WHERE iccid = ? AND version = ?",
            (*(values[c] for c in columns), item.iccid, item.version),
        )
        return cursor.rowcount == 1

    def items(self, profile_type: str | None = None) -> list[InventoryItem]:
        """All items (of one type), by ICCID."""
        if profile_type is None:
            rows = self._exec(_SELECT_ITEM + "ORDER BY iccid")
        else:
            rows = self._exec(
                _SELECT_ITEM + "WHERE profile_type = ? ORDER BY iccid",
                (profile_type,),
            )
        return [_item(r) for r in rows.fetchall()]

    def matching_id_known(self, matching_id: str) -> bool:
        """Whether ``matching_id`` is or was ever used."""
        row = self._exec(
            "SELECT 1 FROM item WHERE matching_id = ? UNION ALL "
            "SELECT 1 FROM retired_matching_id WHERE matching_id = ?",
            (matching_id, matching_id),
        ).fetchone()
        return row is not None

    def retire_matching_id(self, matching_id: str) -> None:
        """Remember ``matching_id`` as used."""
        self._exec(
            "INSERT OR IGNORE INTO retired_matching_id (matching_id) VALUES (?)", (matching_id,)
        )

    # -- sessions ------------------------------------------------------------

    def get_session(self, transaction_id: bytes) -> RspSession | None:
        """The session with this transactionId."""
        row = self._exec(
            "SELECT data FROM session WHERE transaction_id = ?", (transaction_id,)
        ).fetchone()
        return None if row is None else RspSession.from_bytes(bytes(row[0]))

    def put_session(self, session: RspSession) -> None:
        """Insert or replace ``session``."""
        self._exec(
            "INSERT OR REPLACE INTO session (transaction_id, stage, expires, data) "
            "VALUES (?, ?, ?, ?)",
            (
                session.transaction_id,
                int(session.stage),
                to_micros(session.expires),
                session.to_bytes(),
            ),
        )

    def insert_session(self, session: RspSession) -> bool:
        """Insert ``session``; ``False`` if its transactionId exists already."""
        cursor = self._exec(
            "INSERT OR IGNORE INTO session (transaction_id, stage, expires, data) "
            "VALUES (?, ?, ?, ?)",
            (
                session.transaction_id,
                int(session.stage),
                to_micros(session.expires),
                session.to_bytes(),
            ),
        )
        return cursor.rowcount == 1

    def update_session(self, session: RspSession, expected: SessionStage) -> bool:
        """Replace the session if it is still at stage ``expected``."""
        cursor = self._exec(
            "UPDATE session SET stage = ?, expires = ?, data = ? "
            "WHERE transaction_id = ? AND stage = ?",
            (
                int(session.stage),
                to_micros(session.expires),
                session.to_bytes(),
                session.transaction_id,
                int(expected),
            ),
        )
        return cursor.rowcount == 1

    def delete_session(self, transaction_id: bytes) -> None:
        """Forget a session."""
        self._exec("DELETE FROM session WHERE transaction_id = ?", (transaction_id,))

    def purge_sessions(self, now: datetime) -> int:
        """Delete sessions expired at ``now``."""
        return self._exec("DELETE FROM session WHERE expires <= ?", (to_micros(now),)).rowcount

    # -- kept bindings -------------------------------------------------------

    def get_binding(self, iccid: str) -> KeptBinding | None:
        """The binding kept for ``iccid``."""
        row = self._exec(
            "SELECT euicc_otpk, smdp_ot_key, created FROM kept_binding WHERE iccid = ?", (iccid,)
        ).fetchone()
        if row is None:
            return None
        return KeptBinding(iccid, bytes(row[0]), bytes(row[1]), from_micros(row[2]))

    def put_binding(self, binding: KeptBinding) -> None:
        """Keep ``binding``."""
        self._exec(
            "INSERT OR REPLACE INTO kept_binding (iccid, euicc_otpk, smdp_ot_key, created) "
            "VALUES (?, ?, ?, ?)",
            (binding.iccid, binding.euicc_otpk, binding.smdp_ot_key, to_micros(binding.created)),
        )

    def delete_binding(self, iccid: str) -> None:
        """Drop the binding of ``iccid``."""
        self._exec("DELETE FROM kept_binding WHERE iccid = ?", (iccid,))

    # -- notifications and events ---------------------------------------------

    def add_notification(self, record: NotificationRecord) -> None:
        """Record a received notification."""
        self._exec(
            "INSERT INTO notification (received, event, iccid, eid, transaction_id, "
            "seq_number, der) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                to_micros(record.received),
                record.event,
                record.iccid,
                record.eid,
                record.transaction_id,
                record.seq_number,
                record.pending_notification,
            ),
        )

    def notifications(self, iccid: str | None = None) -> list[NotificationRecord]:
        """Received notifications (of one ICCID), oldest first."""
        if iccid is None:
            rows = self._exec(_SELECT_NOTE + "ORDER BY id")
        else:
            rows = self._exec(_SELECT_NOTE + "WHERE iccid = ? ORDER BY id", (iccid,))
        return [
            NotificationRecord(
                from_micros(r[0]),
                r[1],
                r[2],
                r[3],
                None if r[4] is None else bytes(r[4]),
                r[5],
                bytes(r[6]),
            )
            for r in rows.fetchall()
        ]

    def add_progress_event(self, event: DownloadProgressEvent) -> None:
        """Queue a HandleDownloadProgressInfo event."""
        self._exec(
            "INSERT INTO progress_event (data, result_data) VALUES (?, ?)",
            (_event_json(event), event.result_data),
        )

    def take_progress_events(self, limit: int) -> list[DownloadProgressEvent]:
        """Remove and return up to ``limit`` queued events, oldest first."""
        if limit < 1:
            return []
        with self.transaction():
            rows = self._exec(
                "SELECT id, data, result_data FROM progress_event ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
            if rows:
                self._exec("DELETE FROM progress_event WHERE id <= ?", (rows[-1][0],))
        return [_event_from(r[0], r[1], None if r[2] is None else bytes(r[2])) for r in rows]
