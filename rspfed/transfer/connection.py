"""The sans-IO pairing connection (h11 style): pairing, secure channel, application messages.

One :class:`PairingConnection` is one side of one pairing attempt.  It does
no I/O: the caller feeds it the octets the stream delivered
(:meth:`~PairingConnection.receive_data`, ``b""`` at end of stream), takes
the octets to send (:meth:`~PairingConnection.data_to_send`), pulls events
(:meth:`~PairingConnection.next_event`) and sends application messages
(:meth:`~PairingConnection.send`).  Randomness is injected (``rand``).

Roles: the :attr:`Role.OFFERER` holds the :class:`~rspfed.transfer.offer.PairingOffer`
(and usually a :class:`~rspfed.transfer.code.ShortCode` shown beside it) and
listens; the :attr:`Role.JOINER` has either the offer (scanned, QR path) or
the code (typed, code path) and connects.  Who asks to join and who grants
is decided by the application (its :class:`~rspfed.transfer.messages.JoinRequest`),
not by the role.

A driver over a :class:`~rspfed.transport.stream.ByteStream`::

    conn = PairingConnection(Role.JOINER, local=hello, offer=offer, rand=os.urandom)
    await stream.send(conn.data_to_send())          # the joiner opens
    while conn.state is not ConnectionState.CLOSED:
        event = conn.next_event()                   # RspfedError: failed, offer burnt
        if event is NEED_DATA:
            await stream.send(conn.data_to_send())
            conn.receive_data(await stream.receive())   # b"" at EOF; on TransportError:
            continue                                    # conn.abort()
        if isinstance(event, HelloReceived):
            conn.send(JoinRequest(...))
        elif isinstance(event, TokenGranted):
            ...                                     # redeem, download, enable
            conn.send(JoinResult.installed(iccid))
        elif isinstance(event, ByeReceived | ConnectionClosed):
            break
    await stream.send(conn.data_to_send())
    await stream.aclose()

Failure rules: any error (a wrong code, a frame that does not authenticate,
a malformed, unknown or out-of-order message, the stream ending before a
``bye``) is raised once by :meth:`~PairingConnection.next_event`; the
connection is then ``CLOSED`` and :attr:`~PairingConnection.burnt`, and
later calls return :class:`ConnectionClosed`.  When the secure channel is
still sound (a message that decodes badly, an unknown version or
alternative, a message not allowed at this point) a ``bye`` (``unsupported``
or ``protocolError``) is queued for the peer first.  The offer or code
serves one attempt: it is burnt from the moment the opening frame was sent
or received, and by any close.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from typing import Literal, TypeAlias

import attrs

from rspfed.crypto.noise import HandshakeState
from rspfed.crypto.pake import CONFIRMATION_SIZE, MESSAGE_SIZE, SymmetricPake
from rspfed.errors import (
    DecodeError,
    IntegrityError,
    ProtocolError,
    RspfedError,
    StateError,
    TransportError,
    UsageError,
)
from rspfed.federation.token import parse_token
from rspfed.transfer._state import (
    INPUT_ABORT,
    INPUT_CONFIRMATION,
    INPUT_HANDSHAKE,
    INPUT_OPEN_CODE,
    INPUT_OPEN_PAIRED,
    INPUT_OPEN_QR,
    INPUT_PAKE,
    ConnectionState,
    Side,
    move,
)
from rspfed.transfer.channel import (
    DEFAULT_MAX_MESSAGE_SIZE,
    FrameDecoder,
    SecureChannel,
    encode_frame,
)
from rspfed.transfer.code import (
    PairedKey,
    PairingMethod,
    ShortCode,
    pairing_prologue,
    psk_from_pake_key,
    psk_from_secret,
)
from rspfed.transfer.messages import (
    Bye,
    ByeReason,
    Capability,
    ChangeDone,
    ChangeOrder,
    ChangeRequest,
    ChangeResult,
    CompanionInfo,
    CompanionRequest,
    DeviceRole,
    Es10Refusal,
    Es10Request,
    Es10Response,
    Hello,
    JoinRequest,
    JoinResult,
    LedgerState,
    Message,
    Refusal,
    TokenGrant,
    decode_message,
    encode_message,
    message_kind,
)
from rspfed.transfer.offer import PairingOffer

__all__ = [
    "NEED_DATA",
    "ByeReceived",
    "ChangeDoneReceived",
    "ChangeOrdered",
    "ChangeRequested",
    "ChangeResultReceived",
    "CompanionInfoReceived",
    "CompanionRequested",
    "ConnectionClosed",
    "Es10Answered",
    "Es10Refused",
    "Es10Requested",
    "Event",
    "HelloReceived",
    "JoinRequested",
    "JoinResultReceived",
    "LedgerStateReceived",
    "NeedData",
    "Paired",
    "PairingConnection",
    "Refused",
    "Role",
    "TokenGranted",
]

_NOISE_MESSAGE_SIZE = 48  # NNpsk0 messages with empty payloads: e (32) + tag (16)


class Role(enum.Enum):
    """Who listens (offerer: shows the offer) and who connects (joiner)."""

    OFFERER = "offerer"
    JOINER = "joiner"


class NeedData(enum.Enum):
    """Sentinel type of :data:`NEED_DATA`."""

    NEED_DATA = "need-data"


NEED_DATA: Literal[NeedData.NEED_DATA] = NeedData.NEED_DATA
"""Returned by :meth:`PairingConnection.next_event` when more octets are needed."""


@attrs.frozen
class Paired:
    """The secure channel is up: both sides proved knowledge of the secret or code.

    ``handshake_hash`` is the Noise handshake hash (32 octets), a channel
    binding value for later signatures (issues H, I).
    """

    method: PairingMethod
    handshake_hash: bytes = attrs.field(repr=False)


@attrs.frozen
class HelloReceived:
    """The peer's :class:`~rspfed.transfer.messages.Hello`."""

    message: Hello


