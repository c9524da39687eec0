"""The pairing flows: a primary lets a new device join, over any byte stream.

Two coroutines orchestrate everything below them -- the pairing offer and
short code (:mod:`rspfed.transfer.offer`, :mod:`rspfed.transfer.code`), the
sans-IO :class:`~rspfed.transfer.connection.PairingConnection` (PAKE, Noise,
the DER application messages), a :class:`~rspfed.transport.stream.ByteStream`
from a transport (LAN or BLE), the federation token
(:func:`rspfed.federation.token.issue_token`) and the secondary's enrolment
(:func:`rspfed.federation.enrol.enrol`):

:func:`offer_join` (the primary, the side that shows the QR or short code)
    waits for the joiner's stream, pairs, receives its hello and join
    request, asks the ``approve`` callback ("Allow Ana's laptop -- laptop,
    data only -- to join?"), then either refuses (``denied``: no token is
    ever signed) or signs a federation token with the primary's key for the
    joiner's EID and class, with the services the class may have (narrowed by
    the plan when given) and sends it with the operator's URL; waits for the
    join result, sends the subscription's ledger state when it has one, and
    says bye.  When the joiner never confirms an installation after a token
    went out (cut, time-out, failure) the ``revoke`` callback withdraws the
    token at the operator.

:func:`join` (the secondary) connects, pairs by the offer URI or the short
    code, sends its hello and join request, receives the token, runs the
    ``enrol`` callback (redeem, download, enable, register: see
    :func:`operator_enroller`), sends the join result (the ICCID, or why it
    failed), receives the ledger state and the bye.

Both announce each step to a ``progress`` callback (:class:`FlowEvent`),
return a typed outcome (:class:`OfferOutcome`, :class:`JoinOutcome`) and
raise a :class:`~rspfed.errors.RspfedError` on failure, having closed the
stream.  Any failure burns the offer: the primary shows a new one.

Time and randomness are injected (``now``, ``rand``); ``timeout`` bounds
every wait for the other device (not the user's approval).

Transports: :class:`TransportConfig` names one (``lan`` or ``ble``, with
``ble_hci`` a bumble transport spec); :func:`listen` opens the offerer's
listeners for the discovery identifiers (QR secret, short-code nameplate)
and :func:`connect` finds and connects to one.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import attrs
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import (
    PolicyError,
    ProtocolError,
    RspfedError,
    TransportError,
    UsageError,
)
from rspfed.federation.token import DEFAULT_TTL, DeviceClass, Service, issue_token, parse_token
from rspfed.network.service import DEVICE_CLASS_SERVICES
from rspfed.transfer._state import ConnectionState
from rspfed.transfer.code import SECRET_SIZE, ShortCode, discovery_id_from_secret
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
    Bye,
    ByeReason,
    Capability,
    DeviceRole,
    Hello,
    JoinFailure,
    JoinRequest,
    JoinResult,
    LedgerState,
    Refusal,
    RefusalReason,
    TokenGrant,
)
from rspfed.transfer.offer import LanHint, PairingOffer
from rspfed.transport.drive import Driver

_Ev: TypeAlias = Event | Literal[NeedData.NEED_DATA]

if TYPE_CHECKING:
    from rspfed.federation import ledger as _ledger
    from rspfed.federation.enrol import EnrolEvent, EnrolResult
    from rspfed.federation.types import Plan
    from rspfed.transport.ble.hci import HciSpec
    from rspfed.transport.stream import ByteStream

__all__ = [
    "DEFAULT_FLOW_TIMEOUT",
    "Enroller",
    "FlowEvent",
    "FlowProgress",
    "FlowStep",
    "Invitation",
    "JoinAsk",
    "JoinOutcome",
    "Listener",
    "LocalDevice",
    "OfferOutcome",
    "PrimaryAuthority",
    "TransportConfig",
    "allowed_services",
    "connect",
    "describe_services",
    "join",
    "listen",
    "make_invitation",
    "offer_join",
    "operator_enroller",
]

DEFAULT_FLOW_TIMEOUT: Final = 60.0
"""Seconds a flow waits for the other device at each step (not for the user)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------
# Progress


