"""The companion flows (issue H): a watch set up and managed through its paired phone.

Three coroutines, over LAN or BLE (:func:`rspfed.transfer.flows.listen` /
:func:`~rspfed.transfer.flows.connect`, :class:`~rspfed.transfer.flows.TransportConfig`):

:func:`companion_serve` (the watch: no camera, no network)
    When it has no companion yet (or ``pair=True``) it makes an invitation
    with ``offerer_role=COMPANION`` (the ``on_offer`` callback shows its QR
    URI and short code), listens for the phone, pairs (PAKE/Noise, as
    :mod:`rspfed.transfer.flows`), answers the phone's ``companionRequest``
    with its :class:`~rspfed.transfer.messages.CompanionInfo` (name, EID,
    SGP.22 ``DeviceInfo`` DER), stores the companion record (the long-term
    psk ``PairedKey.from_handshake_hash`` and its reconnection id, see
    :mod:`rspfed.transfer.code`) in its device store, then answers each
    relayed ``es10Request`` with ``responder`` (its eUICC behind an ES10
    allow-list: :class:`rspfed.transfer.relay.CompanionResponder`) until the
    phone's ``bye``.  Afterwards it listens on the reconnection id for the
    phone's management sessions (method ``PAIRED``: Noise keyed by the
    stored psk; a wrong key is refused and the watch keeps listening).
    With ``register_with`` (:class:`WatchRegistration`: the operator's URL
    and the watch's card), after a session that left a profile enabled
    the watch registers its **own** device key with the operator by
    EAP-AKA' with that profile's USIM
    (:func:`rspfed.federation.enrol.register_device`; the watch has network
    once it has its profile) and its device store gets its
    :class:`~rspfed.federation.device.DeviceRecord` (role ``secondary``,
    class ``watch``).

:func:`companion_add` (the phone, primary of the subscription)
    Joins the watch's offer (URI or short code), asks for its companion
    info, stores the record, signs a federation token of class ``watch`` for
    the watch's EID with its federation key, redeems it at the operator
    itself (the phone has the network), then downloads the profile through
    the relay with the unchanged LPA code (``ctxParams1`` carries the
    watch's DeviceInfo; the EUICCInfo is the watch's, read through the
    relay), enables it and delivers the watch's pending notifications.

:func:`companion_manage` (the phone, later)
    Reconnects with the stored psk and runs one operation through the relay:
    ``profiles``, ``enable``, ``disable`` or ``delete``, then delivers the
    watch's pending notifications (each sent over ES9+ by the phone and
    removed from the watch).

The relay bridge is :class:`rspfed.transfer.relay.RemoteEs10`: the LPA's
:class:`~rspfed.lpa.es10.Es10` is synchronous, the channel asynchronous.  The
channel stays on the caller's event loop (where its stream lives: a LAN
socket, a BLE link, an in-process ``LocalRadio``); the LPA work runs in a
worker thread with its own event loop (for its ES9+ HTTP), and each
``transceive`` there is one ``es10Request``/``es10Response`` exchange
scheduled on the caller's loop.  So one process can run both sides (the
demo), and the caller's loop is never blocked.

Every flow announces its steps to ``progress`` (:class:`CompanionEvent`),
raises a :class:`~rspfed.errors.RspfedError` on failure (the stream
closed), and takes ``rand``/``now`` injected.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import attrs

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.errors import (
    IntegrityError,
    PolicyError,
    ProtocolError,
    RspfedError,
    StateError,
    TransportError,
    UsageError,
)
from rspfed.federation.token import DEFAULT_TTL, DeviceClass, issue_token, parse_token
from rspfed.transfer._state import ConnectionState
from rspfed.transfer.code import SECRET_SIZE, PairedKey, ShortCode, discovery_id_from_secret
from rspfed.transfer.connection import (
    ByeReceived,
    CompanionInfoReceived,
    CompanionRequested,
    ConnectionClosed,
    Es10Requested,
    HelloReceived,
    Paired,
    PairingConnection,
    Role,
)
from rspfed.transfer.flows import (
    DEFAULT_FLOW_TIMEOUT,
    Invitation,
    Listener,
    LocalDevice,
    PrimaryAuthority,
    TransportConfig,
    allowed_services,
    connect,
    listen,
    make_invitation,
    parse_target,
)
from rspfed.transfer.flows import _Link as _FlowLink
from rspfed.transfer.messages import (
    Bye,
    ByeReason,
    Capability,
    CompanionInfo,
    CompanionRequest,
    DeviceRole,
    Es10Refusal,
    Es10Request,
    Es10Response,
    Hello,
)
from rspfed.transfer.relay import RemoteEs10, request_tag

if TYPE_CHECKING:
    from rspfed.euicc.card import Card
    from rspfed.federation.device import CompanionRecord, DeviceStore
    from rspfed.federation.types import Device
    from rspfed.lpa.download import DeviceInfo, DownloadResult
    from rspfed.lpa.es9 import Es9Settings
    from rspfed.lpa.lpa import ProfileInfo
    from rspfed.transport.stream import ByteStream

__all__ = [
    "MANAGE_OPERATIONS",
    "AddOutcome",
    "CompanionEvent",
    "CompanionProgress",
    "CompanionStep",
    "Es10Answerer",
    "ManageOutcome",
    "ServeSession",
    "WatchRegistration",
    "companion_add",
    "companion_manage",
    "companion_serve",
    "device_info_der",
    "device_info_from_der",
]

MANAGE_OPERATIONS: Final = ("profiles", "enable", "disable", "delete")
"""The operations of :func:`companion_manage`."""

_CAPABILITIES: Final = frozenset({Capability.COMPANION})
_BYE_WAIT: Final = 5.0
"""Seconds the phone waits for the watch to close after its bye."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------
# Progress


