"""The device-change flows (issue I): a subscription moves to a new device, device to device.

Two coroutines over LAN or BLE (:func:`rspfed.transfer.flows.listen` /
:func:`~rspfed.transfer.flows.connect`, :class:`~rspfed.transfer.flows.TransportConfig`),
the messages of ``docs/device-change.md``:

:func:`transfer_send` (the OLD device: the pairing offerer)
    Makes an invitation (``on_offer`` shows its QR URI and short code),
    waits for the new device, pairs, receives its ``changeRequest`` and asks
    ``confirm`` ("Move your subscription to 'Ana's new phone' (phone, EID
    ...)?").  No: a ``refusal`` and nothing changes anywhere.  Yes:
    :func:`~rspfed.transfer.change.old_request_change` (the operator's order
    for the new EID, signed with this device's key; journal ``requested``),
    the ``changeOrder`` (:func:`~rspfed.transfer.change.old_order_sent`:
    ``order_sent``), then the ``changeResult``: after ``switched``
    :func:`~rspfed.transfer.change.old_finish` (the operator confirms the
    switch; the old profile is disabled and deleted, its notification sent,
    the change completed) and ``changeDone`` with the companion pairings
    journalled at the request (the watch moves with the subscription);
    after a failure :func:`~rspfed.transfer.change.cancel` and ``bye``.

:func:`transfer_receive` (the NEW device: the joiner)
    Connects by the offer URI or short code, pairs, sends its
    ``changeRequest``, and on the ``changeOrder`` runs
    :func:`~rspfed.transfer.change.new_apply_order` (journal, download,
    enable, enable notification -- on which the operator switches the
    network --, poll until switched, device record, key registration by
    EAP-AKA' with the new USIM, a replaced linked profile deleted), sends
    ``changeResult`` and keeps the companions of ``changeDone``
    (:func:`~rspfed.transfer.change.new_finish`).  If the old device went
    away after the order, it goes on with the operator alone.

:func:`transfer_resume` (either side) continues from the device store's
journal with the operator alone (:func:`rspfed.transfer.change.resume`, or
:func:`~rspfed.transfer.change.cancel`): no second pairing.  A cut transport
or a crash at any point leaves both journals resumable.

The steps announce themselves to ``progress`` (:class:`TransferEvent`; the
device-side ones as step ``CHANGE``); failures are
:class:`~rspfed.errors.RspfedError`; ``now``/``rand`` are injected.
"""

from __future__ import annotations

import contextlib
import enum
import os
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import attrs

from rspfed.errors import (
    PolicyError,
    ProtocolError,
    RspfedError,
    StateError,
    UsageError,
)
from rspfed.federation.token import DeviceClass
from rspfed.transfer._state import ConnectionState
from rspfed.transfer.code import SECRET_SIZE, ShortCode, discovery_id_from_secret
from rspfed.transfer.connection import (
    ByeReceived,
    ChangeDoneReceived,
    ChangeOrdered,
    ChangeRequested,
    ChangeResultReceived,
    ConnectionClosed,
    HelloReceived,
    Paired,
    PairingConnection,
    Refused,
    Role,
)
from rspfed.transfer.flows import (
    DEFAULT_FLOW_TIMEOUT,
    Invitation,
    LocalDevice,
    TransportConfig,
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
    ChangeDone,
    ChangeFailure,
    ChangeOrder,
    ChangeRequest,
    ChangeResult,
    CompanionHandover,
    CompanionTransport,
    DeviceRole,
    Hello,
    Refusal,
    RefusalReason,
)

if TYPE_CHECKING:
    from rspfed.euicc.card import Card
    from rspfed.federation.client import OperatorClient
    from rspfed.federation.device import ChangeJournal, CompanionRecord, DeviceStore
    from rspfed.lpa.lpa import Lpa
    from rspfed.transfer.change import ChangeEvent, ChangeTicket

__all__ = [
    "ChangeAsk",
    "ReceiveOutcome",
    "ResumeOutcome",
    "SendOutcome",
    "SslFor",
    "TransferEvent",
    "TransferProgress",
    "TransferStep",
    "transfer_receive",
    "transfer_resume",
    "transfer_send",
]