class FlowStep(enum.Enum):
    """The steps of :func:`offer_join` and :func:`join` announced to ``progress``."""

    WAITING = "waiting"
    """Offerer: listening for the joiner."""
    CONNECTING = "connecting"
    """Joiner: looking for the offer and connecting."""
    CONNECTED = "connected"
    """A stream to the other device is open."""
    PAIRED = "paired"
    """The secure channel is up (PAKE and Noise done)."""
    HELLO = "hello"
    """The other device's hello arrived."""
    JOIN_REQUESTED = "join-requested"
    """Offerer: the joiner asked to join; joiner: the request went out."""
    APPROVED = "approved"
    """Offerer: the user approved."""
    DENIED = "denied"
    """Offerer: the user (or the policy) refused; joiner: the primary refused."""
    TOKEN_SENT = "token-sent"  # noqa: S105 (a step name)
    """Offerer: the token and operator address went out."""
    TOKEN_RECEIVED = "token-received"  # noqa: S105 (a step name)
    """Joiner: the token arrived."""
    ENROLLING = "enrolling"
    """Joiner: a step of the enrolment (:attr:`FlowEvent.enrol` has it)."""
    RESULT = "result"
    """The join result (sent by the joiner, received by the offerer)."""
    LEDGER = "ledger"
    """The ledger state (sent by the offerer, received by the joiner)."""
    REVOKED = "revoked"
    """Offerer: the unconfirmed token was revoked at the operator."""
    DONE = "done"
    """Bye: the flow ended."""


@attrs.frozen
class FlowEvent:
    """One step of a flow, with a one-line human ``text``."""

    step: FlowStep
    text: str
    enrol: EnrolEvent | None = None


FlowProgress = Callable[[FlowEvent], None]
"""The ``progress`` callback of the flows."""


def _ignore(_: FlowEvent) -> None:
    return None


# --------------------------------------------------------------------------
# Services and the approval question

_SERVICE_ORDER: Final = (Service.DATA, Service.VOICE, Service.SMS, Service.TETHERING)
_SERVICE_NAMES: Final = {
    Service.DATA: "data",
    Service.VOICE: "voice",
    Service.SMS: "SMS",
    Service.TETHERING: "tethering",
}


def describe_services(services: frozenset[Service]) -> str:
    """``"data only"``, ``"data and voice"``, ``"data, voice and SMS"``; ``"no services"``."""
    names = [_SERVICE_NAMES[s] for s in _SERVICE_ORDER if s in services]
    if not names:
        return "no services"
    if len(names) == 1:
        return f"{names[0]} only"
    return ", ".join(names[:-1]) + " and " + names[-1]


def allowed_services(
    device_class: DeviceClass,
    wanted: frozenset[Service] | None = None,
    plan: Plan | None = None,
) -> frozenset[Service]:
    """What a device of ``device_class`` gets: ``wanted`` (default: all) narrowed
    to what its class may have (:data:`rspfed.network.service.DEVICE_CLASS_SERVICES`)
    and, with ``plan``, to the plan's services."""
    granted = DEVICE_CLASS_SERVICES[device_class]
    if wanted is not None:
        granted = granted & frozenset(wanted)
    if plan is not None:
        granted = granted & plan.services
    return granted


@attrs.frozen
class JoinAsk:
    """What the primary's user is asked to approve: who wants to join, as what.

    ``services`` are those the token will grant (the request narrowed by
    the class and the plan); :attr:`question` is the sentence to show.
    """

    name: str
    device_class: DeviceClass
    eid: str
    services: frozenset[Service]
    peer: str

    @property
    def question(self) -> str:
        """``"Allow Ana's laptop — laptop, data only — to join?"``."""
        return (
            f"Allow {self.name} \u2014 {self.device_class.value}, "
            f"{describe_services(self.services)} \u2014 to join?"
        )


# --------------------------------------------------------------------------
# The devices


@attrs.frozen
class LocalDevice:
    """This device as its hello presents it: name, class and EID (32 digits)."""

    name: str
    device_class: DeviceClass
    eid: str

    def hello(self, role: DeviceRole, capabilities: Iterable[Capability]) -> Hello:
        """This device's :class:`~rspfed.transfer.messages.Hello` in ``role``."""
        return Hello(
            name=self.name,
            device_class=self.device_class,
            role=role,
            eid=self.eid,
            capabilities=frozenset(capabilities),
        )


@attrs.frozen
class PrimaryAuthority:
    """What the primary signs tokens with: its federation key, the subscription and
    the operator's URL (sent to the joiner); ``plan``, when known, narrows what
    is granted (classes, services) before the operator checks it again."""

    key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    subscription_id: str
    operator_url: str
    plan: Plan | None = None


