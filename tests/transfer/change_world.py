"""A device change between two pairing connections: the old and the new device's apps.

The OLD device (offerer, the subscription's primary) answers a change request
with an order (or a refusal), then after a ``switched`` result sends
``changeDone`` and ``bye`` (after a failed one only ``bye``).  The NEW device
(joiner) sends ``changeRequest`` after the hellos, ``changeResult`` when the
order arrives, and is done when ``bye`` arrives.  The apps record every event
and what they sent; the sans-IO run reuses :func:`tests.transfer.pairing_world.run`
(cut after N octets, then both streams end), the asyncio run drives both
sides through :class:`rspfed.transport.drive.Driver` over
:func:`rspfed.transport.stream.memory_stream_pair`.
"""

from __future__ import annotations

import asyncio

import attrs

from rspfed.errors import RspfedError
from rspfed.federation.token import DeviceClass
from rspfed.transfer import (
    NEED_DATA,
    Bye,
    ByeReceived,
    Capability,
    ChangeDone,
    ChangeFailure,
    ChangeOrder,
    ChangeOrdered,
    ChangeRequest,
    ChangeRequested,
    ChangeResult,
    ChangeResultReceived,
    CompanionHandover,
    CompanionTransport,
    ConnectionClosed,
    ConnectionState,
    DeviceRole,
    Hello,
    HelloReceived,
    PairingConnection,
    Refusal,
    RefusalReason,
    Role,
)
from rspfed.transfer.connection import Event, NeedData
from rspfed.transport.drive import Driver
from rspfed.transport.stream import MemoryStream, memory_stream_pair
from tests.transfer.pairing_world import Run, counter_rand, make_offer, run

OLD_EID = "89001012012341234012345678901224"
NEW_EID = "89049032123451234512345678901235"
WATCH_EID = "89049032123451234512345678901332"
OLD_ICCID = "8949000000000000001"
NEW_ICCID = "8949000000000000027"

OLD_HELLO = Hello(
    "Ana's phone", DeviceClass.PHONE, DeviceRole.PRIMARY, OLD_EID,
    {Capability.JOIN, Capability.COMPANION, Capability.DEVICE_CHANGE},
)  # fmt: skip
SWITCHED = ChangeResult.switched(NEW_ICCID)
NEW_HELLO = Hello(
    "Ana's new phone", DeviceClass.PHONE, DeviceRole.PRIMARY, NEW_EID,
    {Capability.JOIN, Capability.DEVICE_CHANGE},
)  # fmt: skip
REQUEST = ChangeRequest("Ana's new phone", DeviceClass.PHONE)
ORDER = ChangeOrder(
    change_id="chg-0001",
    secret="change-secret-0001",
    activation_code="LPA:1$smdp.example$CHG-0001",
    operator_url="https://operator.example:8443",
    subscription_id="sub-0001",
    device_id="dev-0001",
    role=DeviceRole.PRIMARY,
    replaced_iccid="8949000000000000035",
)
WATCH = CompanionHandover(
    eid=WATCH_EID,
    name="Ana's watch",
    psk=bytes(range(32)),
    reconnection_id=bytes(range(16)),
    transport=CompanionTransport.BLE,
)
DONE = ChangeDone(deleted=OLD_ICCID, companions=(WATCH,))


@attrs.define
class OldApp:
    """The old device: answers with :data:`ORDER` (or refuses), then done or bye."""

    approve: bool = True
    done: ChangeDone = DONE
    events: list[object] = attrs.field(factory=list)
    sent: list[object] = attrs.field(factory=list)
    error: RspfedError | None = None

    def on_event(self, conn: PairingConnection, event: object) -> None:
        self.events.append(event)
        if isinstance(event, ChangeRequested):
            answer: object = ORDER if self.approve else Refusal(RefusalReason.DENIED)
            conn.send(answer)  # type: ignore[arg-type]
            self.sent.append(answer)
            if not self.approve:
                conn.send(Bye())
        elif isinstance(event, ChangeResultReceived):
            if event.message.ok:
                conn.send(self.done)
                self.sent.append(self.done)
            conn.send(Bye())


