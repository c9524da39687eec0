"""The SM-DP+ inventory state machine (SGP.22 §3.1.1, §3.1.3, §5.3, §5.6), as a table.

Every profile instance the SM-DP+ holds (one ICCID) is in exactly one
:class:`ItemState`.  Operators move it with ES2+ functions; the eUICC (through
the LPA) with ES9+ steps and notifications.

States
------
``available``    in the inventory, free for a DownloadOrder.
``allocated``    reserved by ES2+.DownloadOrder without an EID.
``linked``       reserved by ES2+.DownloadOrder for an EID.
``confirmed``    ES2+.ConfirmOrder with ``releaseFlag`` false: matchingId set,
                 the download waits for ES2+.ReleaseProfile.
``released``     ready for download (ConfirmOrder with ``releaseFlag`` true, or
                 ReleaseProfile).
``downloaded``   a Bound Profile Package was delivered (GetBoundProfilePackage);
                 it is kept for the SGP.22 retry until the installation result.
``installed``    the eUICC reported a successful installation (PIR).
``error``        the download failed for good: a failed PIR, a session cancelled
                 by the end user or for a PPR, too many confirmation-code or
                 download attempts.  Only ES2+.CancelOrder moves it on.
``unavailable``  out of the inventory for good (CancelOrder with
                 ``finalProfileStatusIndicator`` Unavailable, or a delete
                 notification from the eUICC).

Theory of operation
-------------------
:data:`TRANSITIONS` maps ``(Trigger, ItemState)`` to the state the item moves to.
Every pair that is not in the table is a refusal; :data:`REFUSALS` gives the
SGP.22 subject/reason code of the refusal per trigger (with per-state overrides
in :data:`REFUSAL_OVERRIDES`).  :func:`move` looks a pair up and returns the new
state or raises the :class:`~rspfed.errors.FunctionExecutionError` subclass of
the refusal.  The core (:mod:`rspfed.smdp.core`) calls :func:`move` for every
state change and nothing else changes an item's state; the property test
(``tests/smdp/test_inventory_machine.py``) checks that against this table.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from rspfed.errors import FunctionExecutionError
from rspfed.es9p.codes import Status, StatusCodeData, function_execution_error

__all__ = [
    "FINAL_STATES",
    "REFUSALS",
    "REFUSAL_OVERRIDES",
    "TRANSITIONS",
    "ItemState",
    "Trigger",
    "allowed",
    "move",
    "refusal",
]


class ItemState(enum.Enum):
    """The state of one profile instance in the inventory (see the module doc)."""

    AVAILABLE = "available"
    ALLOCATED = "allocated"
    LINKED = "linked"
    CONFIRMED = "confirmed"
    RELEASED = "released"
    DOWNLOADED = "downloaded"
    INSTALLED = "installed"
    ERROR = "error"
    UNAVAILABLE = "unavailable"


class Trigger(enum.Enum):
    """What moves an item: an ES2+ function, an ES9+ step or a notification."""

    DOWNLOAD_ORDER = "ES2+.DownloadOrder"
    """DownloadOrder without an EID."""
    DOWNLOAD_ORDER_EID = "ES2+.DownloadOrder(eid)"
    """DownloadOrder naming an EID."""
    CONFIRM_ORDER = "ES2+.ConfirmOrder(releaseFlag=false)"
    CONFIRM_ORDER_RELEASE = "ES2+.ConfirmOrder(releaseFlag=true)"
    RELEASE_PROFILE = "ES2+.ReleaseProfile"
    CANCEL_ORDER_AVAILABLE = "ES2+.CancelOrder(Available)"
    CANCEL_ORDER_UNAVAILABLE = "ES2+.CancelOrder(Unavailable)"
    AUTHENTICATE_CLIENT = "ES9+.AuthenticateClient"
    """A session picked the item (matchingId or EID): no state change, a check."""
    GET_BOUND_PROFILE_PACKAGE = "ES9+.GetBoundProfilePackage"
    INSTALL_SUCCESS = "ES9+.HandleNotification(PIR successResult)"
    INSTALL_FAILURE = "ES9+.HandleNotification(PIR errorResult)"
    SESSION_POSTPONED = "ES9+.CancelSession(postponed|timeout)"
    SESSION_CANCELLED = "ES9+.CancelSession(endUserRejection|pprNotAllowed|other)"
    ATTEMPTS_EXCEEDED = "confirmation code or download attempts exceeded"
    PROFILE_ENABLED_OR_DISABLED = "ES9+.HandleNotification(enable|disable)"
    PROFILE_DELETED = "ES9+.HandleNotification(delete)"


_AV = ItemState.AVAILABLE
_AL = ItemState.ALLOCATED
_LI = ItemState.LINKED
_CO = ItemState.CONFIRMED
_RE = ItemState.RELEASED
_DO = ItemState.DOWNLOADED
_IN = ItemState.INSTALLED
_ER = ItemState.ERROR
_UN = ItemState.UNAVAILABLE

_T = Trigger

TRANSITIONS: Mapping[tuple[Trigger, ItemState], ItemState] = MappingProxyType(
    {
        # ES2+ (operator)
        (_T.DOWNLOAD_ORDER, _AV): _AL,
        (_T.DOWNLOAD_ORDER_EID, _AV): _LI,
        (_T.CONFIRM_ORDER, _AL): _CO,
        (_T.CONFIRM_ORDER, _LI): _CO,
        (_T.CONFIRM_ORDER_RELEASE, _AL): _RE,
        (_T.CONFIRM_ORDER_RELEASE, _LI): _RE,
        (_T.RELEASE_PROFILE, _CO): _RE,
        **{
            (trigger, state): target
            for trigger, target in (
                (_T.CANCEL_ORDER_AVAILABLE, _AV),
                (_T.CANCEL_ORDER_UNAVAILABLE, _UN),
            )
            for state in (_AL, _LI, _CO, _RE, _DO, _ER)
        },
        # ES9+ (eUICC through the LPA)
        (_T.AUTHENTICATE_CLIENT, _RE): _RE,
        (_T.AUTHENTICATE_CLIENT, _DO): _DO,  # the retry after a cut link
        (_T.GET_BOUND_PROFILE_PACKAGE, _RE): _DO,
        (_T.GET_BOUND_PROFILE_PACKAGE, _DO): _DO,
        (_T.SESSION_POSTPONED, _RE): _RE,
        (_T.SESSION_POSTPONED, _DO): _DO,
        (_T.SESSION_CANCELLED, _RE): _ER,
        (_T.SESSION_CANCELLED, _DO): _ER,
        (_T.ATTEMPTS_EXCEEDED, _RE): _ER,
        (_T.ATTEMPTS_EXCEEDED, _DO): _ER,
        # notifications
        (_T.INSTALL_SUCCESS, _DO): _IN,
        (_T.INSTALL_FAILURE, _DO): _ER,
        (_T.PROFILE_ENABLED_OR_DISABLED, _IN): _IN,
        (_T.PROFILE_DELETED, _IN): _UN,
    }
)
"""``(trigger, state) -> new state``; a pair not listed is refused."""

REFUSALS: Mapping[Trigger, StatusCodeData] = MappingProxyType(
    {
        _T.DOWNLOAD_ORDER: Status.ICCID_ALREADY_IN_USE,
        _T.DOWNLOAD_ORDER_EID: Status.ICCID_ALREADY_IN_USE,
        _T.CONFIRM_ORDER: Status.ICCID_ALREADY_IN_USE,
        _T.CONFIRM_ORDER_RELEASE: Status.ICCID_ALREADY_IN_USE,
        _T.RELEASE_PROFILE: Status.ICCID_ALREADY_IN_USE,
        _T.CANCEL_ORDER_AVAILABLE: Status.ICCID_ALREADY_IN_USE,
        _T.CANCEL_ORDER_UNAVAILABLE: Status.ICCID_ALREADY_IN_USE,
        _T.AUTHENTICATE_CLIENT: Status.MATCHING_ID_REFUSED,
        _T.GET_BOUND_PROFILE_PACKAGE: Status.PROFILE_UNAVAILABLE,
        _T.INSTALL_SUCCESS: Status.PROFILE_UNAVAILABLE,
        _T.INSTALL_FAILURE: Status.PROFILE_UNAVAILABLE,
        _T.SESSION_POSTPONED: Status.PROFILE_UNAVAILABLE,
        _T.SESSION_CANCELLED: Status.PROFILE_UNAVAILABLE,
        _T.ATTEMPTS_EXCEEDED: Status.PROFILE_UNAVAILABLE,
        _T.PROFILE_ENABLED_OR_DISABLED: Status.PROFILE_UNAVAILABLE,
        _T.PROFILE_DELETED: Status.PROFILE_UNAVAILABLE,
    }
)
"""The SGP.22 code of a refused trigger (unless :data:`REFUSAL_OVERRIDES` names the pair)."""

REFUSAL_OVERRIDES: Mapping[tuple[Trigger, ItemState], StatusCodeData] = MappingProxyType(
    {
        # a matchingId whose order waits for ReleaseProfile
        (_T.AUTHENTICATE_CLIENT, _CO): Status.PROFILE_NOT_RELEASED,
        # ES2+ on an ICCID without an order
        (_T.CONFIRM_ORDER, _AV): Status.ICCID_UNKNOWN,
        (_T.CONFIRM_ORDER_RELEASE, _AV): Status.ICCID_UNKNOWN,
        (_T.RELEASE_PROFILE, _AV): Status.ICCID_UNKNOWN,
        (_T.CANCEL_ORDER_AVAILABLE, _AV): Status.ICCID_UNKNOWN,
        (_T.CANCEL_ORDER_UNAVAILABLE, _AV): Status.ICCID_UNKNOWN,
    }
)
"""Refusal codes that differ from :data:`REFUSALS` for one state."""

FINAL_STATES = frozenset({_UN})
"""States no trigger leaves."""


def allowed(trigger: Trigger, state: ItemState) -> bool:
    """Whether ``trigger`` may move an item in ``state``."""
    return (trigger, state) in TRANSITIONS


def refusal(trigger: Trigger, state: ItemState) -> StatusCodeData:
    """The SGP.22 status of ``trigger`` refused in ``state``."""
    return REFUSAL_OVERRIDES.get((trigger, state), REFUSALS[trigger])


def move(trigger: Trigger, state: ItemState, *, function: str | None = None) -> ItemState:
    """The state after ``trigger`` in ``state``.

    Raises the :class:`~rspfed.errors.FunctionExecutionError` subclass of the
    refusal code when the table has no such move.
    """
    target = TRANSITIONS.get((trigger, state))
    if target is None:
        error: FunctionExecutionError = function_execution_error(
            refusal(trigger, state), function=function
        )
        raise error
    return target
