"""The simulated radio environment: which networks a device sees, and how strong (sans-IO).

A real device learns what is around it by scanning the air.  In rspfed the
operators' services broadcast :class:`Cell` descriptions instead: one cell per
``(PLMN, RAT)`` with a *schedule* of signal levels (``from this instant on,
this many dBm``; ``None`` = off air).  :meth:`Cell.at` evaluates the schedule
at an injected ``now`` and gives the :class:`VisibleNetwork` a scan would
report, or ``None`` when the cell is off air.  :class:`RadioEnvironment` is a
set of cells; :meth:`RadioEnvironment.scan` lists what is visible at ``now``.

Nothing here reads a clock: every time is passed in, so a test can walk a
schedule forward instantly and the demo can plan "network down in 5 s, back
20 s later" as two schedule steps.

:func:`mcc_country` maps a mobile country code to an ISO 3166-1 alpha-2 code
(ITU-T E.212 assignments, a small table of common MCCs).  The test MCCs
``001`` (and ``999``, private networks) map to ``""`` (no country): test
networks give their country explicitly when a country matters (e.g. for a
"visited country" rule).
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Iterable
from datetime import datetime

import attrs

from rspfed.errors import UsageError

__all__ = [
    "MCC_COUNTRY",
    "SIGNAL_MAX_DBM",
    "SIGNAL_MIN_DBM",
    "Cell",
    "RadioEnvironment",
    "Rat",
    "VisibleNetwork",
    "check_plmn",
    "mcc_country",
]

_PLMN = re.compile(r"[0-9]{5,6}")
_COUNTRY = re.compile(r"(?:[A-Z]{2})?")

SIGNAL_MIN_DBM = -156
"""Lowest signal level accepted (the RSRP reporting range starts at -156 dBm, TS 36.133)."""
SIGNAL_MAX_DBM = -31
"""Highest signal level accepted (the RSRP reporting range ends at -31 dBm, TS 36.133)."""


class Rat(enum.Enum):
    """A radio access technology, as the access technology bits of TS 31.102 §4.2.5 name them."""

    GSM = "gsm"
    """GERAN (2G)."""
    UTRAN = "utran"
    """UTRAN (3G)."""
    EUTRAN = "eutran"
    """E-UTRAN (4G, LTE)."""
    NGRAN = "ngran"
    """NG-RAN (5G NR)."""


def check_plmn(plmn: str) -> str:
    """``plmn`` if it is ``MCC || MNC`` (5 or 6 decimal digits); :class:`UsageError` otherwise."""
    if not isinstance(plmn, str) or not _PLMN.fullmatch(plmn):
        raise UsageError("a PLMN is MCC || MNC: 5 or 6 decimal digits")
    return plmn


def _check_plmn(_inst: object, _attr: object, value: str) -> None:
    check_plmn(value)


def _check_country(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or not _COUNTRY.fullmatch(value):
        raise UsageError("a country is an ISO 3166-1 alpha-2 code in upper case, or ''")


def _check_rat(_inst: object, _attr: object, value: Rat) -> None:
    if not isinstance(value, Rat):
        raise UsageError("rat must be a Rat")


def _check_name(_inst: object, _attr: object, value: str) -> None:
    if not isinstance(value, str) or len(value) > 64 or not value.isprintable():
        raise UsageError("a network name is printable text of at most 64 characters")


def _check_dbm(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError("a signal level is an integer number of dBm")
    if not SIGNAL_MIN_DBM <= value <= SIGNAL_MAX_DBM:
        raise UsageError(f"a signal level is {SIGNAL_MIN_DBM} to {SIGNAL_MAX_DBM} dBm")
    return value


def _check_signal_dbm(_inst: object, _attr: object, value: int) -> None:
    _check_dbm(value)


@attrs.frozen
class VisibleNetwork:
    """One entry of a scan: a network on air now, with its signal level.

    ``plmn`` is ``MCC || MNC`` (5 or 6 digits), ``signal_dbm`` an RSRP-like
    level (-80 strong, -115 weak), ``country`` an ISO 3166-1 alpha-2 code in
    upper case (``""`` if unknown), ``name`` the operator's display name.
    """

    plmn: str = attrs.field(validator=_check_plmn)
    rat: Rat = attrs.field(validator=_check_rat)
    signal_dbm: int = attrs.field(validator=_check_signal_dbm)
    country: str = attrs.field(validator=_check_country)
    name: str = attrs.field(default="", validator=_check_name)

    def to_json(self) -> dict[str, object]:
        """JSON-safe form (``plmn``, ``rat``, ``signal_dbm``, ``country``, ``name``)."""
        return {
            "plmn": self.plmn,
            "rat": self.rat.value,
            "signal_dbm": self.signal_dbm,
            "country": self.country,
            "name": self.name,
        }

    @classmethod
    def from_json(cls, data: object) -> VisibleNetwork:
        """Inverse of :meth:`to_json`; :class:`UsageError` on anything malformed."""
        if not isinstance(data, dict):
            raise UsageError("a visible network is a JSON object")
        try:
            return cls(
                plmn=data["plmn"],
                rat=Rat(data["rat"]),
                signal_dbm=data["signal_dbm"],
                country=data.get("country", ""),
                name=data.get("name", ""),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise UsageError(f"malformed visible network: {type(exc).__name__}") from exc


def _check_aware(when: datetime) -> datetime:
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise UsageError("times must be timezone-aware datetimes")
    return when


def _steps(
    values: Iterable[tuple[datetime, int | None]],
) -> tuple[tuple[datetime, int | None], ...]:
    out: list[tuple[datetime, int | None]] = []
    for item in values:
        if not isinstance(item, tuple) or len(item) != 2:
            raise UsageError("a signal step is (datetime, dBm or None)")
        when, dbm = item
        _check_aware(when)
        out.append((when, None if dbm is None else _check_dbm(dbm)))
    out.sort(key=lambda step: step[0])
    for (a, _), (b, _) in itertools.pairwise(out):
        if a == b:
            raise UsageError("two signal steps at the same instant")
    return tuple(out)


@attrs.frozen
class Cell:
    """What one simulated network broadcasts on one RAT, with a signal schedule.

    ``signal`` is a tuple of steps ``(from, dBm)`` sorted by time (the
    converter sorts): from ``from`` on, the cell is received at ``dBm``, or is
    off air when ``dBm`` is ``None``.  Before the first step the cell is off
    air.  Two steps at the same instant are refused.
    """

    plmn: str = attrs.field(validator=_check_plmn)
    rat: Rat = attrs.field(validator=_check_rat)
    country: str = attrs.field(validator=_check_country)
    name: str = attrs.field(validator=_check_name)
    signal: tuple[tuple[datetime, int | None], ...] = attrs.field(default=(), converter=_steps)

    @property
    def key(self) -> tuple[str, Rat]:
        """``(plmn, rat)``: a cell's identity in a :class:`RadioEnvironment`."""
        return (self.plmn, self.rat)

    def level(self, now: datetime) -> int | None:
        """The signal level at ``now`` (``None`` = off air)."""
        _check_aware(now)
        current: int | None = None
        for when, dbm in self.signal:
            if when > now:
                break
            current = dbm
        return current

    def at(self, now: datetime) -> VisibleNetwork | None:
        """What a scan at ``now`` reports for this cell, or ``None`` when off air."""
        dbm = self.level(now)
        if dbm is None:
            return None
        return VisibleNetwork(self.plmn, self.rat, dbm, self.country, self.name)

    def with_step(self, when: datetime, dbm: int | None) -> Cell:
        """A copy with one more step (replacing a step at the same instant)."""
        _check_aware(when)
        kept = tuple(s for s in self.signal if s[0] != when)
        return attrs.evolve(self, signal=(*kept, (when, dbm)))

    def pruned(self, now: datetime) -> Cell:
        """A copy without the steps that no longer matter at ``now`` or later.

        Steps before the one in force at ``now`` are dropped (the schedule an
        operator store keeps does not grow without bound).
        """
        _check_aware(now)
        past = [i for i, (when, _) in enumerate(self.signal) if when <= now]
        if len(past) <= 1:
            return self
        return attrs.evolve(self, signal=self.signal[past[-1] :])

    def next_change(self, now: datetime) -> datetime | None:
        """The first step strictly after ``now`` (``None`` if the schedule is done)."""
        _check_aware(now)
        for when, _ in self.signal:
            if when > now:
                return when
        return None