class CompanionStep(enum.Enum):
    """The steps the companion flows announce."""

    WAITING = "waiting"
    """Watch: listening (for a first pairing or a reconnection)."""
    CONNECTING = "connecting"
    """Phone: looking for the watch."""
    CONNECTED = "connected"
    """A stream to the other device is open."""
    PAIRED = "paired"
    """The secure channel is up."""
    HELLO = "hello"
    """The other device's hello arrived."""
    INFO = "info"
    """The companion info was sent (watch) or received (phone)."""
    STORED = "stored"
    """The companion record (psk, reconnection id) was stored."""
    RELAY = "relay"
    """Watch: an ES10 request was answered or refused."""
    TOKEN = "token"  # noqa: S105 (a step name)
    """Phone: the watch-class token was signed."""
    REDEEMED = "redeemed"
    """Phone: the operator gave the activation code."""
    DOWNLOADED = "downloaded"
    """Phone: the profile was installed on the watch's eUICC."""
    ENABLED = "enabled"
    """Phone: the watch's profile was enabled."""
    MANAGED = "managed"
    """Phone: the management operation was done."""
    NOTIFIED = "notified"
    """Phone: the watch's pending notifications were delivered."""
    REFUSED = "refused"
    """Watch: a reconnection with a wrong key (or a broken session) was refused."""
    REGISTERED = "registered"
    """Watch: its own device key was registered with the operator (or it failed:
    the text says so, and serving goes on)."""
    DONE = "done"
    """The session ended (bye)."""


@attrs.frozen
class CompanionEvent:
    """One step of a companion flow, with a one-line human ``text``."""

    step: CompanionStep
    text: str


CompanionProgress = Callable[[CompanionEvent], None]
"""The ``progress`` callback of the companion flows."""


def _ignore(_: CompanionEvent) -> None:
    return None


# --------------------------------------------------------------------------
# DeviceInfo


def device_info_der(info: DeviceInfo) -> bytes:
    """The DER of an SGP.22 ``DeviceInfo`` (what :class:`CompanionInfo` carries)."""
    return asn1.encode(rsp.DeviceInfo(info.to_asn1()))