@attrs.frozen
class Invitation:
    """One pairing offer: the offer (QR secret, shown as :attr:`uri`) and a short code.

    Either may be used, once: the first connection spends both.
    """

    offer: PairingOffer
    code: ShortCode

    @property
    def uri(self) -> str:
        """The ``rspfed:1:pair:...`` URI (for the QR code)."""
        return self.offer.to_uri()

    @property
    def discovery_ids(self) -> tuple[bytes, bytes]:
        """The discovery identifiers to listen on: the QR secret's, the nameplate's."""
        return discovery_id_from_secret(self.offer.secret), self.code.discovery_id


# --------------------------------------------------------------------------
# Outcomes


@attrs.frozen
class OfferOutcome:
    """How :func:`offer_join` ended.

    ``joined``: the joiner installed its profile (``iccid``).  Otherwise
    ``refusal`` (the reason sent: ``denied``, ``limit``, ...) or ``failure``
    (the joiner's reason).  ``token_id`` is the token sent (None when none
    was signed); ``revoked`` whether it was withdrawn at the operator.
    """

    joined: bool
    peer: JoinAsk | None = None
    token_id: bytes | None = None
    iccid: str | None = None
    refusal: str | None = None
    failure: str | None = None
    ledger_sent: bool = False
    revoked: bool = False


@attrs.frozen
class JoinOutcome:
    """How :func:`join` ended: the primary's name, the token's id, services and quota,
    the enrolment, and the ledger state the primary sent (None without one)."""

    primary_name: str
    token_id: bytes
    services: frozenset[Service]
    quota: int
    enrolment: EnrolResult
    ledger: _ledger.LedgerState | None = None


Enroller = Callable[[bytes, str, "Callable[[EnrolEvent], None]"], Awaitable["EnrolResult"]]
"""``enroller(token_der, operator_url, progress) -> EnrolResult``: what :func:`join`
calls with the token it received (see :func:`operator_enroller`)."""


# --------------------------------------------------------------------------
# Transports


@attrs.frozen
class TransportConfig:
    """Which transport a flow uses and how.

    ``kind``: ``"lan"`` (TCP + zeroconf) or ``"ble"`` (GATT).
    ``ble_hci``: a bumble HCI transport spec (``tcp-client:127.0.0.1:P``) or
    None for the platform's own adapter.  ``lan_addresses``: the IPv4
    addresses the offerer listens on and announces (None: every
    non-loopback one); ``lan_interfaces``: the addresses zeroconf uses
    (None: all); ``advertise``: whether the offerer registers with zeroconf
    (without it only the QR code's direct hint reaches it).
    """

    kind: str = "lan"
    ble_hci: HciSpec | None = None
    lan_addresses: tuple[str, ...] | None = None
    lan_interfaces: tuple[str, ...] | None = None
    advertise: bool = True

    def __attrs_post_init__(self) -> None:
        if self.kind not in ("lan", "ble"):
            raise UsageError(f"unknown transport {self.kind!r}: choose lan or ble")
        if self.kind == "lan" and self.ble_hci is not None:
            raise UsageError("--ble-hci goes with --transport ble")


class Listener:
    """The offerer's listeners, one per discovery identifier; the first
    connection on any of them is the one pairing attempt (all are spent then).

    ``lan_hint``: ``(host, port)`` of the first identifier's LAN listener (the
    QR offer's direct hint), None for BLE.
    """

    def __init__(self, acceptors: Sequence[Any], lan_hint: tuple[str, int] | None) -> None:
        self._acceptors = list(acceptors)
        self.lan_hint = lan_hint
        self.used: bytes | None = None
        self._closing: asyncio.Future[None] | None = None

    async def accept(self, timeout: float | None = None) -> ByteStream:
        """Wait for the first connection (TransportError on time-out); the others close.

        :attr:`used` is then the discovery identifier it came in on.  The
        listeners are closed in the background (withdrawing a zeroconf
        registration takes a few hundred milliseconds); :meth:`aclose` waits
        for that.
        """
        tasks = {
            asyncio.ensure_future(acceptor.accept(timeout=timeout)): acceptor
            for acceptor in self._acceptors
        }
        errors: list[BaseException] = []
        winner: ByteStream | None = None
        pending = set(tasks)
        try:
            while pending and winner is None:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    failure = task.exception()
                    if failure is not None:
                        errors.append(failure)
                    elif winner is None:
                        winner = task.result()
                        self.used = bytes(tasks[task].discovery_id)
        finally:
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(BaseException):
                    await task
            self._closing = asyncio.ensure_future(self._close_all())
        if winner is None:
            await self.aclose()
            error = errors[0] if errors else TransportError("no pairing connection")
            if isinstance(error, RspfedError):
                raise error
            raise TransportError(f"listening failed: {type(error).__name__}")
        return winner

    async def ready(self) -> None:
        """Wait until every listener is discoverable (LAN: the zeroconf registrations
        are on the network; TransportError if one failed)."""
        for acceptor in self._acceptors:
            registered = getattr(acceptor, "registered", None)
            if registered is not None:
                await registered()

    async def _close_all(self) -> None:
        for acceptor in self._acceptors:
            with contextlib.suppress(RspfedError, OSError):
                await acceptor.aclose()

    async def aclose(self) -> None:
        """Stop listening everywhere (idempotent)."""
        closing, self._closing = self._closing, None
        if closing is not None:
            with contextlib.suppress(BaseException):
                await closing
        await self._close_all()