def _cells(values: Iterable[Cell]) -> tuple[Cell, ...]:
    cells = tuple(values)
    seen: set[tuple[str, Rat]] = set()
    for cell in cells:
        if not isinstance(cell, Cell):
            raise UsageError("a radio environment holds Cells")
        if cell.key in seen:
            raise UsageError(f"two cells for {cell.plmn} on {cell.rat.value}")
        seen.add(cell.key)
    return tuple(sorted(cells, key=lambda c: (c.plmn, c.rat.value)))


@attrs.frozen
class RadioEnvironment:
    """A set of :class:`Cell` objects, at most one per ``(PLMN, RAT)``; pure.

    :meth:`scan` lists the networks on air at ``now``, strongest first (ties
    by PLMN, then RAT, so the order is deterministic).
    """

    cells: tuple[Cell, ...] = attrs.field(default=(), converter=_cells)

    def scan(self, now: datetime) -> list[VisibleNetwork]:
        """The networks on air at ``now``, strongest first."""
        _check_aware(now)
        seen = [v for v in (c.at(now) for c in self.cells) if v is not None]
        return sorted(seen, key=lambda v: (-v.signal_dbm, v.plmn, v.rat.value))

    def cell(self, plmn: str, rat: Rat) -> Cell | None:
        """The cell for ``(plmn, rat)``, if any."""
        for cell in self.cells:
            if cell.key == (plmn, rat):
                return cell
        return None

    def with_cell(self, cell: Cell) -> RadioEnvironment:
        """A copy where ``cell`` replaces any cell with the same ``(PLMN, RAT)``."""
        return RadioEnvironment((*(c for c in self.cells if c.key != cell.key), cell))

    def merged(self, other: RadioEnvironment) -> RadioEnvironment:
        """A copy with ``other``'s cells added (``other`` wins on the same ``(PLMN, RAT)``)."""
        env = self
        for cell in other.cells:
            env = env.with_cell(cell)
        return env

    def next_change(self, now: datetime) -> datetime | None:
        """The earliest scheduled change after ``now`` in any cell (``None``: nothing planned)."""
        times = [t for t in (c.next_change(now) for c in self.cells) if t is not None]
        return min(times) if times else None