_CAPABILITIES: Final = frozenset({Capability.DEVICE_CHANGE})
_BYE_WAIT: Final = 5.0
_POLL: Final = 0.25
"""Seconds between two reads of the change's state at the operator."""
SWITCH_TIMEOUT: Final = 120.0
"""Default seconds to wait for the operator's switch."""

SslFor = Callable[[str], "ssl.SSLContext | None"]
"""``url -> SSLContext | None``: the TLS trust for an operator URL (None: system CAs
for https, plain HTTP for http)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------
# Progress


class TransferStep(enum.Enum):
    """The steps the device-change flows announce."""

    WAITING = "waiting"
    """Old device: listening for the new one."""
    CONNECTING = "connecting"
    """New device: looking for the old one."""
    CONNECTED = "connected"
    PAIRED = "paired"
    HELLO = "hello"
    REQUESTED = "requested"
    """The change request was sent (new) or received (old)."""
    CONFIRMED = "confirmed"
    """Old device: the user said yes."""
    DENIED = "denied"
    """The user said no (old), or the old device refused (new)."""
    ORDERED = "ordered"
    """The operator's order was placed (old) / received (new)."""
    RESULT = "result"
    """The change result was sent (new) or received (old)."""
    COMPANIONS = "companions"
    """The companion pairings were handed over (old) / stored (new)."""
    CHANGE = "change"
    """A device-side step of :mod:`rspfed.transfer.change` (download, enable, switch,
    registration, deletion, completion: :attr:`TransferEvent.change`)."""
    CUT = "cut"
    """The other device went away: the journal continues alone."""
    DONE = "done"


@attrs.frozen
class TransferEvent:
    """One step of a device-change flow, with a one-line human ``text``; ``change``:
    the device-side step (:mod:`rspfed.transfer.change`) for step ``CHANGE``."""

    step: TransferStep
    text: str
    change: ChangeEvent | None = None


TransferProgress = Callable[[TransferEvent], None]
"""The ``progress`` callback of the device-change flows."""


def _ignore(_: TransferEvent) -> None:
    return None


@attrs.frozen
class ChangeAsk:
    """What the old device's user is asked: the new device's name, class and EID."""

    name: str
    device_class: DeviceClass
    eid: str
    peer: str

    @property
    def question(self) -> str:
        """``"Move your subscription to 'Ana's new phone' (phone, EID 8904...)?"``."""
        return (
            f"Move your subscription to '{self.name}' ({self.device_class.value}, EID {self.eid})?"
        )


@attrs.frozen
class SendOutcome:
    """How :func:`transfer_send` ended.

    ``moved``: the network switched to the new device's profile
    (``new_iccid``); ``deleted``: the old profile is deleted; ``completed``:
    the operator marked the change completed.  ``refused``: the user (or the
    operator) said no, nothing changed; ``failure``: the new device's
    failure (the change was cancelled).  ``companions``: pairings handed over.
    """

    moved: bool
    ask: ChangeAsk | None = None
    change_id: str | None = None
    old_iccid: str | None = None
    new_iccid: str | None = None
    deleted: bool = False
    completed: bool = False
    companions: int = 0
    refused: str | None = None
    failure: str | None = None


@attrs.frozen
class ReceiveOutcome:
    """How :func:`transfer_receive` ended: the old device's name, the change, the new
    profile (enabled, served), the device record taken over, the companions
    stored, whether the key is registered and whether the old device
    confirmed its deletion.  ``timings``: seconds per phase (``pairing``,
    ``operator``, ``download``, ``switch``, ``register``)."""

    old_name: str
    change_id: str
    new_iccid: str
    subscription_id: str
    device_id: str
    role: str
    companions: int
    registered: bool
    old_deleted: str | None
    handed_over: bool
    replaced_iccid: str | None = None
    timings: dict[str, float] = attrs.field(factory=dict, eq=False)


@attrs.frozen
class ResumeOutcome:
    """What :func:`transfer_resume` did: the side, the journal's phase before and after,
    and the operator's state of the change."""

    side: str
    change_id: str
    before: str
    after: str
    state: str


# --------------------------------------------------------------------------
# The operator


def _client(url: str, ssl_for: SslFor | None) -> OperatorClient:
    from rspfed.federation.client import OperatorClient

    context = ssl_for(url) if ssl_for is not None else None
    return OperatorClient(url, ssl_context=context)