def device_info_from_der(der: bytes) -> DeviceInfo:
    """The :class:`~rspfed.lpa.download.DeviceInfo` of a ``DeviceInfo`` DER
    (:class:`~rspfed.errors.DecodeError` if malformed)."""
    from rspfed.lpa.download import DeviceInfo

    native = asn1.decode(rsp.DeviceInfo, der).native
    capabilities = tuple(
        (str(name), bytes(value))
        for name, value in (native.get("deviceCapabilities") or {}).items()
        if value is not None
    )
    imei = native.get("imei")
    return DeviceInfo(
        tac=bytes(native["tac"]),
        capabilities=capabilities,
        imei=None if imei is None else bytes(imei),
    )


# --------------------------------------------------------------------------
# Outcomes


@attrs.frozen
class ServeSession:
    """One session the watch served: the phone's name and EID, whether it was the
    first pairing (``paired``) or a reconnection, the ES10 requests answered
    and refused, and ``device``: the operator's record of the watch's own key
    when it was registered right after this session (``register_with``)."""

    peer_name: str
    peer_eid: str
    paired: bool
    answered: int
    refused: int
    device: Device | None = None


@attrs.frozen
class WatchRegistration:
    """How the watch registers its own device key (``companion_serve(register_with=...)``).

    ``operator_url``: the operator service (the watch reaches it directly
    once its profile is enabled; loopback in tests and the demo);
    ``card``: the watch eUICC's card, whose enabled USIM answers EAP-AKA';
    ``ssl_context``: TLS trust for the operator (None: the system CAs, or
    plain HTTP for an ``http://`` URL).
    """

    operator_url: str
    card: Card
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, eq=False)


@attrs.frozen
class AddOutcome:
    """How :func:`companion_add` ended: the watch, the token, the installed profile
    (enabled) and how many of the watch's notifications were delivered."""

    watch_name: str
    watch_eid: str
    token_id: bytes
    iccid: str
    download: DownloadResult
    notifications: int


@attrs.frozen
class ManageOutcome:
    """How :func:`companion_manage` ended: the operation, the watch's profiles after
    it, and how many of its notifications were delivered."""

    operation: str
    watch_name: str
    watch_eid: str
    profiles: tuple[ProfileInfo, ...]
    notifications: int


Es10Answerer = Callable[[Es10Request], "Es10Response | Es10Refusal"]
"""The watch's answer to one relayed request (e.g. ``CompanionResponder.answer``)."""


# --------------------------------------------------------------------------
# The watch


async def companion_serve(
    config: TransportConfig,
    *,
    local: LocalDevice,
    device_info: DeviceInfo,
    answer: Es10Answerer,
    store: DeviceStore,
    pair: bool = False,
    once: bool = False,
    on_offer: Callable[[Invitation, Listener], None] | None = None,
    rand: Callable[[int], bytes] = os.urandom,
    now: Callable[[], datetime] = _utcnow,
    progress: CompanionProgress | None = None,
    timeout: float | None = DEFAULT_FLOW_TIMEOUT,
    accept_timeout: float | None = None,
    sessions: int | None = None,
    register_with: WatchRegistration | None = None,
) -> list[ServeSession]:
    """Serve the watch side (see the module doc) until cancelled.

    ``local`` is the watch (class ``watch``); ``device_info`` its SGP.22
    DeviceInfo; ``answer`` answers each relayed ES10 request; ``store`` keeps
    the companion record.  Without a record (or with ``pair``) the first
    session is a pairing by a new invitation (``on_offer(invitation,
    listener)`` shows it); later ones are reconnections on the stored key.
    ``once`` returns after one good session, ``sessions=N`` after N;
    ``accept_timeout`` bounds each wait for the phone (TransportError).
    A reconnection with a wrong key is refused and not counted.

    ``register_with``: after each session, while the watch's device store
    has no registered key, register one (module doc); a watch without an
    enabled profile yet just waits for the next session, and a failed
    registration is announced (step ``REGISTERED``) and retried after the
    next session -- serving goes on either way.
    """
    say = progress if progress is not None else _ignore
    served: list[ServeSession] = []
    wanted = 1 if once else sessions
    first = pair or not _phone_records(store)
    while wanted is None or len(served) < wanted:
        if first:
            session = await _serve_pairing(
                config,
                local=local,
                device_info=device_info,
                answer=answer,
                store=store,
                on_offer=on_offer,
                rand=rand,
                now=now,
                say=say,
                timeout=timeout,
                accept_timeout=accept_timeout,
            )
            first = False
        else:
            record = _phone_records(store)[-1]
            try:
                session = await _serve_reconnection(
                    config,
                    local=local,
                    device_info=device_info,
                    answer=answer,
                    record=record,
                    rand=rand,
                    say=say,
                    timeout=timeout,
                    accept_timeout=accept_timeout,
                )
            except (IntegrityError, ProtocolError, TransportError) as exc:
                if isinstance(exc, TransportError) and accept_timeout is not None:
                    raise  # the wait for the phone is bounded: give up
                say(CompanionEvent(CompanionStep.REFUSED, f"session failed: {exc}"))
                continue
        if register_with is not None and not _registered(store):
            device = await _register_watch(register_with, store, local.eid, say)
            if device is not None:
                session = attrs.evolve(session, device=device)
        served.append(session)
    return served


