"""Every state transition of a pairing connection, as a table.

Theory of operation
-------------------
A pairing connection (:class:`rspfed.transfer.connection.PairingConnection`)
has two roles that say only who listens: the **offerer** shows the offer
(QR code and short code) and waits; the **joiner** scanned or typed it and
connects.  Who grants a token is independent of that: a phone may offer and a
laptop join and ask, or a watch may offer and the phone join and grant.

The connection moves through one state at a time; every move is a row of
:data:`TRANSITIONS`, keyed by ``(state, side, input)``: ``side`` is
:attr:`Side.US` for what we send and :attr:`Side.THEM` for what we receive,
``input`` a pairing step or the ``TransferMessage.body`` alternative name of
an application message (:func:`rspfed.transfer.messages.message_kind`).  A
received input with no row is the peer's protocol error: the connection
closes (with ``bye protocolError`` once the secure channel is up) and the
offer or code is burnt.  A sent input with no row is the caller's mistake
(:class:`~rspfed.errors.StateError`, nothing changes).

Pairing phase (frames on the stream; ``docs/pairing.md``)::

    joiner, QR path:    (start: sends "open QR" = 0x01 || Noise message 1) -> AWAIT_HANDSHAKE
    joiner, code path:  (start: sends "open code" = 0x02 || SPAKE2 message) -> AWAIT_PAKE
    joiner, paired:     (start: sends "open paired" = 0x03 || Noise message 1) -> AWAIT_HANDSHAKE
    offerer:            (start) -> AWAIT_OPEN

    AWAIT_OPEN      --openQr-------> AWAIT_HELLO      offerer: Noise 1 read; Noise 2 + hello sent
    AWAIT_OPEN      --openPaired---> AWAIT_HELLO      offerer (reconnection, issue H): the same
    AWAIT_OPEN      --openCode-----> AWAIT_CONFIRM    offerer: SPAKE2 + confirmation sent
    AWAIT_PAKE      --pake---------> AWAIT_CONFIRM    joiner: confirmation sent
    AWAIT_CONFIRM   --confirmation-> AWAIT_HANDSHAKE  both: peer's confirmation verified;
                                                      joiner: Noise message 1 sent
    AWAIT_HANDSHAKE --handshake----> AWAIT_HELLO      offerer: Noise 1 read, Noise 2 + hello sent;
                                                      joiner: Noise 2 read, hello sent

Entering ``AWAIT_HELLO`` is the moment the secure channel is up (event
``Paired``) and our own hello is sent: the hello is not a separate row.

Application phase (messages in the secure channel)::

    AWAIT_HELLO    --hello (them)-------> READY
    READY          --joinRequest (us)---> JOIN_SENT       --tokenGrant (them)--> GRANT_RECEIVED
                                                          --refusal (them)-----> READY
    GRANT_RECEIVED --joinResult (us)----> READY
    READY          --joinRequest (them)-> JOIN_RECEIVED   --tokenGrant (us)----> GRANT_SENT
                                                          --refusal (us)-------> READY
    GRANT_SENT     --joinResult (them)--> READY
    any application state --ledgerState (us or them, after the hellos)--> same state
    any application state --bye (us or them)--> CLOSED

Companion relay (issue H; the phone is the joiner, the watch a companion
offerer: the connection checks those roles, the table only the order)::

    READY               --companionRequest (us)---> COMPANION_REQUESTED   phone
    COMPANION_REQUESTED --companionInfo (them)----> RELAY_READY
                        --refusal (them)----------> READY
    RELAY_READY         --es10Request (us)--------> ES10_SENT
    ES10_SENT           --es10Response (them)-----> RELAY_READY
                        --es10Refused (them)------> RELAY_READY

    READY               --companionRequest (them)-> COMPANION_INFO_DUE    watch
    COMPANION_INFO_DUE  --companionInfo (us)------> RELAY_SERVING
                        --refusal (us)------------> READY
    RELAY_SERVING       --es10Request (them)------> ES10_RECEIVED
    ES10_RECEIVED       --es10Response (us)-------> RELAY_SERVING
                        --es10Refused (us)--------> RELAY_SERVING

One ES10 request is outstanding at a time; ``bye`` ends the session.

Device change (issue I, ``docs/device-change.md``; the new device is the
joiner, the old device the offerer, and both hellos carry the
``deviceChange`` capability: the connection checks those, and that
``changeDone`` follows only a ``switched`` result)::

    READY                  --changeRequest (us)---> CHANGE_REQUESTED         new device
    CHANGE_REQUESTED       --changeOrder (them)---> CHANGE_ORDERED
                           --refusal (them)-------> READY
    CHANGE_ORDERED         --changeResult (us)----> CHANGE_RESULT_SENT
    CHANGE_RESULT_SENT     --changeDone (them)----> READY
    READY                  --changeRequest (them)-> CHANGE_ASKED             old device
    CHANGE_ASKED           --changeOrder (us)-----> CHANGE_ORDER_SENT
                           --refusal (us)---------> READY
    CHANGE_ORDER_SENT      --changeResult (them)--> CHANGE_RESULT_RECEIVED
    CHANGE_RESULT_RECEIVED --changeDone (us)------> READY

After a ``failed`` result the old device says ``bye`` instead of
``changeDone``; either side may say ``bye`` at any point (the flows then
resume from their journals, not from the connection).

Closing: ``eof`` (the stream ended) is clean only in ``CLOSED`` (after a
bye); anywhere else it is a :class:`~rspfed.errors.TransportError`.
``abort`` (local) closes from any state.  Any error closes: a connection
that closed, for whatever reason, has burnt its offer or code.

Extending (later issues): add states to :class:`ConnectionState` and rows to
the table, keyed by the new body alternatives' names.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from rspfed.errors import StateError

__all__ = [
    "APPLICATION_STATES",
    "INPUT_ABORT",
    "INPUT_CONFIRMATION",
    "INPUT_EOF",
    "INPUT_HANDSHAKE",
    "INPUT_OPEN_CODE",
    "INPUT_OPEN_PAIRED",
    "INPUT_OPEN_QR",
    "INPUT_PAKE",
    "PAIRING_STATES",
    "TRANSITIONS",
    "ConnectionState",
    "Side",
    "move",
]


class ConnectionState(enum.Enum):
    """Where a pairing connection is."""

    AWAIT_OPEN = "await-open"
    """Offerer: waiting for the joiner's opening frame."""
    AWAIT_PAKE = "await-pake"
    """Joiner, code path: our SPAKE2 message sent, waiting for the offerer's."""
    AWAIT_CONFIRM = "await-confirm"
    """Code path: our confirmation sent, waiting for the peer's."""
    AWAIT_HANDSHAKE = "await-handshake"
    """Waiting for the peer's Noise handshake message."""
    AWAIT_HELLO = "await-hello"
    """Secure channel up, our hello sent, waiting for the peer's."""
    READY = "ready"
    """Hellos exchanged; nothing outstanding."""
    JOIN_SENT = "join-sent"
    """We asked to join; waiting for the token grant or refusal."""
    JOIN_RECEIVED = "join-received"
    """The peer asked to join; our answer (approval callback) is due."""
    GRANT_SENT = "grant-sent"
    """We granted a token; waiting for the peer's join result."""
    GRANT_RECEIVED = "grant-received"
    """We received a token; our join result is due."""
    COMPANION_REQUESTED = "companion-requested"
    """Phone: our companion request sent; waiting for the watch's companion info."""
    COMPANION_INFO_DUE = "companion-info-due"
    """Watch: the phone's companion request received; our companion info (or refusal) is due."""
    RELAY_READY = "relay-ready"
    """Phone: the relay is open and no ES10 request is outstanding."""
    RELAY_SERVING = "relay-serving"
    """Watch: the relay is open; waiting for the next ES10 request."""
    ES10_SENT = "es10-sent"
    """Phone: one ES10 request outstanding; waiting for its response or refusal."""
    ES10_RECEIVED = "es10-received"
    """Watch: an ES10 request received; our response or refusal is due."""
    CHANGE_REQUESTED = "change-requested"
    """New device: our change request sent; waiting for the change order or refusal."""
    CHANGE_ORDERED = "change-ordered"
    """New device: the change order received; our change result is due."""
    CHANGE_RESULT_SENT = "change-result-sent"
    """New device: our change result sent; waiting for the old device's change done."""
    CHANGE_ASKED = "change-asked"
    """Old device: the new device's change request received; our order (or refusal) is due."""
    CHANGE_ORDER_SENT = "change-order-sent"
    """Old device: the change order sent; waiting for the new device's result."""
    CHANGE_RESULT_RECEIVED = "change-result-received"
    """Old device: the new device's result received; our change done (or bye) is due."""
    CLOSED = "closed"
    """Done or failed; nothing more is sent or received (the offer is burnt)."""


