"""Automatic network selection inside a profile (3GPP TS 23.122 §4.4.3, automatic mode).

The profile's own USIM files say which networks it prefers
(:func:`read_plmn_lists` reads them over the card's APDUs into a
:class:`PlmnLists`); :func:`select_network` picks one of the networks a scan
found (:class:`~rspfed.network.radio.VisibleNetwork`), in the order of TS
23.122 §4.4.3.1.1:

1. :attr:`PriorityClass.HPLMN`: the HPLMN (from EF.IMSI/EF.AD), or, when
   EF.EHPLMN lists any PLMN, the highest-priority EHPLMN on air;
2. :attr:`PriorityClass.USER`: EF.PLMNwAcT entries, in list order;
3. :attr:`PriorityClass.OPERATOR`: EF.OPLMNwAcT entries, in list order;
4. :attr:`PriorityClass.OTHER_HIGH_QUALITY`: other networks received with a
   high quality signal (E-UTRAN/NG-RAN RSRP >= -110 dBm, UTRAN >= -95 dBm,
   GSM >= -85 dBm), strongest first (23.122 says "in random order": rspfed
   uses signal order so that a selection is reproducible);
5. :attr:`PriorityClass.OTHER`: the remaining networks, strongest first.

A PLMN in EF.FPLMN (or in ``exclude``) is never selected, whatever its
class.  The signal only ranks networks of one class and, in the lists, of one
entry: a weak HPLMN beats a strong partner.  A list entry names RATs; an
entry whose access technology bits are all zero matches any RAT.  A network
on a RAT outside ``rats`` (the device's radios) is ignored.

:class:`NetworkSelector` is the sans-IO selection loop of one profile: it takes
scans, attach results and ``now``, stays on its network while the network is
visible, selects again when the network is lost or refuses the attach, and
while roaming runs the higher priority PLMN search of TS 23.122 §4.4.3.3 every
EF.HPPLMN period (scalable for tests and the demo).  It answers with events
(:class:`NetworkSelected`, :class:`NoNetwork`, :class:`PlmnForbidden`).
See ``docs/network-selection.md``.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Literal

import attrs

from rspfed.errors import DecodeError, ProtocolError, UsageError
from rspfed.euicc.card import Card
from rspfed.network._apdu import SW_OK, SW_SECURITY, read_transparent, select_ef, select_usim, send
from rspfed.network.errors import RefusalReason
from rspfed.network.plmn import (
    EF_EHPLMN,
    EF_FPLMN,
    EF_HPPLMN,
    EF_OPLMNWACT,
    EF_PLMNWACT,
    decode_hpplmn,
    decode_plmn_list,
    decode_plmn_wact_list,
    encode_plmn_list,
)
from rspfed.network.radio import Rat, VisibleNetwork, check_plmn, mcc_country

__all__ = [
    "HIGH_QUALITY_DBM",
    "NetworkSelected",
    "NetworkSelector",
    "NoNetwork",
    "NoNetworkReason",
    "PlmnForbidden",
    "PlmnLists",
    "PriorityClass",
    "Selection",
    "SelectionReason",
    "SelectorEvent",
    "classify",
    "rank_networks",
    "read_plmn_lists",
    "same_country",
    "select_network",
    "write_fplmn",
]


class PriorityClass(enum.IntEnum):
    """The classes of TS 23.122 §4.4.3.1.1 automatic mode, lowest value first."""

    HPLMN = 0
    """The HPLMN, or an EHPLMN when EF.EHPLMN lists any (item i)."""
    USER = 1
    """A network in the user controlled list, EF.PLMNwAcT (item ii)."""
    OPERATOR = 2
    """A network in the operator controlled list, EF.OPLMNwAcT (item iii)."""
    OTHER_HIGH_QUALITY = 3
    """Another network received with a high quality signal (item iv)."""
    OTHER = 4
    """Any other network (item v)."""


HIGH_QUALITY_DBM: dict[Rat, int] = {
    Rat.GSM: -85,
    Rat.UTRAN: -95,
    Rat.EUTRAN: -110,
    Rat.NGRAN: -110,
}
"""The "high quality signal" thresholds of TS 43.022, TS 25.304, TS 36.304, TS 38.304."""


def _plmns(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(check_plmn(v) for v in values)


def _wact(values: Sequence[tuple[str, Collection[Rat]]]) -> tuple[tuple[str, frozenset[Rat]], ...]:
    out: list[tuple[str, frozenset[Rat]]] = []
    for item in values:
        if not isinstance(item, tuple) or len(item) != 2:
            raise UsageError("a list entry is (PLMN, RATs)")
        plmn, rats = item
        rset = frozenset(rats)
        if not all(isinstance(r, Rat) for r in rset):
            raise UsageError("a list entry's access technologies are Rat members")
        out.append((check_plmn(plmn), rset))
    return tuple(out)


def _check_period(_inst: object, _attr: object, value: timedelta | None) -> None:
    if value is not None and (not isinstance(value, timedelta) or value <= timedelta(0)):
        raise UsageError("the search period is a positive timedelta or None")


def _check_hplmn(_inst: object, _attr: object, value: str) -> None:
    check_plmn(value)


@attrs.frozen
class PlmnLists:
    """What the profile's USIM says about network selection (TS 31.102 §4.2).

    ``hplmn`` from EF.IMSI and EF.AD, ``ehplmn`` from EF.EHPLMN (priority
    order), ``user``/``operator`` from EF.PLMNwAcT/EF.OPLMNwAcT (priority
    order, each entry with its RATs; an empty set matches any RAT),
    ``forbidden`` from EF.FPLMN, ``hpplmn_period`` from EF.HPPLMN (``None``:
    no periodic higher priority search).
    """

    hplmn: str = attrs.field(validator=_check_hplmn)
    ehplmn: tuple[str, ...] = attrs.field(default=(), converter=_plmns)
    user: tuple[tuple[str, frozenset[Rat]], ...] = attrs.field(default=(), converter=_wact)
    operator: tuple[tuple[str, frozenset[Rat]], ...] = attrs.field(default=(), converter=_wact)
    forbidden: tuple[str, ...] = attrs.field(default=(), converter=_plmns)
    hpplmn_period: timedelta | None = attrs.field(default=None, validator=_check_period)

    @property
    def home(self) -> tuple[str, ...]:
        """The PLMNs of class HPLMN: EF.EHPLMN's entries when any, else the HPLMN alone."""
        return self.ehplmn if self.ehplmn else (self.hplmn,)

    def is_home(self, plmn: str) -> bool:
        """True if ``plmn`` is not a VPLMN: in :attr:`home` (TS 23.122 §3.1's VPLMN definition:
        a PLMN other than the HPLMN, or than an EHPLMN when the EHPLMN list is not empty)."""
        return plmn in self.home

    def with_forbidden(self, plmn: str) -> PlmnLists:
        """A copy with ``plmn`` appended to the forbidden list (once)."""
        check_plmn(plmn)
        if plmn in self.forbidden:
            return self
        return attrs.evolve(self, forbidden=(*self.forbidden, plmn))


