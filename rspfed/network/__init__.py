"""Simulated network core: an AuC, an attach check and a service check (sans-IO).

See ``docs/network.md``.  :mod:`rspfed.network.auc` holds subscribers and
builds authentication vectors (TS 33.102), :mod:`rspfed.network.attach` runs
3G AKA against a USIM, :mod:`rspfed.network.service` decides which services
an IMSI gets, :mod:`rspfed.network.store` persists the subscribers.
"""

from __future__ import annotations

from rspfed.network.attach import Attachment, AuthenticateResult, Usim, UsimOverApdus, attach
from rspfed.network.auc import (
    Algorithm,
    Auc,
    AuthenticationVector,
    NetworkRefusedError,
    RefusalReason,
    Subscriber,
    SubscriberState,
)
from rspfed.network.service import (
    DEVICE_CLASS_SERVICES,
    DeviceClass,
    Service,
    ServicePolicy,
)
from rspfed.network.store import MemorySubscriberStore, SqliteSubscriberStore, SubscriberStore

__all__ = [
    "DEVICE_CLASS_SERVICES",
    "Algorithm",
    "Attachment",
    "Auc",
    "AuthenticateResult",
    "AuthenticationVector",
    "DeviceClass",
    "MemorySubscriberStore",
    "NetworkRefusedError",
    "RefusalReason",
    "Service",
    "ServicePolicy",
    "SqliteSubscriberStore",
    "Subscriber",
    "SubscriberState",
    "SubscriberStore",
    "Usim",
    "UsimOverApdus",
    "attach",
]