def _registered(store: DeviceStore) -> bool:
    record = store.record()
    return store.private_key() is not None and record is not None and record.device_id is not None


async def _register_watch(
    registration: WatchRegistration, store: DeviceStore, eid: str, say: CompanionProgress
) -> Device | None:
    """EAP-AKA' registration of the watch's own key; None when not (yet) possible."""
    from rspfed.federation.client import OperatorClient
    from rspfed.federation.enrol import register_device
    from rspfed.network.usim import read_usim_identity

    try:
        read_usim_identity(registration.card)
    except RspfedError:
        return None  # no profile enabled yet: after a later session
    try:
        async with OperatorClient(
            registration.operator_url, ssl_context=registration.ssl_context
        ) as client:
            device = await register_device(
                client, registration.card, store, eid=eid, operator_url=registration.operator_url
            )
    except RspfedError as exc:
        say(CompanionEvent(CompanionStep.REGISTERED, f"device key not registered: {exc}"))
        return None
    key_id = device.device_key_id.hex() if device.device_key_id is not None else "?"
    say(
        CompanionEvent(
            CompanionStep.REGISTERED,
            f"registered with the operator: {device.role.value} {device.device_class.value} "
            f"device {device.id}, key id {key_id}",
        )
    )
    return device


def _phone_records(store: DeviceStore) -> list[CompanionRecord]:
    return [c for c in store.companions() if c.peer_role == "phone"]


async def _serve_pairing(
    config: TransportConfig,
    *,
    local: LocalDevice,
    device_info: DeviceInfo,
    answer: Es10Answerer,
    store: DeviceStore,
    on_offer: Callable[[Invitation, Listener], None] | None,
    rand: Callable[[int], bytes],
    now: Callable[[], datetime],
    say: CompanionProgress,
    timeout: float | None,
    accept_timeout: float | None,
) -> ServeSession:
    from rspfed.federation.device import CompanionRecord

    secret = rand(SECRET_SIZE)
    code = ShortCode.generate(rand)
    ids = (discovery_id_from_secret(secret), code.discovery_id)
    async with listen(config, ids) as listener:
        invitation = make_invitation(
            name=local.name,
            device_class=local.device_class,
            role=DeviceRole.COMPANION,
            secret=secret,
            code=code,
            lan=config.kind == "lan",
            lan_hint=listener.lan_hint,
            ble=config.kind == "ble",
        )
        if on_offer is not None:
            on_offer(invitation, listener)
        say(CompanionEvent(CompanionStep.WAITING, "waiting for the phone to pair"))
        stream = await listener.accept(timeout=accept_timeout)
        say(CompanionEvent(CompanionStep.CONNECTED, f"connected: {stream.peer}"))
        conn = PairingConnection(
            Role.OFFERER,
            local=local.hello(DeviceRole.COMPANION, _CAPABILITIES),
            rand=rand,
            offer=invitation.offer,
            code=invitation.code,
        )
        link = _FlowLink(conn, stream, timeout)
        async with link:
            peer = await _handshake(link, say)
            assert conn.handshake_hash is not None
            key = PairedKey.from_handshake_hash(conn.handshake_hash)
            answered, refused = await _serve_relay(
                link,
                conn,
                local=local,
                device_info=device_info,
                answer=answer,
                say=say,
                on_info=lambda: _store_phone(store, CompanionRecord, peer, key, config, now),
            )
    return ServeSession(peer.name, peer.eid, True, answered, refused)


