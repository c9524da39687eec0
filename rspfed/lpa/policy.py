"""The LPA's profile policy: manual switches, the backup marker, country rules.

:class:`ProfilePolicy` is what an app (or ``rspfed lpa switch``, ``backup``,
``rules``) calls.  Every change of the enabled profile goes through the
failover machine's driver (:class:`~rspfed.lpa.failover.Failover`), so the
journal, the PPR checks and the notifications are the same for a user's
switch, a country rule and an automatic fail-over:

* :meth:`ProfilePolicy.switch`: ES10c.EnableProfile of the chosen profile (the
  eUICC disables the old one in the same atomic operation), then the eUICC's
  pending notifications (the old profile's *disable*, the new one's
  *enable*) are delivered, each to its own profile's SM-DP+ (the
  notification address in the profile's metadata); undelivered ones stay
  queued on the eUICC.  The chosen profile becomes the *primary* of the
  failover machine.  A switch away from a profile whose PPR1 is set (SGP.22
  §2.9.2, "disabling not allowed") is not even tried:
  :class:`~rspfed.errors.PolicyError` says why.
* :meth:`ProfilePolicy.set_backup` / :meth:`clear_backup`: the backup marker.
* Country rules ("when the visited country is X, enable Y"), kept in the
  settings store in order, evaluated by :meth:`ProfilePolicy.on_network` on
  network-selection events: on *arrival* in X (the visited country differs
  from the one the rules last acted on) the rule's profile is chosen, once;
  staying in X, or a coverage gap (``NoNetwork``: country ``None``), changes
  nothing, so a rule never loops against a manual switch.  The decision
  itself is the pure :func:`country_decision`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rspfed.errors import PolicyError, UsageError
from rspfed.lpa._failover_state import Action, Choose, Log, Refused, SetBackup
from rspfed.lpa.failover import Failover
from rspfed.lpa.settings import CountryRule, LpaSettings, check_iccid
from rspfed.network.selection import NetworkSelected, NoNetwork

__all__ = ["ProfilePolicy", "country_decision"]


def country_decision(
    rules: Sequence[CountryRule], previous: str | None, country: str | None
) -> CountryRule | None:
    """The rule to apply when the visited country is ``country`` (``None``: no network)
    after ``previous``: the first rule for ``country`` on arrival, else ``None``."""
    if not country or country.upper() == (previous or "").upper():
        return None
    code = country.upper()
    return next((r for r in rules if r.country == code), None)


def _raise_refusal(actions: Sequence[Action]) -> None:
    for action in actions:
        if isinstance(action, Refused):
            if action.reason.startswith("PPR1"):
                raise PolicyError(action.reason)
            raise UsageError(action.reason)


class ProfilePolicy:
    """The profile policy on one eUICC, driven through ``failover`` (see the module doc)."""

    def __init__(self, failover: Failover) -> None:
        self.failover = failover

    @property
    def settings(self) -> LpaSettings:
        """The LPA settings store."""
        return self.failover.settings

    async def switch(self, iccid: str, *, reason: str = "user") -> list[Action]:
        """Enable ``iccid`` (it becomes the primary) and deliver the notifications;
        the decisions.  :class:`~rspfed.errors.PolicyError` for a PPR1 refusal,
        :class:`~rspfed.errors.UsageError` for an unknown profile."""
        actions = await self.failover.dispatch(Choose(check_iccid(iccid), reason))
        _raise_refusal(actions)
        return actions

    async def set_backup(self, iccid: str) -> list[Action]:
        """Mark ``iccid`` as the backup profile."""
        actions = await self.failover.dispatch(SetBackup(check_iccid(iccid)))
        _raise_refusal(actions)
        return actions

    async def clear_backup(self) -> list[Action]:
        """Clear the backup marker."""
        return await self.failover.dispatch(SetBackup(None))

    @property
    def backup(self) -> str | None:
        """The backup profile's ICCID, if one is marked."""
        return self.failover.settings.failover_state().backup

    @property
    def primary(self) -> str | None:
        """The primary profile's ICCID (the one chosen last)."""
        return self.failover.settings.failover_state().primary

    async def on_selection(self, event: NetworkSelected | NoNetwork) -> list[Action]:
        """A :class:`~rspfed.network.selection.NetworkSelector` event: :meth:`on_network`
        with the selected network's country (``NoNetwork``: none)."""
        return await self.on_network(event.country if isinstance(event, NetworkSelected) else None)

    async def on_network(self, country: str | None) -> list[Action]:
        """A network-selection event: ``country`` of the selected network, ``None`` for
        no network.  Applies a country rule on arrival (see the module doc)."""
        settings = self.failover.settings
        rule = country_decision(settings.rules(), settings.visited_country(), country)
        if not country:
            return []
        if country.upper() != (settings.visited_country() or ""):
            settings.put_failover_state(settings.failover_state(), country=country)
        if rule is None:
            return []
        if self.failover.view().enabled == rule.iccid:
            return [Log(f"arrived in {rule.country}: {rule.iccid} is already enabled")]
        return await self.failover.dispatch(Choose(rule.iccid, f"country rule {rule.country}"))
