"""Durable state of one eUICC: a single SQLite file.

What is kept
    The profile state (:class:`rspfed.euicc._state.EuiccState`: profiles,
    pending notifications and their counter, the RAT, the configured
    addresses), each profile's content (the unprotected profile package the
    ISD-R installed), the eUICC's private keys and certificates, and small
    configuration values (EID, trusted CI certificates).  RSP *session* state
    (eUICC challenge, transaction id, one-time keys) is never written: it
    lives in the ISD-R's memory and dies with it.

Atomicity
    Every state change is one SQLite transaction (:meth:`Store.commit`): the
    difference between the state the store holds and the new one is written
    between ``BEGIN IMMEDIATE`` and ``COMMIT``.  An installation commits once:
    the profile, its content and its ProfileInstallationResult notification
    together.  On any failure the transaction is rolled back, the in-memory
    state stays the old one and :class:`~rspfed.errors.StorageError` is
    raised; a process killed mid-commit leaves the file at the state before
    (SQLite's journal) -- the fault-injection tests check both at every
    virtual-machine step of the commit.  The journal is WAL with
    ``synchronous=FULL`` (a commit survives power loss).

Schema versions
    ``PRAGMA user_version`` holds the schema version; :data:`MIGRATIONS` is
    the list of steps, step *i* taking a version-*i* file to *i + 1*, each in
    its own transaction.  Opening an older file migrates it; a newer one is
    refused (:class:`~rspfed.errors.StorageError`).

Secrets at rest
    The file and its ``-wal``/``-shm`` companions are created with mode
    ``0600``.  Private keys are PKCS#8, encrypted with the store passphrase
    when one is given (``BestAvailableEncryption``: AES-256-CBC under
    PBKDF2/scrypt as ``cryptography`` chooses).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import StorageError, UsageError
from rspfed.euicc._state import (
    EuiccState,
    Notification,
    NotificationConfig,
    OperatorId,
    Profile,
    ProfileRef,
    ProfileStatus,
    RatRule,
)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Store",
    "migrate",
    "profile_from_json",
    "profile_to_json",
]

_V1 = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE profiles (
    iccid BLOB PRIMARY KEY,
    position INTEGER NOT NULL,
    status TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE TABLE notifications (
    seq_number INTEGER PRIMARY KEY,
    event TEXT NOT NULL,
    address TEXT NOT NULL,
    iccid BLOB,
    pending BLOB NOT NULL
);
CREATE TABLE keys (name TEXT PRIMARY KEY, pkcs8 BLOB NOT NULL, encrypted INTEGER NOT NULL);
CREATE TABLE certificates (name TEXT PRIMARY KEY, der BLOB NOT NULL);
"""

_V2 = """
CREATE TABLE profile_content (
    iccid BLOB PRIMARY KEY REFERENCES profiles(iccid) ON DELETE CASCADE,
    content BLOB NOT NULL
);
"""

_V3 = """
CREATE TABLE card_state (
    iccid BLOB PRIMARY KEY REFERENCES profiles(iccid) ON DELETE CASCADE,
    state TEXT NOT NULL
);
"""

_V4 = """
CREATE TABLE card_delta (
    iccid BLOB NOT NULL REFERENCES profiles(iccid) ON DELETE CASCADE,
    item TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (iccid, item)
);
"""