def _relay(say: TransferProgress) -> Callable[[ChangeEvent], None]:
    """The device-side steps (:mod:`rspfed.transfer.change`) as transfer events."""

    def relay(event: ChangeEvent) -> None:
        say(TransferEvent(TransferStep.CHANGE, event.text, change=event))

    return relay


# --------------------------------------------------------------------------
# Connection helpers


async def _handshake(link: _FlowLink, say: TransferProgress) -> Hello:
    paired = await link.next_event()
    if not isinstance(paired, Paired):
        raise ProtocolError(f"expected the pairing to complete, got {type(paired).__name__}")
    how = "QR code" if paired.method.name == "QR" else "short code"
    say(TransferEvent(TransferStep.PAIRED, f"paired by {how}: secure channel up"))
    hello = await link.next_event()
    if not isinstance(hello, HelloReceived):
        raise ProtocolError(f"expected a hello, got {type(hello).__name__}")
    peer = hello.message
    say(
        TransferEvent(
            TransferStep.HELLO,
            f"hello from {peer.name} ({peer.role.value} {peer.device_class.value}, EID {peer.eid})",
        )
    )
    return peer


async def _bye(link: _FlowLink, conn: PairingConnection) -> None:
    if conn.state is not ConnectionState.CLOSED:
        with contextlib.suppress(RspfedError):
            await link.send(Bye(ByeReason.DONE))
            await link.next_event(timeout=_BYE_WAIT)
    await link.aclose()


async def _until_closed(link: _FlowLink) -> None:
    with contextlib.suppress(RspfedError):
        while True:
            event = await link.next_event(timeout=_BYE_WAIT)
            if isinstance(event, ByeReceived | ConnectionClosed):
                break
    await link.aclose()


def _handover(record: CompanionRecord) -> CompanionHandover:
    return CompanionHandover(
        eid=record.eid,
        name=record.name,
        psk=record.psk,
        reconnection_id=record.reconnection_id,
        transport=CompanionTransport(record.transport),
    )


def _maybe_await(value: Awaitable[bool] | bool) -> Awaitable[bool]:
    async def wrap() -> bool:
        if isinstance(value, bool):
            return value
        return bool(await value)

    return wrap()


# --------------------------------------------------------------------------
# The old device


async def transfer_send(
    config: TransportConfig,
    *,
    local: LocalDevice,
    store: DeviceStore,
    lpa: Lpa,
    confirm: Callable[[ChangeAsk], Awaitable[bool] | bool],
    operator_url: str | None = None,
    ssl_for: SslFor | None = None,
    on_offer: Callable[[Invitation], None] | None = None,
    now: Callable[[], datetime] = _utcnow,
    rand: Callable[[int], bytes] = os.urandom,
    progress: TransferProgress | None = None,
    timeout: float | None = DEFAULT_FLOW_TIMEOUT,
    accept_timeout: float | None = None,
    switch_timeout: float = SWITCH_TIMEOUT,
) -> SendOutcome:
    """Hand this device's subscription record over to a new device (module doc).

    ``local``: this device (its hello); ``store``: its federation store (a
    registered device: record, key); ``lpa``: its eUICC (the old profile is
    deleted there after the switch); ``operator_url``: default the store's;
    ``ssl_for(url)``: TLS trust for the operator; ``on_offer(invitation)``
    shows the QR URI and short code once the listeners are up;
    ``confirm(ask)`` asks the user (unbounded in time).  ``timeout`` bounds
    each wait for the other device; ``accept_timeout`` the wait for it to
    connect; ``switch_timeout`` the new device's download, enable and switch.
    :class:`StateError` when a change is already under way here (run
    :func:`transfer_resume`); a cut after the order leaves the journal at
    ``order_sent`` (:class:`~rspfed.errors.TransportError`; resume).
    """
    say = progress if progress is not None else _ignore
    record = store.record()
    key = store.private_key()
    if record is None or record.device_id is None or key is None or record.role is None:
        raise UsageError("this device is not registered: run rspfed federation register first")
    _no_open_change(store)
    url = operator_url or record.operator_url
    role = DeviceRole.PRIMARY if record.role == "primary" else DeviceRole.SECONDARY
    offer_secret = rand(SECRET_SIZE)
    code = ShortCode.generate(rand)
    ids = (discovery_id_from_secret(offer_secret), code.discovery_id)
    async with listen(config, ids) as listener:
        invitation = make_invitation(
            name=local.name,
            device_class=local.device_class,
            role=role,
            secret=offer_secret,
            code=code,
            lan=config.kind == "lan",
            lan_hint=listener.lan_hint,
            ble=config.kind == "ble",
        )
        await listener.ready()
        if on_offer is not None:
            on_offer(invitation)
        say(TransferEvent(TransferStep.WAITING, "waiting for the new device"))
        stream = await listener.accept(timeout=accept_timeout)
        say(TransferEvent(TransferStep.CONNECTED, f"connected: {stream.peer}"))
        conn = PairingConnection(
            Role.OFFERER,
            local=local.hello(role, _CAPABILITIES),
            rand=rand,
            offer=invitation.offer,
            code=invitation.code,
        )
        link = _FlowLink(conn, stream, timeout)
        async with link, _client(url, ssl_for) as client:
            return await _send_session(
                link,
                conn,
                peer_address=stream.peer,
                client=client,
                url=url,
                role=role,
                store=store,
                lpa=lpa,
                confirm=confirm,
                now=now,
                say=say,
                timeout=timeout,
                switch_timeout=switch_timeout,
            )


