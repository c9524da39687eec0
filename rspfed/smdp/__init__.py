"""The SM-DP+ (SGP.22): a sans-IO core for ES9+ and ES2+, its inventory and its store.

:class:`Smdp` (:mod:`rspfed.smdp.core`) serves the LPA's ES9+ functions and
the operator's ES2+ functions over an :class:`SmdpStore` (SQLite:
:class:`SqliteSmdpStore`); :mod:`rspfed.smdp.http` puts it behind aiohttp.
The inventory state machine is one table in :mod:`rspfed.smdp._inventory`.
See ``docs/smdp.md``.

Example (in-process)::

    store = SqliteSmdpStore.create(path)
    smdp = Smdp(config, store, now=lambda: datetime.now(UTC))
    smdp.add_profile_type(ProfileType.from_metadata("ts48", package, {...}))
    iccid = smdp.download_order(profile_type="ts48")
    order = smdp.confirm_order(iccid=iccid)
    print(order.activation_code)          # LPA:1$smdp.example$ABCDE-...
"""

from rspfed.smdp._inventory import TRANSITIONS, ItemState, Trigger
from rspfed.smdp.core import Smdp
from rspfed.smdp.local import InProcessEs9
from rspfed.smdp.store import MIGRATIONS, SCHEMA_VERSION, SmdpStore, SqliteSmdpStore
from rspfed.smdp.types import (
    ConfirmedOrder,
    DownloadProgressEvent,
    InventoryItem,
    KeptBinding,
    NotificationPoint,
    NotificationRecord,
    ProfileType,
    RspSession,
    SessionStage,
    SmdpConfig,
    SmdpCredential,
)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TRANSITIONS",
    "ConfirmedOrder",
    "DownloadProgressEvent",
    "InProcessEs9",
    "InventoryItem",
    "ItemState",
    "KeptBinding",
    "NotificationPoint",
    "NotificationRecord",
    "ProfileType",
    "RspSession",
    "SessionStage",
    "Smdp",
    "SmdpConfig",
    "SmdpCredential",
    "SmdpStore",
    "SqliteSmdpStore",
    "Trigger",
]
