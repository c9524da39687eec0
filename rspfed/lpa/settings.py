"""The LPA's settings store: backup marker, country rules, the failover journal.

One SQLite file beside the eUICC store (:func:`default_path`: ``<STORE>.lpa``;
a PC/SC user passes any path).  It holds what the LPA's profile policy
(:mod:`rspfed.lpa.policy`, :mod:`rspfed.lpa.failover`) decides on top of the
eUICC, never anything the eUICC itself holds:

* the failover machine's persisted state (:class:`~rspfed.lpa._failover_state.FailoverState`,
  JSON): the primary and backup ICCIDs, the phase and its timers and, during a
  switch, the *journal* (from, to, why, since when) that a restart reconciles
  with the eUICC's actual enabled profile;
* the country rules (``country -> ICCID``, ordered by insertion);
* the last visited country the rules acted on (so a rule fires once per arrival);
* per ICCID: the operator URL (learned or set) and the profile's network
  lists (HPLMN, equivalent, operator and forbidden PLMNs, read from the
  profile's own files while it was enabled), so the policy can tell whether
  a *disabled* profile's network is on air.

Atomicity
    Every change is one SQLite transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``,
    WAL, ``synchronous=FULL``): a crash leaves the state before or after it.
    Nothing is cached: reads show the file's state, so several processes
    (``rspfed lpa watch`` and ``rspfed lpa switch``) can share the file.

Schema
    ``PRAGMA user_version`` is the schema version, ``PRAGMA application_id``
    marks the file (:data:`APPLICATION_ID`); :data:`MIGRATIONS` step *i* takes
    version *i* to *i + 1*.  A newer file, or another SQLite database, is
    refused with :class:`~rspfed.errors.StorageError`.  The file and its
    ``-wal``/``-shm`` companions have mode ``0600``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from rspfed.errors import DecodeError, StorageError, UsageError
from rspfed.lpa._failover_state import FailoverState

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "CountryRule",
    "LpaSettings",
    "NetworkLists",
    "check_iccid",
    "default_path",
]

APPLICATION_ID: Final = 0x7273706C
"""``PRAGMA application_id`` of an LPA settings store (ASCII ``rspl``)."""

MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE setting (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE rule (
        position INTEGER PRIMARY KEY AUTOINCREMENT,
        country TEXT NOT NULL UNIQUE,
        iccid TEXT NOT NULL
    );
    CREATE TABLE profile (
        iccid TEXT PRIMARY KEY,
        operator_url TEXT,
        networks TEXT
    );
    """,
)
"""Schema steps; step *i* takes version *i* to *i + 1*."""

SCHEMA_VERSION: Final = len(MIGRATIONS)
"""The schema version this code writes."""