def _no_open_change(store: DeviceStore) -> None:
    journal = store.change()
    if journal is not None and not journal.finished:
        raise StateError(
            f"a device change ({journal.side} side, at {journal.phase}) is under way here: "
            "run rspfed transfer resume"
        )


async def _send_session(
    link: _FlowLink,
    conn: PairingConnection,
    *,
    peer_address: str,
    client: OperatorClient,
    url: str,
    role: DeviceRole,
    store: DeviceStore,
    lpa: Lpa,
    confirm: Callable[[ChangeAsk], Awaitable[bool] | bool],
    now: Callable[[], datetime],
    say: TransferProgress,
    timeout: float | None,
    switch_timeout: float,
) -> SendOutcome:
    from rspfed.transfer.change import cancel, old_finish, old_order_sent, old_request_change

    relay = _relay(say)
    peer = await _handshake(link, say)
    event = await link.next_event()
    if not isinstance(event, ChangeRequested):
        raise ProtocolError(f"expected a change request, got {type(event).__name__}")
    ask = ChangeAsk(
        name=event.message.name,
        device_class=event.message.device_class,
        eid=peer.eid,
        peer=peer_address,
    )
    say(
        TransferEvent(
            TransferStep.REQUESTED,
            f"{ask.name} ({ask.device_class.value}, EID {ask.eid}) asks to take over",
        )
    )
    if not await _maybe_await(confirm(ask)):
        say(TransferEvent(TransferStep.DENIED, "refused: nothing changes"))
        await link.send(Refusal(RefusalReason.DENIED))
        await _bye(link, conn)
        return SendOutcome(moved=False, ask=ask, refused="denied")
    say(TransferEvent(TransferStep.CONFIRMED, "confirmed"))
    try:
        order = await old_request_change(
            client,
            store,
            new_eid=ask.eid,
            now=now,
            name=ask.name,
            device_class=ask.device_class,
            progress=relay,
        )
    except RspfedError as exc:
        say(TransferEvent(TransferStep.DENIED, f"the operator refused: {exc}"))
        with contextlib.suppress(RspfedError):
            await link.send(Refusal(RefusalReason.ERROR))
            await _bye(link, conn)
        raise
    change = order.change
    say(
        TransferEvent(
            TransferStep.ORDERED,
            f"change {change.id} ordered: new ICCID {change.new_iccid} for EID {change.new_eid}",
        )
    )
    await link.send(
        ChangeOrder(
            change_id=change.id,
            secret=order.secret,
            activation_code=order.activation_code,
            operator_url=url,
            subscription_id=change.subscription_id,
            device_id=change.device_id,
            role=role,
            replaced_iccid=change.replaced_iccid,
        )
    )
    old_order_sent(store, now=now, progress=relay)
    say(TransferEvent(TransferStep.ORDERED, "change order sent"))
    try:
        # the new device downloads, enables and waits for the switch: give it time
        event = await link.next_event(timeout=None if timeout is None else timeout + switch_timeout)
        if not isinstance(event, ChangeResultReceived):
            raise ProtocolError(f"expected the change result, got {type(event).__name__}")
    except RspfedError as exc:
        say(
            TransferEvent(
                TransferStep.CUT,
                f"the new device went away ({type(exc).__name__}): "
                "run rspfed transfer resume to finish or cancel",
            )
        )
        raise
    result = event.message
    if result.iccid is None:
        failure = result.failure.value if result.failure is not None else "error"
        say(TransferEvent(TransferStep.RESULT, f"the new device failed: {failure}"))
        journal = await cancel(client, store, lpa, now=now, progress=relay)
        await _bye(link, conn)
        if journal.phase == "cancelled":
            return SendOutcome(
                moved=False,
                ask=ask,
                change_id=change.id,
                old_iccid=change.old_iccid,
                failure=failure,
            )
        return _sent(ask, journal, change.new_iccid, 0)
    say(TransferEvent(TransferStep.RESULT, f"the new device is served by {result.iccid}"))
    journal = await old_finish(
        client, store, lpa, now=now, wait=switch_timeout, interval=_POLL, progress=relay
    )
    companions = tuple(_handover(c) for c in journal.companions if c.peer_role == "watch")
    deleted = journal.old_iccid if journal.phase == "done" else None
    await link.send(ChangeDone(deleted=deleted, companions=companions))
    say(
        TransferEvent(TransferStep.COMPANIONS, f"change done sent ({len(companions)} companion(s))")
    )
    await _bye(link, conn)
    say(TransferEvent(TransferStep.DONE, "done: this device no longer holds the subscription"))
    return _sent(ask, journal, result.iccid, len(companions))