@attrs.frozen
class JoinRequested:
    """The peer asks to join: approve (send a TokenGrant) or refuse (send a Refusal)."""

    message: JoinRequest


@attrs.frozen
class TokenGranted:
    """The peer granted a token (its EID is ours: checked); send a JoinResult when done."""

    message: TokenGrant


@attrs.frozen
class Refused:
    """The peer refused our join request."""

    message: Refusal


@attrs.frozen
class JoinResultReceived:
    """The outcome of the join we granted."""

    message: JoinResult


@attrs.frozen
class LedgerStateReceived:
    """The peer's usage ledger state (DER, decode with ``rspfed.federation.ledger``)."""

    message: LedgerState


@attrs.frozen
class ByeReceived:
    """The peer ended the connection (it is now CLOSED)."""

    message: Bye


@attrs.frozen
class CompanionRequested:
    """Watch: the phone asks for our companion info; send a CompanionInfo (or a Refusal)."""

    message: CompanionRequest


@attrs.frozen
class CompanionInfoReceived:
    """Phone: the watch's companion info (its EID is its hello's: checked); the relay is open."""

    message: CompanionInfo


@attrs.frozen
class Es10Requested:
    """Watch: one ES10 request to answer with an Es10Response or an Es10Refusal."""

    message: Es10Request


@attrs.frozen
class Es10Answered:
    """Phone: the watch eUICC's response to our outstanding ES10 request."""

    message: Es10Response


@attrs.frozen
class Es10Refused:
    """Phone: the watch did not relay our outstanding ES10 request."""

    message: Es10Refusal


@attrs.frozen
class ChangeRequested:
    """Old device: the new device (its EID is its hello's) asks to take the subscription
    over; after the user's confirmation send a ChangeOrder, else a Refusal."""

    message: ChangeRequest


@attrs.frozen
class ChangeOrdered:
    """New device: the operator's order for our EID; download, enable, wait for the
    switch, then send a ChangeResult."""

    message: ChangeOrder


@attrs.frozen
class ChangeResultReceived:
    """Old device: the new device's outcome; after ``switched`` delete the old profile
    and send a ChangeDone, after a failure say bye."""

    message: ChangeResult


@attrs.frozen
class ChangeDoneReceived:
    """New device: the old device is done (its profile deleted or not yet, companions
    handed over)."""

    message: ChangeDone