@attrs.frozen
class Selection:
    """The network selected, its priority class, and whether that is roaming."""

    network: VisibleNetwork
    priority: PriorityClass
    roaming: bool

    @property
    def country(self) -> str:
        """The visited country: the network's own, else its MCC's (``""`` if unknown)."""
        return self.network.country or mcc_country(self.network.plmn)


_Index = dict[str, list[tuple[PriorityClass, int, frozenset[Rat]]]]


@functools.lru_cache(maxsize=64)
def _index(lists: PlmnLists) -> _Index:
    """PLMN → its (class, place, RATs) entries in priority order (cached per lists value)."""
    out: _Index = {}
    for i, plmn in enumerate(lists.home):
        out.setdefault(plmn, []).append((PriorityClass.HPLMN, i, frozenset()))
    for cls, entries in (
        (PriorityClass.USER, lists.user),
        (PriorityClass.OPERATOR, lists.operator),
    ):
        for i, (plmn, rats) in enumerate(entries):
            out.setdefault(plmn, []).append((cls, i, rats))
    for plmn in lists.forbidden:
        out[plmn] = []
    return out


def _rank_key(
    lists: PlmnLists, network: VisibleNetwork, index: _Index | None = None
) -> tuple[PriorityClass, int] | None:
    """``(class, index in its list)``, or ``None`` when the network is forbidden."""
    plmn, rat = network.plmn, network.rat
    if plmn in lists.forbidden:
        return None
    for cls, i, rats in (_index(lists) if index is None else index).get(plmn, ()):
        if cls is PriorityClass.HPLMN or not rats or rat in rats:
            return (cls, i)
    if network.signal_dbm >= HIGH_QUALITY_DBM[rat]:
        return (PriorityClass.OTHER_HIGH_QUALITY, 0)
    return (PriorityClass.OTHER, 0)


