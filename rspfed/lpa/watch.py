"""The watch loop: network selection, attach, country rules and failover, on asyncio.

:class:`Watch` is the I/O adapter around the sans-IO pieces.  Each round
(every ``interval``):

1. **scan**: every operator's cells on air now (:func:`rspfed.federation.client.scan`);
2. open the eUICC (only for the round: the software store holds an exclusive
   lock, so ``rspfed lpa switch`` can run between rounds) and the LPA
   settings store; on the first round, :meth:`Failover.restart
   <rspfed.lpa.failover.Failover.restart>` reconciles the journal;
3. read the enabled profile's PLMN lists from its own files
   (:func:`rspfed.network.selection.read_plmn_lists`) and remember them in the
   settings store, so the primary's networks are known while it is disabled;
4. feed the failover machine a ``Scan`` (is a network the primary / the
   backup may use on air?) — it may switch profiles;
5. run the enabled profile's :class:`~rspfed.network.selection.NetworkSelector`
   on the scan (HPLMN first, then the user and operator lists, never a
   forbidden PLMN; the EF.HPPLMN search while roaming, ``hpplmn_scale``
   shortens it); a ``NetworkSelected`` goes to the country rules
   (:meth:`ProfilePolicy.on_network <rspfed.lpa.policy.ProfilePolicy.on_network>`);
6. attach with the enabled profile's USIM on the selected network
   (``OperatorClient.attach(plmn=)``) through the profile's own operator (the
   one remembered for its ICCID; else the operators are tried in order and
   the one that knows the subscriber is remembered); the outcome goes to the
   selector (a "PLMN not allowed" refusal forbids the PLMN, written to
   EF.FPLMN) and to the failover machine (``Attached``);
7. deliver any notifications still queued on the eUICC.

Every decision becomes one line passed to ``on_decision`` (the CLI prints it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

import attrs

from rspfed.errors import RspfedError, TransportError, UsageError
from rspfed.euicc.card import Card
from rspfed.federation.client import OperatorClient, scan
from rspfed.lpa._failover_state import Attached, Log, Refused, Scan, Timers
from rspfed.lpa.es9 import Es9Settings
from rspfed.lpa.failover import Failover
from rspfed.lpa.lpa import Lpa
from rspfed.lpa.policy import ProfilePolicy
from rspfed.lpa.settings import LpaSettings, NetworkLists
from rspfed.network.errors import NetworkRefusedError, RefusalReason
from rspfed.network.radio import VisibleNetwork
from rspfed.network.selection import (
    NetworkSelected,
    NetworkSelector,
    NoNetwork,
    PlmnForbidden,
    PlmnLists,
    SelectorEvent,
    read_plmn_lists,
    write_fplmn,
)
from rspfed.network.usim import eap_usim, read_usim_identity

__all__ = ["DeviceLink", "Watch", "network_lists", "software_euicc"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@attrs.frozen
class DeviceLink:
    """An open device for one round: the LPA (ES10 link) and the card (for the USIM)."""

    lpa: Lpa
    card: Card


@contextlib.contextmanager
def software_euicc(
    path: str | os.PathLike[str],
    *,
    passphrase: bytes | None = None,
    settings: Es9Settings | None = None,
) -> Iterator[DeviceLink]:
    """Open a software eUICC store, power its card on and link an LPA to it over APDUs
    (the store's CI certificates are the SM-DP+ trust unless ``settings`` say otherwise)."""
    from rspfed.euicc.euicc import Euicc
    from rspfed.lpa.es10 import ApduEs10
    from rspfed.lpa.lpa import store_ci_certificates

    with Euicc.open(path, passphrase=passphrase) as euicc:
        es9 = settings or Es9Settings(trust=store_ci_certificates(euicc.store))
        euicc.card.power_on()
        with ApduEs10(euicc.card) as link:
            yield DeviceLink(Lpa(link, settings=es9), euicc.card)


def network_lists(lists: PlmnLists) -> NetworkLists:
    """The settings store's summary of a profile's PLMN lists."""
    preferred = tuple(p for p, _ in lists.user) + tuple(p for p, _ in lists.operator)
    return NetworkLists(lists.home, preferred, lists.forbidden)


def _usable(lists: NetworkLists | None, visible: Sequence[VisibleNetwork]) -> bool:
    if lists is None:  # never seen enabled: any network at all counts
        return bool(visible)
    return any(lists.allows(n.plmn) for n in visible)


class Watch:
    """The watch loop (see the module doc).

    ``open_device()`` opens the device for one round (e.g.
    ``lambda: software_euicc(path)``); ``settings_path`` is the LPA settings
    store; ``clients`` the operators (their cells make the radio, and the
    profile's own operator serves its attach).  ``now`` and ``sleep`` are
    injectable for tests and demos; ``hpplmn_scale`` multiplies the EF.HPPLMN
    period.
    """

    def __init__(
        self,
        *,
        open_device: Callable[[], AbstractContextManager[DeviceLink]],
        settings_path: str | os.PathLike[str],
        clients: Sequence[OperatorClient],
        timers: Timers | None = None,
        interval: timedelta = timedelta(seconds=5),
        now: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_decision: Callable[[str], None] | None = None,
        hpplmn_scale: float = 1.0,
    ) -> None:
        if not clients:
            raise UsageError("give at least one operator")
        if interval <= timedelta(0):
            raise UsageError("the interval must be positive")
        self._open = open_device
        self._settings_path = settings_path
        self.clients = list(clients)
        self.timers = timers or Timers()
        self.interval = interval
        self._now = now
        self._sleep = sleep
        self._on_decision = on_decision or (lambda _: None)
        self._scale = hpplmn_scale
        self._started = False
        self._selector: tuple[str, NetworkSelector] | None = None
        self.decisions: list[str] = []
        """Every decision line so far."""

    # -- output -------------------------------------------------------------------------

    def _say(self, text: str) -> None:
        line = f"{self._now().astimezone(UTC):%H:%M:%S} {text}"
        self.decisions.append(line)
        self._on_decision(line)

    def _said(self, actions: Sequence[object]) -> None:
        for action in actions:
            if isinstance(action, Log):
                self._say(action.text)
            elif isinstance(action, Refused):
                self._say(f"refused: {action.reason}")

    # -- one round ------------------------------------------------------------------------

    async def round(self) -> None:
        """One scan, selection, attach and failover round."""
        visible = await scan(self.clients)
        with self._open() as link, LpaSettings.open(self._settings_path) as settings:
            failover = Failover(link.lpa, settings, now=self._now, timers=self.timers)
            if not self._started:
                self._started = True
                self._said(await failover.restart())
            enabled = self._learn(link, settings, failover)
            state = settings.failover_state()
            primary = _usable(settings.networks(state.primary) if state.primary else None, visible)
            backup = _usable(settings.networks(state.backup) if state.backup else None, visible)
            self._said(await failover.dispatch(Scan(primary, backup)))
            for _ in range(2):  # a country rule may switch once; then select again
                enabled = self._learn(link, settings, failover)
                if enabled is None:
                    self._say("no profile enabled")
                    return
                events = self._selector_for(enabled, link, settings).on_scan(visible, self._now())
                switched = await self._selected(events, failover)
                if not switched:
                    break
            if enabled is not None:
                await self._attach(link, settings, failover, enabled)
            if link.lpa.notifications():
                self._said(await failover.flush())

    def _learn(self, link: DeviceLink, settings: LpaSettings, failover: Failover) -> str | None:
        enabled = failover.view().enabled
        if enabled is not None and (self._selector is None or self._selector[0] != enabled):
            try:
                lists = read_plmn_lists(link.card)
            except RspfedError as exc:
                self._say(f"{enabled}: PLMN lists unreadable ({exc})")
                return enabled
            settings.set_networks(enabled, network_lists(lists))
            selector = NetworkSelector(lists, scale=self._scale)
            self._selector = (enabled, selector)
        return enabled

    def _selector_for(
        self, enabled: str, link: DeviceLink, settings: LpaSettings
    ) -> NetworkSelector:
        if self._selector is None or self._selector[0] != enabled:
            raise UsageError(f"the PLMN lists of {enabled} are unknown")
        return self._selector[1]

    async def _selected(self, events: Sequence[SelectorEvent], failover: Failover) -> bool:
        """Report selector events; apply a country rule; whether the profile changed."""
        before = failover.view().enabled
        for event in events:
            if isinstance(event, NetworkSelected):
                sel = event.selection
                where = "roaming" if sel.roaming else "home"
                self._say(
                    f"selected {sel.network.plmn} {sel.network.rat.value} "
                    f"{sel.network.signal_dbm} dBm {event.country or '--'} "
                    f"({where}, {event.reason.value})"
                )
                self._said(await ProfilePolicy(failover).on_selection(event))
            elif isinstance(event, NoNetwork):
                self._say(f"no network ({event.reason.value})")
            elif isinstance(event, PlmnForbidden):
                self._say(f"{event.plmn} forbidden (PLMN not allowed)")
        return failover.view().enabled != before

    async def _attach(
        self, link: DeviceLink, settings: LpaSettings, failover: Failover, enabled: str
    ) -> None:
        if self._selector is None or self._selector[0] != enabled:
            return
        selector = self._selector[1]
        selection = selector.selected
        if selection is None:
            return
        plmn = selection.network.plmn
        ok, reason = await self._attach_once(link, settings, enabled, plmn)
        now = self._now()
        if ok:
            selector.on_attached(plmn, now)
        else:
            why = "unreachable" if reason is None else reason.value
            self._say(f"attach with {enabled} on {plmn} failed ({why})")
            if reason is not None:
                events = selector.on_refused(plmn, reason, now)
                for event in events:
                    if isinstance(event, PlmnForbidden):
                        with contextlib.suppress(RspfedError):
                            write_fplmn(link.card, event.forbidden)
                await self._selected(events, failover)
        self._said(await failover.dispatch(Attached(enabled, ok)))

    async def _attach_once(
        self, link: DeviceLink, settings: LpaSettings, iccid: str, plmn: str
    ) -> tuple[bool, RefusalReason | None]:
        imsi, mnc_length = read_usim_identity(link.card)
        usim = eap_usim(link.card)
        known = settings.operator_url(iccid)
        candidates = [c for c in self.clients if c.url == known] if known else []
        last: RefusalReason | None = None
        for client in candidates or self.clients:
            try:
                await client.attach(usim=usim, imsi=imsi, mnc_length=mnc_length, plmn=plmn)
            except NetworkRefusedError as exc:
                if candidates:
                    return False, exc.reason
                # not known yet whose subscriber this is: an operator that does not know
                # it says so (or that the PLMN is not its own); keep the telling reason
                if last is None or last is RefusalReason.UNKNOWN_SUBSCRIBER:
                    last = exc.reason
                continue
            except TransportError:
                continue
            if not candidates:
                settings.set_operator_url(iccid, client.url)
            return True, None
        return False, last

    # -- the loop ------------------------------------------------------------------------

    async def run(self, *, rounds: int | None = None, duration: timedelta | None = None) -> None:
        """Run rounds every ``interval``: ``rounds`` of them, or for ``duration``
        (by the injected clock), or until cancelled.  A round that fails with an
        :class:`~rspfed.errors.RspfedError` (an operator unreachable, the eUICC
        store locked by another command) is reported and the next one runs."""
        start = self._now()
        done = 0
        while True:
            try:
                await self.round()
            except RspfedError as exc:  # e.g. the eUICC store locked by `lpa switch`
                self._say(f"round skipped: {exc}")
            done += 1
            if rounds is not None and done >= rounds:
                return
            if duration is not None and self._now() - start >= duration:
                return
            await self._sleep(self.interval.total_seconds())