@attrs.define
class NewApp:
    """The new device: asks, reports ``result`` when the order arrives."""

    result: ChangeResult = SWITCHED
    events: list[object] = attrs.field(factory=list)
    sent: list[object] = attrs.field(factory=list)
    error: RspfedError | None = None

    def on_event(self, conn: PairingConnection, event: object) -> None:
        self.events.append(event)
        if isinstance(event, HelloReceived):
            conn.send(REQUEST)
            self.sent.append(REQUEST)
        elif isinstance(event, ChangeOrdered):
            conn.send(self.result)
            self.sent.append(self.result)


def connections(
    *, old_hello: Hello = OLD_HELLO, new_hello: Hello = NEW_HELLO, seed: int = 1
) -> tuple[PairingConnection, PairingConnection]:
    """(old = offerer, new = joiner) of a QR pairing, nothing exchanged yet."""
    offer = make_offer(DeviceRole.PRIMARY, counter_rand(seed))
    old_rand, new_rand = counter_rand(seed + 10), counter_rand(seed + 20)
    old = PairingConnection(Role.OFFERER, local=old_hello, offer=offer, rand=old_rand)
    new = PairingConnection(Role.JOINER, local=new_hello, offer=offer, rand=new_rand)
    return old, new


def change(
    *,
    approve: bool = True,
    result: ChangeResult | None = None,
    cut_at: int | None = None,
) -> tuple[Run, OldApp, NewApp]:
    """A whole device-change exchange in process (sans-IO), cut after ``cut_at`` octets."""
    old, new = connections()
    old_app = OldApp(approve=approve)
    new_app = NewApp(result=result or ChangeResult.switched(NEW_ICCID))
    r = run(old, new, old_app, new_app, cut_at=cut_at)  # type: ignore[arg-type]
    return r, old_app, new_app


async def _side(conn: PairingConnection, app: OldApp | NewApp, stream: MemoryStream) -> None:
    driver: Driver[Event | NeedData] = Driver(conn, stream, need_data=NEED_DATA, timeout=5)
    async with driver:
        try:
            while True:
                event = await driver.next_event()
                if isinstance(event, ConnectionClosed):
                    break
                app.on_event(conn, event)
                await driver.flush()
                if isinstance(event, ByeReceived) or conn.state is ConnectionState.CLOSED:
                    break
        except RspfedError as exc:
            app.error = exc


def change_over_streams(
    *, cut_after: int | None = None, max_chunk: int = 65536, failure: ChangeFailure | None = None
) -> tuple[PairingConnection, PairingConnection, OldApp, NewApp, int]:
    """The exchange with asyncio tasks over a memory stream pair; returns the octet total."""
    old, new = connections()
    old_app = OldApp()
    new_app = NewApp(
        result=ChangeResult.switched(NEW_ICCID) if failure is None else ChangeResult.failed(failure)
    )

    async def main() -> int:
        a, b = memory_stream_pair(cut_after=cut_after, max_chunk=max_chunk)
        await asyncio.gather(_side(old, old_app, a), _side(new, new_app, b))
        return sum(len(chunk) for _, chunk in a.link.transcript)

    total = asyncio.run(main())
    return old, new, old_app, new_app, total


def drain(conn: PairingConnection) -> list[object]:
    """The events until NEED_DATA or closed (errors propagate)."""
    out: list[object] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA or isinstance(event, ConnectionClosed):
            return out
        out.append(event)


def deliver(sender: PairingConnection, receiver: PairingConnection) -> list[object]:
    """Move the sender's pending octets to the receiver; its events."""
    data = sender.data_to_send()
    assert data, "nothing to deliver"
    receiver.receive_data(data)
    return drain(receiver)


def ready(
    *, old_hello: Hello = OLD_HELLO, new_hello: Hello = NEW_HELLO
) -> tuple[PairingConnection, PairingConnection]:
    """(old, new) after the pairing and both hellos: both READY."""
    old, new = connections(old_hello=old_hello, new_hello=new_hello)
    deliver(new, old)  # open, Noise 1
    deliver(old, new)  # Noise 2, the old hello
    deliver(new, old)  # the new hello
    assert (old.state, new.state) == (ConnectionState.READY, ConnectionState.READY)
    return old, new
