"""The operator's simulated radio: its cells, its roaming partners, the attach check.

An operator's store (schema v3, :class:`~rspfed.federation.store.SqliteOperatorStore`)
holds the cells its simulated network broadcasts (:class:`~rspfed.network.radio.Cell`,
one per ``(PLMN, RAT)``, each with a signal schedule) — its own PLMN(s), and
the visited networks it simulates — plus the PLMNs of its roaming partners.
Everything is read from the store per call, so a running ``operator serve``
sees ``rspfed operator cells`` changes at once.

:func:`check_attach` is the network's side of an attach on a PLMN
(the visited PLMN the bearer is metered against, or a refusal):

- the operator refuses for coverage only what it simulates: a PLMN it has
  cells for must have one on air now (``no-coverage`` otherwise: the device
  cannot reach a network that is not there); a PLMN it has no cell for is
  simulated elsewhere (another operator's service) or nowhere, and the
  operator takes the device's scan for it;
- then the PLMN must be the subscriber's home PLMN (the IMSI starts with it)
  or a roaming partner (``plmn-not-allowed`` otherwise, EMM cause #11: what
  a visited network without a roaming agreement answers);
- no PLMN given: the home network.  If the operator has cells of the
  subscriber's home PLMN (a PLMN its IMSI starts with), one of them must be
  on air (else ``no-coverage``); with no such cell there is no radio model
  and the attach goes through, as before the radio existed.

The operator core checks the subscriber first (an unknown IMSI is
``unknown-subscriber`` whatever the PLMN, so a device can find its own
operator among several).

:func:`profile_files` gives the EF contents the operator's new profiles get
(SAIP personalisation ``files``): its partners in EF.OPLMNwAcT (all RATs,
in the order added) and, when set, EF.HPPLMN.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import attrs

from rspfed.errors import EncodeError, UsageError
from rspfed.federation.store import SqliteOperatorStore
from rspfed.network.errors import NetworkRefusedError, RefusalReason
from rspfed.network.plmn import encode_hpplmn, encode_plmn_wact_list
from rspfed.network.radio import Cell, RadioEnvironment, Rat, check_plmn, mcc_country

__all__ = [
    "HPPLMN_SETTING",
    "add_partner",
    "check_attach",
    "hpplmn_period",
    "profile_files",
    "radio_environment",
    "remove_partner",
    "set_cell",
    "set_hpplmn_period",
    "set_off",
]

HPPLMN_SETTING = "hpplmn"
"""The network setting holding EF.HPPLMN's octet (hex) for new profiles."""


def radio_environment(store: SqliteOperatorStore) -> RadioEnvironment:
    """The operator's cells as a :class:`~rspfed.network.radio.RadioEnvironment`."""
    return RadioEnvironment(store.cells())


def set_cell(
    store: SqliteOperatorStore,
    plmn: str,
    rat: Rat,
    dbm: int | None,
    *,
    now: datetime,
    at: datetime | None = None,
    country: str | None = None,
    name: str | None = None,
) -> Cell:
    """Put ``(plmn, rat)`` on air at ``dbm`` (``None``: off air) from ``at`` (default ``now``).

    A new cell takes ``country`` (default: the MCC's, :func:`mcc_country`)
    and ``name``; an existing one keeps its own unless they are given.  Steps
    that no longer matter at ``now`` are dropped.  Turning off a cell that
    does not exist is a :class:`~rspfed.errors.UsageError`.
    """
    check_plmn(plmn)
    when = now if at is None else at
    cell = radio_environment(store).cell(plmn, rat)
    if cell is None:
        if dbm is None:
            raise UsageError(f"no cell {plmn} on {rat.value} to turn off")
        cell = Cell(plmn, rat, country if country is not None else mcc_country(plmn), name or "")
    else:
        cell = attrs.evolve(
            cell,
            country=cell.country if country is None else country,
            name=cell.name if name is None else name,
        )
    cell = cell.with_step(when, dbm).pruned(now)
    store.put_cell(cell)
    return cell


