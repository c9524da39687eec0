"""The demo's device-change chapter: the subscription moves to a new phone (issue I).

Both phones run in this process, each with only what it would have on its
own: the old phone its device store (record, key, the watch's pairing) and
its eUICC; the new phone a fresh eUICC and an empty device store, and the
short code its user types.  They meet through zeroconf on the loopback
interface and run :func:`rspfed.transfer.change_flows.transfer_send` /
:func:`~rspfed.transfer.change_flows.transfer_receive`: the old phone asks the
operator for the device-change order for the new EID, the new phone
downloads and enables its own new profile, the network switches from the old
IMSI to the new one in one transaction, the old phone deletes its profile,
and the new phone registers its own key (EAP-AKA' with the new USIM), which
becomes the subscription's federation key.  The linked devices keep their
own profiles and keys: they still attach.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from rspfed.cli._demo_common import DemoDevice, chapter, ok, refused, say, service_list
from rspfed.errors import RspfedError, StateError
from rspfed.federation import Service
from rspfed.federation.client import operator_tls_context
from rspfed.federation.device import DeviceStore
from rspfed.federation.token import DeviceClass
from rspfed.lpa import ApduEs10, Es9Settings, Lpa, store_ci_certificates
from rspfed.transfer.change_flows import (
    ChangeAsk,
    TransferEvent,
    transfer_receive,
    transfer_send,
)
from rspfed.transfer.flows import Invitation, LocalDevice, TransportConfig

__all__ = ["ChangeTold", "chapter_device_change"]

_LOOPBACK = TransportConfig(kind="lan", lan_addresses=("127.0.0.1",), lan_interfaces=("127.0.0.1",))
_TIMEOUT = 30.0
NEW_PHONE_NAME = "new phone"
"""The new phone's name (at most 13 characters: the demo's closing table)."""


@attrs.frozen
class ChangeTold:
    """What the chapter did: the new phone (the subscription's primary now, with its
    registered key and device store), the old and new EID and ICCID, the
    companions handed over, which linked devices still attach (name -> the
    services granted, or the refusal), and the seconds it took."""

    phone: DemoDevice = attrs.field(eq=False)
    old_eid: str
    new_eid: str
    old_iccid: str
    new_iccid: str
    companions: int
    attached: dict[str, str]
    seconds: float
    timings: dict[str, float] = attrs.field(factory=dict)

    def __str__(self) -> str:
        return (
            f"to a new phone: EID {self.old_eid[:8]}... -> {self.new_eid[:8]}..., ICCID "
            f"{self.old_iccid} -> {self.new_iccid} in {self.seconds:.1f} s; "
            + ", ".join(f"{name} {how}" for name, how in self.attached.items())
        )


def _lpa(device: DemoDevice) -> tuple[ApduEs10, Lpa]:
    es10 = ApduEs10(device.euicc.card)
    return es10, Lpa(es10, settings=Es9Settings(trust=store_ci_certificates(device.euicc.store)))


async def chapter_device_change(
    number: int,
    *,
    root: Path,
    phone: DemoDevice,
    device: Callable[[str], DemoDevice],
    watch: DemoDevice | None = None,
    tablet: DemoDevice | None = None,
    hotspot: DemoDevice | None = None,
    laptop: DemoDevice | None = None,
) -> ChangeTold:
    """Chapter ``number``: the primary ``phone`` (with its device store) hands the
    subscription to a new phone made by ``device(name)`` (a fresh eUICC and
    operator client), by short code over the loopback LAN; then the new phone
    and each linked device still holding a profile attach.  ``root`` holds the
    new phone's device store.  Returns :class:`ChangeTold` (``.phone``: the new
    primary)."""
    chapter(number, "The subscription moves to a new phone (device change, short code, LAN)")
    if phone.store is None or phone.key is None:
        raise StateError("the phone has no device store: it cannot hand over")
    old_iccid = phone.iccid or ""
    new = device("new-phone")
    new_store = DeviceStore.create(root / "new-phone-device.db")
    say(f"   a new phone: EID {new.eid}, an empty eUICC")
    old_es10, old_lpa = _lpa(phone)
    new_es10, new_lpa = _lpa(new)
    old_trust = store_ci_certificates(phone.euicc.store)
    new_trust = store_ci_certificates(new.euicc.store)
    shown: asyncio.Future[Invitation] = asyncio.get_running_loop().create_future()

    def on_offer(invitation: Invitation) -> None:
        say(
            f"   the old phone shows its short code: {invitation.code} "
            f"(and a QR code of {invitation.uri[:22]}...)"
        )
        shown.set_result(invitation)

    def old_says(event: TransferEvent) -> None:
        say(f"   old phone . {event.text}")

    def new_says(event: TransferEvent) -> None:
        say(f"   new phone . {event.text}")

    def confirm(ask: ChangeAsk) -> bool:
        say(f"   old phone ? {ask.question}  [yes]")
        return True

    started = time.perf_counter()
    try:
        sending = asyncio.ensure_future(
            transfer_send(
                _LOOPBACK,
                local=LocalDevice(
                    "Ana's phone",
                    DeviceClass.PHONE,
                    phone.eid,
                ),
                store=phone.store,
                lpa=old_lpa,
                confirm=confirm,
                ssl_for=lambda _url: operator_tls_context("localhost", trust=old_trust),
                on_offer=on_offer,
                progress=old_says,
                timeout=_TIMEOUT,
                accept_timeout=_TIMEOUT,
            )
        )
        first: set[asyncio.Future[Any]] = {sending, shown}
        await asyncio.wait(first, timeout=_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if not shown.done():
            await sending  # it failed before showing its offer: its error
            raise StateError("the old phone did not show its offer")
        invitation = shown.result()
        receiving = transfer_receive(
            _LOOPBACK,
            target=str(invitation.code),
            local=LocalDevice(NEW_PHONE_NAME, DeviceClass.PHONE, new.eid),
            store=new_store,
            lpa=new_lpa,
            card=new.euicc.card,
            ssl_for=lambda _url: operator_tls_context("localhost", trust=new_trust),
            progress=new_says,
            timeout=_TIMEOUT,
        )
        sent, received = await asyncio.gather(sending, receiving)
    except BaseException:
        if "sending" in locals() and not sending.done():
            sending.cancel()
            with contextlib.suppress(BaseException):
                await sending
        new_store.close()
        raise
    finally:
        old_es10.close()
        new_es10.close()
    seconds = time.perf_counter() - started
    new.store = new_store
    new.key = new_store.private_key()
    new.iccid = received.new_iccid
    phone.iccid = None
    phone.key = None  # retired at the switch
    ok(
        f"moved in {seconds:.1f} s: ICCID {sent.old_iccid} on EID {phone.eid} -> "
        f"ICCID {received.new_iccid} on EID {new.eid}; the old profile is deleted"
    )
    laps = ", ".join(f"{k} {v:.2f} s" for k, v in received.timings.items())
    say(f"   ({laps})")
    attached: dict[str, str] = {}
    granted = await new.attach(Service.VOICE)
    ok(f"the new phone on the network (its new IMSI): {service_list(granted)}")
    for linked in (watch, tablet, hotspot, laptop):
        if linked is None or linked.iccid is None:
            continue
        try:
            attached[linked.name] = service_list(await linked.attach(None)) or "attached"
            ok(f"{linked.name} still attaches with its own profile {linked.iccid}")
        except RspfedError as exc:
            attached[linked.name] = f"refused ({exc})"
            refused(f"{linked.name}: {exc}")
    assert new.key is not None
    listed = await new.client.devices(new.key)
    mine = next(d for d in listed if d.eid == new.eid)
    ok(
        f"the new phone's key signs for the subscription: it lists {len(listed)} devices; "
        f"it is the {mine.role.value} ({mine.name})"
    )
    if received.companions:
        ok(f"{received.companions} companion pairing(s) moved with it (the watch's key)")
    return ChangeTold(
        phone=new,
        old_eid=phone.eid,
        new_eid=new.eid,
        old_iccid=sent.old_iccid or old_iccid,
        new_iccid=received.new_iccid,
        companions=received.companions,
        attached=attached,
        seconds=seconds,
        timings=dict(received.timings),
    )
