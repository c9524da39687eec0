"""The operator's store: subscriptions, keys, devices, tokens, join requests,
EAP sessions and request nonces, in one SQLite file.

:class:`SqliteOperatorStore` keeps everything in SQLite (a file created mode
0600, WAL journal, or ``":memory:"``), schema version in ``PRAGMA
user_version`` with forward migrations (:data:`MIGRATIONS`), and groups
writes with :meth:`~SqliteOperatorStore.transaction` (``BEGIN IMMEDIATE`` …
``COMMIT``; nesting joins the outer transaction; an exception rolls back).
Each public write outside a ``transaction()`` block is its own transaction,
so a crash leaves the old state or the new.  The operator core is the only
writer; several worker processes may share one file.

Schema history: version 1 is the first; version 2 adds the shared data
pool's tables (ledger counters, pool epochs, fired alerts and their outbox,
the ledger's version, usage samples, device batch sequences, automatic
top-up rules, bearers, gateway counter epochs), used through
:class:`rspfed.federation.pool.PoolService` with the generic
:meth:`~SqliteOperatorStore.pool_exec` / :meth:`~SqliteOperatorStore.pool_rows`.
Version 3 adds the simulated radio (:mod:`rspfed.network.radio`): the cells
the operator's network broadcasts with their signal schedules, the roaming
partner PLMNs, network settings (EF.HPPLMN of new profiles), and the visited
PLMN of an attach's EAP session and of a data bearer (``""``: the home
network or no radio model).
Version 4 adds device changes (:mod:`rspfed.federation.change`): the
``device_change`` table (the change, the new device's name and class, its
activation code and the SHA-256 of its secret).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import attrs

from rspfed.errors import RspfedError, StorageError
from rspfed.federation.token import DeviceClass, Service
from rspfed.federation.types import (
    ChangeState,
    Device,
    DeviceChange,
    DeviceRole,
    DeviceState,
    EapPurpose,
    JoinRequest,
    JoinState,
    Plan,
    Subscription,
    TokenState,
)
from rspfed.network.radio import Cell, Rat

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ChangeRecord",
    "EapSessionRecord",
    "KeyRecord",
    "SqliteOperatorStore",
    "TokenRecord",
]


@attrs.frozen
class KeyRecord:
    """A registered public key: a primary's federation key or a secondary's device key."""

    key_id: bytes
    public_key: bytes = attrs.field(repr=False)
    subscription_id: str
    device_id: str
    role: DeviceRole
    active: bool
    registered: datetime


@attrs.frozen
class TokenRecord:
    """What the operator knows about a token id."""

    token_id: bytes
    subscription_id: str
    state: TokenState
    eid: str
    device_id: str | None
    not_after: datetime


@attrs.frozen
class EapSessionRecord:
    """One EAP-AKA' exchange between HTTP requests (``snapshot`` holds secrets)."""

    id: str
    purpose: EapPurpose
    imsi: str
    eid: str | None
    service: Service | None
    snapshot: bytes = attrs.field(repr=False)
    expires: datetime
    done: bool = False
    version: int = 0
    plmn: str = ""
    """The visited PLMN of an attach (``""``: the home network, or no radio model)."""


@attrs.frozen
class ChangeRecord:
    """A stored device change with what only the operator sees: the new
    device's name and class (applied at the switch), the new profile's
    activation code and the SHA-256 of the change's secret."""

    change: DeviceChange
    name: str
    device_class: DeviceClass
    activation_code: str = attrs.field(repr=False)
    secret_hash: bytes = attrs.field(repr=False)