def classify(lists: PlmnLists, network: VisibleNetwork) -> PriorityClass | None:
    """The :class:`PriorityClass` of ``network`` for this profile; ``None`` if forbidden."""
    key = _rank_key(lists, network)
    return None if key is None else key[0]


_RAT_ORDER = {Rat.NGRAN: 0, Rat.EUTRAN: 1, Rat.UTRAN: 2, Rat.GSM: 3}


def rank_networks(
    lists: PlmnLists,
    visible: Sequence[VisibleNetwork],
    *,
    rats: frozenset[Rat] = frozenset(Rat),
    exclude: Collection[str] = (),
) -> list[Selection]:
    """Every selectable network of ``visible`` as a :class:`Selection`, best first.

    Order: priority class, then the entry's place in its list (EHPLMN,
    PLMNwAcT, OPLMNwAcT), then signal (strongest first), then RAT (NG-RAN,
    E-UTRAN, UTRAN, GSM), then PLMN.  Forbidden PLMNs, PLMNs in ``exclude``
    and networks on a RAT outside ``rats`` are left out.  Duplicates of one
    ``(PLMN, RAT)`` keep the strongest.
    """
    best: dict[tuple[str, Rat], VisibleNetwork] = {}
    for net in visible:
        if not isinstance(net, VisibleNetwork):
            raise UsageError("visible networks are VisibleNetwork values")
        if net.rat not in rats or net.plmn in exclude:
            continue
        old = best.get((net.plmn, net.rat))
        if old is None or net.signal_dbm > old.signal_dbm:
            best[(net.plmn, net.rat)] = net
    keyed: list[tuple[tuple[int, int, int, int, str], Selection]] = []
    table = _index(lists)
    home = frozenset(lists.home)
    for net in best.values():
        key = _rank_key(lists, net, table)
        if key is None:
            continue
        cls, index = key
        selection = Selection(net, cls, net.plmn not in home)
        keyed.append(((int(cls), index, -net.signal_dbm, _RAT_ORDER[net.rat], net.plmn), selection))
    keyed.sort(key=lambda item: item[0])
    return [s for _, s in keyed]


def select_network(
    lists: PlmnLists,
    visible: Sequence[VisibleNetwork],
    *,
    rats: frozenset[Rat] = frozenset(Rat),
    exclude: Collection[str] = (),
) -> Selection | None:
    """The network automatic mode selects among ``visible``, or ``None`` if none is allowed.

    The first of :func:`rank_networks`.
    """
    ranked = rank_networks(lists, visible, rats=rats, exclude=exclude)
    return ranked[0] if ranked else None


def same_country(a: VisibleNetwork, b: VisibleNetwork) -> bool:
    """True if two networks are in one country (TS 23.122 §4.4.3.3's "same country").

    Both countries known: they are equal.  Otherwise: the same MCC.
    """
    if a.country and b.country:
        return a.country == b.country
    return a.plmn[:3] == b.plmn[:3]


# -- reading and writing the USIM's files -----------------------------------------------


def read_plmn_lists(card: Card, *, pin: bytes | None = None) -> PlmnLists:
    """The enabled profile's :class:`PlmnLists`, read with SELECT and READ BINARY.

    Selects ADF.USIM, verifies PIN1 when ``pin`` is given, then reads
    EF.IMSI + EF.AD (the HPLMN: the IMSI's MCC and its first 2 or 3 MNC
    digits), EF.EHPLMN, EF.PLMNwAcT, EF.OPLMNwAcT, EF.FPLMN and EF.HPPLMN.
    An absent EF counts as an empty list (EF.HPPLMN absent: the default
    period, :data:`~rspfed.network.plmn.HPPLMN_DEFAULT`).  Card refusals raise
    :class:`~rspfed.errors.ProtocolError`, malformed contents
    :class:`~rspfed.errors.DecodeError`.
    """
    from rspfed.network.usim import read_usim_identity

    imsi, mnc_length = read_usim_identity(card, pin=pin)
    if len(imsi) < 3 + mnc_length:
        raise DecodeError("the IMSI is shorter than MCC || MNC", type_name="EF.IMSI")
    hplmn = imsi[: 3 + mnc_length]
    select_usim(card, None)  # still verified: PIN state survives re-selecting the same ADF
    ehplmn = read_transparent(card, EF_EHPLMN, "EF.EHPLMN")
    user = read_transparent(card, EF_PLMNWACT, "EF.PLMNwAcT")
    operator = read_transparent(card, EF_OPLMNWACT, "EF.OPLMNwAcT")
    fplmn = read_transparent(card, EF_FPLMN, "EF.FPLMN")
    hpplmn = read_transparent(card, EF_HPPLMN, "EF.HPPLMN")
    return PlmnLists(
        hplmn=hplmn,
        ehplmn=decode_plmn_list(ehplmn or b"", name="EF.EHPLMN"),
        user=decode_plmn_wact_list(user or b"", name="EF.PLMNwAcT"),
        operator=decode_plmn_wact_list(operator or b"", name="EF.OPLMNwAcT"),
        forbidden=decode_plmn_list(fplmn or b"", name="EF.FPLMN"),
        hpplmn_period=decode_hpplmn(hpplmn),
    )