@attrs.frozen
class ConnectionClosed:
    """The connection is closed; nothing more will happen."""


Event: TypeAlias = (
    Paired
    | HelloReceived
    | JoinRequested
    | TokenGranted
    | Refused
    | JoinResultReceived
    | LedgerStateReceived
    | ByeReceived
    | CompanionRequested
    | CompanionInfoReceived
    | Es10Requested
    | Es10Answered
    | Es10Refused
    | ChangeRequested
    | ChangeOrdered
    | ChangeResultReceived
    | ChangeDoneReceived
    | ConnectionClosed
)
"""Everything :meth:`PairingConnection.next_event` returns besides :data:`NEED_DATA`."""


def _event_for(message: Message) -> Event:
    """The event that delivers a received message."""
    if isinstance(message, Hello):
        return HelloReceived(message)
    if isinstance(message, JoinRequest):
        return JoinRequested(message)
    if isinstance(message, TokenGrant):
        return TokenGranted(message)
    if isinstance(message, Refusal):
        return Refused(message)
    if isinstance(message, JoinResult):
        return JoinResultReceived(message)
    if isinstance(message, LedgerState):
        return LedgerStateReceived(message)
    if isinstance(message, CompanionRequest):
        return CompanionRequested(message)
    if isinstance(message, CompanionInfo):
        return CompanionInfoReceived(message)
    if isinstance(message, Es10Request):
        return Es10Requested(message)
    if isinstance(message, Es10Response):
        return Es10Answered(message)
    if isinstance(message, Es10Refusal):
        return Es10Refused(message)
    if isinstance(message, ChangeRequest):
        return ChangeRequested(message)
    if isinstance(message, ChangeOrder):
        return ChangeOrdered(message)
    if isinstance(message, ChangeResult):
        return ChangeResultReceived(message)
    if isinstance(message, ChangeDone):
        return ChangeDoneReceived(message)
    # a message type added later needs its event class here
    assert isinstance(message, Bye), type(message).__name__
    return ByeReceived(message)