def _sent(ask: ChangeAsk, journal: ChangeJournal, new_iccid: str, companions: int) -> SendOutcome:
    return SendOutcome(
        moved=True,
        ask=ask,
        change_id=journal.change_id,
        old_iccid=journal.old_iccid,
        new_iccid=new_iccid,
        deleted=journal.phase in ("old_deleted", "done"),
        completed=journal.phase == "done",
        companions=companions,
    )


# --------------------------------------------------------------------------
# The new device


_FAILURE_AT: Final = {
    "order_received": ChangeFailure.DOWNLOAD,
    "downloaded": ChangeFailure.ENABLE,
    "enabled": ChangeFailure.SWITCH,
}


async def transfer_receive(
    config: TransportConfig,
    *,
    target: str,
    local: LocalDevice,
    store: DeviceStore,
    lpa: Lpa,
    card: Card,
    ssl_for: SslFor | None = None,
    now: Callable[[], datetime] = _utcnow,
    rand: Callable[[int], bytes] = os.urandom,
    progress: TransferProgress | None = None,
    timeout: float | None = DEFAULT_FLOW_TIMEOUT,
    switch_timeout: float = SWITCH_TIMEOUT,
    allowed_operators: Callable[[str], None] | None = None,
) -> ReceiveOutcome:
    """Take over the subscription of the device whose offer ``target`` names (URI or
    short code); see the module doc.

    ``local``: this device (name and class asked for; its EID); ``store``:
    its federation store (new and empty, or a linked device's);
    ``lpa``/``card``: its eUICC; ``ssl_for(url)``: TLS trust for the
    operator URL the order names (``allowed_operators(url)`` may refuse it
    by raising).  :class:`PolicyError` when the old device refuses.  When the
    old device goes away after the order, the change goes on with the
    operator alone (``handed_over`` False: no companions).
    """
    from rspfed.transfer.change import ChangeStep, new_apply_order, new_finish

    say = progress if progress is not None else _ignore
    _no_open_change(store)
    record = store.record()
    if record is not None and record.role == "primary":
        raise UsageError("this device store is a primary's: give the new device's own store")
    clock = _Clock()
    offer, code = parse_target(target)
    hint: tuple[str, int] | None = None
    if offer is not None:
        discovery_id = offer.discovery_id
        if offer.offerer_role is DeviceRole.COMPANION:
            raise UsageError("this offer is a companion's: use rspfed companion add")
        if offer.lan is not None and offer.lan.host is not None and offer.lan.port is not None:
            hint = (offer.lan.host, offer.lan.port)
    else:
        assert code is not None
        discovery_id = code.discovery_id
    say(TransferEvent(TransferStep.CONNECTING, "looking for the old device"))
    stream = await connect(
        config, discovery_id, timeout=timeout or DEFAULT_FLOW_TIMEOUT, direct=hint
    )
    say(TransferEvent(TransferStep.CONNECTED, f"connected: {stream.peer}"))
    conn = PairingConnection(
        Role.JOINER,
        local=local.hello(DeviceRole.SECONDARY, _CAPABILITIES),
        rand=rand,
        offer=offer,
        code=code,
    )
    link = _FlowLink(conn, stream, timeout)
    companions: tuple[CompanionRecord, ...] = ()
    deleted: str | None = None
    handed_over = False
    async with link:
        peer = await _handshake(link, say)
        await link.send(ChangeRequest(name=local.name, device_class=local.device_class))
        say(
            TransferEvent(
                TransferStep.REQUESTED,
                f"asked {peer.name} to hand over its subscription; waiting for confirmation",
            )
        )
        clock.lap("pairing")
        event = await link.next_event(timeout=None)  # the old device's user decides
        if isinstance(event, Refused):
            reason = event.message.reason.value
            say(TransferEvent(TransferStep.DENIED, f"the old device refused: {reason}"))
            await _until_closed(link)
            raise PolicyError(f"{peer.name} refused to hand over its subscription ({reason})")
        if not isinstance(event, ChangeOrdered):
            raise ProtocolError(f"expected a change order, got {type(event).__name__}")
        order = event.message
        clock.lap("operator")
        say(
            TransferEvent(
                TransferStep.ORDERED,
                f"change order {order.change_id} received: {order.role.value} device "
                f"{order.device_id} of subscription {order.subscription_id}",
            )
        )
        if allowed_operators is not None:
            allowed_operators(order.operator_url)
        ticket = _ticket(order)
        relay = _relay(say)

        def timed(event: ChangeEvent) -> None:
            if event.step is ChangeStep.DOWNLOADED:
                clock.lap("download")
            elif event.step is ChangeStep.SWITCHED:
                clock.lap("switch")
            elif event.step is ChangeStep.REGISTERED:
                clock.lap("register")
            relay(event)

        async with _client(order.operator_url, ssl_for) as client:
            try:
                journal = await new_apply_order(
                    client,
                    store,
                    lpa,
                    card,
                    ticket,
                    now=now,
                    wait=switch_timeout,
                    interval=_POLL,
                    progress=timed,
                )
            except RspfedError:
                found = store.change()
                phase = found.phase if found is not None else "order_received"
                with contextlib.suppress(RspfedError):
                    failure = _FAILURE_AT.get(phase, ChangeFailure.ERROR)
                    await link.send(ChangeResult.failed(failure), timeout=5.0)
                    await _until_closed(link)
                raise
        if journal.phase == "cancelled":
            with contextlib.suppress(RspfedError):
                await link.send(ChangeResult.failed(ChangeFailure.CANCELLED), timeout=5.0)
                await _until_closed(link)
            raise StateError(f"the change {order.change_id} was cancelled: nothing moved")
        new_iccid = journal.new_iccid
        assert new_iccid is not None
        try:
            await link.send(ChangeResult.switched(new_iccid))
            say(TransferEvent(TransferStep.RESULT, f"switched to {new_iccid}: told {peer.name}"))
            event = await link.next_event(
                timeout=None if timeout is None else timeout + switch_timeout
            )
            if not isinstance(event, ChangeDoneReceived):
                raise ProtocolError(f"expected the change done, got {type(event).__name__}")
            done = event.message
            deleted = done.deleted
            companions = tuple(_record(c, now) for c in done.companions)
            handed_over = True
            said = "deleted its profile " + deleted if deleted else "will delete its profile later"
            say(TransferEvent(TransferStep.COMPANIONS, f"{peer.name} {said}"))
            await _until_closed(link)
        except RspfedError as exc:
            say(
                TransferEvent(
                    TransferStep.CUT,
                    f"the old device went away ({type(exc).__name__}): this device holds the "
                    "subscription; run rspfed transfer resume on the old one",
                )
            )
    journal = new_finish(store, companions, now=now, progress=relay)
    if companions:
        say(
            TransferEvent(TransferStep.COMPANIONS, f"{len(companions)} companion pairing(s) stored")
        )
    say(TransferEvent(TransferStep.DONE, "done: this device holds the subscription"))
    held = store.record()
    return ReceiveOutcome(
        old_name=peer.name,
        change_id=journal.change_id,
        new_iccid=new_iccid,
        subscription_id=ticket.subscription_id,
        device_id=(held.device_id if held is not None else None) or ticket.device_id,
        role=ticket.role,
        companions=len(companions),
        registered=store.private_key() is not None,
        old_deleted=deleted,
        handed_over=handed_over,
        replaced_iccid=ticket.replaced_iccid,
        timings=clock.laps,
    )


