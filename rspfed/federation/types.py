"""Value types of the operator service: plans, subscriptions, devices, join requests.

All are frozen ``attrs`` classes; timestamps are timezone-aware UTC.  Keys are
public keys only, as SEC1 uncompressed P-256 points (65 octets), with their
key id (:func:`rspfed.federation.token.primary_key_id`, 20 octets).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime, timedelta

import attrs

from rspfed.errors import UsageError
from rspfed.federation.token import DeviceClass, Service

__all__ = [
    "Caller",
    "ChangeState",
    "Device",
    "DeviceChange",
    "DeviceChangeOrder",
    "DeviceRole",
    "DeviceState",
    "EapPurpose",
    "EapStep",
    "Enrolment",
    "JoinRequest",
    "JoinState",
    "JoinTicket",
    "OperatorConfig",
    "Plan",
    "Subscription",
    "TokenState",
]


class DeviceRole(enum.Enum):
    """The primary holds the subscription's federation key; secondaries are linked to it."""

    PRIMARY = "primary"
    SECONDARY = "secondary"


class DeviceState(enum.Enum):
    """A device's place in its lifecycle (see :mod:`rspfed.federation._state`)."""

    ORDERED = "ordered"
    """An ES2+ order for its profile is placed; the download has not completed."""
    ACTIVE = "active"
    """Its profile is installed; the network knows its IMSI."""
    REMOVED = "removed"
    """Removed by the primary: the slot is free, the network refuses the IMSI."""


class TokenState(enum.Enum):
    """What the operator knows about one federation token id."""

    RESERVED = "reserved"
    """Redeemed: an order bound to the token's EID waits for that eUICC."""
    CONSUMED = "consumed"
    """The token's EID authenticated in the ES9+ session: used for good."""
    REVOKED = "revoked"
    """Revoked by the primary before it was consumed."""


class JoinState(enum.Enum):
    """A cloud join request's state."""

    PENDING = "pending"
    APPROVED = "approved"
    COLLECTED = "collected"


class ChangeState(enum.Enum):
    """A device change's state (see :mod:`rspfed.federation._state`,
    docs/device-change-operator.md)."""

    ORDERED = "ordered"
    """The new profile is ordered at the SM-DP+, bound to the new EID."""
    INSTALLED = "installed"
    """The SM-DP+ says it is installed; the new IMSI is provisioned pending."""
    SWITCHED = "switched"
    """The network flipped: the new IMSI is served, the old one removed."""
    COMPLETED = "completed"
    """The old eUICC deleted its profile (its signed delete notification), or
    the old device acknowledged it."""
    CANCELLED = "cancelled"
    """Cancelled by the old device, or not switched within ``order_ttl``."""


class EapPurpose(enum.Enum):
    """Why a device runs EAP-AKA' with the operator."""

    REGISTER = "register"
    """Register the device's key (the primary's federation key, a secondary's device key)."""
    ATTACH = "attach"
    """Attach to the simulated network (and check a service)."""


def _classes(values: Iterable[DeviceClass | str]) -> frozenset[DeviceClass]:
    return frozenset(DeviceClass(v) for v in values)


def _services(values: Iterable[Service | str]) -> frozenset[Service]:
    return frozenset(Service(v) for v in values)


@attrs.frozen
class Plan:
    """What a subscription buys: a data pool per billing period, a device limit,
    the device classes and services allowed."""

    pool_bytes: int
    device_limit: int
    period: timedelta = timedelta(days=30)
    device_classes: frozenset[DeviceClass] = attrs.field(
        default=frozenset(DeviceClass), converter=_classes
    )
    services: frozenset[Service] = attrs.field(default=frozenset(Service), converter=_services)

    def __attrs_post_init__(self) -> None:
        if self.pool_bytes <= 0 or self.pool_bytes >= 1 << 63:
            raise UsageError("the pool size must be positive")
        if not 1 <= self.device_limit <= 64:
            raise UsageError("the device limit must be 1 to 64")
        if self.period <= timedelta(0):
            raise UsageError("the billing period must be positive")
        if DeviceClass.PHONE not in self.device_classes:
            raise UsageError("a plan must allow the primary's class (phone)")
        if not self.services:
            raise UsageError("a plan must allow at least one service")


@attrs.frozen
class Subscription:
    """One subscription; ``primary_key`` is the registered federation key (None before)."""

    id: str
    profile_type: str
    plan: Plan
    created: datetime
    primary_key: bytes | None = attrs.field(default=None, repr=False)
    primary_key_id: bytes | None = None
    tokens_revoked_before: datetime | None = None
    """Tokens whose ``notBefore`` is at or before this instant are revoked."""