def set_off(store: SqliteOperatorStore, plmn: str, rat: Rat | None, *, now: datetime) -> list[Cell]:
    """Take ``plmn``'s cell on ``rat`` (every RAT when ``None``) off air from ``now``."""
    check_plmn(plmn)
    cells = [c for c in store.cells() if c.plmn == plmn and (rat is None or c.rat is rat)]
    if not cells:
        raise UsageError(f"no cell {plmn}{'' if rat is None else ' on ' + rat.value}")
    return [set_cell(store, plmn, c.rat, None, now=now) for c in cells]


def add_partner(store: SqliteOperatorStore, plmn: str, *, now: datetime) -> bool:
    """Add a roaming partner PLMN; False if it was one already."""
    return store.add_partner(check_plmn(plmn), now)


def remove_partner(store: SqliteOperatorStore, plmn: str) -> bool:
    """Remove a roaming partner PLMN; False if it was none."""
    return store.remove_partner(check_plmn(plmn))


def hpplmn_period(store: SqliteOperatorStore) -> timedelta | None:
    """The EF.HPPLMN period new profiles get; ``None`` if not set (the template's value)."""
    from rspfed.network.plmn import decode_hpplmn

    value = store.network_setting(HPPLMN_SETTING)
    if value is None:
        return None
    return decode_hpplmn(bytes.fromhex(value))


def set_hpplmn_period(store: SqliteOperatorStore, period: timedelta | None, *, off: bool) -> None:
    """Set EF.HPPLMN for new profiles: ``period`` (whole 6-minute units), or ``off`` (``00``).

    ``period=None, off=False`` clears the setting (the template's value stays).
    """
    if off:
        store.set_network_setting(HPPLMN_SETTING, "00")
    elif period is None:
        store.set_network_setting(HPPLMN_SETTING, None)
    else:
        try:
            octet = encode_hpplmn(period)
        except EncodeError as exc:
            raise UsageError("the search period is 6 min to 8 h, in 6-minute steps") from exc
        store.set_network_setting(HPPLMN_SETTING, octet.hex())


def check_attach(store: SqliteOperatorStore, imsi: str, plmn: str | None, now: datetime) -> str:
    """The visited PLMN an attach of ``imsi`` on ``plmn`` is metered against (see the module doc).

    ``""`` for the home network.  :class:`~rspfed.network.NetworkRefusedError`
    with ``no-coverage`` or ``plmn-not-allowed``.
    """
    env = radio_environment(store)
    on_air = {v.plmn for v in env.scan(now)}
    if plmn is None:
        home = {c.plmn for c in env.cells if imsi.startswith(c.plmn)}
        if home and not home & on_air:
            raise NetworkRefusedError(RefusalReason.NO_COVERAGE, "the home network is off air")
        return ""
    check_plmn(plmn)
    simulated = any(c.plmn == plmn for c in env.cells)
    if simulated and plmn not in on_air:
        raise NetworkRefusedError(RefusalReason.NO_COVERAGE, f"PLMN {plmn} is not on air")
    if imsi.startswith(plmn):
        return ""
    if plmn not in store.partners():
        raise NetworkRefusedError(
            RefusalReason.ROAMING_NOT_ALLOWED, f"PLMN {plmn} is not a roaming partner"
        )
    return plmn


def profile_files(store: SqliteOperatorStore, sizes: Mapping[str, int]) -> dict[str, bytes]:
    """EF contents for a new profile: ``ef-oplmnwact`` (partners) and ``ef-hpplmn``.

    ``sizes`` maps the EF names the profile template can personalise to their
    sizes; an EF the template cannot take is left out (and so keeps the
    template's content).  Partners that do not fit are dropped (the first
    added are kept).  ``ef-oplmnwact`` is only written when there are partners.
    """
    out: dict[str, bytes] = {}
    partners = store.partners()
    size = sizes.get("ef-oplmnwact")
    if partners and size is not None and size >= 5:
        entries = [(p, tuple(Rat)) for p in partners[: size // 5]]
        out["ef-oplmnwact"] = encode_plmn_wact_list(entries, size - size % 5) + b"\xff" * (size % 5)
    value = store.network_setting(HPPLMN_SETTING)
    if value is not None and sizes.get("ef-hpplmn") == 1:
        out["ef-hpplmn"] = bytes.fromhex(value)
    return out