class _Clock:
    """Seconds per phase (monotonic; figures only, never in protocol logic)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        at = time.monotonic()
        self.laps[name] = at - self._last
        self._last = at


def _ticket(order: ChangeOrder) -> ChangeTicket:
    from rspfed.transfer.change import ChangeTicket

    return ChangeTicket(
        change_id=order.change_id,
        secret=order.secret,
        activation_code=order.activation_code,
        operator_url=order.operator_url,
        subscription_id=order.subscription_id,
        device_id=order.device_id,
        role="primary" if order.role is DeviceRole.PRIMARY else "secondary",
        replaced_iccid=order.replaced_iccid,
    )


def _record(handover: CompanionHandover, now: Callable[[], datetime]) -> CompanionRecord:
    from rspfed.federation.device import CompanionRecord

    return CompanionRecord(
        name=handover.name,
        eid=handover.eid,
        peer_role="watch",
        reconnection_id=handover.reconnection_id,
        psk=handover.psk,
        transport=handover.transport.value,
        paired=now(),
    )


# --------------------------------------------------------------------------
# Resume


async def transfer_resume(
    *,
    store: DeviceStore,
    lpa: Lpa,
    card: Card | None = None,
    ssl_for: SslFor | None = None,
    cancel: bool = False,
    now: Callable[[], datetime] = _utcnow,
    progress: TransferProgress | None = None,
    wait: float = SWITCH_TIMEOUT,
) -> ResumeOutcome:
    """Continue (or, with ``cancel``, roll back) the device change of ``store``'s journal
    with the operator alone (:func:`rspfed.transfer.change.resume` / ``cancel``).

    Old side: switched at the operator -> delete the old profile, complete;
    cancelled -> ``cancelled``; still open -> wait up to ``wait`` s for the
    new device (``cancel``: cancel it now; the old profile stays served).
    New side (``card`` needed): download, enable, wait for the switch,
    register, delete a replaced profile; ``cancel`` only before its profile
    is enabled.  :class:`StateError` when there is no change here, or the
    switch did not come within ``wait`` (run again later).
    """
    from rspfed.transfer.change import cancel as cancel_change
    from rspfed.transfer.change import resume

    say = progress if progress is not None else _ignore
    journal = store.change()
    if journal is None:
        raise StateError("no device change in this device store")
    before = journal.phase
    if journal.finished:
        return ResumeOutcome(journal.side, journal.change_id, before, before, "finished")
    relay = _relay(say)
    async with _client(journal.operator_url, ssl_for) as client:
        say(
            TransferEvent(
                TransferStep.CONNECTED,
                f"change {journal.change_id}: {journal.side} side at {journal.phase}",
            )
        )
        if cancel:
            after = await cancel_change(client, store, lpa, now=now, progress=relay)
        else:
            found = await resume(
                client,
                store,
                lpa,
                card,
                now=now,
                wait=wait,
                interval=_POLL,
                progress=relay,
            )
            assert found is not None
            after = found
        if after.side == "old" and not after.finished:
            raise StateError(
                f"the new device has not switched yet (journal {after.phase}): run rspfed "
                "transfer resume again later, or with --cancel to keep the subscription here"
            )
        try:
            state = (await client.device_change_status(after.change_id, after.secret)).state.value
        except RspfedError:
            state = "unknown"
    say(TransferEvent(TransferStep.DONE, f"{after.side} side: {after.phase}; operator: {state}"))
    return ResumeOutcome(after.side, after.change_id, before, after.phase, state)