@contextlib.asynccontextmanager
async def listen(
    config: TransportConfig, discovery_ids: Sequence[bytes]
) -> AsyncIterator[Listener]:
    """Open the offerer's listeners for ``discovery_ids`` (LAN: one one-attempt
    :class:`~rspfed.transport.lan.LanOffer` each; BLE: a GATT peripheral each)."""
    if not discovery_ids:
        raise UsageError("listen needs at least one discovery identifier")
    acceptors: list[Any] = []
    listener: Listener | None = None
    try:
        if config.kind == "lan":
            from rspfed.transport.lan import LanOffer

            for discovery_id in discovery_ids:
                offer = LanOffer(
                    discovery_id,
                    addresses=config.lan_addresses,
                    interfaces=config.lan_interfaces,
                    advertise=config.advertise,
                )
                await offer.start()
                acceptors.append(offer)
            listener = Listener(acceptors, acceptors[0].hint)
        else:
            acceptors.extend(await _ble_acceptors(config, discovery_ids))
            listener = Listener(acceptors, None)
        yield listener
    finally:
        if listener is not None:
            await listener.aclose()
        for acceptor in acceptors:
            with contextlib.suppress(RspfedError, OSError):
                await acceptor.aclose()


async def _ble_acceptors(config: TransportConfig, discovery_ids: Sequence[bytes]) -> list[Any]:
    from rspfed.transport.ble import ble_advertise

    peripheral = await ble_advertise(list(discovery_ids), hci=config.ble_hci)
    return list(peripheral.acceptors())


async def connect(
    config: TransportConfig,
    discovery_id: bytes,
    *,
    timeout: float,
    direct: tuple[str, int] | None = None,
) -> ByteStream:
    """The joiner's stream to the offer for ``discovery_id`` (LAN: the direct hint
    first, then zeroconf; BLE: a scan for the service UUID)."""
    if config.kind == "lan":
        from rspfed.transport.lan import lan_connect

        return await lan_connect(
            discovery_id,
            timeout=timeout,
            interfaces=list(config.lan_interfaces) if config.lan_interfaces else None,
            direct=direct,
        )
    return await _ble_connect(config, discovery_id, timeout=timeout)


async def _ble_connect(
    config: TransportConfig, discovery_id: bytes, *, timeout: float
) -> ByteStream:
    from rspfed.transport.ble import ble_connect

    return await ble_connect(discovery_id, hci=config.ble_hci, timeout=timeout)


# --------------------------------------------------------------------------
# The invitation


def make_invitation(
    *,
    name: str,
    device_class: DeviceClass = DeviceClass.PHONE,
    role: DeviceRole = DeviceRole.PRIMARY,
    rand: Callable[[int], bytes] = os.urandom,
    lan_hint: tuple[str, int] | None = None,
    lan: bool = True,
    ble: bool = False,
    secret: bytes | None = None,
    code: ShortCode | None = None,
) -> Invitation:
    """A new invitation from the device ``name``: a 256-bit secret and a short code
    from ``rand`` (or the given ones: the listeners need the discovery
    identifiers before the LAN hint is known), with the transport hints
    (LAN, with ``lan_hint=(host, port)`` for a direct connection; BLE)."""
    if secret is None:
        secret = rand(SECRET_SIZE)
    if code is None:
        code = ShortCode.generate(rand)
    hint: LanHint | None = None
    if lan or lan_hint is not None:
        hint = LanHint(*lan_hint) if lan_hint is not None else LanHint()
    offer = PairingOffer(
        secret=bytes(secret),
        offerer_role=role,
        offerer_name=name,
        device_class=device_class,
        lan=hint,
        ble=ble,
    )
    return Invitation(offer, code)


