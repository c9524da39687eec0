"""The per-session GATT UUIDs of an rspfed pairing over BLE.

The offerer (peripheral) advertises one primary service whose UUID comes from
the pairing's 16-octet discovery identifier
(:func:`rspfed.transfer.code.discovery_id_from_secret` or
``discovery_id_from_nameplate``): the identifier's octets with the RFC 4122
version (4) and variant (``10``) bits forced, so it is a well-formed random
UUID and a joiner can filter advertisements on it.  The two characteristics
are derived from the identifier too, so two sessions near each other never
share a handle layout by accident and nothing rspfed-specific is fixed in the
air:

* write characteristic (central to peripheral, write with response):
  ``SHA-256(b"rspfed ble write v1" || discovery_id)[:16]``, version-4 bits forced;
* notify characteristic (peripheral to central, notify):
  ``SHA-256(b"rspfed ble notify v1" || discovery_id)[:16]``, version-4 bits forced.

The discovery identifier is public (it is on the air in every advertisement);
deriving the characteristic UUIDs from it adds no secret and needs none.
"""

from __future__ import annotations

import hashlib
import uuid

from rspfed.errors import UsageError

__all__ = [
    "DISCOVERY_ID_SIZE",
    "notify_characteristic_uuid",
    "service_uuid",
    "write_characteristic_uuid",
]

#: Octets of a pairing discovery identifier.
DISCOVERY_ID_SIZE = 16


def _check(discovery_id: bytes) -> bytes:
    if len(discovery_id) != DISCOVERY_ID_SIZE:
        raise UsageError(f"a discovery identifier has {DISCOVERY_ID_SIZE} octets")
    return bytes(discovery_id)


def service_uuid(discovery_id: bytes) -> uuid.UUID:
    """The session's service UUID: ``discovery_id`` with version-4/variant bits forced."""
    return uuid.UUID(bytes=_check(discovery_id), version=4)


def _derived(label: bytes, discovery_id: bytes) -> uuid.UUID:
    digest = hashlib.sha256(label + _check(discovery_id)).digest()
    return uuid.UUID(bytes=digest[:16], version=4)


def write_characteristic_uuid(discovery_id: bytes) -> uuid.UUID:
    """The write characteristic's UUID (central to peripheral), see the module doc."""
    return _derived(b"rspfed ble write v1", discovery_id)


def notify_characteristic_uuid(discovery_id: bytes) -> uuid.UUID:
    """The notify characteristic's UUID (peripheral to central), see the module doc."""
    return _derived(b"rspfed ble notify v1", discovery_id)