MIGRATIONS: Final[Sequence[Sequence[str]]] = (
    (),  # version 0: empty file
    (
        """CREATE TABLE subscription (
            id TEXT PRIMARY KEY, profile_type TEXT NOT NULL, plan TEXT NOT NULL,
            created TEXT NOT NULL, primary_key BLOB, primary_key_id BLOB,
            tokens_revoked_before TEXT)""",
        """CREATE TABLE key (
            key_id BLOB PRIMARY KEY, public_key BLOB NOT NULL,
            subscription_id TEXT NOT NULL REFERENCES subscription(id),
            device_id TEXT NOT NULL, role TEXT NOT NULL, active INTEGER NOT NULL,
            registered TEXT NOT NULL)""",
        """CREATE TABLE device (
            id TEXT PRIMARY KEY, subscription_id TEXT NOT NULL REFERENCES subscription(id),
            role TEXT NOT NULL, class TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL,
            eid TEXT, iccid TEXT NOT NULL UNIQUE, imsi TEXT NOT NULL, services TEXT NOT NULL,
            quota INTEGER, token_id BLOB, token_consumed INTEGER NOT NULL,
            device_key BLOB, device_key_id BLOB, activation_code TEXT NOT NULL,
            created TEXT, order_expires TEXT)""",
        "CREATE INDEX device_sub ON device(subscription_id)",
        "CREATE INDEX device_state ON device(state)",
        "CREATE INDEX device_imsi ON device(imsi)",
        """CREATE TABLE token (
            token_id BLOB PRIMARY KEY, subscription_id TEXT NOT NULL, state TEXT NOT NULL,
            eid TEXT NOT NULL, device_id TEXT, not_after TEXT NOT NULL)""",
        """CREATE TABLE join_request (
            id TEXT PRIMARY KEY, subscription_id TEXT NOT NULL, eid TEXT NOT NULL,
            class TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL,
            secret_hash BLOB NOT NULL, token BLOB, created TEXT NOT NULL,
            expires TEXT NOT NULL, device_id TEXT)""",
        "CREATE INDEX join_sub ON join_request(subscription_id)",
        """CREATE TABLE eap_session (
            id TEXT PRIMARY KEY, purpose TEXT NOT NULL, imsi TEXT NOT NULL, eid TEXT,
            service TEXT, snapshot BLOB NOT NULL, expires TEXT NOT NULL,
            done INTEGER NOT NULL, version INTEGER NOT NULL)""",
        """CREATE TABLE nonce (
            key_id BLOB NOT NULL, nonce BLOB NOT NULL, expires TEXT NOT NULL,
            PRIMARY KEY (key_id, nonce))""",
    ),
    (  # version 2: the shared data pool (rspfed.federation.pool)
        """CREATE TABLE ledger_counter (
            subscription_id TEXT NOT NULL, kind INTEGER NOT NULL, source_id TEXT NOT NULL,
            iccid TEXT NOT NULL, period INTEGER NOT NULL, counter_epoch INTEGER NOT NULL,
            plmn TEXT NOT NULL, octets INTEGER NOT NULL, version INTEGER NOT NULL,
            PRIMARY KEY (subscription_id, kind, source_id, iccid, period, counter_epoch, plmn))""",
        """CREATE TABLE pool_epoch (
            subscription_id TEXT NOT NULL, period INTEGER NOT NULL, idx INTEGER NOT NULL,
            reason TEXT NOT NULL, lim INTEGER NOT NULL, opening_used INTEGER NOT NULL,
            opening_devices TEXT NOT NULL, version INTEGER NOT NULL,
            PRIMARY KEY (subscription_id, period, idx))""",
        """CREATE TABLE fired_alert (
            alert_id BLOB PRIMARY KEY, subscription_id TEXT NOT NULL, iccid TEXT,
            threshold INTEGER NOT NULL, period INTEGER NOT NULL, pool_epoch INTEGER NOT NULL,
            used INTEGER NOT NULL, lim INTEGER NOT NULL, fired TEXT NOT NULL,
            version INTEGER NOT NULL)""",
        "CREATE INDEX fired_alert_sub ON fired_alert(subscription_id)",
        """CREATE TABLE alert_outbox (
            alert_id BLOB NOT NULL, device_id TEXT NOT NULL, acked INTEGER NOT NULL,
            PRIMARY KEY (alert_id, device_id))""",
        """CREATE TABLE ledger_version (
            subscription_id TEXT PRIMARY KEY, version INTEGER NOT NULL)""",
        """CREATE TABLE usage_sample (
            subscription_id TEXT NOT NULL, period INTEGER NOT NULL, at TEXT NOT NULL,
            used INTEGER NOT NULL)""",
        "CREATE INDEX usage_sample_sub ON usage_sample(subscription_id, period)",
        """CREATE TABLE device_batch (
            device_id TEXT PRIMARY KEY, sequence INTEGER NOT NULL)""",
        """CREATE TABLE pool_rule (
            subscription_id TEXT PRIMARY KEY, add_bytes INTEGER NOT NULL,
            at_percent INTEGER NOT NULL, max_per_period INTEGER NOT NULL)""",
        """CREATE TABLE bearer (
            id TEXT PRIMARY KEY, imsi TEXT NOT NULL, expires TEXT NOT NULL)""",
        """CREATE TABLE gateway (
            source_id TEXT PRIMARY KEY, counter_epoch INTEGER NOT NULL)""",
    ),
    (  # version 3: the simulated radio (rspfed.network.radio)
        """CREATE TABLE cell (
            plmn TEXT NOT NULL, rat TEXT NOT NULL, country TEXT NOT NULL, name TEXT NOT NULL,
            signal TEXT NOT NULL, PRIMARY KEY (plmn, rat))""",
        """CREATE TABLE roaming_partner (
            plmn TEXT PRIMARY KEY, added TEXT NOT NULL)""",
        """CREATE TABLE network_setting (
            name TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        "ALTER TABLE eap_session ADD COLUMN plmn TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE bearer ADD COLUMN plmn TEXT NOT NULL DEFAULT ''",
    ),
    (  # version 4: device changes (rspfed.federation.change)
        """CREATE TABLE device_change (
            id TEXT PRIMARY KEY, subscription_id TEXT NOT NULL, device_id TEXT NOT NULL,
            state TEXT NOT NULL, old_eid TEXT, old_iccid TEXT NOT NULL, old_imsi TEXT NOT NULL,
            new_eid TEXT NOT NULL, new_iccid TEXT NOT NULL, new_imsi TEXT NOT NULL,
            replaced_device_id TEXT, replaced_iccid TEXT, created TEXT NOT NULL,
            expires TEXT NOT NULL, switched TEXT, name TEXT NOT NULL, class TEXT NOT NULL,
            activation_code TEXT NOT NULL, secret_hash BLOB NOT NULL)""",
        "CREATE INDEX device_change_device ON device_change(device_id, created)",
        "CREATE INDEX device_change_state ON device_change(state)",
        "CREATE INDEX device_change_new_eid ON device_change(new_eid)",
    ),
)
"""``MIGRATIONS[v]``: the statements that take a store from version ``v - 1`` to ``v``."""

SCHEMA_VERSION: Final = len(MIGRATIONS) - 1


def _t(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat()


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _dtn(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _set(values: frozenset[Service]) -> str:
    return ",".join(sorted(s.value for s in values))


def _services(text: str) -> frozenset[Service]:
    return frozenset(Service(v) for v in text.split(",") if v)


def _plan_json(plan: Plan) -> str:
    return json.dumps(
        {
            "pool": plan.pool_bytes,
            "devices": plan.device_limit,
            "period": int(plan.period.total_seconds()),
            "classes": sorted(c.value for c in plan.device_classes),
            "services": sorted(s.value for s in plan.services),
        },
        sort_keys=True,
    )


def _plan(text: str) -> Plan:
    d = json.loads(text)
    return Plan(
        pool_bytes=int(d["pool"]),
        device_limit=int(d["devices"]),
        period=timedelta(seconds=int(d["period"])),
        device_classes=frozenset(DeviceClass(c) for c in d["classes"]),
        services=frozenset(Service(s) for s in d["services"]),
    )


_DEVICE_COLUMNS = (
    "id, subscription_id, role, class, name, state, eid, iccid, imsi, services, quota,"
    " token_id, token_consumed, device_key, device_key_id, activation_code, created,"
    " order_expires"
)


def _device(row: Sequence[Any]) -> Device:
    return Device(
        id=row[0],
        subscription_id=row[1],
        role=DeviceRole(row[2]),
        device_class=DeviceClass(row[3]),
        name=row[4],
        state=DeviceState(row[5]),
        eid=row[6],
        iccid=row[7],
        imsi=row[8],
        services=_services(row[9]),
        quota_bytes=row[10],
        token_id=None if row[11] is None else bytes(row[11]),
        token_consumed=bool(row[12]),
        device_key=None if row[13] is None else bytes(row[13]),
        device_key_id=None if row[14] is None else bytes(row[14]),
        activation_code=row[15],
        created=_dt(row[16]),
        order_expires=_dt(row[17]),
    )


def _device_row(d: Device) -> tuple[object, ...]:
    return (
        d.id,
        d.subscription_id,
        d.role.value,
        d.device_class.value,
        d.name,
        d.state.value,
        d.eid,
        d.iccid,
        d.imsi,
        _set(d.services),
        d.quota_bytes,
        d.token_id,
        int(d.token_consumed),
        d.device_key,
        d.device_key_id,
        d.activation_code,
        _t(d.created),
        _t(d.order_expires),
    )


_JOIN_COLUMNS = "id, subscription_id, eid, class, name, state, created, expires, device_id"
# the column lists are constants: these queries take no text from callers
_SELECT_DEVICE = "SELECT " + _DEVICE_COLUMNS + " FROM device "  # noqa: S608
_INSERT_DEVICE = (
    "INSERT OR REPLACE INTO device (" + _DEVICE_COLUMNS + ") VALUES (" + ", ".join("?" * 18) + ")"  # noqa: S608
)
_SELECT_JOIN = "SELECT " + _JOIN_COLUMNS + ", secret_hash, token FROM join_request "  # noqa: S608
_INSERT_JOIN = (
    "INSERT OR REPLACE INTO join_request (" + _JOIN_COLUMNS + ", secret_hash, token)"  # noqa: S608
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


_CHANGE_COLUMNS = (
    "id, subscription_id, device_id, state, old_eid, old_iccid, old_imsi, new_eid, new_iccid,"
    " new_imsi, replaced_device_id, replaced_iccid, created, expires, switched, name, class,"
    " activation_code, secret_hash"
)
_SELECT_CHANGE = "SELECT " + _CHANGE_COLUMNS + " FROM device_change "  # noqa: S608
_CHANGE_MARKS = ", ".join("?" * 19)
_INSERT_CHANGE = (
    f"INSERT OR REPLACE INTO device_change ({_CHANGE_COLUMNS}) VALUES ({_CHANGE_MARKS})"  # noqa: S608
)


def _change(row: Sequence[Any]) -> ChangeRecord:
    change = DeviceChange(
        id=row[0],
        subscription_id=row[1],
        device_id=row[2],
        state=ChangeState(row[3]),
        old_eid=row[4],
        old_iccid=row[5],
        old_imsi=row[6],
        new_eid=row[7],
        new_iccid=row[8],
        new_imsi=row[9],
        replaced_device_id=row[10],
        replaced_iccid=row[11],
        created=_dtn(row[12]),
        expires=_dtn(row[13]),
        switched=_dt(row[14]),
    )
    return ChangeRecord(change, row[15], DeviceClass(row[16]), row[17], bytes(row[18]))


def _join(row: Sequence[Any]) -> JoinRequest:
    return JoinRequest(
        id=row[0],
        subscription_id=row[1],
        eid=row[2],
        device_class=DeviceClass(row[3]),
        name=row[4],
        state=JoinState(row[5]),
        created=_dtn(row[6]),
        expires=_dtn(row[7]),
        device_id=row[8],
    )


def _create_private(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        os.chmod(path, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot create the operator store: {exc.strerror}") from None


class SqliteOperatorStore:
    """The operator's state in SQLite (see the module doc).

    ``fault`` is a test hook called with a label before each write statement
    and before each commit; whatever it raises aborts the transaction.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        synchronous: str = "FULL",
        fault: Callable[[str], None] | None = None,
    ) -> None:
        self._path = None if str(path) == ":memory:" else Path(path)
        self._fault = fault
        self._depth = 0
        if synchronous not in ("FULL", "NORMAL"):
            raise StorageError("synchronous must be FULL or NORMAL")
        if self._path is not None:
            _create_private(self._path)
        try:
            self._db = sqlite3.connect(
                ":memory:" if self._path is None else self._path,
                isolation_level=None,
                timeout=30.0,
                check_same_thread=False,
            )
            if self._path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._migrate()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the operator store: {exc}") from None
        if self._path is not None:
            for suffix in ("-wal", "-shm"):
                companion = self._path.with_name(self._path.name + suffix)
                if companion.exists():
                    with contextlib.suppress(OSError):
                        os.chmod(companion, 0o600)

    def __repr__(self) -> str:
        return f"SqliteOperatorStore({str(self._path or ':memory:')!r})"

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open store."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        found = self.schema_version
        if found > SCHEMA_VERSION:
            raise StorageError(
                f"operator store schema {found} is newer than this rspfed ({SCHEMA_VERSION})"
            )
        for target in range(found + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                for statement in MIGRATIONS[target]:
                    self._exec(statement)
                self._exec(f"PRAGMA user_version = {target}")

    # -- transactions ------------------------------------------------------

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
            raise StorageError(f"cannot start an operator store transaction: {exc}") from None
        self._depth = 1
        try:
            yield
            if self._fault is not None:
                self._fault("commit")
            self._db.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"cannot write the operator store: {exc}") from None
            raise
        finally:
            self._depth = 0

    def _exec(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        if self._fault is not None:
            self._fault(sql.split()[0].lower())
        try:
            return self._db.execute(sql, tuple(params))
        except sqlite3.Error as exc:
            raise StorageError(f"operator store: {exc}") from None

    def _write(self, sql: str, params: Sequence[object] = ()) -> int:
        with self.transaction():
            return self._exec(sql, params).rowcount

    def _one(self, sql: str, params: Sequence[object] = ()) -> Any:
        try:
            return self._db.execute(sql, tuple(params)).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read the operator store: {exc}") from None

    def _all(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read the operator store: {exc}") from None

    # -- subscriptions and keys -------------------------------------------

    def put_subscription(self, sub: Subscription) -> None:
        """Insert or replace a subscription."""
        self._write(
            "INSERT OR REPLACE INTO subscription VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                sub.id,
                sub.profile_type,
                _plan_json(sub.plan),
                _t(sub.created),
                sub.primary_key,
                sub.primary_key_id,
                _t(sub.tokens_revoked_before),
            ),
        )

    def subscription(self, subscription_id: str) -> Subscription | None:
        """One subscription."""
        row = self._one("SELECT * FROM subscription WHERE id = ?", (subscription_id,))
        if row is None:
            return None
        return Subscription(
            id=row[0],
            profile_type=row[1],
            plan=_plan(row[2]),
            created=_dtn(row[3]),
            primary_key=None if row[4] is None else bytes(row[4]),
            primary_key_id=None if row[5] is None else bytes(row[5]),
            tokens_revoked_before=_dt(row[6]),
        )

    def subscription_ids(self) -> list[str]:
        """Every subscription id, sorted."""
        return [r[0] for r in self._all("SELECT id FROM subscription ORDER BY id")]

    def put_key(self, key: KeyRecord) -> None:
        """Insert or replace a key record."""
        self._write(
            "INSERT OR REPLACE INTO key VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key.key_id,
                key.public_key,
                key.subscription_id,
                key.device_id,
                key.role.value,
                int(key.active),
                _t(key.registered),
            ),
        )

    def key(self, key_id: bytes) -> KeyRecord | None:
        """A key by id."""
        row = self._one("SELECT * FROM key WHERE key_id = ?", (key_id,))
        if row is None:
            return None
        return KeyRecord(
            key_id=bytes(row[0]),
            public_key=bytes(row[1]),
            subscription_id=row[2],
            device_id=row[3],
            role=DeviceRole(row[4]),
            active=bool(row[5]),
            registered=_dtn(row[6]),
        )

    def retire_keys(self, device_id: str) -> int:
        """Mark every active key of a device retired; how many."""
        return self._write(
            "UPDATE key SET active = 0 WHERE device_id = ? AND active = 1", (device_id,)
        )

    # -- devices ---------------------------------------------------------------

    def put_device(self, device: Device) -> None:
        """Insert or replace a device."""
        self._write(
            _INSERT_DEVICE,
            _device_row(device),
        )

    def delete_device(self, device_id: str) -> None:
        """Delete a device row (an order that lapsed)."""
        self._write("DELETE FROM device WHERE id = ?", (device_id,))

    def device(self, device_id: str) -> Device | None:
        """One device."""
        row = self._one(_SELECT_DEVICE + "WHERE id = ?", (device_id,))
        return None if row is None else _device(row)

    def device_by_imsi(self, imsi: str) -> Device | None:
        """The device holding ``imsi`` (the newest if several)."""
        row = self._one(
            _SELECT_DEVICE + "WHERE imsi = ? ORDER BY created DESC LIMIT 1",
            (imsi,),
        )
        return None if row is None else _device(row)

    def devices(self, subscription_id: str) -> list[Device]:
        """A subscription's devices, oldest first."""
        rows = self._all(
            _SELECT_DEVICE + "WHERE subscription_id = ? ORDER BY created, id",
            (subscription_id,),
        )
        return [_device(r) for r in rows]

    def devices_in_state(self, state: DeviceState) -> list[Device]:
        """Every device in ``state``."""
        rows = self._all(
            _SELECT_DEVICE + "WHERE state = ? ORDER BY created, id",
            (state.value,),
        )
        return [_device(r) for r in rows]

    def slots_used(self, subscription_id: str) -> int:
        """Devices counting against the device limit (not removed)."""
        row = self._one(
            "SELECT COUNT(*) FROM device WHERE subscription_id = ? AND state != ?",
            (subscription_id, DeviceState.REMOVED.value),
        )
        return int(row[0])

    def iccids(self) -> set[str]:
        """Every ICCID the operator has ordered."""
        return {r[0] for r in self._all("SELECT iccid FROM device")}

    # -- tokens ----------------------------------------------------------------

    def put_token(self, token: TokenRecord) -> None:
        """Insert or replace a token record."""
        self._write(
            "INSERT OR REPLACE INTO token VALUES (?, ?, ?, ?, ?, ?)",
            (
                token.token_id,
                token.subscription_id,
                token.state.value,
                token.eid,
                token.device_id,
                _t(token.not_after),
            ),
        )

    def delete_token(self, token_id: bytes) -> None:
        """Forget a token (a reservation that lapsed)."""
        self._write("DELETE FROM token WHERE token_id = ?", (token_id,))

    def token(self, token_id: bytes) -> TokenRecord | None:
        """A token record."""
        row = self._one("SELECT * FROM token WHERE token_id = ?", (token_id,))
        if row is None:
            return None
        return TokenRecord(
            token_id=bytes(row[0]),
            subscription_id=row[1],
            state=TokenState(row[2]),
            eid=row[3],
            device_id=row[4],
            not_after=_dtn(row[5]),
        )

    # -- join requests ---------------------------------------------------------

    def put_join(self, request: JoinRequest, *, secret_hash: bytes, token: bytes | None) -> None:
        """Insert or replace a join request."""
        self._write(
            _INSERT_JOIN,
            (
                request.id,
                request.subscription_id,
                request.eid,
                request.device_class.value,
                request.name,
                request.state.value,
                _t(request.created),
                _t(request.expires),
                request.device_id,
                secret_hash,
                token,
            ),
        )

    def join(self, request_id: str) -> tuple[JoinRequest, bytes, bytes | None] | None:
        """A join request with its secret hash and approved token."""
        row = self._one(
            _SELECT_JOIN + "WHERE id = ?",
            (request_id,),
        )
        if row is None:
            return None
        return _join(row), bytes(row[9]), None if row[10] is None else bytes(row[10])

    def joins(self, subscription_id: str) -> list[JoinRequest]:
        """A subscription's join requests, oldest first."""
        rows = self._all(
            _SELECT_JOIN + "WHERE subscription_id = ? ORDER BY created, id",
            (subscription_id,),
        )
        return [_join(r) for r in rows]

    # -- device changes (schema v4) ----------------------------------------------

    def put_change(self, record: ChangeRecord) -> None:
        """Insert or replace a device change."""
        c = record.change
        self._write(
            _INSERT_CHANGE,
            (
                c.id,
                c.subscription_id,
                c.device_id,
                c.state.value,
                c.old_eid,
                c.old_iccid,
                c.old_imsi,
                c.new_eid,
                c.new_iccid,
                c.new_imsi,
                c.replaced_device_id,
                c.replaced_iccid,
                _t(c.created),
                _t(c.expires),
                _t(c.switched),
                record.name,
                record.device_class.value,
                record.activation_code,
                record.secret_hash,
            ),
        )

    def change(self, change_id: str) -> ChangeRecord | None:
        """One device change."""
        row = self._one(_SELECT_CHANGE + "WHERE id = ?", (change_id,))
        return None if row is None else _change(row)

    def changes_of_device(self, device_id: str) -> list[ChangeRecord]:
        """A device's changes, newest first."""
        rows = self._all(
            _SELECT_CHANGE + "WHERE device_id = ? ORDER BY created DESC, id DESC", (device_id,)
        )
        return [_change(r) for r in rows]

    def switched_iccids(self, subscription_id: str) -> list[tuple[str, str, str]]:
        """The ICCIDs a subscription's devices held before a device change.

        One ``(old_iccid, device_id, current_iccid)`` per change that reached
        the switch (``switched`` or ``completed``), oldest first; the device's
        current ICCID from its record.  One indexed query (``device_sub``,
        ``device_change_device``); the usage aggregation reads it per request.
        """
        rows = self._all(
            "SELECT c.old_iccid, d.id, d.iccid FROM device d"
            " JOIN device_change c ON c.device_id = d.id"
            " WHERE d.subscription_id = ? AND c.state IN (?, ?) AND c.old_iccid != d.iccid"
            " ORDER BY c.created, c.id",
            (subscription_id, ChangeState.SWITCHED.value, ChangeState.COMPLETED.value),
        )
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def changes_in_state(self, *states: ChangeState) -> list[ChangeRecord]:
        """Every change in one of ``states``, oldest first."""
        marks = ", ".join("?" * len(states))
        rows = self._all(
            _SELECT_CHANGE + f"WHERE state IN ({marks}) ORDER BY created, id",
            tuple(s.value for s in states),
        )
        return [_change(r) for r in rows]

    def changes_to_eid(self, eid: str) -> list[ChangeRecord]:
        """Every change whose new eUICC is ``eid``, oldest first."""
        rows = self._all(_SELECT_CHANGE + "WHERE new_eid = ? ORDER BY created, id", (eid,))
        return [_change(r) for r in rows]

    # -- EAP sessions ----------------------------------------------------------

    def put_eap_session(self, session: EapSessionRecord) -> None:
        """Insert a new EAP session."""
        self._write(
            "INSERT INTO eap_session VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session.id,
                session.purpose.value,
                session.imsi,
                session.eid,
                None if session.service is None else session.service.value,
                session.snapshot,
                _t(session.expires),
                int(session.done),
                session.version,
                session.plmn,
            ),
        )

    def update_eap_session(self, session: EapSessionRecord) -> bool:
        """Replace a session if its stored version is ``session.version - 1``."""
        return (
            self._write(
                "UPDATE eap_session SET snapshot = ?, done = ?, version = ?"
                " WHERE id = ? AND version = ?",
                (
                    session.snapshot,
                    int(session.done),
                    session.version,
                    session.id,
                    session.version - 1,
                ),
            )
            == 1
        )

    def eap_session(self, session_id: str) -> EapSessionRecord | None:
        """An EAP session."""
        row = self._one(
            "SELECT id, purpose, imsi, eid, service, snapshot, expires, done, version, plmn"
            " FROM eap_session WHERE id = ?",
            (session_id,),
        )
        if row is None:
            return None
        return EapSessionRecord(
            id=row[0],
            purpose=EapPurpose(row[1]),
            imsi=row[2],
            eid=row[3],
            service=None if row[4] is None else Service(row[4]),
            snapshot=bytes(row[5]),
            expires=_dtn(row[6]),
            done=bool(row[7]),
            version=int(row[8]),
            plmn=str(row[9]),
        )

    # -- the simulated radio (schema v3) ---------------------------------------

    def cells(self) -> list[Cell]:
        """Every cell the operator's network broadcasts (by PLMN, then RAT)."""
        rows = self._all("SELECT plmn, rat, country, name, signal FROM cell ORDER BY plmn, rat")
        out: list[Cell] = []
        for plmn, rat, country, name, signal in rows:
            try:
                steps = tuple(
                    (datetime.fromisoformat(when), None if dbm is None else int(dbm))
                    for when, dbm in json.loads(signal)
                )
                out.append(Cell(plmn, Rat(rat), country, name, steps))
            except (ValueError, TypeError, RspfedError) as exc:
                raise StorageError(f"malformed cell {plmn}/{rat}: {exc}") from None
        return out

    def put_cell(self, cell: Cell) -> None:
        """Insert or replace the cell of ``(cell.plmn, cell.rat)``."""
        signal = json.dumps([[_t(when), dbm] for when, dbm in cell.signal])
        self._write(
            "INSERT OR REPLACE INTO cell VALUES (?, ?, ?, ?, ?)",
            (cell.plmn, cell.rat.value, cell.country, cell.name, signal),
        )

    def delete_cell(self, plmn: str, rat: Rat) -> bool:
        """Delete a cell; False if there was none."""
        return self._write("DELETE FROM cell WHERE plmn = ? AND rat = ?", (plmn, rat.value)) == 1

    def partners(self) -> tuple[str, ...]:
        """The roaming partner PLMNs, in the order they were added."""
        rows = self._all("SELECT plmn FROM roaming_partner ORDER BY added, plmn")
        return tuple(str(r[0]) for r in rows)

    def add_partner(self, plmn: str, now: datetime) -> bool:
        """Add a roaming partner PLMN; False if it was one already."""
        return (
            self._write("INSERT OR IGNORE INTO roaming_partner VALUES (?, ?)", (plmn, _t(now))) == 1
        )

    def remove_partner(self, plmn: str) -> bool:
        """Remove a roaming partner PLMN; False if it was none."""
        return self._write("DELETE FROM roaming_partner WHERE plmn = ?", (plmn,)) == 1

    def network_setting(self, name: str) -> str | None:
        """A network setting (``None``: not set)."""
        row = self._one("SELECT value FROM network_setting WHERE name = ?", (name,))
        return None if row is None else str(row[0])

    def set_network_setting(self, name: str, value: str | None) -> None:
        """Set (or with ``None`` clear) a network setting."""
        if value is None:
            self._write("DELETE FROM network_setting WHERE name = ?", (name,))
        else:
            self._write("INSERT OR REPLACE INTO network_setting VALUES (?, ?)", (name, value))

    # -- the shared data pool (schema v2) ---------------------------------------

    def pool_exec(self, sql: str, params: Sequence[object] = ()) -> int:
        """One write to the pool's tables (joins an open transaction); rows changed.

        For :mod:`rspfed.federation.pool`, which owns those tables' layout.
        """
        with self.transaction():
            return self._exec(sql, params).rowcount

    def pool_rows(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """Rows of a query on the pool's tables."""
        return self._all(sql, params)

    # -- nonces and housekeeping ---------------------------------------------

    def use_nonce(self, key_id: bytes, nonce: bytes, expires: datetime) -> bool:
        """Record a request nonce; False if this key used it before (a replay)."""
        with self.transaction():
            cur = self._exec(
                "INSERT OR IGNORE INTO nonce VALUES (?, ?, ?)", (key_id, nonce, _t(expires))
            )
            return cur.rowcount == 1

    def purge(self, now: datetime) -> int:
        """Delete expired nonces, EAP sessions and join requests; how many rows."""
        stamp = _t(now)
        with self.transaction():
            n = self._exec("DELETE FROM nonce WHERE expires <= ?", (stamp,)).rowcount
            n += self._exec("DELETE FROM eap_session WHERE expires <= ?", (stamp,)).rowcount
            n += self._exec(
                "DELETE FROM join_request WHERE expires <= ? AND state != ?",
                (stamp, JoinState.COLLECTED.value),
            ).rowcount
        return n
