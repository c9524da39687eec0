"""Simulated network core: an AuC, an attach check and a service check (sans-IO).

See ``docs/network.md``.  :mod:`rspfed.network.auc` holds subscribers and
builds authentication vectors (TS 33.102), :mod:`rspfed.network.attach` runs
3G AKA against a USIM, :mod:`rspfed.network.service` decides which services
an IMSI gets, :mod:`rspfed.network.store` persists the subscribers.
:mod:`rspfed.network.nai` builds and parses EAP permanent identities,
:mod:`rspfed.network.eap` serves the EAP-AKA' authenticator from the AuC and
:mod:`rspfed.network.usim` reads a card's IMSI/MNC length and answers EAP-AKA'
challenges with its USIM.  :mod:`rspfed.network.radio` is the simulated radio
(cells, scans), :mod:`rspfed.network.plmn` the USIM PLMN-list codecs and
:mod:`rspfed.network.selection` TS 23.122 automatic network selection
(``docs/network-selection.md``).
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
from rspfed.network.radio import Cell, RadioEnvironment, Rat, VisibleNetwork
from rspfed.network.selection import (
    NetworkSelected,
    NetworkSelector,
    NoNetwork,
    PlmnForbidden,
    PlmnLists,
    PriorityClass,
    Selection,
    read_plmn_lists,
    select_network,
)
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
    "Cell",
    "DeviceClass",
    "MemorySubscriberStore",
    "NetworkEapAuc",
    "NetworkRefusedError",
    "NetworkSelected",
    "NetworkSelector",
    "NoNetwork",
    "PlmnForbidden",
    "PlmnLists",
    "PriorityClass",
    "RadioEnvironment",
    "Rat",
    "RefusalReason",
    "Selection",
    "Service",
    "ServicePolicy",
    "SqliteSubscriberStore",
    "Subscriber",
    "SubscriberState",
    "SubscriberStore",
    "Usim",
    "UsimOverApdus",
    "VisibleNetwork",
    "attach",
    "eap_usim",
    "imsi_from_identity",
    "permanent_identity",
    "read_plmn_lists",
    "read_usim_identity",
    "select_network",
]