_ICCID = re.compile(r"[0-9]{18,20}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_PLMN = re.compile(r"[0-9]{5,6}")
_FAILOVER = "failover"
_COUNTRY_SEEN = "country"


def default_path(euicc_store: str | os.PathLike[str]) -> Path:
    """The settings store beside a software eUICC store: ``<STORE>.lpa``."""
    p = Path(euicc_store)
    return p.with_name(p.name + ".lpa")


def check_iccid(iccid: str) -> str:
    """``iccid`` if it is 18 to 20 decimal digits, else :class:`~rspfed.errors.UsageError`."""
    if not isinstance(iccid, str) or not _ICCID.fullmatch(iccid):
        raise UsageError("an ICCID is 18 to 20 decimal digits")
    return iccid


def _country(value: str) -> str:
    if not isinstance(value, str) or not _COUNTRY.fullmatch(value.upper()):
        raise UsageError("a country is an ISO 3166-1 alpha-2 code (two letters, e.g. FR)")
    return value.upper()


def _plmns(value: Sequence[str]) -> tuple[str, ...]:
    out = tuple(value)
    for plmn in out:
        if not isinstance(plmn, str) or not _PLMN.fullmatch(plmn):
            raise UsageError("a PLMN is MCC||MNC, 5 or 6 digits")
    return out


@attrs.frozen
class CountryRule:
    """ "When the visited country is ``country``, enable ``iccid``" (``position``: order)."""

    position: int
    country: str
    iccid: str


@attrs.frozen
class NetworkLists:
    """The PLMNs a profile may use, as read from its own files (TS 31.102).

    ``home`` is the HPLMN (from EF.IMSI) and the EHPLMNs; ``preferred`` the
    user and operator controlled lists (EF.PLMNwAcT, EF.OPLMNwACT) in order;
    ``forbidden`` EF.FPLMN.  The policy calls the profile *usable* where a
    visible network is in ``home`` or ``preferred`` and not in ``forbidden``.
    """

    home: tuple[str, ...] = attrs.field(converter=_plmns)
    preferred: tuple[str, ...] = attrs.field(default=(), converter=_plmns)
    forbidden: tuple[str, ...] = attrs.field(default=(), converter=_plmns)

    def allows(self, plmn: str) -> bool:
        """Whether a network with this PLMN is one the profile may use."""
        return plmn not in self.forbidden and (plmn in self.home or plmn in self.preferred)


def _private(path: Path) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != 0o600:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _migrate(db: sqlite3.Connection, name: str) -> None:
    app = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == 0 and app == 0:
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables:
            raise StorageError(f"{name} is another SQLite database, not an LPA settings store")
    elif app != APPLICATION_ID:
        raise StorageError(f"{name} is not an LPA settings store")
    if version > SCHEMA_VERSION:
        raise StorageError(
            f"{name} has schema version {version}; this rspfed reads up to {SCHEMA_VERSION}"
        )
    for step in range(version, SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[step].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {step + 1}")
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise


class LpaSettings:
    """The LPA settings store (see the module doc).  Open with :meth:`open`; close it
    (or use it as a context manager)."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self._path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> LpaSettings:
        """Open the store at ``path``, creating (mode 0600) and migrating it as needed."""
        p = Path(path)
        try:
            _private(p)
            for suffix in ("-wal", "-shm"):
                companion = p.with_name(p.name + suffix)
                if companion.exists():
                    _private(companion)
        except OSError as exc:
            raise StorageError(f"cannot open LPA settings {p.name}: {exc.strerror}") from exc
        try:
            db = sqlite3.connect(p, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open LPA settings {p.name}: {exc}") from exc
        try:
            db.execute("PRAGMA busy_timeout = 5000")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            _migrate(db, p.name)
        except sqlite3.Error as exc:
            db.close()
            raise StorageError(f"LPA settings {p.name} is unreadable: {exc}") from exc
        except StorageError:
            db.close()
            raise
        for suffix in ("-wal", "-shm"):
            companion = p.with_name(p.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_IMODE(companion.stat().st_mode) != 0o600:
                    os.chmod(companion, 0o600)
        return cls(db, p)

    @property
    def path(self) -> Path:
        """The store's file."""
        return self._path

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> LpaSettings:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LpaSettings {self._path.name}>"

    # -- plumbing ------------------------------------------------------------

    def _read(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"LPA settings read failed: {exc}") from exc

    def _write(self, work: Callable[[sqlite3.Connection], object]) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            work(self._db)
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"LPA settings write failed: {exc}") from exc
            raise

    def _setting(self, name: str) -> str | None:
        rows = self._read("SELECT value FROM setting WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    @staticmethod
    def _put(db: sqlite3.Connection, name: str, value: str | None) -> None:
        if value is None:
            db.execute("DELETE FROM setting WHERE name = ?", (name,))
        else:
            db.execute(
                "INSERT INTO setting (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )

    # -- the failover state and the arrival memory ------------------------------

    def failover_state(self) -> FailoverState:
        """The persisted failover state (a fresh one before the first write)."""
        text = self._setting(_FAILOVER)
        if text is None:
            return FailoverState()
        try:
            return FailoverState.from_json(text)
        except DecodeError as exc:
            raise StorageError(
                f"LPA settings {self._path.name}: bad failover state: {exc}"
            ) from exc

    def put_failover_state(self, state: FailoverState, *, country: str | None = None) -> None:
        """Store ``state`` (and, when given, the visited country) in one transaction."""
        text = state.to_json()
        seen = None if country is None else (country.upper() if country else "")

        def work(db: sqlite3.Connection) -> None:
            self._put(db, _FAILOVER, text)
            if seen is not None:
                self._put(db, _COUNTRY_SEEN, seen)

        self._write(work)

    def visited_country(self) -> str | None:
        """The visited country the rules last acted on (``""`` unknown, ``None`` never)."""
        return self._setting(_COUNTRY_SEEN)

    # -- country rules -----------------------------------------------------------

    def rules(self) -> list[CountryRule]:
        """The country rules in order."""
        return [
            CountryRule(int(p), str(c), str(i))
            for p, c, i in self._read("SELECT position, country, iccid FROM rule ORDER BY position")
        ]

    def add_rule(self, country: str, iccid: str) -> CountryRule:
        """Add "in ``country`` enable ``iccid``" at the end (:class:`~rspfed.errors.UsageError`
        if ``country`` already has a rule: remove it first)."""
        code, iccid = _country(country), check_iccid(iccid)
        if any(r.country == code for r in self.rules()):
            raise UsageError(f"there is already a rule for {code}: remove it first")
        self._write(
            lambda db: db.execute("INSERT INTO rule (country, iccid) VALUES (?, ?)", (code, iccid))
        )
        return next(r for r in self.rules() if r.country == code)

    def remove_rule(self, country: str) -> bool:
        """Remove the rule for ``country``; whether there was one."""
        code = _country(country)
        found = any(r.country == code for r in self.rules())
        self._write(lambda db: db.execute("DELETE FROM rule WHERE country = ?", (code,)))
        return found

    def rule_for(self, country: str) -> CountryRule | None:
        """The rule for ``country`` (any case), if any."""
        code = country.upper()
        return next((r for r in self.rules() if r.country == code), None)

    # -- per profile ----------------------------------------------------------------

    def operator_url(self, iccid: str) -> str | None:
        """The operator URL known for the profile ``iccid``."""
        rows = self._read("SELECT operator_url FROM profile WHERE iccid = ?", (iccid,))
        return str(rows[0][0]) if rows and rows[0][0] is not None else None

    def set_operator_url(self, iccid: str, url: str | None) -> None:
        """Remember (or, with ``None``, forget) the operator URL of ``iccid``."""
        check_iccid(iccid)
        self._write(
            lambda db: db.execute(
                "INSERT INTO profile (iccid, operator_url) VALUES (?, ?) "
                "ON CONFLICT(iccid) DO UPDATE SET operator_url = excluded.operator_url",
                (iccid, url),
            )
        )

    def networks(self, iccid: str) -> NetworkLists | None:
        """The network lists last read from the profile ``iccid``'s files."""
        rows = self._read("SELECT networks FROM profile WHERE iccid = ?", (iccid,))
        if not rows or rows[0][0] is None:
            return None
        try:
            data = json.loads(rows[0][0])
            return NetworkLists(data["home"], data["preferred"], data["forbidden"])
        except (ValueError, KeyError, TypeError, UsageError) as exc:
            raise StorageError(f"LPA settings: bad network lists for {iccid}") from exc

    def set_networks(self, iccid: str, lists: NetworkLists) -> None:
        """Remember the network lists of ``iccid``."""
        check_iccid(iccid)
        text = json.dumps(
            {"home": lists.home, "preferred": lists.preferred, "forbidden": lists.forbidden}
        )
        self._write(
            lambda db: db.execute(
                "INSERT INTO profile (iccid, networks) VALUES (?, ?) "
                "ON CONFLICT(iccid) DO UPDATE SET networks = excluded.networks",
                (iccid, text),
            )
        )