MCC_COUNTRY: dict[str, str] = {
    "001": "",  # test network (ITU-T E.212 test MCC): no country
    "999": "",  # private networks: no country
    "202": "GR",
    "204": "NL",
    "206": "BE",
    "208": "FR",
    "212": "MC",
    "213": "AD",
    "214": "ES",
    "216": "HU",
    "218": "BA",
    "219": "HR",
    "220": "RS",
    "222": "IT",
    "226": "RO",
    "228": "CH",
    "230": "CZ",
    "231": "SK",
    "232": "AT",
    "234": "GB",
    "235": "GB",
    "238": "DK",
    "240": "SE",
    "242": "NO",
    "244": "FI",
    "246": "LT",
    "247": "LV",
    "248": "EE",
    "250": "RU",
    "255": "UA",
    "260": "PL",
    "262": "DE",
    "266": "GI",
    "268": "PT",
    "270": "LU",
    "272": "IE",
    "274": "IS",
    "276": "AL",
    "278": "MT",
    "280": "CY",
    "284": "BG",
    "286": "TR",
    "293": "SI",
    "294": "MK",
    "295": "LI",
    "297": "ME",
    "302": "CA",
    "310": "US",
    "311": "US",
    "312": "US",
    "313": "US",
    "314": "US",
    "315": "US",
    "316": "US",
    "334": "MX",
    "404": "IN",
    "405": "IN",
    "440": "JP",
    "441": "JP",
    "450": "KR",
    "454": "HK",
    "460": "CN",
    "466": "TW",
    "505": "AU",
    "525": "SG",
    "530": "NZ",
    "602": "EG",
    "655": "ZA",
    "724": "BR",
    "722": "AR",
}
"""Mobile country code → ISO 3166-1 alpha-2 (ITU-T E.212 assignments; a common subset)."""


def mcc_country(plmn_or_mcc: str) -> str:
    """The ISO 3166-1 alpha-2 country of an MCC (or of a PLMN's first three digits).

    ``""`` for the test MCC ``001``, private networks (``999``) and MCCs not in
    :data:`MCC_COUNTRY`.
    """
    if not isinstance(plmn_or_mcc, str) or not re.fullmatch(
        r"[0-9]{3}(?:[0-9]{2,3})?", plmn_or_mcc
    ):
        raise UsageError("expected an MCC (3 digits) or a PLMN (5 or 6 digits)")
    return MCC_COUNTRY.get(plmn_or_mcc[:3], "")