def _store_phone(
    store: DeviceStore,
    record_type: Any,
    peer: Hello,
    key: PairedKey,
    config: TransportConfig,
    now: Callable[[], datetime],
) -> str:
    store.set_companion(
        record_type(
            name=peer.name,
            eid=peer.eid,
            peer_role="phone",
            reconnection_id=key.discovery_id,
            psk=key.psk,
            transport=config.kind,
            paired=now(),
        )
    )
    return (
        f"paired with {peer.name}: companion key stored (reconnection id {key.discovery_id.hex()})"
    )


async def _serve_reconnection(
    config: TransportConfig,
    *,
    local: LocalDevice,
    device_info: DeviceInfo,
    answer: Es10Answerer,
    record: CompanionRecord,
    rand: Callable[[int], bytes],
    say: CompanionProgress,
    timeout: float | None,
    accept_timeout: float | None,
) -> ServeSession:
    key = PairedKey(psk=record.psk, discovery_id=record.reconnection_id)
    async with listen(config, (key.discovery_id,)) as listener:
        say(
            CompanionEvent(
                CompanionStep.WAITING, f"waiting for {record.name} (paired phone) to reconnect"
            )
        )
        stream = await listener.accept(timeout=accept_timeout)
        say(CompanionEvent(CompanionStep.CONNECTED, f"connected: {stream.peer}"))
        conn = PairingConnection(
            Role.OFFERER,
            local=local.hello(DeviceRole.COMPANION, _CAPABILITIES),
            rand=rand,
            paired=key,
        )
        link = _FlowLink(conn, stream, timeout)
        async with link:
            peer = await _handshake(link, say)
            if peer.eid != record.eid:
                raise ProtocolError("the reconnecting phone's EID is not the paired phone's")
            answered, refused = await _serve_relay(
                link, conn, local=local, device_info=device_info, answer=answer, say=say
            )
    return ServeSession(peer.name, peer.eid, False, answered, refused)


async def _handshake(link: _FlowLink, say: CompanionProgress) -> Hello:
    paired = await link.next_event()
    if not isinstance(paired, Paired):
        raise ProtocolError(f"expected the pairing to complete, got {type(paired).__name__}")
    how = {"QR": "QR code", "CODE": "short code"}.get(paired.method.name, "the paired key")
    say(CompanionEvent(CompanionStep.PAIRED, f"paired by {how}: secure channel up"))
    hello = await link.next_event()
    if not isinstance(hello, HelloReceived):
        raise ProtocolError(f"expected a hello, got {type(hello).__name__}")
    peer = hello.message
    say(
        CompanionEvent(
            CompanionStep.HELLO,
            f"hello from {peer.name} ({peer.role.value} {peer.device_class.value}, EID {peer.eid})",
        )
    )
    return peer


