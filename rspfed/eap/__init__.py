"""EAP-AKA' (RFC 9048) for primary registration: key derivation, codec, sans-IO machines.

See :mod:`rspfed.eap.akaprime` (keys, packets, AT_MAC) and
:mod:`rspfed.eap.machines` (authenticator and peer), :mod:`rspfed.eap.usim`
(the peer's USIM from a TS 31.102 AUTHENTICATE).
"""

from __future__ import annotations

from rspfed.eap.akaprime import (
    AT_RSPFED_FEDERATION_KEY,
    Attribute,
    Code,
    EapPacket,
    Keys,
    Subtype,
    decode,
    derive_keys,
)
from rspfed.eap.machines import (
    AkaVector,
    AuC,
    AuthenticationVector,
    EapAkaPrimePeer,
    EapAkaPrimeServer,
    PeerState,
    ServerState,
    UsimAuthenticate,
    UsimResult,
)
from rspfed.eap.usim import usim_from_authenticate

__all__ = [
    "AT_RSPFED_FEDERATION_KEY",
    "AkaVector",
    "Attribute",
    "AuC",
    "AuthenticationVector",
    "Code",
    "EapAkaPrimePeer",
    "EapAkaPrimeServer",
    "EapPacket",
    "Keys",
    "PeerState",
    "ServerState",
    "Subtype",
    "UsimAuthenticate",
    "UsimResult",
    "decode",
    "derive_keys",
    "usim_from_authenticate",
]