# --------------------------------------------------------------------------
# Driving the connection


_CAPABILITIES: Final = frozenset({Capability.JOIN, Capability.LEDGER})
"""What a joining or granting device says it can do in its hello."""


class _Default(enum.Enum):
    DEFAULT = "default"


_DEFAULT: Final = _Default.DEFAULT


class _Link:
    """The driver of one connection (:class:`~rspfed.transport.drive.Driver`), typed."""

    def __init__(self, conn: PairingConnection, stream: ByteStream, timeout: float | None):
        self.conn = conn
        self.driver: Driver[_Ev] = Driver(conn, stream, need_data=NEED_DATA, timeout=timeout)

    async def next_event(self, *, timeout: float | _Default | None = _DEFAULT) -> Event:
        if isinstance(timeout, _Default):
            event = await self.driver.next_event()
        else:
            event = await self.driver.next_event(timeout=timeout)
        assert event is not NEED_DATA  # the driver reads until there is an event
        return event

    async def send(self, message: Any, *, timeout: float | _Default | None = _DEFAULT) -> None:
        if isinstance(timeout, _Default):
            await self.driver.send(message)
        else:
            await self.driver.send(message, timeout=timeout)

    async def aclose(self) -> None:
        await self.driver.aclose()

    async def __aenter__(self) -> _Link:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _pair(driver: _Link, say: FlowProgress) -> Hello:
    """Run the pairing phase up to the peer's hello."""
    paired = await driver.next_event()
    if not isinstance(paired, Paired):
        raise ProtocolError(f"expected the pairing to complete, got {type(paired).__name__}")
    how = "QR code" if paired.method.name == "QR" else "short code"
    say(FlowEvent(FlowStep.PAIRED, f"paired by {how}: secure channel up"))
    hello = await driver.next_event()
    if not isinstance(hello, HelloReceived):
        raise ProtocolError(f"expected a hello, got {type(hello).__name__}")
    peer = hello.message
    say(
        FlowEvent(
            FlowStep.HELLO,
            f"hello from {peer.name} ({peer.role.value} {peer.device_class.value}, EID {peer.eid})",
        )
    )
    return peer


async def _closing(driver: _Link, conn: PairingConnection, say: FlowProgress) -> None:
    """Say bye (unless the connection is closed already) and close the stream."""
    if conn.state is not ConnectionState.CLOSED:
        with contextlib.suppress(RspfedError):
            await driver.send(Bye(ByeReason.DONE))
    await driver.aclose()
    say(FlowEvent(FlowStep.DONE, "done"))


# --------------------------------------------------------------------------
# The primary's side


