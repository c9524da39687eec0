"""Device-to-device pairing and transfer (issue G): offers, short codes, secure channel, protocol.

The protocol is specified in ``docs/pairing.md``.  Pieces:

* :class:`PairingOffer` (``rspfed:1:pair:`` URI, the QR code) and
  :class:`ShortCode` (``17-guitarist-revenge``, typed on a device without a camera);
* :class:`PairingConnection`, the sans-IO core (h11 style) that pairs (Noise
  ``NNpsk0`` keyed by the offer's secret, or by SPAKE2 on the short code) and
  then carries the application messages (:class:`Hello`, :class:`JoinRequest`,
  :class:`TokenGrant`, :class:`Refusal`, :class:`JoinResult`,
  :class:`LedgerState`, :class:`Bye`) as :data:`Event` s;
* the state table in :mod:`rspfed.transfer._state`.

Transports (LAN, BLE) produce byte streams (:mod:`rspfed.transport`); the
asyncio flows that drive a connection over one live in
:mod:`rspfed.transfer.flows`.
"""

from __future__ import annotations

from rspfed.transfer._state import TRANSITIONS, ConnectionState, Side
from rspfed.transfer.code import (
    PairingMethod,
    ShortCode,
    discovery_id_from_nameplate,
    discovery_id_from_secret,
)
from rspfed.transfer.connection import (
    NEED_DATA,
    ByeReceived,
    ConnectionClosed,
    Event,
    HelloReceived,
    JoinRequested,
    JoinResultReceived,
    LedgerStateReceived,
    NeedData,
    Paired,
    PairingConnection,
    Refused,
    Role,
    TokenGranted,
)
from rspfed.transfer.messages import (
    TRANSFER_VERSION,
    Bye,
    ByeReason,
    Capability,
    DeviceRole,
    Hello,
    JoinFailure,
    JoinRequest,
    JoinResult,
    LedgerState,
    Message,
    Refusal,
    RefusalReason,
    TokenGrant,
    decode_message,
    encode_message,
)
from rspfed.transfer.offer import OFFER_URI_TYPE, LanHint, PairingOffer

__all__ = [
    "NEED_DATA",
    "OFFER_URI_TYPE",
    "TRANSFER_VERSION",
    "TRANSITIONS",
    "Bye",
    "ByeReason",
    "ByeReceived",
    "Capability",
    "ConnectionClosed",
    "ConnectionState",
    "DeviceRole",
    "Event",
    "Hello",
    "HelloReceived",
    "JoinFailure",
    "JoinRequest",
    "JoinRequested",
    "JoinResult",
    "JoinResultReceived",
    "LanHint",
    "LedgerState",
    "LedgerStateReceived",
    "Message",
    "NeedData",
    "Paired",
    "PairingConnection",
    "PairingMethod",
    "PairingOffer",
    "Refusal",
    "RefusalReason",
    "Refused",
    "Role",
    "ShortCode",
    "Side",
    "TokenGrant",
    "TokenGranted",
    "decode_message",
    "discovery_id_from_nameplate",
    "discovery_id_from_secret",
    "encode_message",
]