class Side(enum.Enum):
    """Who sends the input: us or the peer."""

    US = "us"
    THEM = "them"


INPUT_OPEN_QR = "openQr"
"""The joiner's opening frame, QR method (``0x01 || Noise message 1``)."""
INPUT_OPEN_CODE = "openCode"
"""The joiner's opening frame, code method (``0x02 || SPAKE2 message``)."""
INPUT_OPEN_PAIRED = "openPaired"
"""The joiner's opening frame, reconnection of a paired companion (``0x03 || Noise message 1``)."""
INPUT_PAKE = "pake"
"""The offerer's SPAKE2 message."""
INPUT_CONFIRMATION = "confirmation"
"""A SPAKE2 key confirmation."""
INPUT_HANDSHAKE = "handshake"
"""A Noise handshake message (message 1 to the offerer, 2 to the joiner)."""
INPUT_EOF = "eof"
"""The stream ended."""
INPUT_ABORT = "abort"
"""We abort (local)."""

_S = ConnectionState
_US, _THEM = Side.US, Side.THEM

PAIRING_STATES = frozenset({_S.AWAIT_OPEN, _S.AWAIT_PAKE, _S.AWAIT_CONFIRM, _S.AWAIT_HANDSHAKE})
"""States before the secure channel is up."""

APPLICATION_STATES = frozenset(
    {
        _S.AWAIT_HELLO,
        _S.READY,
        _S.JOIN_SENT,
        _S.JOIN_RECEIVED,
        _S.GRANT_SENT,
        _S.GRANT_RECEIVED,
        _S.COMPANION_REQUESTED,
        _S.COMPANION_INFO_DUE,
        _S.RELAY_READY,
        _S.RELAY_SERVING,
        _S.ES10_SENT,
        _S.ES10_RECEIVED,
        _S.CHANGE_REQUESTED,
        _S.CHANGE_ORDERED,
        _S.CHANGE_RESULT_SENT,
        _S.CHANGE_ASKED,
        _S.CHANGE_ORDER_SENT,
        _S.CHANGE_RESULT_RECEIVED,
    }
)
"""States with the secure channel up."""