@attrs.frozen
class Device:
    """One device of a subscription, with its own profile (ICCID, IMSI) and key."""

    id: str
    subscription_id: str
    role: DeviceRole
    device_class: DeviceClass
    name: str
    state: DeviceState
    eid: str | None
    iccid: str
    imsi: str
    services: frozenset[Service]
    quota_bytes: int | None = None
    token_id: bytes | None = None
    token_consumed: bool = False
    device_key: bytes | None = attrs.field(default=None, repr=False)
    device_key_id: bytes | None = None
    activation_code: str = attrs.field(default="", repr=False)
    created: datetime | None = None
    order_expires: datetime | None = None

    @property
    def occupies_slot(self) -> bool:
        """Whether the device counts against the plan's device limit."""
        return self.state is not DeviceState.REMOVED


@attrs.frozen
class Enrolment:
    """What a redemption gives the device: its activation code (``LPA:1$...``)."""

    device_id: str
    iccid: str
    activation_code: str = attrs.field(repr=False)
    expires: datetime | None


@attrs.frozen
class JoinRequest:
    """A secondary's request to join a subscription (the cloud enrolment path)."""

    id: str
    subscription_id: str
    eid: str
    device_class: DeviceClass
    name: str
    state: JoinState
    created: datetime
    expires: datetime
    device_id: str | None = None


@attrs.frozen
class JoinTicket:
    """A new join request and its secret (shown once; needed to collect the result)."""

    request: JoinRequest
    secret: str = attrs.field(repr=False)


@attrs.frozen
class Caller:
    """Who signed a request: a key, its subscription, device and role."""

    key_id: bytes
    subscription_id: str
    device_id: str
    role: DeviceRole


@attrs.frozen
class EapStep:
    """One step of an EAP-AKA' exchange with the operator.

    ``packet`` is the next EAP packet for the device; ``done`` once it is
    EAP-Success.  On a finished registration ``device`` is the device record;
    on a finished attach ``services`` the services the network grants.
    """

    session_id: str
    packet: bytes
    done: bool
    device: Device | None = None
    services: frozenset[Service] | None = None


@attrs.frozen
class OperatorConfig:
    """Operator settings.

    ``network_name`` is EAP-AKA''s AT_KDF_INPUT (RFC 9048 §3.1); ``order_ttl``
    how long a secondary's order waits for its eUICC before it is cancelled
    and its slot freed; ``join_ttl`` how long a join request lives;
    ``request_window`` the clock skew allowed on signed requests;
    ``eap_ttl`` how long an EAP exchange may take; ``requester`` the ES2+
    requester identity the operator's orders carry; ``max_pending_joins`` the
    pending join requests a subscription may have.
    """

    network_name: bytes = b"WLAN"
    order_ttl: timedelta = timedelta(minutes=30)
    join_ttl: timedelta = timedelta(hours=24)
    request_window: timedelta = timedelta(minutes=5)
    eap_ttl: timedelta = timedelta(minutes=5)
    requester: str = "rspfed-operator"
    max_pending_joins: int = 16


@attrs.frozen
class DeviceChange:
    """A device change: the device record ``device_id`` moves from the old
    eUICC's profile to a new profile on ``new_eid`` (docs/device-change-operator.md).

    ``replaced_device_id``/``replaced_iccid``: a linked device of the same
    subscription the new eUICC held, removed at the switch (the new device
    deletes that profile).  ``expires``: the change is cancelled if not
    switched by then.
    """

    id: str
    subscription_id: str
    device_id: str
    state: ChangeState
    old_eid: str | None
    old_iccid: str
    old_imsi: str
    new_eid: str
    new_iccid: str
    new_imsi: str
    replaced_device_id: str | None
    replaced_iccid: str | None
    created: datetime
    expires: datetime
    switched: datetime | None = None

    @property
    def open(self) -> bool:
        """Whether the change can still switch or be cancelled (ordered or installed)."""
        return self.state in (ChangeState.ORDERED, ChangeState.INSTALLED)


@attrs.frozen
class DeviceChangeOrder:
    """What :meth:`~rspfed.federation.operator.Operator.device_change` gives the old
    device: the change, the new profile's activation code and the change's
    secret (shown once: the new device, and the old one after the switch,
    read the change's status with it)."""

    change: DeviceChange
    activation_code: str = attrs.field(repr=False)
    secret: str = attrs.field(repr=False)