async def offer_join(
    listener: Listener,
    *,
    invitation: Invitation,
    local: LocalDevice,
    authority: PrimaryAuthority,
    approve: Callable[[JoinAsk], Awaitable[bool]],
    ledger: Callable[[], Awaitable[bytes | None]] | None = None,
    revoke: Callable[[bytes], Awaitable[None]] | None = None,
    quota: int = 0,
    ttl: timedelta = DEFAULT_TTL,
    now: Callable[[], datetime] = _utcnow,
    rand: Callable[[int], bytes] = os.urandom,
    progress: FlowProgress | None = None,
    timeout: float | None = DEFAULT_FLOW_TIMEOUT,
    accept_timeout: float | None = None,
) -> OfferOutcome:
    """Let one device join (the primary's side; see the module doc).

    ``listener`` (from :func:`listen`) gives the joiner's stream;
    ``invitation`` is what it shows; ``local`` its own hello; ``authority``
    signs the token (``quota`` octets, valid ``ttl``).  ``approve`` gets the
    :class:`JoinAsk` and answers (a user prompt; unbounded in time).
    ``ledger()`` gives the subscription's ledger state (DER) to pass on, or
    None; ``revoke(token_id)`` withdraws a token the joiner did not confirm.
    ``accept_timeout`` bounds the wait for the joiner's connection.
    """
    say = progress if progress is not None else _ignore
    say(FlowEvent(FlowStep.WAITING, "waiting for the other device"))
    stream = await listener.accept(timeout=accept_timeout)
    say(FlowEvent(FlowStep.CONNECTED, f"connected: {stream.peer}"))
    conn = PairingConnection(
        Role.OFFERER,
        local=local.hello(invitation.offer.offerer_role, _CAPABILITIES),
        rand=rand,
        offer=invitation.offer,
        code=invitation.code,
    )
    driver = _Link(conn, stream, timeout)
    token_id: bytes | None = None
    confirmed = False
    try:
        async with driver:
            peer = await _pair(driver, say)
            event = await driver.next_event()
            if not isinstance(event, JoinRequested):
                raise ProtocolError(f"expected a join request, got {type(event).__name__}")
            request = event.message
            ask = JoinAsk(
                name=request.name,
                device_class=request.device_class,
                eid=peer.eid,
                services=allowed_services(request.device_class, request.services, authority.plan),
                peer=stream.peer,
            )
            say(
                FlowEvent(
                    FlowStep.JOIN_REQUESTED,
                    f"{ask.name} asks to join as a {ask.device_class.value} "
                    f"({describe_services(ask.services)})",
                )
            )
            reason = _policy(ask, authority.plan)
            if reason is None and not await approve(ask):
                reason = RefusalReason.DENIED
            if reason is not None:
                say(FlowEvent(FlowStep.DENIED, f"refused: {reason.value}"))
                await driver.send(Refusal(reason))
                await _closing(driver, conn, say)
                return OfferOutcome(joined=False, peer=ask, refusal=reason.value)
            say(FlowEvent(FlowStep.APPROVED, "approved"))
            der = issue_token(
                primary_key=authority.key,
                subscription_id=authority.subscription_id,
                eid=ask.eid,
                device_class=ask.device_class,
                services=ask.services,
                quota=quota,
                now=now(),
                rand=rand,
                ttl=ttl,
            )
            token_id = parse_token(der).token_id
            await driver.send(TokenGrant(token=der, operator_url=authority.operator_url))
            say(
                FlowEvent(
                    FlowStep.TOKEN_SENT,
                    f"token {token_id.hex()} sent ({describe_services(ask.services)}; "
                    f"operator {authority.operator_url})",
                )
            )
            # the joiner redeems, downloads, enables and registers: give it time
            event = await driver.next_event(timeout=_slow(timeout))
            if not isinstance(event, JoinResultReceived):
                raise ProtocolError(f"expected the join result, got {type(event).__name__}")
            result = event.message
            if result.iccid is None:
                failure = result.failure.value if result.failure is not None else "error"
                say(FlowEvent(FlowStep.RESULT, f"the device failed to join: {failure}"))
                await _closing(driver, conn, say)
                sent_id, token_id = token_id, None
                revoked = await _revoke(revoke, sent_id, say)
                return OfferOutcome(
                    joined=False, peer=ask, token_id=sent_id, failure=failure, revoked=revoked
                )
            confirmed = True
            say(FlowEvent(FlowStep.RESULT, f"{ask.name} installed its profile {result.iccid}"))
            state = None
            if ledger is not None and Capability.LEDGER in peer.capabilities:
                with contextlib.suppress(RspfedError):
                    state = await ledger()
            if state is not None:
                await driver.send(LedgerState(state))
                say(FlowEvent(FlowStep.LEDGER, f"ledger state sent ({len(state)} octets)"))
            await _closing(driver, conn, say)
            return OfferOutcome(
                joined=True,
                peer=ask,
                token_id=token_id,
                iccid=result.iccid,
                ledger_sent=state is not None,
            )
    except BaseException:
        if token_id is not None and not confirmed:
            with contextlib.suppress(Exception):
                await _revoke(revoke, token_id, say)
        raise


async def _revoke(
    revoke: Callable[[bytes], Awaitable[None]] | None, token_id: bytes, say: FlowProgress
) -> bool:
    if revoke is None:
        return False
    await revoke(token_id)
    say(FlowEvent(FlowStep.REVOKED, f"token {token_id.hex()} revoked at the operator"))
    return True