class PairingConnection:
    """One side of a pairing attempt and the application exchange that follows (sans-IO).

    ``role``: :attr:`Role.OFFERER` needs ``offer`` and may have ``code`` (then
    a joiner may use either); :attr:`Role.JOINER` has exactly one of
    ``offer`` (QR path) and ``code`` (code path).  ``local`` is our
    :class:`~rspfed.transfer.messages.Hello`, sent as soon as the channel is
    up (an offerer's hello role must be the offer's ``offerer_role``).
    ``rand`` (``os.urandom``'s signature) supplies the Noise ephemeral keys
    and the SPAKE2 scalar.

    ``paired`` (issue H, reconnection of an already paired companion): both
    sides hold the same :class:`~rspfed.transfer.code.PairedKey` and neither
    offer nor code; the handshake is Noise ``NNpsk0`` keyed by its psk
    (method :attr:`~rspfed.transfer.code.PairingMethod.PAIRED`), no PAKE.
    A wrong psk fails both sides with :class:`~rspfed.errors.IntegrityError`
    (the offerer answers an opening it cannot authenticate with 48 random
    octets, so the joiner fails as it would on a wrong message 2); nothing
    is burnt (:attr:`burnt` stays False).  ``max_message_size`` bounds an application
    message in both directions (default 1 MiB).

    The joiner's opening frame is ready in :meth:`data_to_send` right after
    construction.
    """

    def __init__(
        self,
        role: Role,
        *,
        local: Hello,
        rand: Callable[[int], bytes],
        offer: PairingOffer | None = None,
        code: ShortCode | None = None,
        paired: PairedKey | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        if not isinstance(role, Role):
            raise UsageError("role must be a Role")
        if not isinstance(local, Hello):
            raise UsageError("local must be a Hello")
        if offer is not None and not isinstance(offer, PairingOffer):
            raise UsageError("offer must be a PairingOffer")
        if code is not None and not isinstance(code, ShortCode):
            raise UsageError("code must be a ShortCode")
        if paired is not None:
            if not isinstance(paired, PairedKey):
                raise UsageError("paired must be a PairedKey")
            if offer is not None or code is not None:
                raise UsageError("a paired reconnection has neither offer nor code")
        elif role is Role.OFFERER:
            if offer is None:
                raise UsageError("the offerer needs its offer")
            if local.role is not offer.offerer_role:
                raise UsageError("the offerer's hello role differs from its offer's")
        elif (offer is None) == (code is None):
            raise UsageError("the joiner has exactly one of offer (QR) and code")
        if isinstance(max_message_size, bool) or not isinstance(max_message_size, int):
            raise UsageError("max_message_size must be an int")
        if max_message_size < 1024:
            raise UsageError("max_message_size must be at least 1024 octets")
        self._role = role
        self._local = local
        self._rand = rand
        self._offer = offer
        self._code = code
        self._paired = paired
        self._handshake_hash: bytes | None = None
        self._max_message_size = max_message_size
        self._decoder = FrameDecoder()
        self._frames: deque[bytes] = deque()
        self._events: deque[Event] = deque()
        self._out = bytearray()
        self._pending_error: RspfedError | None = None
        self._eof = False
        self._attempted = False
        self._method: PairingMethod | None = None
        self._pake: SymmetricPake | None = None
        self._pake_key: bytes | None = None
        self._handshake: HandshakeState | None = None
        self._channel: SecureChannel | None = None
        self._peer_hello: Hello | None = None
        self._switched = False
        self._error: RspfedError | None = None
        if role is Role.OFFERER:
            self._state = ConnectionState.AWAIT_OPEN
        elif paired is not None:
            self._method = PairingMethod.PAIRED
            self._handshake = self._new_handshake(PairingMethod.PAIRED, initiator=True)
            first = self._handshake.write_message()
            self._write_frame(bytes((PairingMethod.PAIRED,)) + first)
            self._state = ConnectionState.AWAIT_HANDSHAKE
        elif offer is not None:
            self._method = PairingMethod.QR
            self._handshake = self._new_handshake(PairingMethod.QR, initiator=True)
            first = self._handshake.write_message()
            self._write_frame(bytes((PairingMethod.QR,)) + first)
            self._attempted = True
            self._state = ConnectionState.AWAIT_HANDSHAKE
        else:
            assert code is not None
            self._method = PairingMethod.CODE
            self._pake = SymmetricPake(code.password, rand=rand)
            self._write_frame(bytes((PairingMethod.CODE,)) + self._pake.start())
            self._attempted = True
            self._state = ConnectionState.AWAIT_PAKE

    def __repr__(self) -> str:
        return f"PairingConnection({self._role.value}, state={self._state.value})"

    # ------------------------------------------------------------------ properties

    @property
    def role(self) -> Role:
        """Offerer or joiner."""
        return self._role

    @property
    def state(self) -> ConnectionState:
        """The current state (:mod:`rspfed.transfer._state`)."""
        return self._state

    @property
    def method(self) -> PairingMethod | None:
        """QR, code or paired, once known (the offerer learns it from the opening frame)."""
        return self._method

    @property
    def handshake_hash(self) -> bytes | None:
        """The Noise handshake hash once the channel is up (as in :class:`Paired`), else None.

        After a first pairing of a companion both sides derive the long-term
        key from it: ``PairedKey.from_handshake_hash(conn.handshake_hash)``.
        """
        return self._handshake_hash

    @property
    def burnt(self) -> bool:
        """True once the offer or code may not be used again.

        From the opening frame on (one attempt per offer or code), and after
        any close.  The offerer makes a new offer and code for the next attempt.
        Always False for a paired reconnection (``paired=``): its long-term
        key is not a one-time secret, and a failed reconnection is only refused.
        """
        if self._paired is not None:
            return False
        return self._attempted or self._state is ConnectionState.CLOSED

    @property
    def paired(self) -> bool:
        """True once the secure channel was up (the pairing succeeded)."""
        return self._channel is not None

    @property
    def local_hello(self) -> Hello:
        """Our hello (sent when the channel comes up)."""
        return self._local

    @property
    def peer_hello(self) -> Hello | None:
        """The peer's hello, once received."""
        return self._peer_hello

    @property
    def error(self) -> RspfedError | None:
        """The error that closed the connection, if any."""
        return self._error

    # ------------------------------------------------------------------ I/O

    def receive_data(self, data: bytes) -> None:
        """Feed octets received from the stream; ``b""`` means the stream ended.

        Call :meth:`next_event` afterwards.  Data after the end of stream, or
        on a closed connection, is ignored.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise UsageError("receive_data takes bytes")
        if self._state is ConnectionState.CLOSED or self._eof or self._pending_error:
            return
        if not data:
            self._eof = True
            return
        try:
            self._frames.extend(self._decoder.feed(bytes(data)))
        except RspfedError as exc:
            self._pending_error = exc

    def data_to_send(self) -> bytes:
        """The octets to send now (and forget them here)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | Literal[NeedData.NEED_DATA]:
        """The next event, or :data:`NEED_DATA`.

        Raises the :class:`~rspfed.errors.RspfedError` that failed the
        connection (once; the connection is then CLOSED and burnt).
        """
        while True:
            if self._events:
                return self._events.popleft()
            if self._state is ConnectionState.CLOSED:
                return ConnectionClosed()
            if self._frames:
                frame = self._frames.popleft()
                try:
                    self._handle_frame(frame)
                except RspfedError as exc:
                    raise self._fail(exc) from None
                continue
            if self._pending_error is not None:
                raise self._fail(self._pending_error)
            if self._eof:
                raise self._fail(self._end_of_stream())
            return NEED_DATA

    def send(self, message: Message) -> None:
        """Send an application message (its records go to :meth:`data_to_send`).

        :class:`~rspfed.errors.StateError` if the state does not allow it
        (nothing changes).  A :class:`~rspfed.transfer.messages.Bye` closes
        the connection.
        """
        kind = message_kind(message)
        if kind == "hello":
            raise StateError("the hello is sent by the connection itself")
        target = move(self._state, Side.US, kind)
        if isinstance(message, TokenGrant) and self._peer_hello is not None:
            self._check_grant(message, self._peer_hello.eid, local=True)
        elif isinstance(message, CompanionRequest):
            peer = self._peer_hello
            if (
                self._role is not Role.JOINER
                or peer is None
                or peer.role is not DeviceRole.COMPANION
            ):
                raise StateError("a companion request goes from a joiner to a companion offerer")
        elif isinstance(message, CompanionInfo) and message.eid != self._local.eid:
            raise UsageError("the companion info's EID differs from our hello's")
        elif isinstance(message, ChangeRequest):
            if self._role is not Role.JOINER or not self._change_capable():
                raise StateError(
                    "a change request goes from the joiner to an offerer, both with the"
                    " deviceChange capability"
                )
        elif isinstance(message, ChangeDone) and not self._switched:
            raise StateError("a change done follows only a switched change result")
        assert self._channel is not None
        self._out += self._channel.seal(encode_message(message))
        if isinstance(message, ChangeResult):
            self._switched = message.ok
        self._state = target
        if target is ConnectionState.CLOSED:
            self._close()

    def abort(self) -> None:
        """Close now without sending anything (the transport failed, the user gave up).

        The offer or code is burnt.  A no-op on a closed connection.
        """
        if self._state is not ConnectionState.CLOSED:
            self._state = move(self._state, Side.US, INPUT_ABORT)
            self._close()

    # ------------------------------------------------------------------ internals

    def _write_frame(self, body: bytes) -> None:
        self._out += encode_frame(body)

    def _new_handshake(self, method: PairingMethod, *, initiator: bool) -> HandshakeState:
        if method is PairingMethod.QR:
            assert self._offer is not None
            psk = psk_from_secret(self._offer.secret)
            discovery_id = self._offer.discovery_id
        elif method is PairingMethod.PAIRED:
            assert self._paired is not None
            psk = self._paired.psk
            discovery_id = self._paired.discovery_id
        else:
            assert self._code is not None
            assert self._pake_key is not None
            psk = psk_from_pake_key(self._pake_key)
            discovery_id = self._code.discovery_id
        return HandshakeState(
            initiator=initiator,
            prologue=pairing_prologue(method, discovery_id),
            psk=psk,
            rand=self._rand,
        )

    def _advance(self, kind: str) -> None:
        try:
            self._state = move(self._state, Side.THEM, kind)
        except StateError as exc:
            raise ProtocolError(str(exc)) from None

    def _handle_frame(self, frame: bytes) -> None:
        state = self._state
        if state is ConnectionState.AWAIT_OPEN:
            self._handle_open(frame)
        elif state is ConnectionState.AWAIT_PAKE:
            self._advance(INPUT_PAKE)
            assert self._pake is not None
            self._pake.finish(frame)
            self._write_frame(self._pake.confirmation())
        elif state is ConnectionState.AWAIT_CONFIRM:
            if len(frame) != CONFIRMATION_SIZE:
                raise ProtocolError("a key confirmation is 32 octets")
            assert self._pake is not None
            self._pake_key = self._pake.verify_confirmation(frame)
            self._pake = None
            self._advance(INPUT_CONFIRMATION)
            if self._role is Role.JOINER:
                self._handshake = self._new_handshake(PairingMethod.CODE, initiator=True)
                self._write_frame(self._handshake.write_message())
            else:
                self._handshake = self._new_handshake(PairingMethod.CODE, initiator=False)
        elif state is ConnectionState.AWAIT_HANDSHAKE:
            self._handle_handshake(frame)
        elif self._channel is not None:
            self._handle_record(frame)
        else:  # pragma: no cover - every state with frames is handled above
            raise ProtocolError(f"unexpected frame in state {state.value}")

    def _handle_open(self, frame: bytes) -> None:
        method = frame[0]
        if self._paired is not None:
            self._attempted = True
            if method != PairingMethod.PAIRED:
                raise ProtocolError("this offerer only takes a paired reconnection")
            self._method = PairingMethod.PAIRED
            self._advance(INPUT_OPEN_PAIRED)
            self._handshake = self._new_handshake(PairingMethod.PAIRED, initiator=False)
            try:
                self._read_handshake(frame[1:])
            except IntegrityError:
                # a wrong psk: answer with as many random octets as a Noise message 2,
                # so that the joiner fails the same way (IntegrityError), then close
                self._write_frame(self._rand(_NOISE_MESSAGE_SIZE))
                raise
            return
        if method == PairingMethod.PAIRED:
            self._attempted = True
            raise ProtocolError("this offerer does not take a paired reconnection")
        if method == PairingMethod.QR:
            self._attempted = True
            self._method = PairingMethod.QR
            self._advance(INPUT_OPEN_QR)
            self._handshake = self._new_handshake(PairingMethod.QR, initiator=False)
            self._read_handshake(frame[1:])
        elif method == PairingMethod.CODE:
            self._attempted = True
            self._method = PairingMethod.CODE
            if self._code is None:
                raise ProtocolError("this offer has no short code")
            if len(frame) != 1 + MESSAGE_SIZE:
                raise ProtocolError("a SPAKE2 message is 33 octets")
            self._advance(INPUT_OPEN_CODE)
            self._pake = SymmetricPake(self._code.password, rand=self._rand)
            mine = self._pake.start()
            self._pake.finish(frame[1:])
            self._write_frame(mine)
            self._write_frame(self._pake.confirmation())
        else:
            self._attempted = True
            raise ProtocolError("unknown pairing method")

    def _handle_handshake(self, frame: bytes) -> None:
        self._advance(INPUT_HANDSHAKE)
        self._read_handshake(frame)

    def _read_handshake(self, message: bytes) -> None:
        if len(message) != _NOISE_MESSAGE_SIZE:
            raise IntegrityError("Noise handshake message of the wrong size")
        hs = self._handshake
        assert hs is not None
        hs.read_message(message)
        if not hs.complete:  # the offerer answers message 1
            self._write_frame(hs.write_message())
        self._channel = SecureChannel.from_handshake(hs, max_message_size=self._max_message_size)
        assert self._method is not None
        self._handshake_hash = hs.handshake_hash
        self._events.append(Paired(self._method, hs.handshake_hash))
        self._handshake = None
        self._out += self._channel.seal(encode_message(self._local))

    def _handle_record(self, frame: bytes) -> None:
        assert self._channel is not None
        plain = self._channel.open(frame)
        if plain is None:
            return
        try:
            message = decode_message(plain)
        except ProtocolError:  # another version, an unknown alternative
            self._queue_bye(ByeReason.UNSUPPORTED)
            raise
        except DecodeError:
            self._queue_bye(ByeReason.PROTOCOL_ERROR)
            raise
        try:
            self._advance(message_kind(message))
        except ProtocolError:
            self._queue_bye(ByeReason.PROTOCOL_ERROR)
            raise
        if isinstance(message, Hello):
            self._check_hello(message)
            self._peer_hello = message
        elif isinstance(message, TokenGrant):
            self._check_grant(message, self._local.eid, local=False)
        elif isinstance(message, CompanionRequest):
            if self._role is not Role.OFFERER or self._local.role is not DeviceRole.COMPANION:
                self._queue_bye(ByeReason.UNSUPPORTED)
                raise ProtocolError("a companion request to a device that is not a companion")
        elif isinstance(message, CompanionInfo):
            assert self._peer_hello is not None
            if message.eid != self._peer_hello.eid:
                self._queue_bye(ByeReason.PROTOCOL_ERROR)
                raise ProtocolError("the companion info's EID differs from the peer's hello")
        elif isinstance(message, ChangeRequest):
            if self._role is not Role.OFFERER or not self._change_capable():
                self._queue_bye(ByeReason.UNSUPPORTED)
                raise ProtocolError("a change request to a device that does not offer a change")
        elif isinstance(message, ChangeResult):
            self._switched = message.ok
        elif isinstance(message, ChangeDone) and not self._switched:
            self._queue_bye(ByeReason.PROTOCOL_ERROR)
            raise ProtocolError("a change done without a switched change result")
        self._events.append(_event_for(message))
        if self._state is ConnectionState.CLOSED:
            self._close()

    def _change_capable(self) -> bool:
        peer = self._peer_hello
        return (
            peer is not None
            and Capability.DEVICE_CHANGE in peer.capabilities
            and Capability.DEVICE_CHANGE in self._local.capabilities
        )

    def _check_hello(self, hello: Hello) -> None:
        if (
            self._role is Role.JOINER
            and self._offer is not None
            and hello.role is not self._offer.offerer_role
        ):
            self._queue_bye(ByeReason.PROTOCOL_ERROR)
            raise ProtocolError("the offerer's hello role differs from its offer's")

    def _check_grant(self, grant: TokenGrant, eid: str, *, local: bool) -> None:
        try:
            token = parse_token(grant.token)
        except DecodeError:
            if local:
                raise UsageError("the token grant does not hold a federation token") from None
            self._queue_bye(ByeReason.PROTOCOL_ERROR)
            raise
        if token.eid != eid:
            if local:
                raise UsageError("the token is not for the peer's EID")
            self._queue_bye(ByeReason.PROTOCOL_ERROR)
            raise ProtocolError("the granted token is for another EID")

    def _queue_bye(self, reason: ByeReason) -> None:
        channel = self._channel
        if channel is not None and self._state is not ConnectionState.CLOSED:
            self._out += channel.seal(encode_message(Bye(reason)))

    def _end_of_stream(self) -> RspfedError:
        try:
            self._decoder.feed_eof()
        except RspfedError:
            return TransportError("the stream ended inside a frame")
        if self._state in (ConnectionState.AWAIT_OPEN,) and not self._attempted:
            return TransportError("the stream ended before the pairing started")
        if self._channel is None:
            return TransportError("the stream ended during pairing")
        return TransportError("the stream ended without a bye")

    def _close(self) -> None:
        self._state = ConnectionState.CLOSED
        self._pake = None
        self._pake_key = None
        self._handshake = None
        self._frames.clear()
        if self._channel is not None:
            self._channel.close()

    def _fail(self, exc: RspfedError) -> RspfedError:
        self._error = exc
        self._close()
        return exc