MIGRATIONS: Sequence[str] = (_V1, _V2, _V3, _V4)
"""Schema steps: ``MIGRATIONS[i]`` takes a version-``i`` file to version ``i + 1``.

Version 1: meta, profiles, notifications, keys, certificates.
Version 2: profile content (the installed package) in its own table.
Version 3: the card state (files, PIN counters, SQN arrays) of each profile as JSON.
Version 4: card state changes as items (``card_delta``: the current value of each
file, PIN or AKA parameter set that changed since the JSON in ``card_state``
was written); a version-3 file has none, its JSON is the whole state.
"""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes."""


def migrate(connection: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring ``connection``'s database to schema version ``target``; return the version found.

    Each step runs in its own transaction together with its ``user_version``.
    """
    found = int(connection.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise StorageError(f"store schema version {found} is newer than {SCHEMA_VERSION}")
    for version in range(found, target):
        try:
            connection.execute("BEGIN IMMEDIATE")
            for statement in MIGRATIONS[version].split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            connection.execute("ROLLBACK")
            raise StorageError(f"migration to schema version {version + 1} failed") from exc
    return found


# --------------------------------------------------------------------------
# Value <-> JSON


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def _unhex(value: Any) -> bytes | None:
    return None if value is None else bytes.fromhex(str(value))


def profile_to_json(profile: Profile) -> str:
    """A profile's metadata (everything but ICCID and status) as JSON text."""
    owner = profile.profile_owner
    return json.dumps(
        {
            "isdp_aid": profile.isdp_aid.hex(),
            "service_provider_name": profile.service_provider_name,
            "profile_name": profile.profile_name,
            "nickname": profile.nickname,
            "icon_type": profile.icon_type,
            "icon": _hex(profile.icon),
            "profile_class": profile.profile_class,
            "notification_config": [
                [sorted(c.events), c.address] for c in profile.notification_config
            ],
            "profile_owner": None
            if owner is None
            else [owner.mcc_mnc.hex(), _hex(owner.gid1), _hex(owner.gid2)],
            "ppr": sorted(profile.ppr),
            "dp_oid": profile.dp_oid,
        },
        sort_keys=True,
    )


def profile_from_json(iccid: bytes, status: ProfileStatus, text: str) -> Profile:
    """The inverse of :func:`profile_to_json`."""
    data = json.loads(text)
    owner = data["profile_owner"]
    return Profile(
        iccid=iccid,
        isdp_aid=bytes.fromhex(data["isdp_aid"]),
        status=status,
        service_provider_name=data["service_provider_name"],
        profile_name=data["profile_name"],
        nickname=data["nickname"],
        icon_type=data["icon_type"],
        icon=_unhex(data["icon"]),
        profile_class=int(data["profile_class"]),
        notification_config=tuple(
            NotificationConfig(frozenset(events), address)
            for events, address in data["notification_config"]
        ),
        profile_owner=None
        if owner is None
        else OperatorId(bytes.fromhex(owner[0]), _unhex(owner[1]), _unhex(owner[2])),
        ppr=frozenset(data["ppr"]),
        dp_oid=data["dp_oid"],
    )


def _rat_to_json(rat: tuple[RatRule, ...]) -> str:
    return json.dumps(
        [
            [
                sorted(r.ppr_ids),
                [[o.mcc_mnc.hex(), _hex(o.gid1), _hex(o.gid2)] for o in r.allowed_operators],
                r.consent_required,
            ]
            for r in rat
        ]
    )


def _rat_from_json(text: str) -> tuple[RatRule, ...]:
    return tuple(
        RatRule(
            frozenset(ids),
            tuple(OperatorId(bytes.fromhex(m), _unhex(g1), _unhex(g2)) for m, g1, g2 in ops),
            bool(consent),
        )
        for ids, ops, consent in json.loads(text)
    )


def _private(path: Path) -> None:
    """Create ``path`` (if absent) with mode 0600 and make sure it has that mode."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


LOCK_WAIT = 5.0
"""Seconds :meth:`Store.open` waits for another process to release a store."""

_held: dict[tuple[int, int], list[int]] = {}  # (st_dev, st_ino) -> [fd, users]
_held_lock = threading.Lock()


def _lock(path: Path) -> tuple[int, int]:
    """An exclusive ``flock`` on the store file: one process drives an eUICC at a time.

    A software eUICC, like a real one, runs one command at a time: two
    processes each holding the card state in memory (an LPA download and
    another, or a vpcd server) would interleave sessions and hand out the
    same notification sequence numbers.  The lock belongs to the process
    (stores opened twice in one process share it) and is held until the last
    :meth:`Store.close`; a process that dies releases it.  Returns the key to
    release with :func:`_unlock`.
    """
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise StorageError(f"cannot open store {path.name}: {exc.strerror}") from None
    key = (stat.st_dev, stat.st_ino)
    with _held_lock:
        if key in _held:
            _held[key][1] += 1
            return key
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise StorageError(f"cannot open store {path.name}: {exc.strerror}") from None
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise StorageError(
                    f"store {path.name} is in use by another process (one eUICC, one user)"
                ) from None
            time.sleep(0.05)
    with _held_lock:
        if key in _held:  # another thread of this process won meanwhile
            _held[key][1] += 1
            os.close(fd)
        else:
            _held[key] = [fd, 1]
    return key


def _unlock(key: tuple[int, int] | None) -> None:
    if key is None:
        return
    with _held_lock:
        entry = _held.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del _held[key]
            with contextlib.suppress(OSError):
                os.close(entry[0])  # closing the descriptor releases the flock


class Store:
    """One eUICC's SQLite store.  Not thread-safe; one process at a time (an
    exclusive lock on the file, taken by :meth:`create`/:meth:`open`).

    Use :meth:`create` for a new file and :meth:`open` for an existing one.
    ``state`` is the committed :class:`EuiccState`.
    """

    def __init__(
        self, connection: sqlite3.Connection, path: Path | None, passphrase: bytes | None
    ) -> None:
        self._db = connection
        self._path = path
        self._lock_key: tuple[int, int] | None = None
        self._passphrase = passphrase
        self._rollback_due = False  # a failed write's ROLLBACK was itself interrupted
        self._reload_due = False  # a failed write may have committed after all
        self._state = self._load()
        self._txn = int(self._meta("txn") or b"0")

    # -- opening ---------------------------------------------------------

    @classmethod
    def _connect(cls, path: str | os.PathLike[str]) -> tuple[sqlite3.Connection, Path | None]:
        if str(path) == ":memory:":
            return sqlite3.connect(":memory:", isolation_level=None), None
        p = Path(path)
        for suffix in ("", "-wal", "-shm"):
            companion = p.with_name(p.name + suffix)
            if suffix == "" or companion.exists():
                _private(companion)
        try:
            db = sqlite3.connect(p, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open store {p.name}: {exc}") from exc
        return db, p

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        eid: bytes,
        passphrase: bytes | None = None,
    ) -> Store:
        """Create a new store for the eUICC ``eid`` (the file must not exist)."""
        if str(path) != ":memory:" and Path(path).exists():
            raise UsageError(f"store {Path(path).name} already exists")
        db, p = cls._connect(path)
        lock = None if p is None else _lock(p)
        migrate(db)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO meta VALUES ('eid', ?)", (eid,))
            db.execute("INSERT INTO meta VALUES ('next_seq', ?)", (b"1",))
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            db.execute("ROLLBACK")
            raise StorageError("cannot initialise store") from exc
        store = cls(db, p, passphrase)
        store._lock_key = lock
        store._fix_modes()
        return store

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, passphrase: bytes | None = None) -> Store:
        """Open (and if needed migrate) an existing store."""
        if not Path(path).is_file():
            raise StorageError(f"no store at {Path(path).name}")
        db, p = cls._connect(path)
        try:
            lock = None if p is None else _lock(p)
        except StorageError:
            db.close()
            raise
        try:
            migrate(db)
            store = cls(db, p, passphrase)
        except sqlite3.Error as exc:
            db.close()
            _unlock(lock)
            raise StorageError(f"store {Path(path).name} is unreadable: {exc}") from exc
        except StorageError:
            db.close()
            _unlock(lock)
            raise
        store._lock_key = lock
        store._fix_modes()
        return store

    def _fix_modes(self) -> None:
        if self._path is None:
            return
        for suffix in ("", "-wal", "-shm"):
            companion = self._path.with_name(self._path.name + suffix)
            if companion.exists():
                os.chmod(companion, 0o600)

    def close(self) -> None:
        """Close the database and release the store's lock."""
        self._db.close()
        _unlock(self._lock_key)
        self._lock_key = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection (for diagnostics and fault-injection tests)."""
        return self._db

    # -- reading ---------------------------------------------------------

    def _settle(self) -> None:
        """Finish the rollback of a failed write before anything else reads or writes.

        (A fault that interrupts the ROLLBACK itself would otherwise leave the
        failed write's rows visible to this connection until the next write.)
        """
        if self._rollback_due:
            try:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise StorageError(f"store rollback failed: {exc}") from exc
            self._rollback_due = False
        if self._reload_due:
            self._reload_due = False
            try:
                self._state = self._load()
                self._txn = int(self._meta("txn") or b"0")
            except BaseException:
                self._reload_due = True
                raise

    def _landed(self, txn: int) -> bool | None:
        """Whether the write numbered ``txn`` is in the file (``None``: cannot tell now)."""
        try:
            rows = self._db.execute("SELECT value FROM meta WHERE name = 'txn'").fetchall()
        except sqlite3.Error:
            return None
        return bool(rows) and int(rows[0][0]) == txn

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        self._settle()
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"store read failed: {exc}") from exc

    def _meta(self, name: str) -> bytes | None:
        rows = self._read("SELECT value FROM meta WHERE name = ?", (name,))
        return None if not rows else bytes(rows[0][0])

    def _load(self) -> EuiccState:
        profiles = tuple(
            profile_from_json(bytes(iccid), ProfileStatus(status), metadata)
            for iccid, status, metadata in self._read(
                "SELECT iccid, status, metadata FROM profiles ORDER BY position"
            )
        )
        notifications = tuple(
            Notification(
                seq, event, address, None if iccid is None else bytes(iccid), bytes(pending)
            )
            for seq, event, address, iccid, pending in self._read(
                "SELECT seq_number, event, address, iccid, pending FROM notifications"
                " ORDER BY seq_number"
            )
        )
        rat = self._meta("rat")
        dp = self._meta("default_dp_address")
        ds = self._meta("root_ds_address")
        return EuiccState(
            profiles=profiles,
            notifications=notifications,
            next_seq=int(self._meta("next_seq") or b"1"),
            rat=() if rat is None else _rat_from_json(rat.decode()),
            default_dp_address=None if dp is None else dp.decode(),
            root_ds_address=None if ds is None else ds.decode(),
        )

    @property
    def state(self) -> EuiccState:
        """The committed profile state."""
        if self._reload_due:
            with contextlib.suppress(StorageError, sqlite3.Error):
                self._settle()  # else retried at the next use
        return self._state

    @property
    def eid(self) -> bytes:
        """The eUICC's EID (16 octets)."""
        value = self._meta("eid")
        if value is None:
            raise StorageError("store has no EID")
        return value

    def content(self, iccid: bytes) -> bytes:
        """The installed content of profile ``iccid``."""
        rows = self._read("SELECT content FROM profile_content WHERE iccid = ?", (iccid,))
        if not rows:
            raise StorageError("no content for that profile")
        return bytes(rows[0][0])

    # -- writing ---------------------------------------------------------

    def _transaction(self, work: Callable[[sqlite3.Connection], object]) -> None:
        """Run ``work`` in one transaction; on failure nothing of it is kept.

        Every transaction also numbers itself (meta ``txn``): when SQLite
        reports an error but the transaction is no longer open (an error
        during COMMIT), the number tells whether it landed; if it did, the
        write succeeded.  If that cannot be read either, the committed state
        is reloaded from the file before the next use.
        """
        self._settle()
        txn = self._txn + 1
        committing = False
        try:
            self._db.execute("BEGIN IMMEDIATE")
            work(self._db)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('txn', ?)", (b"%d" % txn,))
            committing = True
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                self._rollback_due = self._db.in_transaction
            elif committing:  # nothing before COMMIT can have landed
                landed = self._landed(txn)
                if landed is None:
                    # SQLite reports an interrupt that comes after COMMIT has made the
                    # transaction durable (it ended; an interrupt before that keeps it open)
                    code = getattr(exc, "sqlite_errorcode", None)
                    landed = True if code == sqlite3.SQLITE_INTERRUPT else None
                if landed:
                    self._txn = txn
                    return
                self._reload_due = landed is None
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"store write failed: {exc}") from exc
            raise
        self._txn = txn

    def commit(self, new: EuiccState, *, contents: Mapping[bytes, bytes] | None = None) -> None:
        """Make ``new`` the committed state in one transaction.

        ``contents`` gives the content of newly installed profiles (by ICCID).
        On failure nothing is written and :attr:`state` is unchanged.
        """
        old = self._state
        contents = contents or {}
        old_profiles = {p.iccid: (i, p) for i, p in enumerate(old.profiles)}
        new_iccids = {p.iccid for p in new.profiles}
        for p in new.profiles:
            if p.iccid not in old_profiles and p.iccid not in contents:
                raise UsageError("a newly installed profile needs its content")

        def work(db: sqlite3.Connection) -> None:
            for iccid in old_profiles.keys() - new_iccids:
                db.execute("DELETE FROM profiles WHERE iccid = ?", (iccid,))
            for position, p in enumerate(new.profiles):
                before = old_profiles.get(p.iccid)
                if before == (position, p):
                    continue
                db.execute(
                    "INSERT INTO profiles VALUES (?, ?, ?, ?) ON CONFLICT(iccid) DO UPDATE"
                    " SET position = excluded.position, status = excluded.status,"
                    " metadata = excluded.metadata",
                    (p.iccid, position, p.status.value, profile_to_json(p)),
                )
                if before is None:
                    db.execute(
                        "INSERT INTO profile_content VALUES (?, ?)",
                        (p.iccid, contents[p.iccid]),
                    )
            old_seqs = {n.seq_number for n in old.notifications}
            new_seqs = {n.seq_number for n in new.notifications}
            for seq in old_seqs - new_seqs:
                db.execute("DELETE FROM notifications WHERE seq_number = ?", (seq,))
            for n in new.notifications:
                if n.seq_number not in old_seqs:
                    db.execute(
                        "INSERT INTO notifications VALUES (?, ?, ?, ?, ?)",
                        (n.seq_number, n.event, n.address, n.iccid, n.pending),
                    )
            meta: dict[str, bytes | None] = {}
            if new.next_seq != old.next_seq:
                meta["next_seq"] = str(new.next_seq).encode()
            if new.rat != old.rat:
                meta["rat"] = _rat_to_json(new.rat).encode()
            if new.default_dp_address != old.default_dp_address:
                meta["default_dp_address"] = (
                    None if new.default_dp_address is None else new.default_dp_address.encode()
                )
            if new.root_ds_address != old.root_ds_address:
                meta["root_ds_address"] = (
                    None if new.root_ds_address is None else new.root_ds_address.encode()
                )
            for name, value in meta.items():
                if value is None:
                    db.execute("DELETE FROM meta WHERE name = ?", (name,))
                else:
                    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

        self._transaction(work)
        self._state = new

    def put_card_state(self, iccid: bytes, state: str) -> None:
        """Keep the whole card state (JSON text) of installed profile ``iccid``.

        One transaction; the profile's change items (:meth:`put_card_delta`)
        are dropped in it, as ``state`` includes them.
        """
        if self._state.find(ProfileRef(iccid=iccid)) is None:
            raise UsageError("no such profile")

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO card_state VALUES (?, ?) ON CONFLICT(iccid) DO UPDATE"
                " SET state = excluded.state",
                (iccid, state),
            )
            db.execute("DELETE FROM card_delta WHERE iccid = ?", (iccid,))

        self._transaction(work)

    def put_card_delta(self, iccid: bytes, items: Mapping[str, bytes]) -> None:
        """Record changed card state items of profile ``iccid`` in one transaction.

        Each item (a name such as a file path, and its current value) replaces
        any earlier value of that item; the card state is the JSON of
        :meth:`card_state` with every item of :meth:`card_delta` applied (see
        :mod:`rspfed.euicc.euicc` for the item names and encodings).  Needs a
        whole state written first (:meth:`put_card_state`).
        """
        if not self._read("SELECT 1 FROM card_state WHERE iccid = ?", (iccid,)):
            raise UsageError("no card state to change for that profile")
        rows = [(iccid, str(name), bytes(value)) for name, value in items.items()]
        if rows:
            self._transaction(
                lambda db: db.executemany(
                    "INSERT INTO card_delta VALUES (?, ?, ?) ON CONFLICT(iccid, item) DO UPDATE"
                    " SET value = excluded.value",
                    rows,
                )
            )

    def card_state(self, iccid: bytes) -> str | None:
        """The whole card state (JSON text) last written for profile ``iccid``, or ``None``."""
        rows = self._read("SELECT state FROM card_state WHERE iccid = ?", (iccid,))
        return None if not rows else str(rows[0][0])

    def card_delta(self, iccid: bytes) -> dict[str, bytes]:
        """The card state items of profile ``iccid`` changed since :meth:`card_state`."""
        rows = self._read("SELECT item, value FROM card_delta WHERE iccid = ?", (iccid,))
        return {str(name): bytes(value) for name, value in rows}

    def put_meta(self, name: str, value: bytes) -> None:
        """Set a configuration value (one transaction)."""
        self._transaction(
            lambda db: db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))
        )

    def get_meta(self, name: str) -> bytes | None:
        """A configuration value, or ``None``."""
        return self._meta(name)

    def put_certificate(self, name: str, der: bytes) -> None:
        """Store a certificate under ``name`` (one transaction)."""
        self._transaction(
            lambda db: db.execute("INSERT OR REPLACE INTO certificates VALUES (?, ?)", (name, der))
        )

    def certificate(self, name: str) -> bytes | None:
        """The certificate stored under ``name``, or ``None``."""
        rows = self._read("SELECT der FROM certificates WHERE name = ?", (name,))
        return None if not rows else bytes(rows[0][0])

    def certificate_names(self) -> list[str]:
        """Names of the stored certificates."""
        return [str(r[0]) for r in self._read("SELECT name FROM certificates ORDER BY name")]

    def put_private_key(self, name: str, key: ec.EllipticCurvePrivateKey) -> None:
        """Store a private key (PKCS#8, encrypted when the store has a passphrase)."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(self._passphrase)
            if self._passphrase
            else serialization.NoEncryption()
        )
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, encryption
        )
        encrypted = 1 if self._passphrase else 0
        self._transaction(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO keys VALUES (?, ?, ?)", (name, der, encrypted)
            )
        )

    def private_key(self, name: str) -> ec.EllipticCurvePrivateKey:
        """Load the private key ``name`` (the store passphrase decrypts it)."""
        rows = self._read("SELECT pkcs8, encrypted FROM keys WHERE name = ?", (name,))
        row = rows[0] if rows else None
        if row is None:
            raise StorageError(f"no private key {name!r} in the store")
        if row[1] and not self._passphrase:
            raise StorageError("the store's keys are encrypted: a passphrase is needed")
        try:
            key = serialization.load_der_private_key(
                bytes(row[0]), self._passphrase if row[1] else None
            )
        except (ValueError, TypeError) as exc:
            raise StorageError(f"private key {name!r} cannot be decrypted") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise StorageError(f"private key {name!r} is not an EC key")
        return key

    def key_names(self) -> list[str]:
        """Names of the stored private keys."""
        return [str(r[0]) for r in self._read("SELECT name FROM keys ORDER BY name")]