def _policy(ask: JoinAsk, plan: Plan | None) -> RefusalReason | None:
    """The refusal the policy dictates before asking the user, or None."""
    if plan is not None and ask.device_class not in plan.device_classes:
        return RefusalReason.DENIED
    if ask.device_class is DeviceClass.PHONE or not ask.services:
        # a second phone is a device change (issue I), not a linked device
        return RefusalReason.DENIED
    return None


def _slow(timeout: float | None) -> float | None:
    """The bound on the joiner's enrolment (a download and a registration)."""
    return None if timeout is None else max(timeout, 120.0)


# --------------------------------------------------------------------------
# The secondary's side


def parse_target(target: str) -> tuple[PairingOffer | None, ShortCode | None]:
    """An offer URI (``rspfed:1:pair:...``) or a short code (``17-word-word``)."""
    text = target.strip()
    if text.lower().startswith("rspfed:"):
        return PairingOffer.from_uri(text), None
    return None, ShortCode.parse(text)


async def join(
    stream_factory: Callable[[bytes, tuple[str, int] | None], Awaitable[ByteStream]],
    *,
    target: str,
    local: LocalDevice,
    enroller: Enroller,
    services: frozenset[Service] | None = None,
    rand: Callable[[int], bytes] = os.urandom,
    progress: FlowProgress | None = None,
    timeout: float | None = DEFAULT_FLOW_TIMEOUT,
) -> JoinOutcome:
    """Join the subscription of the device whose offer ``target`` names (its
    ``rspfed:1:pair:`` URI or its short code ``17-word-word``).

    ``stream_factory(discovery_id, lan_hint)`` finds and connects to the
    offer (e.g. :func:`connect`); ``local`` is this device's hello;
    ``services`` those asked for (default: all its class may have);
    ``enroller`` redeems and installs the token (:func:`operator_enroller`).
    Raises :class:`~rspfed.errors.PolicyError` when the primary refuses.
    """
    from rspfed.federation.enrol import EnrolStep

    say = progress if progress is not None else _ignore
    offer, code = parse_target(target)
    hint: tuple[str, int] | None = None
    if offer is not None:
        discovery_id = offer.discovery_id
        if offer.lan is not None and offer.lan.host is not None and offer.lan.port is not None:
            hint = (offer.lan.host, offer.lan.port)
    else:
        assert code is not None
        discovery_id = code.discovery_id
    say(FlowEvent(FlowStep.CONNECTING, "looking for the other device"))
    stream = await stream_factory(discovery_id, hint)
    say(FlowEvent(FlowStep.CONNECTED, f"connected: {stream.peer}"))
    conn = PairingConnection(
        Role.JOINER,
        local=local.hello(DeviceRole.SECONDARY, _CAPABILITIES),
        rand=rand,
        offer=offer,
        code=code,
    )
    driver = _Link(conn, stream, timeout)
    async with driver:
        peer = await _pair(driver, say)
        wanted = services if services is not None else allowed_services(local.device_class)
        await driver.send(
            JoinRequest(device_class=local.device_class, services=wanted, name=local.name)
        )
        say(
            FlowEvent(
                FlowStep.JOIN_REQUESTED,
                f"asked {peer.name} to join as {local.name} ({local.device_class.value}, "
                f"{describe_services(wanted)}); waiting for approval",
            )
        )
        # the primary's user decides: no bound here but the transport's
        event = await driver.next_event(timeout=None)
        if isinstance(event, Refused):
            reason = event.message.reason.value
            say(FlowEvent(FlowStep.DENIED, f"the primary refused: {reason}"))
            await _finish(driver, say)
            raise PolicyError(f"{peer.name} refused to let this device join ({reason})")
        if not isinstance(event, TokenGranted):
            raise ProtocolError(f"expected a token grant, got {type(event).__name__}")
        der, operator_url = event.message.token, event.message.operator_url
        token = parse_token(der)
        say(
            FlowEvent(
                FlowStep.TOKEN_RECEIVED,
                f"token {token.token_id.hex()} received: {token.device_class.value}, "
                f"{describe_services(token.services)}; operator {operator_url}",
            )
        )
        reached: list[EnrolStep] = []

        def enrol_progress(step: EnrolEvent) -> None:
            reached.append(step.step)
            say(FlowEvent(FlowStep.ENROLLING, _enrol_text(step), enrol=step))

        try:
            enrolled = await enroller(der, operator_url, enrol_progress)
        except BaseException as exc:
            failure = (
                _failure_of(reached) if isinstance(exc, RspfedError) else JoinFailure.CANCELLED
            )
            with contextlib.suppress(RspfedError):
                await driver.send(JoinResult.failed(failure), timeout=5.0)
                await _finish(driver, say)
            raise
        await driver.send(JoinResult.installed(enrolled.iccid))
        say(FlowEvent(FlowStep.RESULT, f"joined: profile {enrolled.iccid} installed and enabled"))
        state = await _finish(driver, say)
    return JoinOutcome(
        primary_name=peer.name,
        token_id=token.token_id,
        services=token.services,
        quota=token.quota,
        enrolment=enrolled,
        ledger=state,
    )


