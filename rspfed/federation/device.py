"""The device store: what one device's LPA keeps for federation (``--device STORE``).

Separate from the eUICC's store (:mod:`rspfed.euicc.store`): the eUICC holds
profiles and the eUICC's own keys; the device store holds the *device's*
relation to the operator.

What is kept
    A :class:`DeviceRecord` (operator URL, subscription, device id, role,
    EID, class, name); the device's P-256 key -- the primary's federation key
    or a secondary's device key -- and a *pending* key during rotation; the
    join tickets (:class:`PendingJoin`) of the cloud enrolment path, until
    their activation code is collected.

Key rotation
    :meth:`DeviceStore.generate_key` stores a new key as *pending* (replacing
    any earlier pending key) and returns it; the caller registers its public
    key with the operator, then :meth:`DeviceStore.commit_key` makes it the
    current key in one transaction.  Until then :meth:`DeviceStore.private_key`
    is the old key, so a registration that fails (or a crash) loses nothing.

Atomicity
    Every write is one SQLite transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``);
    the journal is WAL with ``synchronous=FULL``.  A write that fails, or a
    process killed during one, leaves the store at the state before it (or,
    for a failure inside ``COMMIT`` after it became durable, the state after),
    never a mix; :class:`~rspfed.errors.StorageError` is raised.  Nothing is
    cached but decrypted keys, so reads always show the file's state.

Schema versions
    ``PRAGMA user_version`` holds the schema version and ``PRAGMA
    application_id`` marks the file as a device store (:data:`APPLICATION_ID`).
    :data:`MIGRATIONS` is the list of steps (step *i* takes version *i* to
    *i + 1*, each in its own transaction); opening an older file (version 0: an
    empty file) migrates it, a newer one is refused with
    :class:`~rspfed.errors.StorageError`, and so is another SQLite database.

Secrets at rest
    The file and its ``-wal``/``-shm`` companions have mode ``0600`` (created
    so, and set so on every open).  Keys are PKCS#8 PEM, encrypted with the
    store passphrase when one is given (``BestAvailableEncryption``); a wrong
    or missing passphrase is a :class:`~rspfed.errors.UsageError` raised when
    a key is loaded.  A companion's psk (:class:`CompanionRecord`) is sealed
    with the same passphrase (scrypt + AES-256-GCM) when one is given, and so
    are the device-change journal's secret, activation code and carried
    companions (:class:`ChangeJournal`).  Join
    secrets are stored as given (protected by the file mode).
    Neither keys nor secrets appear in ``repr``, messages or logs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
import stat
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from rspfed._keyfiles import load_private_key_pem, private_key_pem
from rspfed.errors import StateError, StorageError, UsageError
from rspfed.federation.token import DeviceClass

__all__ = [
    "APPLICATION_ID",
    "CHANGE_PHASES",
    "COMPANION_ROLES",
    "MIGRATIONS",
    "ROLES",
    "SCHEMA_VERSION",
    "ChangeJournal",
    "CompanionRecord",
    "DeviceRecord",
    "DeviceStore",
    "PendingJoin",
    "migrate",
]

_log = logging.getLogger(__name__)

APPLICATION_ID = 0x72737064
"""``PRAGMA application_id`` of a device store (ASCII ``rspd``)."""

ROLES = frozenset({"primary", "secondary"})
"""Allowed :attr:`DeviceRecord.role` values (those of the operator's ``DeviceRole``)."""

COMPANION_ROLES = frozenset({"watch", "phone"})
"""Allowed :attr:`CompanionRecord.peer_role` values: what the *other* device is."""

_V1 = f"""
PRAGMA application_id = {APPLICATION_ID};
CREATE TABLE record (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    operator_url TEXT NOT NULL,
    subscription_id TEXT,
    device_id TEXT,
    role TEXT,
    eid TEXT,
    device_class TEXT,
    name TEXT
);
CREATE TABLE keys (
    slot TEXT PRIMARY KEY CHECK (slot IN ('current', 'pending')),
    pem BLOB NOT NULL
);
CREATE TABLE joins (
    request_id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    expires TEXT NOT NULL
);
"""

_V2 = """
CREATE TABLE companion (
    reconnection_id BLOB PRIMARY KEY CHECK (length(reconnection_id) = 16),
    eid TEXT NOT NULL,
    name TEXT NOT NULL,
    peer_role TEXT NOT NULL,
    transport TEXT NOT NULL,
    psk BLOB NOT NULL,
    paired TEXT NOT NULL
)
"""

_V3 = """
CREATE TABLE device_change (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    side TEXT NOT NULL CHECK (side IN ('old', 'new')),
    change_id TEXT NOT NULL,
    phase TEXT NOT NULL,
    operator_url TEXT NOT NULL,
    new_eid TEXT,
    old_iccid TEXT,
    new_iccid TEXT,
    role TEXT,
    subscription_id TEXT,
    device_id TEXT,
    replaced_iccid TEXT,
    sealed BLOB NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
)
"""

MIGRATIONS: Sequence[str] = (_V1, _V2, _V3)
"""Schema steps: ``MIGRATIONS[i]`` (SQL statements separated by ``;``) takes a
version-``i`` file to version ``i + 1``.

Version 1: the record, the current and pending keys, the join tickets.
Version 2: the companion records (issue H: a watch and the phone it is paired with).
Version 3: the device-change journal (issue I: :class:`ChangeJournal`, one row).
"""

CHANGE_PHASES: dict[str, tuple[str, ...]] = {
    "old": ("requested", "order_sent", "switched", "old_deleted", "done", "cancelled"),
    "new": (
        "order_received",
        "downloaded",
        "enabled",
        "switched",
        "registered",
        "done",
        "cancelled",
    ),
}
"""The journal phases of each side of a device change (:class:`ChangeJournal`), in order
(``cancelled`` ends a change that did not switch)."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code writes."""

_MAX_TEXT = 256
_MAX_URL = 2048
_EID = re.compile(r"[0-9]{32}", re.ASCII)


def migrate(connection: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Bring the database to version ``len(migrations)``; return the version found.

    Each step runs in its own transaction together with its ``user_version``,
    so a failed step leaves the file at the previous version
    (:class:`~rspfed.errors.StorageError`).  A file newer than
    ``len(migrations)``, or a database that is not a device store, is refused
    with :class:`~rspfed.errors.StorageError`.
    """
    target = len(migrations)
    try:
        found = int(connection.execute("PRAGMA user_version").fetchone()[0])
        app = int(connection.execute("PRAGMA application_id").fetchone()[0])
        tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.Error as exc:
        raise StorageError(f"not a readable device store: {exc}") from exc
    if (found == 0 and tables) or (found > 0 and app != APPLICATION_ID):
        raise StorageError("the file is an SQLite database but not an rspfed device store")
    if found > target:
        raise StorageError(f"device store schema version {found} is newer than {target}")
    for version in range(found, target):
        try:
            connection.execute("BEGIN IMMEDIATE")
            for statement in migrations[version].split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            if connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
            raise StorageError(
                f"device store migration to schema version {version + 1} failed"
            ) from exc
    return found


# --------------------------------------------------------------------------
# Values


def _optional_text(limit: int) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is None:
            return
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            raise UsageError(f"{attribute.name} must be text of 1 to {limit} characters")

    return check


def _operator_url(_: object, __: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_URL:
        raise UsageError(f"operator_url must be text of 1 to {_MAX_URL} characters")


def _role(_: object, __: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and value not in ROLES:
        raise UsageError("role must be 'primary', 'secondary' or None")


def _eid(_: object, __: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not _EID.fullmatch(value)):
        raise UsageError("eid must be 32 decimal digits")


def _device_class(_: object, __: attrs.Attribute[DeviceClass | None], value: object) -> None:
    if value is not None and not isinstance(value, DeviceClass):
        raise UsageError("device_class must be a DeviceClass or None")


@attrs.frozen
class DeviceRecord:
    """This device's relation to its operator.

    Only ``operator_url`` is required; the rest is filled in as the device
    registers (``subscription_id``, ``device_id``, ``role`` -- ``"primary"``
    or ``"secondary"``) or is known from its eUICC (``eid``, 32 digits) and
    its user (``device_class``, ``name``).
    """

    operator_url: str = attrs.field(validator=_operator_url)
    subscription_id: str | None = attrs.field(default=None, validator=_optional_text(_MAX_TEXT))
    device_id: str | None = attrs.field(default=None, validator=_optional_text(_MAX_TEXT))
    role: str | None = attrs.field(default=None, validator=_role)
    eid: str | None = attrs.field(default=None, validator=_eid)
    device_class: DeviceClass | None = attrs.field(default=None, validator=_device_class)
    name: str | None = attrs.field(default=None, validator=_optional_text(_MAX_TEXT))


def _aware(_: object, attribute: attrs.Attribute[datetime], value: object) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise UsageError(f"{attribute.name} must be a timezone-aware datetime")


def _required_text(_: object, attribute: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_TEXT:
        raise UsageError(f"{attribute.name} must be text of 1 to {_MAX_TEXT} characters")


@attrs.frozen
class PendingJoin:
    """A join request this device posted (cloud enrolment), kept until collected.

    ``secret`` is the ticket's secret, shown once by the operator and needed
    to collect the activation code; it is left out of ``repr``.
    ``expires`` is timezone-aware (stored and returned in UTC).
    """

    request_id: str = attrs.field(validator=_required_text)
    secret: str = attrs.field(validator=_required_text, repr=False)
    subscription_id: str = attrs.field(validator=_required_text)
    expires: datetime = attrs.field(validator=_aware)


def _companion_bytes(size: int) -> Callable[[object, attrs.Attribute[bytes], object], None]:
    def check(_: object, attribute: attrs.Attribute[bytes], value: object) -> None:
        if not isinstance(value, bytes) or len(value) != size:
            raise UsageError(f"{attribute.name} must be {size} octets")

    return check


def _companion_role(_: object, __: attrs.Attribute[str], value: object) -> None:
    if value not in COMPANION_ROLES:
        raise UsageError("peer_role must be 'watch' or 'phone'")


def _transport(_: object, __: attrs.Attribute[str], value: object) -> None:
    if value not in ("lan", "ble"):
        raise UsageError("transport must be 'lan' or 'ble'")


def _required_eid(_: object, __: attrs.Attribute[str], value: object) -> None:
    if not isinstance(value, str) or not _EID.fullmatch(value):
        raise UsageError("eid must be 32 decimal digits")


@attrs.frozen
class CompanionRecord:
    """A companion pairing (issue H): the *other* device of a watch--phone pair.

    The phone keeps one per watch (``peer_role="watch"``), the watch one for
    its phone (``peer_role="phone"``).  ``name`` and ``eid`` are the peer's;
    ``reconnection_id`` (16 octets) is the discovery identifier the watch
    listens on for reconnections; ``psk`` (32 octets, left out of ``repr``)
    the long-term key of the PAIRED method; ``transport`` the hint (``"lan"``
    or ``"ble"``) for reconnecting; ``paired`` when the pairing was made
    (timezone-aware, stored in UTC).
    """

    name: str = attrs.field(validator=_required_text)
    eid: str = attrs.field(validator=_required_eid)
    peer_role: str = attrs.field(validator=_companion_role)
    reconnection_id: bytes = attrs.field(validator=_companion_bytes(16))
    psk: bytes = attrs.field(validator=_companion_bytes(32), repr=False)
    transport: str = attrs.field(validator=_transport)
    paired: datetime = attrs.field(validator=_aware)


def _side(_: object, __: attrs.Attribute[str], value: object) -> None:
    if value not in CHANGE_PHASES:
        raise UsageError("side must be 'old' or 'new'")


def _companions(_: object, __: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple) or not all(isinstance(c, CompanionRecord) for c in value):
        raise UsageError("companions must be a tuple of CompanionRecord")
    if len(value) > 8:
        raise UsageError("at most 8 companions are carried")


@attrs.frozen
class ChangeJournal:
    """Where this device stands in a device change (issue I), one row of the store.

    ``side`` is ``"old"`` (the device whose record moves away) or ``"new"``;
    ``phase`` one of :data:`CHANGE_PHASES` for that side.  ``secret`` reads
    the change at the operator (``device_change_status``) and
    ``activation_code`` is the new profile's; both are sealed at rest like a
    companion psk and left out of ``repr``.  ``companions`` are the companion
    records carried to the new device.  The other fields are those of the
    operator's ``DeviceChange`` and of the device record that moves
    (``role``, ``subscription_id``, ``device_id``).  Times are timezone-aware.
    """

    side: str = attrs.field(validator=_side)
    change_id: str = attrs.field(validator=_required_text)
    phase: str = attrs.field()
    secret: str = attrs.field(validator=_required_text, repr=False)
    operator_url: str = attrs.field(validator=_operator_url)
    created: datetime = attrs.field(validator=_aware)
    updated: datetime = attrs.field(validator=_aware)
    activation_code: str | None = attrs.field(
        default=None, validator=_optional_text(_MAX_TEXT), repr=False
    )
    new_eid: str | None = attrs.field(default=None, validator=_eid)
    old_iccid: str | None = attrs.field(default=None, validator=_optional_text(_MAX_TEXT))
    new_iccid: str | None = attrs.field(default=None, validator=_optional_text(_MAX_TEXT))
    role: str | None = attrs.field(default=None, validator=_role)
    subscription_id: str | None = attrs.field(default=None, validator=_optional_text(_MAX_TEXT))
    device_id: str | None = attrs.field(default=None, validator=_optional_text(_MAX_TEXT))
    replaced_iccid: str | None = attrs.field(default=None, validator=_optional_text(_MAX_TEXT))
    companions: tuple[CompanionRecord, ...] = attrs.field(
        default=(), validator=_companions, repr=False
    )

    @phase.validator
    def _check_phase(self, _: attrs.Attribute[str], value: object) -> None:
        if value not in CHANGE_PHASES.get(self.side, ()):
            raise UsageError(f"phase must be one of {', '.join(CHANGE_PHASES[self.side])}")

    @property
    def finished(self) -> bool:
        """Whether the change ended here (``done`` or ``cancelled``)."""
        return self.phase in ("done", "cancelled")

    def at(self, phase: str, now: datetime, **changes: Any) -> ChangeJournal:
        """This journal moved to ``phase`` at ``now`` (other fields from ``changes``)."""
        return attrs.evolve(self, phase=phase, updated=now, **changes)


# --------------------------------------------------------------------------
# The store


def _private(path: Path) -> None:
    """Create ``path`` if absent with mode 0600, and give it mode 0600 if it has another."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode != 0o600:
            _log.warning("device store file %s had mode %04o; setting 0600", path.name, mode)
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class DeviceStore:
    """One device's federation store (a single SQLite file).

    Use :meth:`create` for a new file and :meth:`open` for an existing one;
    close it (or use it as a context manager).  Not thread-safe; one process
    at a time.
    """

    def __init__(self, connection: sqlite3.Connection, path: Path, passphrase: bytes | None):
        self._db = connection
        self._path = path
        self._passphrase = passphrase
        self._keys: dict[str, ec.EllipticCurvePrivateKey] = {}

    # -- opening ---------------------------------------------------------

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        try:
            for suffix in ("", "-wal", "-shm"):
                companion = path.with_name(path.name + suffix)
                if suffix == "" or companion.exists():
                    _private(companion)
        except OSError as exc:
            raise StorageError(f"cannot open device store {path.name}: {exc.strerror}") from exc
        try:
            db = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open device store {path.name}: {exc}") from exc
        try:
            db.execute("PRAGMA busy_timeout = 5000")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            db.close()
            raise StorageError(f"device store {path.name} is unreadable: {exc}") from exc
        return db

    @classmethod
    def _start(cls, path: Path, passphrase: bytes | None) -> DeviceStore:
        if passphrase is not None and (not isinstance(passphrase, bytes) or not passphrase):
            raise UsageError("the passphrase must be non-empty bytes (or None)")
        db = cls._connect(path)
        try:
            migrate(db)
        except StorageError:
            db.close()
            raise
        store = cls(db, path, passphrase)
        try:
            store._fix_modes()
        except StorageError:
            db.close()
            raise
        return store

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], *, passphrase: bytes | None = None
    ) -> DeviceStore:
        """Create a new, empty store at ``path`` (:class:`~rspfed.errors.UsageError` if
        the file exists).  ``passphrase`` encrypts the keys written to it."""
        p = Path(path)
        try:
            fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise UsageError(f"device store {p.name} already exists") from None
        except OSError as exc:
            raise StorageError(f"cannot create device store {p.name}: {exc.strerror}") from exc
        os.close(fd)
        return cls._start(p, passphrase)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, passphrase: bytes | None = None) -> DeviceStore:
        """Open (and if needed migrate) an existing store.

        :class:`~rspfed.errors.StorageError` if the file is missing, not a
        device store, corrupt or of a newer schema.  The passphrase is checked
        when a key is loaded.
        """
        p = Path(path)
        if not p.is_file():
            raise StorageError(f"no device store at {p.name}")
        return cls._start(p, passphrase)

    def _fix_modes(self) -> None:
        for suffix in ("-wal", "-shm"):
            companion = self._path.with_name(self._path.name + suffix)
            try:
                if stat.S_IMODE(companion.stat().st_mode) != 0o600:
                    os.chmod(companion, 0o600)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StorageError(f"cannot set mode 0600 on {companion.name}") from exc

    @property
    def path(self) -> Path:
        """The store's file."""
        return self._path

    @property
    def connection(self) -> sqlite3.Connection:
        """The SQLite connection (for diagnostics and fault-injection tests)."""
        return self._db

    def close(self) -> None:
        """Close the database and forget decrypted keys."""
        self._keys.clear()
        self._db.close()

    def __enter__(self) -> DeviceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        encrypted = "encrypted" if self._passphrase else "unencrypted"
        return f"<DeviceStore {self._path.name} ({encrypted} keys)>"

    # -- plumbing --------------------------------------------------------

    def _settle(self) -> None:
        """Finish the rollback of an earlier failed write (an interrupted ROLLBACK)."""
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise StorageError(f"device store rollback failed: {exc}") from exc

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        self._settle()
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"device store read failed: {exc}") from exc

    def _write(self, work: Callable[[sqlite3.Connection], object]) -> None:
        """Run ``work`` in one transaction; on failure nothing of it is kept."""
        self._settle()
        committing = False
        try:
            self._db.execute("BEGIN IMMEDIATE")
            work(self._db)
            committing = True
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            elif committing and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_INTERRUPT:
                # an interrupt that ends the transaction comes after it became durable
                return
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"device store write failed: {exc}") from exc
            raise

    # -- the record ------------------------------------------------------

    def record(self) -> DeviceRecord | None:
        """The stored :class:`DeviceRecord` (``None`` before :meth:`set_record`)."""
        rows = self._read(
            "SELECT operator_url, subscription_id, device_id, role, eid, device_class, name"
            " FROM record WHERE id = 1"
        )
        if not rows:
            return None
        url, subscription_id, device_id, role, eid, device_class, name = rows[0]
        try:
            return DeviceRecord(
                operator_url=url,
                subscription_id=subscription_id,
                device_id=device_id,
                role=role,
                eid=eid,
                device_class=None if device_class is None else DeviceClass(device_class),
                name=name,
            )
        except (UsageError, ValueError) as exc:
            raise StorageError("the device store's record is corrupt") from exc

    def set_record(self, record: DeviceRecord) -> None:
        """Replace the stored record."""
        if not isinstance(record, DeviceRecord):
            raise UsageError("record must be a DeviceRecord")
        row = (
            record.operator_url,
            record.subscription_id,
            record.device_id,
            record.role,
            record.eid,
            None if record.device_class is None else record.device_class.value,
            record.name,
        )
        self._write(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO record VALUES (1, ?, ?, ?, ?, ?, ?, ?)", row
            )
        )

    # -- keys --------------------------------------------------------------

    def _load_key(self, slot: str) -> ec.EllipticCurvePrivateKey | None:
        cached = self._keys.get(slot)
        if cached is not None:
            return cached
        rows = self._read("SELECT pem FROM keys WHERE slot = ?", (slot,))
        if not rows:
            return None
        pem = bytes(rows[0][0])
        if not pem.startswith(b"-----BEGIN ") or b"PRIVATE KEY-----" not in pem:
            raise StorageError(f"the device store's {slot} key is corrupt")
        key = load_private_key_pem(
            pem,
            self._passphrase,
            f"the device store's {slot} key",
            needs_passphrase="open the device store with its passphrase",  # noqa: S106
        )
        if not isinstance(key.curve, ec.SECP256R1):
            raise StorageError(f"the device store's {slot} key is not a P-256 key")
        self._keys[slot] = key
        return key

    def private_key(self) -> ec.EllipticCurvePrivateKey | None:
        """The current key (federation key of a primary, device key of a secondary),
        ``None`` before the first :meth:`commit_key`.

        :class:`~rspfed.errors.UsageError` for a wrong or missing passphrase.
        """
        return self._load_key("current")

    def pending_key(self) -> ec.EllipticCurvePrivateKey | None:
        """The key generated for rotation and not yet committed, if any."""
        return self._load_key("pending")

    def generate_key(self) -> ec.EllipticCurvePrivateKey:
        """Generate a P-256 key, store it as the pending key (replacing any) and return it."""
        key = ec.generate_private_key(ec.SECP256R1())
        pem = private_key_pem(key, self._passphrase)
        self._keys.pop("pending", None)
        self._write(
            lambda db: db.execute("INSERT OR REPLACE INTO keys VALUES ('pending', ?)", (pem,))
        )
        self._keys["pending"] = key
        return key

    def commit_key(self) -> None:
        """Make the pending key the current one, in one transaction (the old key is dropped).

        :class:`~rspfed.errors.StateError` if there is no pending key.
        """

        def work(db: sqlite3.Connection) -> None:
            if not db.execute("SELECT 1 FROM keys WHERE slot = 'pending'").fetchall():
                raise StateError("no pending key to commit")
            db.execute("DELETE FROM keys WHERE slot = 'current'")
            db.execute("UPDATE keys SET slot = 'current' WHERE slot = 'pending'")

        self._keys.clear()
        self._write(work)

    def discard_pending_key(self) -> bool:
        """Drop the pending key (a rotation the operator refused); whether there was one."""
        found: list[bool] = []

        def work(db: sqlite3.Connection) -> None:
            found.append(db.execute("DELETE FROM keys WHERE slot = 'pending'").rowcount > 0)

        self._keys.pop("pending", None)
        self._write(work)
        return found[0]

    # -- join tickets ------------------------------------------------------

    def add_join(
        self, request_id: str, secret: str, subscription_id: str, expires: datetime
    ) -> PendingJoin:
        """Keep a join ticket (replacing one with the same ``request_id``); return it."""
        join = PendingJoin(request_id, secret, subscription_id, expires)
        join = attrs.evolve(join, expires=join.expires.astimezone(UTC))
        row = (join.request_id, join.secret, join.subscription_id, join.expires.isoformat())
        self._write(lambda db: db.execute("INSERT OR REPLACE INTO joins VALUES (?, ?, ?, ?)", row))
        return join

    def joins(self) -> list[PendingJoin]:
        """The kept join tickets, soonest expiry first."""
        rows = self._read(
            "SELECT request_id, secret, subscription_id, expires FROM joins"
            " ORDER BY expires, request_id"
        )
        try:
            return [
                PendingJoin(request_id, secret, subscription_id, datetime.fromisoformat(expires))
                for request_id, secret, subscription_id, expires in rows
            ]
        except (UsageError, ValueError) as exc:
            raise StorageError("a join ticket in the device store is corrupt") from exc

    def drop_join(self, request_id: str) -> bool:
        """Forget the join ticket ``request_id``; whether it was there."""
        found: list[bool] = []

        def work(db: sqlite3.Connection) -> None:
            cursor = db.execute("DELETE FROM joins WHERE request_id = ?", (request_id,))
            found.append(cursor.rowcount > 0)

        self._write(work)
        return found[0]

    # -- companions (issue H) ---------------------------------------------

    def _seal_psk(self, psk: bytes) -> bytes:
        """The psk as stored: raw (``R``), or sealed with the passphrase (``E``:
        scrypt salt, AES-256-GCM nonce and ciphertext) as the keys are."""
        if not self._passphrase:
            return b"R" + psk
        salt, nonce = os.urandom(16), os.urandom(12)
        key = _psk_kek(self._passphrase, salt)
        return b"E" + salt + nonce + AESGCM(key).encrypt(nonce, psk, b"rspfed companion psk")

    def _open_psk(self, stored: bytes) -> bytes:
        if stored[:1] == b"R" and len(stored) == 33:
            return stored[1:]
        if stored[:1] != b"E" or len(stored) != 1 + 16 + 12 + 32 + 16:
            raise StorageError("a companion record in the device store is corrupt")
        if not self._passphrase:
            raise UsageError(
                "the companion key is encrypted: open the device store with its passphrase"
            )
        salt, nonce, sealed = stored[1:17], stored[17:29], stored[29:]
        try:
            return AESGCM(_psk_kek(self._passphrase, salt)).decrypt(
                nonce, sealed, b"rspfed companion psk"
            )
        except InvalidTag:
            raise UsageError("wrong passphrase for the device store's companion key") from None

    def set_companion(self, companion: CompanionRecord) -> None:
        """Keep ``companion`` (replacing one with the same reconnection id or EID)."""
        if not isinstance(companion, CompanionRecord):
            raise UsageError("companion must be a CompanionRecord")
        row = (
            companion.reconnection_id,
            companion.eid,
            companion.name,
            companion.peer_role,
            companion.transport,
            self._seal_psk(companion.psk),
            companion.paired.astimezone(UTC).isoformat(),
        )

        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM companion WHERE eid = ?", (companion.eid,))
            db.execute("INSERT OR REPLACE INTO companion VALUES (?, ?, ?, ?, ?, ?, ?)", row)

        self._write(work)

    def companions(self) -> list[CompanionRecord]:
        """The kept companion records, oldest pairing first.

        :class:`~rspfed.errors.UsageError` for a wrong or missing passphrase.
        """
        rows = self._read(
            "SELECT name, eid, peer_role, reconnection_id, psk, transport, paired"
            " FROM companion ORDER BY paired, eid"
        )
        out: list[CompanionRecord] = []
        for name, eid, role, rid, psk, transport, paired in rows:
            try:
                out.append(
                    CompanionRecord(
                        name=name,
                        eid=eid,
                        peer_role=role,
                        reconnection_id=bytes(rid),
                        psk=self._open_psk(bytes(psk)),
                        transport=transport,
                        paired=datetime.fromisoformat(paired),
                    )
                )
            except (ValueError, TypeError) as exc:
                raise StorageError("a companion record in the device store is corrupt") from exc
        return out

    def companion(self, eid: str | None = None) -> CompanionRecord:
        """The companion with ``eid``, or the only one when ``eid`` is None.

        :class:`~rspfed.errors.StateError` when there is none (or several and
        no ``eid``).
        """
        found = [c for c in self.companions() if eid is None or c.eid == eid]
        if not found:
            raise StateError("no companion paired" + ("" if eid is None else f" with EID {eid}"))
        if len(found) > 1:
            raise StateError("several companions are paired: name one by its EID")
        return found[0]

    def drop_companion(self, eid: str) -> bool:
        """Forget the companion with ``eid``; whether it was there."""
        found: list[bool] = []

        def work(db: sqlite3.Connection) -> None:
            found.append(db.execute("DELETE FROM companion WHERE eid = ?", (eid,)).rowcount > 0)

        self._write(work)
        return found[0]

    # -- the device-change journal (issue I) -------------------------------

    def _seal(self, data: bytes, aad: bytes) -> bytes:
        if not self._passphrase:
            return b"R" + data
        salt, nonce = os.urandom(16), os.urandom(12)
        return (
            b"E" + salt + nonce + AESGCM(_psk_kek(self._passphrase, salt)).encrypt(nonce, data, aad)
        )

    def _unseal(self, stored: bytes, aad: bytes, what: str) -> bytes:
        if stored[:1] == b"R":
            return stored[1:]
        if stored[:1] != b"E" or len(stored) < 1 + 16 + 12 + 16:
            raise StorageError(f"the device store's {what} is corrupt")
        if not self._passphrase:
            raise UsageError(f"the {what} is encrypted: open the device store with its passphrase")
        salt, nonce, sealed = stored[1:17], stored[17:29], stored[29:]
        try:
            return AESGCM(_psk_kek(self._passphrase, salt)).decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise UsageError(f"wrong passphrase for the device store's {what}") from None

    def set_change(self, journal: ChangeJournal, *, record: DeviceRecord | None = None) -> None:
        """Write the device-change journal (replacing it) in one transaction; with
        ``record``, the device record is replaced in the same transaction."""
        if not isinstance(journal, ChangeJournal):
            raise UsageError("journal must be a ChangeJournal")
        if record is not None and not isinstance(record, DeviceRecord):
            raise UsageError("record must be a DeviceRecord")
        secrets = {
            "secret": journal.secret,
            "activation_code": journal.activation_code,
            "companions": [
                {
                    "name": c.name,
                    "eid": c.eid,
                    "peer_role": c.peer_role,
                    "reconnection_id": c.reconnection_id.hex(),
                    "psk": c.psk.hex(),
                    "transport": c.transport,
                    "paired": c.paired.astimezone(UTC).isoformat(),
                }
                for c in journal.companions
            ],
        }
        sealed = self._seal(json.dumps(secrets).encode("utf-8"), _JOURNAL_AAD)
        row = (
            journal.side,
            journal.change_id,
            journal.phase,
            journal.operator_url,
            journal.new_eid,
            journal.old_iccid,
            journal.new_iccid,
            journal.role,
            journal.subscription_id,
            journal.device_id,
            journal.replaced_iccid,
            sealed,
            journal.created.astimezone(UTC).isoformat(),
            journal.updated.astimezone(UTC).isoformat(),
        )
        record_row = None
        if record is not None:
            record_row = (
                record.operator_url,
                record.subscription_id,
                record.device_id,
                record.role,
                record.eid,
                None if record.device_class is None else record.device_class.value,
                record.name,
            )

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO device_change VALUES"
                " (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            if record_row is not None:
                db.execute(
                    "INSERT OR REPLACE INTO record VALUES (1, ?, ?, ?, ?, ?, ?, ?)", record_row
                )

        self._write(work)

    def change(self) -> ChangeJournal | None:
        """The device-change journal (``None`` when there is none).

        :class:`~rspfed.errors.UsageError` for a wrong or missing passphrase.
        """
        rows = self._read(
            "SELECT side, change_id, phase, operator_url, new_eid, old_iccid, new_iccid, role,"
            " subscription_id, device_id, replaced_iccid, sealed, created, updated"
            " FROM device_change WHERE id = 1"
        )
        if not rows:
            return None
        (side, change_id, phase, url, new_eid, old_iccid, new_iccid, role, sub, dev, replaced,
         sealed, created, updated) = rows[0]  # fmt: skip
        data = self._unseal(bytes(sealed), _JOURNAL_AAD, "device-change secret")
        try:
            secrets = json.loads(data)
            companions = tuple(
                CompanionRecord(
                    name=c["name"],
                    eid=c["eid"],
                    peer_role=c["peer_role"],
                    reconnection_id=bytes.fromhex(c["reconnection_id"]),
                    psk=bytes.fromhex(c["psk"]),
                    transport=c["transport"],
                    paired=datetime.fromisoformat(c["paired"]),
                )
                for c in secrets["companions"]
            )
            return ChangeJournal(
                side=side,
                change_id=change_id,
                phase=phase,
                secret=secrets["secret"],
                operator_url=url,
                created=datetime.fromisoformat(created),
                updated=datetime.fromisoformat(updated),
                activation_code=secrets["activation_code"],
                new_eid=new_eid,
                old_iccid=old_iccid,
                new_iccid=new_iccid,
                role=role,
                subscription_id=sub,
                device_id=dev,
                replaced_iccid=replaced,
                companions=companions,
            )
        except (ValueError, TypeError, KeyError, UsageError) as exc:
            raise StorageError("the device store's device-change journal is corrupt") from exc

    def clear_change(self) -> bool:
        """Forget the device-change journal; whether there was one."""
        found: list[bool] = []

        def work(db: sqlite3.Connection) -> None:
            found.append(db.execute("DELETE FROM device_change WHERE id = 1").rowcount > 0)

        self._write(work)
        return found[0]


_JOURNAL_AAD = b"rspfed device-change journal"


def _psk_kek(passphrase: bytes, salt: bytes) -> bytes:
    """The key that seals a companion psk: scrypt (n=2**14, r=8, p=1) of the passphrase."""
    return Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(passphrase)