async def _serve_relay(
    link: _FlowLink,
    conn: PairingConnection,
    *,
    local: LocalDevice,
    device_info: DeviceInfo,
    answer: Es10Answerer,
    say: CompanionProgress,
    on_info: Callable[[], str] | None = None,
) -> tuple[int, int]:
    """The watch's session after the hellos: companion info, then the relay until bye."""
    event = await link.next_event()
    if not isinstance(event, CompanionRequested):
        raise ProtocolError(f"expected a companion request, got {type(event).__name__}")
    await link.send(
        CompanionInfo(name=local.name, eid=local.eid, device_info=device_info_der(device_info))
    )
    say(CompanionEvent(CompanionStep.INFO, "companion info sent"))
    if on_info is not None:
        say(CompanionEvent(CompanionStep.STORED, on_info()))
    answered = refused = 0
    while True:
        # the phone's LPA may talk to an SM-DP+ between two requests: no tight bound
        event = await link.next_event(timeout=_slow(link))
        if isinstance(event, Es10Requested):
            reply = answer(event.message)
            await link.send(reply)
            if isinstance(reply, Es10Refusal):
                refused += 1
                say(
                    CompanionEvent(
                        CompanionStep.RELAY, f"ES10 request refused ({reply.reason.value})"
                    )
                )
            else:
                answered += 1
                say(
                    CompanionEvent(
                        CompanionStep.RELAY,
                        f"ES10 request {request_tag(event.message.der).hex().upper()} answered "
                        f"({len(reply.der)} octets)",
                    )
                )
            continue
        if isinstance(event, ByeReceived | ConnectionClosed):
            await link.aclose()
            say(CompanionEvent(CompanionStep.DONE, f"session done ({answered} ES10 requests)"))
            return answered, refused
        raise ProtocolError(f"unexpected {type(event).__name__} in the relay")


def _slow(link: _FlowLink) -> float | None:
    timeout = link.driver.timeout if hasattr(link.driver, "timeout") else None
    if not isinstance(timeout, int | float):
        return 300.0
    return max(float(timeout), 300.0)


# --------------------------------------------------------------------------
# The phone


def _relay_timeout(timeout: float | None) -> float | None:
    """Each relayed exchange: the flow's bound plus a margin (the channel's own
    read bound fires first and names the cause)."""
    return None if timeout is None else timeout + 5.0


