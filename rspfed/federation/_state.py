"""Every state transition of the operator service, as tables.

Theory of operation
-------------------
Three small state machines live in the operator's store; the core
(:mod:`rspfed.federation.operator`) changes a state only through :func:`move`,
so these tables are the whole story (the property test
``tests/federation/test_operator_machine.py`` checks the core against them).

Devices (:class:`DeviceState`)::

    (new) --redeem / subscribe--> ordered --installed--> active --remove--> removed
                                  ordered --remove-----> removed
                                  ordered --lapse------> (deleted: order cancelled, slot free)

``lapse`` is an order not downloaded within ``order_ttl`` (or failed for
good at the SM-DP+), or a reserved token revoked: the device row goes, the
SM-DP+ order is cancelled and the token may be redeemed again while valid.

Tokens (:class:`TokenState`), keyed by token id::

    (unseen) --redeem--> reserved --eid authenticated--> consumed
    (unseen) --revoke--> revoked
    reserved --revoke--> revoked
    reserved --lapse---> (unseen)

A token is consumed only when the SM-DP+ saw *its* EID authenticate (the EID
from the eUICC certificate, SGP.22 §5.6.2), so a photographed token cannot
burn a slot: at worst it reserves one for ``order_ttl``.

Join requests (:class:`JoinState`)::

    (new) --join--> pending --approve--> approved --collect--> collected
    pending|approved --expire--> (deleted)

Device changes (:class:`ChangeState`, docs/device-change-operator.md)::

    (new) --request--> ordered --reorder--> ordered   (the SM-DP+ order failed: a fresh one)
    ordered --installed--> installed --switch--> switched --complete--> completed
    ordered|installed --cancel--> cancelled            (old device, or order_ttl lapsed)

``switch`` is the network's one transaction (:meth:`rspfed.network.Auc.switch`)
followed by the operator's record; a crash between the two is repaired by
the next sync from the AuC's state (new IMSI served: ``switch``; new IMSI
removed: ``cancel``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeVar

from rspfed.errors import StateError
from rspfed.federation.types import ChangeState, DeviceState, JoinState, TokenState

__all__ = [
    "CHANGE_TRANSITIONS",
    "DEVICE_TRANSITIONS",
    "JOIN_TRANSITIONS",
    "TOKEN_TRANSITIONS",
    "Event",
    "move",
]


class Event(enum.Enum):
    """What moves a device, token or join request."""

    CREATE = "create"
    INSTALLED = "installed"
    AUTHENTICATED = "authenticated"
    REMOVE = "remove"
    REVOKE = "revoke"
    APPROVE = "approve"
    COLLECT = "collect"
    REORDER = "reorder"
    SWITCH = "switch"
    COMPLETE = "complete"
    CANCEL = "cancel"


_E = Event

DEVICE_TRANSITIONS: Mapping[tuple[Event, DeviceState | None], DeviceState] = MappingProxyType(
    {
        (_E.CREATE, None): DeviceState.ORDERED,
        (_E.INSTALLED, DeviceState.ORDERED): DeviceState.ACTIVE,
        (_E.REMOVE, DeviceState.ORDERED): DeviceState.REMOVED,
        (_E.REMOVE, DeviceState.ACTIVE): DeviceState.REMOVED,
    }
)
"""``(event, device state or None for a new device) -> new state``."""

TOKEN_TRANSITIONS: Mapping[tuple[Event, TokenState | None], TokenState] = MappingProxyType(
    {
        (_E.CREATE, None): TokenState.RESERVED,
        (_E.AUTHENTICATED, TokenState.RESERVED): TokenState.CONSUMED,
        (_E.REVOKE, None): TokenState.REVOKED,
        (_E.REVOKE, TokenState.RESERVED): TokenState.REVOKED,
    }
)
"""``(event, token state or None for an unseen token) -> new state``."""

JOIN_TRANSITIONS: Mapping[tuple[Event, JoinState | None], JoinState] = MappingProxyType(
    {
        (_E.CREATE, None): JoinState.PENDING,
        (_E.APPROVE, JoinState.PENDING): JoinState.APPROVED,
        (_E.COLLECT, JoinState.APPROVED): JoinState.COLLECTED,
    }
)
"""``(event, join state or None for a new request) -> new state``."""

CHANGE_TRANSITIONS: Mapping[tuple[Event, ChangeState | None], ChangeState] = MappingProxyType(
    {
        (_E.CREATE, None): ChangeState.ORDERED,
        (_E.REORDER, ChangeState.ORDERED): ChangeState.ORDERED,
        (_E.INSTALLED, ChangeState.ORDERED): ChangeState.INSTALLED,
        (_E.SWITCH, ChangeState.INSTALLED): ChangeState.SWITCHED,
        (_E.COMPLETE, ChangeState.SWITCHED): ChangeState.COMPLETED,
        (_E.CANCEL, ChangeState.ORDERED): ChangeState.CANCELLED,
        (_E.CANCEL, ChangeState.INSTALLED): ChangeState.CANCELLED,
    }
)
"""``(event, change state or None for a new change) -> new state``."""

_S = TypeVar("_S", DeviceState, TokenState, JoinState, ChangeState)


def move(table: Mapping[tuple[Event, _S | None], _S], event: Event, state: _S | None) -> _S:
    """The state after ``event``; :class:`~rspfed.errors.StateError` if there is no such move."""
    target = table.get((event, state))
    if target is None:
        where = "a new record" if state is None else state.value
        raise StateError(f"{event.value} is not allowed for {where}")
    return target