async def _finish(driver: _Link, say: FlowProgress) -> _ledger.LedgerState | None:
    """The offerer's last messages: an optional ledger state, then its bye."""
    from rspfed.federation.ledger import decode_state

    state: _ledger.LedgerState | None = None
    while True:
        event = await driver.next_event()
        if isinstance(event, LedgerStateReceived):
            state = decode_state(event.message.state)
            say(
                FlowEvent(
                    FlowStep.LEDGER,
                    f"ledger state received: {len(state.counters)} counter(s) of "
                    f"subscription {state.subscription_id}",
                )
            )
            continue
        if isinstance(event, ByeReceived | ConnectionClosed):
            await driver.aclose()
            say(FlowEvent(FlowStep.DONE, "done"))
            return state
        raise ProtocolError(f"unexpected {type(event).__name__} after the join")


def _enrol_text(event: EnrolEvent) -> str:
    from rspfed.federation.enrol import EnrolStep

    step = event.step
    if step is EnrolStep.REDEEMED and event.enrolment is not None:
        return f"redeemed: device {event.enrolment.device_id}, ICCID {event.enrolment.iccid}"
    if step is EnrolStep.DOWNLOADED and event.download is not None:
        meta = event.download.metadata
        return (
            f"downloaded {event.download.iccid}: {meta.profile_name} [{meta.service_provider_name}]"
        )
    if step is EnrolStep.REGISTERED and event.device is not None:
        return f"registered device key ({event.device.role.value} device {event.device.id})"
    return {
        EnrolStep.REDEEMING: "redeeming the token at the operator",
        EnrolStep.RECORDED: "device store updated",
        EnrolStep.DOWNLOADING: "downloading the profile (SGP.22)",
        EnrolStep.ENABLED: "profile enabled",
        EnrolStep.REGISTERING: "registering this device's key (EAP-AKA')",
    }.get(step, step.value)


def _failure_of(reached: Sequence[Any]) -> JoinFailure:
    from rspfed.federation.enrol import EnrolStep

    if EnrolStep.ENABLED in reached:
        return JoinFailure.REGISTRATION
    if EnrolStep.DOWNLOADED in reached:
        return JoinFailure.ENABLE
    if EnrolStep.REDEEMED in reached:
        return JoinFailure.DOWNLOAD
    return JoinFailure.REFUSED


def operator_enroller(
    *,
    eid: str,
    lpa: Any = None,
    card: Any = None,
    store: Any = None,
    ssl_context: Callable[[str], ssl.SSLContext | None] | None = None,
    device_class: DeviceClass | None = None,
    name: str | None = None,
    consent: Any = None,
    allowed_operators: Callable[[str], None] | None = None,
) -> Enroller:
    """An :data:`Enroller` running :func:`rspfed.federation.enrol.enrol` against the
    operator URL the primary sent.

    ``lpa``/``card``/``store`` as :func:`~rspfed.federation.enrol.enrol` takes
    them; ``ssl_context(url)`` gives the client TLS context for that URL
    (None: the system CAs; plain HTTP for ``http://``); ``allowed_operators(url)``
    may refuse a URL (raise a :class:`~rspfed.errors.RspfedError`).
    """

    async def run(
        token: bytes, operator_url: str, progress: Callable[[EnrolEvent], None]
    ) -> EnrolResult:
        from rspfed.federation.client import OperatorClient
        from rspfed.federation.enrol import enrol

        if allowed_operators is not None:
            allowed_operators(operator_url)
        context = ssl_context(operator_url) if ssl_context is not None else None
        async with OperatorClient(operator_url, ssl_context=context) as client:
            return await enrol(
                token,
                client=client,
                eid=eid,
                lpa=lpa,
                card=card,
                store=store,
                device_class=device_class,
                name=name,
                consent=consent,
                progress=progress,
            )

    return run