async def _in_worker(work: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``work()`` in a worker thread with its own event loop (the LPA side)."""

    def run() -> Any:
        return asyncio.run(_call(work))

    return await asyncio.to_thread(run)


async def _call(work: Callable[[], Awaitable[Any]]) -> Any:
    return await work()


async def _open_phone_link(
    config: TransportConfig,
    stream: ByteStream,
    conn: PairingConnection,
    timeout: float | None,
    say: CompanionProgress,
) -> tuple[_FlowLink, Hello, CompanionInfo]:
    link = _FlowLink(conn, stream, timeout)
    try:
        peer = await _handshake(link, say)
        if peer.role is not DeviceRole.COMPANION:
            raise PolicyError(f"{peer.name} is not a companion device ({peer.role.value})")
        await link.send(CompanionRequest())
        event = await link.next_event()
        if not isinstance(event, CompanionInfoReceived):
            raise ProtocolError(f"expected the companion info, got {type(event).__name__}")
    except BaseException:
        await link.aclose()
        raise
    info = event.message
    say(CompanionEvent(CompanionStep.INFO, f"companion info from {info.name} (EID {info.eid})"))
    return link, peer, info


async def _finish(link: _FlowLink, conn: PairingConnection, say: CompanionProgress) -> None:
    """The phone ends the session: bye, then it waits (briefly) for the watch to close
    the stream, so the bye is not lost in a link torn down under it (BLE)."""
    if conn.state is not ConnectionState.CLOSED:
        with contextlib.suppress(RspfedError):
            await link.send(Bye(ByeReason.DONE))
            await link.next_event(timeout=_BYE_WAIT)
    await link.aclose()
    say(CompanionEvent(CompanionStep.DONE, "done"))


async def companion_add(
    config: TransportConfig,
    *,
    target: str,
    local: LocalDevice,
    authority: PrimaryAuthority,
    store: DeviceStore,
    settings: Es9Settings,
    operator_ssl: ssl.SSLContext | None = None,
    quota: int = 0,
    ttl: timedelta = DEFAULT_TTL,
    now: Callable[[], datetime] = _utcnow,
    rand: Callable[[int], bytes] = os.urandom,
    progress: CompanionProgress | None = None,
    timeout: float | None = DEFAULT_FLOW_TIMEOUT,
) -> AddOutcome:
    """Set up the watch whose offer ``target`` names (URI or short code); see the module doc.

    ``local`` is the phone (its hello, role primary); ``authority`` its
    federation key, subscription and operator URL (``operator_ssl`` the TLS
    context for it); ``store`` keeps the companion record; ``settings`` are
    the LPA's ES9+ settings (trust for the SM-DP+).  The token grants what
    the ``watch`` class may have (narrowed by ``authority.plan``).
    """
    from rspfed.federation.client import OperatorClient
    from rspfed.federation.device import CompanionRecord
    from rspfed.lpa import ActivationCode
    from rspfed.lpa.lpa import Lpa

    say = progress if progress is not None else _ignore
    offer, code = parse_target(target)
    hint: tuple[str, int] | None = None
    if offer is not None:
        discovery_id = offer.discovery_id
        if offer.offerer_role is not DeviceRole.COMPANION:
            raise UsageError("this offer is not a companion's: use rspfed pair join")
        if offer.lan is not None and offer.lan.host is not None and offer.lan.port is not None:
            hint = (offer.lan.host, offer.lan.port)
    else:
        assert code is not None
        discovery_id = code.discovery_id
    say(CompanionEvent(CompanionStep.CONNECTING, "looking for the watch"))
    stream = await connect(
        config, discovery_id, timeout=timeout or DEFAULT_FLOW_TIMEOUT, direct=hint
    )
    say(CompanionEvent(CompanionStep.CONNECTED, f"connected: {stream.peer}"))
    conn = PairingConnection(
        Role.JOINER,
        local=local.hello(DeviceRole.PRIMARY, _CAPABILITIES),
        rand=rand,
        offer=offer,
        code=code,
    )
    link, _, info = await _open_phone_link(config, stream, conn, timeout, say)
    async with link:
        assert conn.handshake_hash is not None
        key = PairedKey.from_handshake_hash(conn.handshake_hash)
        store.set_companion(
            CompanionRecord(
                name=info.name,
                eid=info.eid,
                peer_role="watch",
                reconnection_id=key.discovery_id,
                psk=key.psk,
                transport=config.kind,
                paired=now(),
            )
        )
        say(CompanionEvent(CompanionStep.STORED, f"companion {info.name} stored"))
        services = allowed_services(DeviceClass.WATCH, None, authority.plan)
        der = issue_token(
            primary_key=authority.key,
            subscription_id=authority.subscription_id,
            eid=info.eid,
            device_class=DeviceClass.WATCH,
            services=services,
            quota=quota,
            now=now(),
            rand=rand,
            ttl=ttl,
        )
        token_id = parse_token(der).token_id
        say(CompanionEvent(CompanionStep.TOKEN, f"watch token {token_id.hex()} signed"))
        async with OperatorClient(authority.operator_url, ssl_context=operator_ssl) as client:
            enrolment = await client.redeem(der, info.eid, name=info.name)
        say(
            CompanionEvent(
                CompanionStep.REDEEMED,
                f"redeemed at the operator: device {enrolment.device_id}, ICCID {enrolment.iccid}",
            )
        )
        relay = RemoteEs10(link, asyncio.get_running_loop(), timeout=_relay_timeout(timeout))
        watch_info = device_info_from_der(info.device_info)

        async def work() -> tuple[DownloadResult, int]:
            lpa = Lpa(relay, settings=settings)
            result = await lpa.download(
                ActivationCode.parse(enrolment.activation_code), device_info=watch_info
            )
            lpa.enable(result.iccid)
            delivered = await lpa.deliver_notifications()
            return result, sum(1 for d in delivered if d.delivered)

        downloaded, notified = await _in_worker(work)
        meta = downloaded.metadata
        say(
            CompanionEvent(
                CompanionStep.DOWNLOADED,
                f"downloaded {downloaded.iccid} to the watch: {meta.profile_name} "
                f"[{meta.service_provider_name}] ({relay.count} ES10 requests relayed)",
            )
        )
        say(CompanionEvent(CompanionStep.ENABLED, f"profile {downloaded.iccid} enabled"))
        say(CompanionEvent(CompanionStep.NOTIFIED, f"{notified} notification(s) delivered"))
        await _finish(link, conn, say)
    return AddOutcome(
        watch_name=info.name,
        watch_eid=info.eid,
        token_id=token_id,
        iccid=downloaded.iccid,
        download=downloaded,
        notifications=notified,
    )


async def companion_manage(
    config: TransportConfig,
    operation: str,
    *,
    local: LocalDevice,
    store: DeviceStore,
    settings: Es9Settings,
    iccid: str | None = None,
    eid: str | None = None,
    rand: Callable[[int], bytes] = os.urandom,
    progress: CompanionProgress | None = None,
    timeout: float | None = DEFAULT_FLOW_TIMEOUT,
) -> ManageOutcome:
    """Reconnect to the paired watch (``eid``, or the only one) and run ``operation``
    (one of :data:`MANAGE_OPERATIONS`; ``enable``/``disable``/``delete`` need
    ``iccid``), then deliver the watch's pending notifications.

    :class:`~rspfed.errors.StateError` when no watch is paired;
    :class:`~rspfed.errors.IntegrityError` when the watch no longer has the key.
    """
    from rspfed.lpa.lpa import Lpa

    if operation not in MANAGE_OPERATIONS:
        raise UsageError(f"unknown operation {operation!r}: one of {', '.join(MANAGE_OPERATIONS)}")
    if (operation == "profiles") != (iccid is None):
        raise UsageError("enable, disable and delete take an ICCID; profiles takes none")
    records = [c for c in store.companions() if c.peer_role == "watch"]
    if eid is not None:
        records = [c for c in records if c.eid == eid]
    if not records:
        raise StateError("no watch is paired: run rspfed companion add first")
    if len(records) > 1:
        raise StateError("several watches are paired: name one by its EID")
    record = records[0]
    say = progress if progress is not None else _ignore
    key = PairedKey(psk=record.psk, discovery_id=record.reconnection_id)
    say(CompanionEvent(CompanionStep.CONNECTING, f"looking for {record.name}"))
    stream = await connect(config, key.discovery_id, timeout=timeout or DEFAULT_FLOW_TIMEOUT)
    say(CompanionEvent(CompanionStep.CONNECTED, f"connected: {stream.peer}"))
    conn = PairingConnection(
        Role.JOINER, local=local.hello(DeviceRole.PRIMARY, _CAPABILITIES), rand=rand, paired=key
    )
    link, _, info = await _open_phone_link(config, stream, conn, timeout, say)
    async with link:
        if info.eid != record.eid:
            raise ProtocolError("the watch's EID is not the paired watch's")
        relay = RemoteEs10(link, asyncio.get_running_loop(), timeout=_relay_timeout(timeout))

        async def work() -> tuple[list[ProfileInfo], int]:
            lpa = Lpa(relay, settings=settings)
            if operation == "enable":
                assert iccid is not None
                lpa.enable(iccid)
            elif operation == "disable":
                assert iccid is not None
                lpa.disable(iccid)
            elif operation == "delete":
                assert iccid is not None
                lpa.delete(iccid)
            delivered = await lpa.deliver_notifications()
            return lpa.profiles(), sum(1 for d in delivered if d.delivered)

        profiles, notified = await _in_worker(work)
        done = operation if iccid is None else f"{operation} {iccid}"
        say(CompanionEvent(CompanionStep.MANAGED, f"{done}: done on {info.name}"))
        say(CompanionEvent(CompanionStep.NOTIFIED, f"{notified} notification(s) delivered"))
        await _finish(link, conn, say)
    return ManageOutcome(
        operation=operation,
        watch_name=info.name,
        watch_eid=info.eid,
        profiles=tuple(profiles),
        notifications=notified,
    )
