"""Device-to-device pairing and transfer (issue G): offers, short codes, secure channel, protocol.

The protocol is specified in ``docs/pairing.md``.  Pieces:

* :class:`PairingOffer` (``rspfed:1:pair:`` URI, the QR code) and
  :class:`ShortCode` (``17-guitarist-revenge``, typed on a device without a camera);
* :class:`PairingConnection`, the sans-IO core (h11 style) that pairs (Noise
  ``NNpsk0`` keyed by the offer's secret, or by SPAKE2 on the short code) and
  then carries the application messages (:class:`Hello`, :class:`JoinRequest`,
  :class:`TokenGrant`, :class:`Refusal`, :class:`JoinResult`,
  :class:`LedgerState`, :class:`Bye`; issue H's companion relay
  :class:`CompanionRequest`, :class:`CompanionInfo`, :class:`Es10Request`,
  :class:`Es10Response`, :class:`Es10Refusal`) as :data:`Event` s, and
  reconnects an already paired companion (``paired=PairedKey(...)``);
* the state table in :mod:`rspfed.transfer._state`.

Transports (LAN, BLE) produce byte streams (:mod:`rspfed.transport`); the
asyncio flows that drive a connection over one live in
:mod:`rspfed.transfer.flows`.  The companion ES10 relay's two ends,
:class:`CompanionResponder` (the watch) and :class:`RemoteEs10` (the phone: the
watch's eUICC as an :class:`~rspfed.lpa.es10.Es10`), are in
:mod:`rspfed.transfer.relay`; ``from rspfed.transfer import RemoteEs10`` loads
that module on first use (it brings in the LPA).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rspfed.transfer._state import TRANSITIONS, ConnectionState, Side
from rspfed.transfer.code import (
    PairedKey,
    PairingMethod,
    ShortCode,
    companion_discovery_id,
    companion_psk,
    discovery_id_from_nameplate,
    discovery_id_from_secret,
)
from rspfed.transfer.connection import (
    NEED_DATA,
    ByeReceived,
    ChangeDoneReceived,
    ChangeOrdered,
    ChangeRequested,
    ChangeResultReceived,
    CompanionInfoReceived,
    CompanionRequested,
    ConnectionClosed,
    Es10Answered,
    Es10Refused,
    Es10Requested,
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
    ChangeDone,
    ChangeFailure,
    ChangeOrder,
    ChangeRequest,
    ChangeResult,
    CompanionHandover,
    CompanionInfo,
    CompanionRequest,
    CompanionTransport,
    DeviceRole,
    Es10Refusal,
    Es10RefusalReason,
    Es10Request,
    Es10Response,
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

if TYPE_CHECKING:
    from rspfed.transfer.relay import CompanionResponder, RemoteEs10

__all__ = [
    "NEED_DATA",
    "OFFER_URI_TYPE",
    "TRANSFER_VERSION",
    "TRANSITIONS",
    "Bye",
    "ByeReason",
    "ByeReceived",
    "Capability",
    "ChangeDone",
    "ChangeDoneReceived",
    "ChangeFailure",
    "ChangeOrder",
    "ChangeOrdered",
    "ChangeRequest",
    "ChangeRequested",
    "ChangeResult",
    "ChangeResultReceived",
    "CompanionHandover",
    "CompanionInfo",
    "CompanionInfoReceived",
    "CompanionRequest",
    "CompanionRequested",
    "CompanionResponder",
    "CompanionTransport",
    "ConnectionClosed",
    "ConnectionState",
    "DeviceRole",
    "Es10Answered",
    "Es10Refusal",
    "Es10RefusalReason",
    "Es10Refused",
    "Es10Request",
    "Es10Requested",
    "Es10Response",
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
    "PairedKey",
    "PairingConnection",
    "PairingMethod",
    "PairingOffer",
    "Refusal",
    "RefusalReason",
    "Refused",
    "RemoteEs10",
    "Role",
    "ShortCode",
    "Side",
    "TokenGrant",
    "TokenGranted",
    "companion_discovery_id",
    "companion_psk",
    "decode_message",
    "discovery_id_from_nameplate",
    "discovery_id_from_secret",
    "encode_message",
]


def __getattr__(name: str) -> object:
    if name in ("CompanionResponder", "RemoteEs10"):
        from rspfed.transfer import relay

        return getattr(relay, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