def write_fplmn(card: Card, forbidden: Sequence[str], *, pin: bytes | None = None) -> bool:
    """Write ``forbidden`` to EF.FPLMN with UPDATE BINARY; ``False`` if the EF is absent.

    The newest entries are kept when the file is too small for all (each
    entry is 3 octets; the rest is padded with ``FF``).  Card refusals raise
    :class:`~rspfed.errors.ProtocolError`.
    """
    select_usim(card, pin)
    size = select_ef(card, EF_FPLMN, "EF.FPLMN")
    if size is None:
        return False
    keep = list(forbidden)[-(size // 3) :] if size >= 3 else []
    data = encode_plmn_list(keep, size - size % 3) + b"\xff" * (size % 3)
    if len(data) > 255:
        raise ProtocolError("EF.FPLMN larger than one UPDATE BINARY")
    _, sw = send(card, bytes([0x00, 0xD6, 0x00, 0x00, len(data)]) + data)
    if sw == SW_SECURITY:
        raise ProtocolError("EF.FPLMN cannot be updated: security status not satisfied (PIN1?)")
    if sw != SW_OK:
        raise ProtocolError(f"EF.FPLMN cannot be updated: status {sw.hex().upper()}")
    return True


# -- the selection loop ----------------------------------------------------------------


class SelectionReason(enum.Enum):
    """Why a network was selected."""

    INITIAL = "initial"
    """First selection (switch-on or no network before)."""
    LOST = "lost"
    """The selected network disappeared from the scan."""
    HIGHER_PRIORITY = "higher-priority"
    """The EF.HPPLMN timer fired while roaming and a higher priority network was found."""
    REFUSED = "refused"
    """The selected network refused the attach; the next best one is tried."""
    LISTS_CHANGED = "lists-changed"
    """New PLMN lists (another profile enabled, or the files changed)."""


class NoNetworkReason(enum.Enum):
    """Why no network is selected."""

    NONE_VISIBLE = "none-visible"
    """The scan found nothing on the device's RATs."""
    ALL_FORBIDDEN = "all-forbidden"
    """Networks are on air, but each is forbidden or refused the attach."""
    REFUSED = "refused"
    """The network refused the subscriber itself (barred, unknown, authentication failed)."""


@attrs.frozen
class NetworkSelected:
    """A network was selected (``country`` is the visited country, ``""`` if unknown)."""

    selection: Selection
    reason: SelectionReason
    previous: Selection | None = None

    @property
    def country(self) -> str:
        """The visited country of the selection."""
        return self.selection.country


@attrs.frozen
class NoNetwork:
    """No network can be selected now."""

    reason: NoNetworkReason
    previous: Selection | None = None
    refusal: RefusalReason | None = None


@attrs.frozen
class PlmnForbidden:
    """A PLMN was added to the forbidden list (attach refused: PLMN not allowed).

    A driver holding the card writes :attr:`forbidden` to EF.FPLMN
    (:func:`write_fplmn`).
    """

    plmn: str
    forbidden: tuple[str, ...]


SelectorEvent = NetworkSelected | NoNetwork | PlmnForbidden
"""What :class:`NetworkSelector` reports."""

_CARD: Literal["card"] = "card"


class NetworkSelector:
    """The automatic mode loop of one profile (sans-IO; TS 23.122 §4.4.3).

    Feed it scans (:meth:`on_scan`), attach results (:meth:`on_attached`,
    :meth:`on_refused`) and clock ticks (:meth:`tick`); each returns the
    events that follow.  Behaviour:

    - with no network selected, a scan selects the best one
      (:func:`select_network`);
    - a selected network stays selected while scans show it (a stronger
      network does not pull the device over: automatic mode selects on
      switch-on, on loss of coverage and on the higher priority search);
    - when a scan no longer shows the selected network, the best one of that
      scan is selected (:attr:`SelectionReason.LOST`);
    - while roaming (the selection is not HPLMN/EHPLMN) the higher priority
      search runs every ``period`` (EF.HPPLMN, times ``scale``): the first
      scan at or after the deadline that shows a network of a higher
      priority (a better class, or an earlier entry of the same list) in the
      same country is selected (:attr:`SelectionReason.HIGHER_PRIORITY`);
      :meth:`search_due` tells a driver when to scan;
    - an attach refused with :attr:`RefusalReason.ROAMING_NOT_ALLOWED` (PLMN
      not allowed, EMM cause #11) adds the PLMN to the forbidden list
      (:class:`PlmnForbidden`) and selects again;
      :attr:`RefusalReason.NO_COVERAGE` skips the PLMN until the next scan;
      other refusals
      (barred, unknown subscriber, authentication) give :class:`NoNetwork`
      with reason ``REFUSED`` and no further automatic selection until
      :meth:`reset`.

    ``period``: ``"card"`` (default) uses ``lists.hpplmn_period``; a
    ``timedelta`` or ``None`` (no periodic search) overrides it.  ``scale``
    multiplies the period (e.g. ``1/360`` turns 6 minutes into 1 second for a
    demo).  ``rats``: the RATs the device supports.
    """

    def __init__(
        self,
        lists: PlmnLists,
        *,
        rats: frozenset[Rat] = frozenset(Rat),
        period: timedelta | Literal["card"] | None = _CARD,
        scale: float = 1.0,
    ) -> None:
        if not isinstance(lists, PlmnLists):
            raise UsageError("lists must be PlmnLists")
        if not rats or not all(isinstance(r, Rat) for r in rats):
            raise UsageError("rats must be a non-empty set of Rat")
        if not isinstance(scale, int | float) or isinstance(scale, bool) or not scale > 0:
            raise UsageError("scale must be a positive number")
        base = lists.hpplmn_period if period == _CARD else period
        if base is not None and (not isinstance(base, timedelta) or base <= timedelta(0)):
            raise UsageError("period must be a positive timedelta, None or 'card'")
        self._lists = lists
        self._rats = frozenset(rats)
        self._period = None if base is None else base * scale
        self._selected: Selection | None = None
        self._deadline: datetime | None = None
        self._skipped: set[str] = set()
        self._last_scan: tuple[VisibleNetwork, ...] = ()
        self._halted: RefusalReason | None = None
        self._now: datetime | None = None

    # -- state ---------------------------------------------------------------------------

    @property
    def lists(self) -> PlmnLists:
        """The PLMN lists in use (forbidden list included, as updated)."""
        return self._lists

    @property
    def selected(self) -> Selection | None:
        """The current selection (``None``: no network)."""
        return self._selected

    @property
    def forbidden(self) -> tuple[str, ...]:
        """The forbidden PLMNs (EF.FPLMN plus the ones added since)."""
        return self._lists.forbidden

    @property
    def period(self) -> timedelta | None:
        """The higher priority search period in use (scaled), ``None`` if no search."""
        return self._period

    @property
    def next_search(self) -> datetime | None:
        """When the higher priority search is due (``None``: not roaming, or no period)."""
        return self._deadline

    def search_due(self, now: datetime) -> bool:
        """True when the higher priority search timer has fired (scan and call :meth:`on_scan`)."""
        self._clock(now)
        return self._deadline is not None and now >= self._deadline

    def reset(self, lists: PlmnLists | None = None) -> None:
        """Forget the selection (and a halting refusal); optionally take new lists."""
        if lists is not None:
            if not isinstance(lists, PlmnLists):
                raise UsageError("lists must be PlmnLists")
            self._lists = lists
        self._selected = None
        self._deadline = None
        self._skipped.clear()
        self._halted = None

    # -- inputs --------------------------------------------------------------------------

    def on_scan(self, visible: Sequence[VisibleNetwork], now: datetime) -> list[SelectorEvent]:
        """A scan's results at ``now``."""
        self._clock(now)
        scan = tuple(visible)
        for net in scan:
            if not isinstance(net, VisibleNetwork):
                raise UsageError("visible networks are VisibleNetwork values")
        self._last_scan = scan
        self._skipped.clear()  # a new scan is the new truth about coverage
        if self._halted is not None:
            return []
        current = self._selected
        if current is None:
            return self._select(now, SelectionReason.INITIAL, None)
        still = [n for n in scan if (n.plmn, n.rat) == (current.network.plmn, current.network.rat)]
        if not still:
            self._selected = None
            self._deadline = None
            return self._select(now, SelectionReason.LOST, current)
        # keep the selection, refresh its signal level
        self._selected = attrs.evolve(current, network=still[0])
        if self._deadline is not None and now >= self._deadline:
            return self._higher_priority(now)
        return []

    def tick(self, now: datetime) -> list[SelectorEvent]:
        """Time passes: if the search is due, search the last scan (a driver should rescan)."""
        if self.search_due(now) and self._selected is not None:
            return self._higher_priority(now)
        return []

    def on_attached(self, plmn: str, now: datetime) -> list[SelectorEvent]:
        """The attach on ``plmn`` succeeded (clears a skip of that PLMN)."""
        self._clock(now)
        self._skipped.discard(check_plmn(plmn))
        return []

    def on_refused(self, plmn: str, reason: RefusalReason, now: datetime) -> list[SelectorEvent]:
        """The attach on ``plmn`` was refused with ``reason``; select again where that helps."""
        self._clock(now)
        check_plmn(plmn)
        if not isinstance(reason, RefusalReason):
            raise UsageError("reason must be a RefusalReason")
        events: list[SelectorEvent] = []
        previous = self._selected
        if reason is RefusalReason.ROAMING_NOT_ALLOWED:
            if self._lists.is_home(plmn):
                # 23.122: the HPLMN/EHPLMN is never stored as forbidden; skip it for now.
                self._skipped.add(plmn)
            elif plmn not in self._lists.forbidden:
                self._lists = self._lists.with_forbidden(plmn)
                events.append(PlmnForbidden(plmn, self._lists.forbidden))
        elif reason is RefusalReason.NO_COVERAGE:
            self._skipped.add(plmn)
        else:
            self._halted = reason
            self._selected = None
            self._deadline = None
            events.append(NoNetwork(NoNetworkReason.REFUSED, previous, reason))
            return events
        if previous is not None and previous.network.plmn != plmn:
            return events  # a refusal for a network we no longer hold: nothing else changes
        self._selected = None
        self._deadline = None
        events.extend(self._select(now, SelectionReason.REFUSED, previous))
        return events

    # -- internals -----------------------------------------------------------------------

    def _clock(self, now: datetime) -> None:
        if not isinstance(now, datetime) or now.tzinfo is None:
            raise UsageError("now must be a timezone-aware datetime")
        self._now = now

    def _select(
        self, now: datetime, reason: SelectionReason, previous: Selection | None
    ) -> list[SelectorEvent]:
        choice = select_network(
            self._lists, self._last_scan, rats=self._rats, exclude=self._skipped
        )
        if choice is None:
            on_air = [n for n in self._last_scan if n.rat in self._rats]
            why = NoNetworkReason.ALL_FORBIDDEN if on_air else NoNetworkReason.NONE_VISIBLE
            return [NoNetwork(why, previous)]
        return [self._take(choice, now, reason, previous)]

    def _take(
        self, choice: Selection, now: datetime, reason: SelectionReason, previous: Selection | None
    ) -> NetworkSelected:
        self._selected = choice
        self._deadline = now + self._period if choice.roaming and self._period else None
        return NetworkSelected(choice, reason, previous)

    def _higher_priority(self, now: datetime) -> list[SelectorEvent]:
        """The periodic search of TS 23.122 §4.4.3.3 over the last scan."""
        current = self._selected
        assert current is not None
        # The timer restarts whatever the outcome.
        self._deadline = now + self._period if self._period else None
        mine = _rank_key(self._lists, current.network)
        if mine is None:  # became forbidden meanwhile
            mine = (PriorityClass.OTHER, 0)
        for cand in rank_networks(
            self._lists, self._last_scan, rats=self._rats, exclude=self._skipped
        ):
            if cand.priority >= PriorityClass.OTHER_HIGH_QUALITY:
                break
            key = _rank_key(self._lists, cand.network)
            assert key is not None
            if key >= mine:
                break
            if not same_country(cand.network, current.network):
                continue
            return [self._take(cand, now, SelectionReason.HIGHER_PRIORITY, current)]
        return []
