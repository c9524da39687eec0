"""Subscriber storage behind a small interface; in memory or SQLite.

:class:`SqliteSubscriberStore`: WAL journal, schema version in
``PRAGMA user_version`` with forward migrations, one transaction per
change, the file created with mode 0600 (it holds K and OPc).

Schema history: version 1 had no ``res_length`` column (every test-algorithm
RES was 16 octets); version 2 adds it.  The ``pending`` state of a device
change's new subscriber is a new value of the text ``state`` column: no
schema change.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from rspfed.errors import StorageError, UsageError
from rspfed.network.auc import Subscriber
from rspfed.network.service import ServicePolicy

__all__ = [
    "SCHEMA_VERSION",
    "MemorySubscriberStore",
    "SqliteSubscriberStore",
    "SubscriberStore",
]

SCHEMA_VERSION = 2


class SubscriberStore(Protocol):
    """Where the AuC keeps subscribers; each :meth:`put` is atomic."""

    def get(self, imsi: str) -> Subscriber | None:
        """The subscriber for ``imsi``, or ``None``."""
        ...

    def put(self, subscriber: Subscriber) -> None:
        """Insert or replace ``subscriber`` (all or nothing)."""
        ...

    def put_many(self, subscribers: Sequence[Subscriber]) -> None:
        """Insert or replace several subscribers in one transaction (all or nothing)."""
        ...

    def imsis(self) -> list[str]:
        """Every stored IMSI, sorted."""
        ...


class MemorySubscriberStore:
    """A dictionary; for tests and throw-away cores."""

    def __init__(self) -> None:
        self._rows: dict[str, Subscriber] = {}

    def __repr__(self) -> str:
        return f"MemorySubscriberStore({len(self._rows)} subscribers)"

    def get(self, imsi: str) -> Subscriber | None:
        """The subscriber for ``imsi``, or ``None``."""
        return self._rows.get(imsi)

    def put(self, subscriber: Subscriber) -> None:
        """Insert or replace."""
        self._rows[subscriber.imsi] = subscriber

    def put_many(self, subscribers: Sequence[Subscriber]) -> None:
        """Insert or replace several at once."""
        self._rows.update({s.imsi: s for s in subscribers})

    def imsis(self) -> list[str]:
        """Every stored IMSI, sorted."""
        return sorted(self._rows)


_V1 = """
CREATE TABLE subscribers (
    imsi TEXT PRIMARY KEY,
    k BLOB NOT NULL,
    opc BLOB NOT NULL,
    algorithm TEXT NOT NULL,
    amf BLOB NOT NULL,
    state TEXT NOT NULL,
    seq_he INTEGER NOT NULL,
    ind INTEGER NOT NULL,
    policy TEXT NOT NULL
)
"""

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (_V1,),
    2: ("ALTER TABLE subscribers ADD COLUMN res_length INTEGER NOT NULL DEFAULT 16",),
}
"""Statements that bring a store from version ``n - 1`` to ``n``."""

_SELECT = (
    "SELECT imsi, k, opc, algorithm, amf, state, seq_he, ind, policy, res_length"
    " FROM subscribers WHERE imsi = ?"
)
_UPSERT = (
    "INSERT OR REPLACE INTO subscribers"
    " (imsi, k, opc, algorithm, amf, state, seq_he, ind, policy, res_length)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _policy_text(policy: ServicePolicy) -> str:
    return json.dumps(
        {
            "device_class": policy.device_class.value,
            "plan_services": sorted(s.value for s in policy.plan_services),
        }
    )


def _policy(text: str) -> ServicePolicy:
    data = json.loads(text)
    return ServicePolicy(data["device_class"], data["plan_services"])


class SqliteSubscriberStore:
    """Subscribers in one SQLite file (see the module docstring); ``":memory:"``
    keeps them in a private in-memory database instead.

    ``fault`` is a test hook called with a label before each write statement
    and before each commit; whatever it raises aborts the transaction.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, fault: Callable[[str], None] | None = None
    ) -> None:
        self._path = Path(path)
        self._fault = fault
        memory = os.fspath(path) == ":memory:"
        if not memory and not self._path.exists():
            try:
                os.close(os.open(self._path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise StorageError("cannot create the subscriber store") from exc
        try:
            self._db = sqlite3.connect(":memory:" if memory else self._path, isolation_level=None)
            if not memory:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate()
        except sqlite3.Error as exc:
            raise StorageError("cannot open the subscriber store") from exc

    def __repr__(self) -> str:
        return f"SqliteSubscriberStore({str(self._path)!r})"

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def _hook(self, label: str) -> None:
        if self._fault is not None:
            self._fault(label)

    def _transaction(self) -> _Tx:
        return _Tx(self)

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"subscriber store schema {version} is newer than this version knows"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._transaction() as db:
                for statement in _MIGRATIONS[target]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")

    @property
    def schema_version(self) -> int:
        """The schema version of the open file."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def get(self, imsi: str) -> Subscriber | None:
        """The subscriber for ``imsi``, or ``None``."""
        try:
            row = self._db.execute(_SELECT, (imsi,)).fetchone()
        except sqlite3.Error as exc:
            raise StorageError("cannot read the subscriber store") from exc
        if row is None:
            return None
        try:
            return Subscriber(
                imsi=row[0],
                k=bytes(row[1]),
                opc=bytes(row[2]),
                algorithm=row[3],
                amf=bytes(row[4]),
                state=row[5],
                seq_he=int(row[6]),
                ind=int(row[7]),
                policy=_policy(row[8]),
                res_length=int(row[9]),
            )
        except (UsageError, ValueError, KeyError, TypeError) as exc:
            raise StorageError("malformed subscriber record") from exc

    def put(self, subscriber: Subscriber) -> None:
        """Insert or replace, in one transaction."""
        self.put_many((subscriber,))

    def put_many(self, subscribers: Sequence[Subscriber]) -> None:
        """Insert or replace several subscribers in one ``BEGIN IMMEDIATE`` .. ``COMMIT``."""
        with self._transaction() as db:
            for s in subscribers:
                db.execute(
                    _UPSERT,
                    (
                        s.imsi,
                        s.k,
                        s.opc,
                        s.algorithm.value,
                        s.amf,
                        s.state.value,
                        s.seq_he,
                        s.ind,
                        _policy_text(s.policy),
                        s.res_length,
                    ),
                )

    def imsis(self) -> list[str]:
        """Every stored IMSI, sorted."""
        try:
            rows = self._db.execute("SELECT imsi FROM subscribers ORDER BY imsi").fetchall()
        except sqlite3.Error as exc:
            raise StorageError("cannot read the subscriber store") from exc
        return [str(r[0]) for r in rows]


class _Tx:
    """``BEGIN IMMEDIATE`` .. ``COMMIT``, rolled back on any exception."""

    def __init__(self, store: SqliteSubscriberStore) -> None:
        self._store = store

    def __enter__(self) -> _Cursor:
        try:
            self._store._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageError("cannot write the subscriber store") from exc
        return _Cursor(self._store)

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        db = self._store._db
        if exc is None:
            try:
                self._store._hook("commit")
                db.execute("COMMIT")
                return
            except BaseException as failure:
                self._rollback()
                if isinstance(failure, sqlite3.Error):
                    raise StorageError("cannot write the subscriber store") from failure
                raise
        self._rollback()
        if isinstance(exc, sqlite3.Error):
            raise StorageError("cannot write the subscriber store") from exc

    def _rollback(self) -> None:
        db = self._store._db
        if db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise StorageError("cannot roll back the subscriber store") from exc


class _Cursor:
    def __init__(self, store: SqliteSubscriberStore) -> None:
        self._store = store

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> None:
        self._store._hook(sql.split()[0].lower())
        self._store._db.execute(sql, params)
