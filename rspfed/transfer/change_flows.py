"""The device-change flows (issue I): a subscription moves to a new device, device to device.

Two coroutines over LAN or BLE (:func:`rspfed.transfer.flows.listen` /
:func:`~rspfed.transfer.flows.connect`, :class:`~rspfed.transfer.flows.TransportConfig`),
the messages of ``docs/device-change.md``:

:func:`transfer_send` (the OLD device: the pairing offerer)
    Makes an invitation (``on_offer`` shows its QR URI and short code),
    waits for the new device, pairs, receives its ``changeRequest`` and asks
    ``confirm`` ("Move your subscription to 'Ana's new phone' (phone, EID
    ...)?").  No: a ``refusal`` and nothing changes anywhere.  Yes: it asks
    the operator for the device-change order for the new EID (signed with
    its own device key), journals it (``requested``), sends the
    ``changeOrder`` (``order_sent``), waits for the ``changeResult``; after
    ``switched`` it confirms the switch at the operator, disables and
    deletes its old profile, delivers the delete notification, completes
    the change and sends ``changeDone`` with its companion pairings (the
    watch moves with the subscription); after a failure it cancels the
    change at the operator and says ``bye``.

:func:`transfer_receive` (the NEW device: the joiner)
    Connects by the offer URI or short code, pairs, sends its
    ``changeRequest``, journals the ``changeOrder`` (``order_received``),
    downloads and enables the new profile, delivers its enable notification
    (the operator switches the network on it), polls the change until
    ``switched`` (the device record is written in the same store
    transaction), sends ``changeResult``, stores the companions of
    ``changeDone``, registers its own device key by EAP-AKA' with the new
    USIM and deletes a replaced linked profile.

:func:`transfer_resume` (either side) continues from the device store's
journal with the operator alone (no second pairing): a cut transport or a
crash at any point leaves both journals resumable.

Each journal phase is one device-store transaction
(:meth:`~rspfed.federation.device.DeviceStore.set_change`).  The steps
announce themselves to ``progress`` (:class:`TransferEvent`); failures are
:class:`~rspfed.errors.RspfedError`; ``now``/``rand`` are injected.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import ssl
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

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
    from rspfed.federation.types import DeviceChange
    from rspfed.lpa.lpa import Lpa

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
    DOWNLOADED = "downloaded"
    ENABLED = "enabled"
    SWITCHED = "switched"
    """The network serves the new profile."""
    RESULT = "result"
    """The change result was sent (new) or received (old)."""
    DELETED = "deleted"
    """Old device: its old profile is deleted (notification sent)."""
    COMPLETED = "completed"
    """Old device: the change is completed at the operator."""
    COMPANIONS = "companions"
    """The companion pairings were handed over (old) / stored (new)."""
    REGISTERED = "registered"
    """New device: its own device key is registered (EAP-AKA')."""
    CANCELLED = "cancelled"
    """The change was cancelled at the operator (nothing moved)."""
    CUT = "cut"
    """The other device went away: the journal continues alone."""
    DONE = "done"


@attrs.frozen
class TransferEvent:
    """One step of a device-change flow, with a one-line human ``text``."""

    step: TransferStep
    text: str


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
# The device-side steps (journal phases, docs/device-change.md section 5)


async def _client(url: str, ssl_for: SslFor | None) -> OperatorClient:
    from rspfed.federation.client import OperatorClient

    context = ssl_for(url) if ssl_for is not None else None
    return OperatorClient(url, ssl_context=context)


async def _status(journal: ChangeJournal, ssl_for: SslFor | None) -> DeviceChange:
    async with await _client(journal.operator_url, ssl_for) as client:
        return await client.device_change_status(journal.change_id, journal.secret)


async def _wait_state(
    journal: ChangeJournal,
    ssl_for: SslFor | None,
    wanted: frozenset[str],
    timeout: float | None,
) -> DeviceChange:
    """Poll the change until its state is one of ``wanted`` (or time-out: the last read)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    async with await _client(journal.operator_url, ssl_for) as client:
        while True:
            change = await client.device_change_status(journal.change_id, journal.secret)
            if change.state.value in wanted:
                return change
            if deadline is not None and time.monotonic() >= deadline:
                return change
            await asyncio.sleep(_POLL)


def _profile(lpa: Lpa, iccid: str) -> Any:
    for profile in lpa.profiles():
        if profile.iccid == iccid:
            return profile
    return None


async def _old_finish(
    journal: ChangeJournal,
    *,
    store: DeviceStore,
    lpa: Lpa,
    ssl_for: SslFor | None,
    now: Callable[[], datetime],
    say: TransferProgress,
) -> ChangeJournal:
    """Old device, once SWITCHED: delete the old profile, notify, complete (journal)."""
    if journal.phase in ("requested", "order_sent"):
        journal = journal.at("switched", now())
        store.set_change(journal)
    if journal.phase == "switched":
        iccid = journal.old_iccid
        if iccid is not None:
            profile = _profile(lpa, iccid)
            if profile is not None:
                if profile.enabled:
                    lpa.disable(iccid)
                lpa.delete(iccid)
            with contextlib.suppress(RspfedError):
                await lpa.deliver_notifications()
        journal = journal.at("old_deleted", now())
        store.set_change(journal)
        say(TransferEvent(TransferStep.DELETED, f"old profile {iccid} deleted"))
    if journal.phase == "old_deleted":
        async with await _client(journal.operator_url, ssl_for) as client:
            change = await client.complete_device_change(journal.change_id, journal.secret)
        journal = journal.at("done", now())
        store.set_change(journal)
        say(
            TransferEvent(
                TransferStep.COMPLETED, f"change {change.id} {change.state.value} at the operator"
            )
        )
    return journal


async def _old_cancel(
    journal: ChangeJournal,
    *,
    store: DeviceStore,
    ssl_for: SslFor | None,
    now: Callable[[], datetime],
    say: TransferProgress,
) -> ChangeJournal:
    """Old device: cancel the change (before the switch); the old profile stays served."""
    key = store.private_key()
    if key is None:
        raise StateError("this device has no key to cancel the change with")
    async with await _client(journal.operator_url, ssl_for) as client:
        change = await client.cancel_device_change(key, journal.change_id)
    journal = journal.at("cancelled", now())
    store.set_change(journal)
    say(TransferEvent(TransferStep.CANCELLED, f"change {change.id} cancelled at the operator"))
    return journal


async def _new_apply(
    journal: ChangeJournal,
    *,
    store: DeviceStore,
    lpa: Lpa,
    local: LocalDevice,
    ssl_for: SslFor | None,
    now: Callable[[], datetime],
    say: TransferProgress,
    switch_timeout: float | None,
    timings: dict[str, float],
) -> ChangeJournal:
    """New device, from ``order_received`` to ``switched``: download, enable, notify, poll."""
    from rspfed.federation.device import DeviceRecord
    from rspfed.lpa import ActivationCode

    if journal.phase == "order_received":
        started = time.monotonic()
        change = await _status(journal, ssl_for)
        if change.state.value == "cancelled":
            return _new_cancelled(journal, store, now, say)
        iccid = change.new_iccid
        if _profile(lpa, iccid) is None:
            assert journal.activation_code is not None
            result = await lpa.download(ActivationCode.parse(journal.activation_code))
            iccid = result.iccid
            meta = result.metadata
            say(
                TransferEvent(
                    TransferStep.DOWNLOADED,
                    f"downloaded {iccid}: {meta.profile_name} [{meta.service_provider_name}]",
                )
            )
        journal = journal.at("downloaded", now(), new_iccid=iccid)
        store.set_change(journal)
        timings["download"] = time.monotonic() - started
    if journal.phase == "downloaded":
        started = time.monotonic()
        assert journal.new_iccid is not None
        profile = _profile(lpa, journal.new_iccid)
        if profile is None:
            raise StateError(f"the new profile {journal.new_iccid} is not on this eUICC")
        if not profile.enabled:
            lpa.enable(journal.new_iccid)
        journal = journal.at("enabled", now())
        store.set_change(journal)
        say(TransferEvent(TransferStep.ENABLED, f"profile {journal.new_iccid} enabled"))
        timings["enable"] = time.monotonic() - started
    if journal.phase == "enabled":
        started = time.monotonic()
        # the signed enable notification is what makes the operator switch
        with contextlib.suppress(RspfedError):
            await lpa.deliver_notifications()
        change = await _wait_state(
            journal, ssl_for, frozenset({"switched", "completed", "cancelled"}), switch_timeout
        )
        if change.state.value == "cancelled":
            return _new_cancelled(journal, store, now, say)
        if change.state.value not in ("switched", "completed"):
            raise StateError(
                f"the operator has not switched yet (change {change.state.value}): "
                "run rspfed transfer resume later"
            )
        assert journal.role is not None
        journal = journal.at("switched", now())
        store.set_change(
            journal,
            record=DeviceRecord(
                operator_url=journal.operator_url,
                subscription_id=journal.subscription_id,
                device_id=journal.device_id,
                role=journal.role,
                eid=local.eid,
                device_class=local.device_class,
                name=local.name,
            ),
        )
        say(
            TransferEvent(
                TransferStep.SWITCHED,
                f"the network switched to {journal.new_iccid} (old {change.old_iccid} removed)",
            )
        )
        timings["switch"] = time.monotonic() - started
    return journal


def _new_cancelled(
    journal: ChangeJournal, store: DeviceStore, now: Callable[[], datetime], say: TransferProgress
) -> ChangeJournal:
    journal = journal.at("cancelled", now())
    store.set_change(journal)
    say(TransferEvent(TransferStep.CANCELLED, f"change {journal.change_id} was cancelled"))
    return journal


async def _new_finish(
    journal: ChangeJournal,
    *,
    store: DeviceStore,
    lpa: Lpa,
    card: Card,
    local: LocalDevice,
    ssl_for: SslFor | None,
    now: Callable[[], datetime],
    say: TransferProgress,
    timings: dict[str, float],
) -> ChangeJournal:
    """New device, from ``switched``: register its own key, delete a replaced profile."""
    from rspfed.federation.enrol import register_device

    if journal.phase == "switched":
        started = time.monotonic()
        async with await _client(journal.operator_url, ssl_for) as client:
            device = await register_device(
                client, card, store, eid=local.eid, operator_url=journal.operator_url
            )
        journal = journal.at("registered", now())
        store.set_change(journal)
        say(
            TransferEvent(
                TransferStep.REGISTERED,
                f"registered this device's key ({device.role.value} device {device.id})",
            )
        )
        timings["register"] = time.monotonic() - started
    if journal.phase == "registered":
        replaced = journal.replaced_iccid
        if replaced is not None and _profile(lpa, replaced) is not None:
            profile = _profile(lpa, replaced)
            if profile.enabled:
                lpa.disable(replaced)
            lpa.delete(replaced)
            with contextlib.suppress(RspfedError):
                await lpa.deliver_notifications()
            say(TransferEvent(TransferStep.DELETED, f"replaced linked profile {replaced} deleted"))
        journal = journal.at("done", now())
        store.set_change(journal)
    return journal


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
) -> SendOutcome:
    """Hand this device's subscription record over to a new device (module doc).

    ``local``: this device (its hello); ``store``: its federation store (a
    registered device: record, key); ``lpa``: its eUICC (the old profile is
    deleted there after the switch); ``operator_url``: default the store's;
    ``ssl_for(url)``: TLS trust for the operator; ``on_offer(invitation)``
    shows the QR URI and short code once the listeners are up;
    ``confirm(ask)`` asks the user (unbounded in time).  ``timeout`` bounds
    each wait for the other device; ``accept_timeout`` the wait for it to
    connect.  :class:`StateError` when a change is already under way here
    (run :func:`transfer_resume`).
    """
    say = progress if progress is not None else _ignore
    record = store.record()
    key = store.private_key()
    if record is None or record.device_id is None or key is None or record.role is None:
        raise UsageError("this device is not registered: run rspfed federation register first")
    open_change = store.change()
    if open_change is not None and not open_change.finished:
        raise StateError(
            f"a device change ({open_change.side} side, {open_change.phase}) is under way: "
            "run rspfed transfer resume"
        )
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
        return await _send_session(
            stream,
            invitation=invitation,
            role=role,
            url=url,
            key=key,
            record_role=record.role,
            local=local,
            store=store,
            lpa=lpa,
            confirm=confirm,
            ssl_for=ssl_for,
            now=now,
            rand=rand,
            say=say,
            timeout=timeout,
        )


async def _send_session(
    stream: Any,
    *,
    invitation: Invitation,
    role: DeviceRole,
    url: str,
    key: Any,
    record_role: str,
    local: LocalDevice,
    store: DeviceStore,
    lpa: Lpa,
    confirm: Callable[[ChangeAsk], Awaitable[bool] | bool],
    ssl_for: SslFor | None,
    now: Callable[[], datetime],
    rand: Callable[[int], bytes],
    say: TransferProgress,
    timeout: float | None,
) -> SendOutcome:
    from rspfed.federation.device import ChangeJournal

    say(TransferEvent(TransferStep.CONNECTED, f"connected: {stream.peer}"))
    conn = PairingConnection(
        Role.OFFERER,
        local=local.hello(role, _CAPABILITIES),
        rand=rand,
        offer=invitation.offer,
        code=invitation.code,
    )
    link = _FlowLink(conn, stream, timeout)
    async with link:
        peer = await _handshake(link, say)
        event = await link.next_event()
        if not isinstance(event, ChangeRequested):
            raise ProtocolError(f"expected a change request, got {type(event).__name__}")
        ask = ChangeAsk(
            name=event.message.name,
            device_class=event.message.device_class,
            eid=peer.eid,
            peer=stream.peer,
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
            async with await _client(url, ssl_for) as client:
                order = await client.device_change(
                    key, ask.eid, name=ask.name, device_class=ask.device_class
                )
        except RspfedError as exc:
            say(TransferEvent(TransferStep.DENIED, f"the operator refused: {exc}"))
            with contextlib.suppress(RspfedError):
                await link.send(Refusal(RefusalReason.ERROR))
                await _bye(link, conn)
            raise
        change = order.change
        journal = ChangeJournal(
            side="old",
            change_id=change.id,
            phase="requested",
            secret=order.secret,
            operator_url=url,
            created=now(),
            updated=now(),
            new_eid=change.new_eid,
            old_iccid=change.old_iccid,
            new_iccid=change.new_iccid,
            role=record_role,
            subscription_id=change.subscription_id,
            device_id=change.device_id,
            replaced_iccid=change.replaced_iccid,
        )
        store.set_change(journal)
        say(
            TransferEvent(
                TransferStep.ORDERED,
                f"change {change.id} ordered at the operator: new ICCID {change.new_iccid} "
                f"for EID {change.new_eid}",
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
        journal = journal.at("order_sent", now())
        store.set_change(journal)
        say(TransferEvent(TransferStep.ORDERED, "change order sent"))
        try:
            # the new device downloads, enables and waits for the switch: give it time
            event = await link.next_event(timeout=None if timeout is None else timeout + 180.0)
        except RspfedError as exc:
            say(
                TransferEvent(
                    TransferStep.CUT,
                    f"the new device went away ({type(exc).__name__}): "
                    "run rspfed transfer resume to finish or cancel",
                )
            )
            raise
        if not isinstance(event, ChangeResultReceived):
            raise ProtocolError(f"expected the change result, got {type(event).__name__}")
        result = event.message
        if result.iccid is None:
            failure = result.failure.value if result.failure is not None else "error"
            say(TransferEvent(TransferStep.RESULT, f"the new device failed: {failure}"))
            journal = await _old_cancel(journal, store=store, ssl_for=ssl_for, now=now, say=say)
            await _bye(link, conn)
            return SendOutcome(
                moved=False,
                ask=ask,
                change_id=change.id,
                old_iccid=change.old_iccid,
                failure=failure,
            )
        say(TransferEvent(TransferStep.RESULT, f"the new device is served by {result.iccid}"))
        confirmed = await _wait_state(
            journal, ssl_for, frozenset({"switched", "completed"}), timeout
        )
        if confirmed.state.value not in ("switched", "completed"):
            raise StateError(
                f"the new device says switched but the operator says {confirmed.state.value}"
            )
        journal = await _old_finish(
            journal, store=store, lpa=lpa, ssl_for=ssl_for, now=now, say=say
        )
        companions = tuple(_handover(c) for c in store.companions() if c.peer_role == "watch")[:8]
        await link.send(ChangeDone(deleted=change.old_iccid, companions=companions))
        say(
            TransferEvent(
                TransferStep.COMPANIONS, f"change done sent ({len(companions)} companion(s))"
            )
        )
        await _bye(link, conn)
        say(TransferEvent(TransferStep.DONE, "done: this device no longer holds the subscription"))
    return SendOutcome(
        moved=True,
        ask=ask,
        change_id=change.id,
        old_iccid=change.old_iccid,
        new_iccid=result.iccid,
        deleted=True,
        completed=journal.phase == "done",
        companions=len(companions),
    )


# --------------------------------------------------------------------------
# The new device


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
    switch_timeout: float | None = SWITCH_TIMEOUT,
    allowed_operators: Callable[[str], None] | None = None,
) -> ReceiveOutcome:
    """Take over the subscription of the device whose offer ``target`` names (URI or
    short code); see the module doc.

    ``local``: this device (name and class asked for; its EID); ``store``:
    its federation store (created empty, or a linked device's);
    ``lpa``/``card``: its eUICC; ``ssl_for(url)``: TLS trust for the
    operator URL the order names (``allowed_operators(url)`` may refuse
    it).  Raises :class:`PolicyError` when the old device refuses.  When the
    old device goes away after the order, the change goes on with the
    operator alone (``handed_over`` is then False: no companions).
    """
    from rspfed.federation.device import ChangeJournal

    say = progress if progress is not None else _ignore
    open_change = store.change()
    if open_change is not None and not open_change.finished:
        raise StateError(
            f"a device change ({open_change.side} side, {open_change.phase}) is under way: "
            "run rspfed transfer resume"
        )
    record = store.record()
    if record is not None and record.role == "primary":
        raise UsageError("this device store is a primary's: a new device takes over, not this one")
    timings: dict[str, float] = {}
    started = time.monotonic()
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
    async with link:
        peer = await _handshake(link, say)
        await link.send(ChangeRequest(name=local.name, device_class=local.device_class))
        say(
            TransferEvent(
                TransferStep.REQUESTED,
                f"asked {peer.name} to hand over its subscription; waiting for confirmation",
            )
        )
        timings["pairing"] = time.monotonic() - started
        asked = time.monotonic()
        event = await link.next_event(timeout=None)  # the old device's user decides
        if isinstance(event, Refused):
            reason = event.message.reason.value
            say(TransferEvent(TransferStep.DENIED, f"the old device refused: {reason}"))
            await _until_closed(link)
            raise PolicyError(f"{peer.name} refused to hand over its subscription ({reason})")
        if not isinstance(event, ChangeOrdered):
            raise ProtocolError(f"expected a change order, got {type(event).__name__}")
        order = event.message
        timings["operator"] = time.monotonic() - asked
        if allowed_operators is not None:
            allowed_operators(order.operator_url)
        journal = ChangeJournal(
            side="new",
            change_id=order.change_id,
            phase="order_received",
            secret=order.secret,
            operator_url=order.operator_url,
            created=now(),
            updated=now(),
            activation_code=order.activation_code,
            new_eid=local.eid,
            role="primary" if order.role is DeviceRole.PRIMARY else "secondary",
            subscription_id=order.subscription_id,
            device_id=order.device_id,
            replaced_iccid=order.replaced_iccid,
        )
        store.set_change(journal)
        say(
            TransferEvent(
                TransferStep.ORDERED,
                f"change order {order.change_id} received: {journal.role} device "
                f"{order.device_id} of subscription {order.subscription_id}",
            )
        )
        try:
            journal = await _new_apply(
                journal,
                store=store,
                lpa=lpa,
                local=local,
                ssl_for=ssl_for,
                now=now,
                say=say,
                switch_timeout=switch_timeout,
                timings=timings,
            )
        except RspfedError:
            stored = store.change()
            phase = stored.phase if stored is not None else journal.phase
            failure = {
                "order_received": ChangeFailure.DOWNLOAD,
                "downloaded": ChangeFailure.ENABLE,
            }.get(phase, ChangeFailure.ERROR)
            if phase in ("order_received", "downloaded"):
                # nothing served here: the old device cancels, the profile stays there
                with contextlib.suppress(RspfedError):
                    await link.send(ChangeResult.failed(failure), timeout=5.0)
                    await _until_closed(link)
            raise
        if journal.phase == "cancelled":
            with contextlib.suppress(RspfedError):
                await link.send(ChangeResult.failed(ChangeFailure.CANCELLED), timeout=5.0)
                await _until_closed(link)
            raise StateError(f"the change {order.change_id} was cancelled: nothing moved")
        assert journal.new_iccid is not None
        companions = 0
        deleted: str | None = None
        handed_over = False
        try:
            await link.send(ChangeResult.switched(journal.new_iccid))
            say(
                TransferEvent(
                    TransferStep.RESULT, f"switched to {journal.new_iccid}: told {peer.name}"
                )
            )
            event = await link.next_event(timeout=None if timeout is None else timeout + 60.0)
            if not isinstance(event, ChangeDoneReceived):
                raise ProtocolError(f"expected the change done, got {type(event).__name__}")
            done = event.message
            deleted = done.deleted
            companions = _store_companions(store, done, now)
            handed_over = True
            say(
                TransferEvent(
                    TransferStep.COMPANIONS,
                    f"{peer.name} deleted its profile {deleted}; "
                    f"{companions} companion pairing(s) stored",
                )
            )
            await _until_closed(link)
        except RspfedError as exc:
            say(
                TransferEvent(
                    TransferStep.CUT,
                    f"the old device went away ({type(exc).__name__}); going on alone "
                    "(its own resume deletes its profile; re-pair companions if any)",
                )
            )
            await link.aclose()
    journal = await _new_finish(
        journal,
        store=store,
        lpa=lpa,
        card=card,
        local=local,
        ssl_for=ssl_for,
        now=now,
        say=say,
        timings=timings,
    )
    say(TransferEvent(TransferStep.DONE, "done: this device holds the subscription"))
    assert journal.subscription_id is not None
    assert journal.device_id is not None
    assert journal.role is not None
    assert journal.new_iccid is not None
    return ReceiveOutcome(
        old_name=peer.name,
        change_id=journal.change_id,
        new_iccid=journal.new_iccid,
        subscription_id=journal.subscription_id,
        device_id=journal.device_id,
        role=journal.role,
        companions=companions,
        registered=journal.phase == "done",
        old_deleted=deleted,
        handed_over=handed_over,
        replaced_iccid=journal.replaced_iccid,
        timings=timings,
    )


def _store_companions(store: DeviceStore, done: ChangeDone, now: Callable[[], datetime]) -> int:
    from rspfed.federation.device import CompanionRecord

    for handover in done.companions:
        store.set_companion(
            CompanionRecord(
                name=handover.name,
                eid=handover.eid,
                peer_role="watch",
                reconnection_id=handover.reconnection_id,
                psk=handover.psk,
                transport=handover.transport.value,
                paired=now(),
            )
        )
    return len(done.companions)


# --------------------------------------------------------------------------
# Resume


async def transfer_resume(
    *,
    store: DeviceStore,
    lpa: Lpa,
    card: Card,
    local: LocalDevice,
    ssl_for: SslFor | None = None,
    cancel: bool = False,
    now: Callable[[], datetime] = _utcnow,
    progress: TransferProgress | None = None,
    timeout: float | None = SWITCH_TIMEOUT,
) -> ResumeOutcome:
    """Continue (or, with ``cancel``, roll back) the device change of ``store``'s journal
    with the operator alone.

    Old side: SWITCHED at the operator -> delete the old profile, complete;
    CANCELLED -> journal cancelled; still open -> wait up to ``timeout`` for
    the new device (``cancel``: cancel it now: the old profile stays).  New
    side: download, enable, wait for the switch, register, delete a replaced
    profile (``cancel`` is refused: the old device cancels).
    :class:`StateError` when there is no open change, or it is still open
    after ``timeout`` (run again later).
    """
    say = progress if progress is not None else _ignore
    journal = store.change()
    if journal is None:
        raise StateError("no device change in this device store")
    before = journal.phase
    if journal.finished:
        return ResumeOutcome(journal.side, journal.change_id, before, before, "finished")
    change = await _status(journal, ssl_for)
    state = change.state.value
    say(
        TransferEvent(
            TransferStep.CONNECTED,
            f"change {journal.change_id}: {journal.side} side at {journal.phase}, operator {state}",
        )
    )
    if journal.side == "old":
        if state in ("ordered", "installed"):
            if cancel:
                journal = await _old_cancel(journal, store=store, ssl_for=ssl_for, now=now, say=say)
                return ResumeOutcome("old", journal.change_id, before, journal.phase, "cancelled")
            change = await _wait_state(
                journal, ssl_for, frozenset({"switched", "completed", "cancelled"}), timeout
            )
            state = change.state.value
        if state == "cancelled":
            journal = journal.at("cancelled", now())
            store.set_change(journal)
            say(TransferEvent(TransferStep.CANCELLED, "the change was cancelled: nothing moved"))
        elif state in ("switched", "completed"):
            journal = await _old_finish(
                journal, store=store, lpa=lpa, ssl_for=ssl_for, now=now, say=say
            )
        else:
            raise StateError(
                f"the new device has not switched yet (change {state}): run rspfed transfer "
                "resume again later, or with --cancel to keep the subscription here"
            )
    else:
        if cancel:
            raise UsageError("only the old device cancels a device change")
        timings: dict[str, float] = {}
        if state == "cancelled" and journal.phase in ("order_received", "downloaded", "enabled"):
            journal = _new_cancelled(journal, store, now, say)
        else:
            journal = await _new_apply(
                journal,
                store=store,
                lpa=lpa,
                local=local,
                ssl_for=ssl_for,
                now=now,
                say=say,
                switch_timeout=timeout,
                timings=timings,
            )
            if journal.phase != "cancelled":
                journal = await _new_finish(
                    journal,
                    store=store,
                    lpa=lpa,
                    card=card,
                    local=local,
                    ssl_for=ssl_for,
                    now=now,
                    say=say,
                    timings=timings,
                )
    final = await _status(journal, ssl_for)
    say(TransferEvent(TransferStep.DONE, f"{journal.side} side: {journal.phase}"))
    return ResumeOutcome(journal.side, journal.change_id, before, journal.phase, final.state.value)
