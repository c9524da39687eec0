"""Simulated network core: an AuC, an attach check and a service check (sans-IO).

See ``docs/network.md``.  :mod:`rspfed.network.auc` holds subscribers and
builds authentication vectors (TS 33.102), :mod:`rspfed.network.attach` runs
3G AKA against a USIM, :mod:`rspfed.network.service` decides which services
an IMSI gets, :mod:`rspfed.network.store` persists the subscribers.
:mod:`rspfed.network.nai` builds and parses EAP permanent identities,
:mod:`rspfed.network.eap` serves the EAP-AKA' authenticator from the AuC and
:mod:`rspfed.network.usim` reads a card's IMSI/MNC length and answers EAP-AKA'
challenges with its USIM.
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
from rspfed.network.eap import NetworkEapAuc
from rspfed.network.nai import imsi_from_identity, permanent_identity
from rspfed.network.service import (
    DEVICE_CLASS_SERVICES,
    DeviceClass,
    Service,
    ServicePolicy,
)
from rspfed.network.store import MemorySubscriberStore, SqliteSubscriberStore, SubscriberStore
from rspfed.network.usim import eap_usim, read_usim_identity

__all__ = [
    "DEVICE_CLASS_SERVICES",
    "Algorithm",
    "Attachment",
    "Auc",
    "AuthenticateResult",
    "AuthenticationVector",
    "DeviceClass",
    "MemorySubscriberStore",
    "NetworkEapAuc",
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
    "eap_usim",
    "imsi_from_identity",
    "permanent_identity",
    "read_usim_identity",
]