_AFTER_HELLO = APPLICATION_STATES - {_S.AWAIT_HELLO}


def _rows() -> dict[tuple[ConnectionState, Side, str], ConnectionState]:
    rows: dict[tuple[ConnectionState, Side, str], ConnectionState] = {
        # pairing phase
        (_S.AWAIT_OPEN, _THEM, INPUT_OPEN_QR): _S.AWAIT_HELLO,
        (_S.AWAIT_OPEN, _THEM, INPUT_OPEN_CODE): _S.AWAIT_CONFIRM,
        (_S.AWAIT_OPEN, _THEM, INPUT_OPEN_PAIRED): _S.AWAIT_HELLO,
        (_S.AWAIT_PAKE, _THEM, INPUT_PAKE): _S.AWAIT_CONFIRM,
        (_S.AWAIT_CONFIRM, _THEM, INPUT_CONFIRMATION): _S.AWAIT_HANDSHAKE,
        (_S.AWAIT_HANDSHAKE, _THEM, INPUT_HANDSHAKE): _S.AWAIT_HELLO,
        # hellos
        (_S.AWAIT_HELLO, _THEM, "hello"): _S.READY,
        # the join exchange, we ask
        (_S.READY, _US, "joinRequest"): _S.JOIN_SENT,
        (_S.JOIN_SENT, _THEM, "tokenGrant"): _S.GRANT_RECEIVED,
        (_S.JOIN_SENT, _THEM, "refusal"): _S.READY,
        (_S.GRANT_RECEIVED, _US, "joinResult"): _S.READY,
        # the join exchange, they ask
        (_S.READY, _THEM, "joinRequest"): _S.JOIN_RECEIVED,
        (_S.JOIN_RECEIVED, _US, "tokenGrant"): _S.GRANT_SENT,
        (_S.JOIN_RECEIVED, _US, "refusal"): _S.READY,
        (_S.GRANT_SENT, _THEM, "joinResult"): _S.READY,
        # the companion relay, we are the phone
        (_S.READY, _US, "companionRequest"): _S.COMPANION_REQUESTED,
        (_S.COMPANION_REQUESTED, _THEM, "companionInfo"): _S.RELAY_READY,
        (_S.COMPANION_REQUESTED, _THEM, "refusal"): _S.READY,
        (_S.RELAY_READY, _US, "es10Request"): _S.ES10_SENT,
        (_S.ES10_SENT, _THEM, "es10Response"): _S.RELAY_READY,
        (_S.ES10_SENT, _THEM, "es10Refused"): _S.RELAY_READY,
        # the companion relay, we are the watch
        (_S.READY, _THEM, "companionRequest"): _S.COMPANION_INFO_DUE,
        (_S.COMPANION_INFO_DUE, _US, "companionInfo"): _S.RELAY_SERVING,
        (_S.COMPANION_INFO_DUE, _US, "refusal"): _S.READY,
        (_S.RELAY_SERVING, _THEM, "es10Request"): _S.ES10_RECEIVED,
        (_S.ES10_RECEIVED, _US, "es10Response"): _S.RELAY_SERVING,
        (_S.ES10_RECEIVED, _US, "es10Refused"): _S.RELAY_SERVING,
        # device change, we are the new device
        (_S.READY, _US, "changeRequest"): _S.CHANGE_REQUESTED,
        (_S.CHANGE_REQUESTED, _THEM, "changeOrder"): _S.CHANGE_ORDERED,
        (_S.CHANGE_REQUESTED, _THEM, "refusal"): _S.READY,
        (_S.CHANGE_ORDERED, _US, "changeResult"): _S.CHANGE_RESULT_SENT,
        (_S.CHANGE_RESULT_SENT, _THEM, "changeDone"): _S.READY,
        # device change, we are the old device
        (_S.READY, _THEM, "changeRequest"): _S.CHANGE_ASKED,
        (_S.CHANGE_ASKED, _US, "changeOrder"): _S.CHANGE_ORDER_SENT,
        (_S.CHANGE_ASKED, _US, "refusal"): _S.READY,
        (_S.CHANGE_ORDER_SENT, _THEM, "changeResult"): _S.CHANGE_RESULT_RECEIVED,
        (_S.CHANGE_RESULT_RECEIVED, _US, "changeDone"): _S.READY,
        # the stream ends after a bye
        (_S.CLOSED, _THEM, INPUT_EOF): _S.CLOSED,
    }
    for state in _AFTER_HELLO:
        rows[(state, _US, "ledgerState")] = state
        rows[(state, _THEM, "ledgerState")] = state
    for state in APPLICATION_STATES:
        rows[(state, _US, "bye")] = _S.CLOSED
        rows[(state, _THEM, "bye")] = _S.CLOSED
    for state in ConnectionState:
        rows[(state, _US, INPUT_ABORT)] = _S.CLOSED
    return rows


TRANSITIONS: Mapping[tuple[ConnectionState, Side, str], ConnectionState] = MappingProxyType(_rows())
"""``(state, side, input) -> new state``; a missing key is not allowed."""


def move(state: ConnectionState, side: Side, kind: str) -> ConnectionState:
    """The state after ``side`` sends ``kind`` in ``state``.

    :class:`~rspfed.errors.StateError` if the table has no such row (the
    connection turns a received one into a protocol error).
    """
    target = TRANSITIONS.get((state, side, kind))
    if target is None:
        who = "sending" if side is Side.US else "receiving"
        raise StateError(f"{who} {kind} is not allowed in state {state.value}")
    return target
