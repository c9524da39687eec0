"""The demo's companion chapter: the watch joins through the phone over BLE (issue H).

Both sides run in this process on an in-process virtual BLE radio
(:class:`~rspfed.transport.ble.LocalRadio`: two bumble controllers on one
link), each with only what it would have on its own device:

- the watch: its own software eUICC (behind the ES10 relay's allow-list,
  :class:`~rspfed.transfer.relay.CompanionResponder`) and its own device
  store; it runs :func:`~rspfed.transfer.companion.companion_serve` and shows
  a pairing offer (a QR code of its ``rspfed:1:pair:`` URI);
- the phone: its federation key, a device store for the companion record and
  the LPA's ES9+ settings; it scans the watch's QR code and runs
  :func:`~rspfed.transfer.companion.companion_add`, which signs a watch-class
  token for the watch's EID, redeems it at the operator and downloads the
  watch's own profile into the watch's eUICC through the relay.

Once its profile is enabled the watch registers its own device key with
the operator by itself (``companion_serve(register_with=...)``: EAP-AKA' with
its own USIM; the phone never holds that key).  Later the phone reconnects
on the stored companion key (a second BLE session) and lists the watch's
profiles through the relay.  Then the watch attaches to the network with its
own USIM (its own IMSI) and carries traffic counted in the shared pool.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import click

from rspfed.cli._demo_common import (
    DemoDevice,
    amount,
    chapter,
    ok,
    profiles_of,
    say,
    service_list,
)
from rspfed.cli._demo_qr import read_terminal_qr
from rspfed.federation import Service
from rspfed.federation.client import operator_tls_context
from rspfed.federation.device import DeviceStore
from rspfed.federation.token import DeviceClass
from rspfed.federation.uri import RspfedUri
from rspfed.lpa import ApduEs10, Es9Settings, store_ci_certificates
from rspfed.lpa.download import DeviceInfo
from rspfed.network.usim import read_usim_identity
from rspfed.transfer.companion import (
    CompanionEvent,
    CompanionStep,
    Es10Answerer,
    ManageOutcome,
    WatchRegistration,
    companion_add,
    companion_manage,
    companion_serve,
)
from rspfed.transfer.flows import (
    Invitation,
    Listener,
    LocalDevice,
    PrimaryAuthority,
    TransportConfig,
)
from rspfed.transfer.relay import ES10_RELAY_TAGS, CompanionResponder
from rspfed.transport.ble import LocalRadio

__all__: list[str] = []

_TIMEOUT = 30.0
WATCH_NAME = "Ana's watch"
"""The watch's name (its hello, the operator's device list)."""
WATCH_USE = 7 * 10**6
"""What the watch carries on its own (7 MB): it shows in the pool."""


@attrs.frozen
class WatchOutcome:
    """What the chapter did: the watch's ICCID and IMSI, the ES10 requests relayed."""

    iccid: str
    imsi: str
    relayed: int
    seconds: float


def _relay_names(tags: list[str]) -> str:
    names: list[str] = []
    for tag in tags:
        name = ES10_RELAY_TAGS.get(bytes.fromhex(tag), tag).split(" (")[0]
        if not names or names[-1] != name:
            names.append(name)
    return ", ".join(names)


async def chapter_watch(
    number: int,
    *,
    root: Path,
    phone: DemoDevice,
    watch: DemoDevice,
    subscription_id: str,
    operator_url: str,
) -> WatchOutcome:
    """The watch joins as a companion over BLE (virtual radio); see the module doc.

    Sets ``watch.iccid`` and ``watch.key`` (the device key it registered itself).
    """
    chapter(number, "The watch joins as a companion over BLE (virtual radio), through the phone")
    assert phone.key is not None
    started = asyncio.get_running_loop().time()
    radio = LocalRadio()
    watch_config = TransportConfig(kind="ble", ble_hci=radio.endpoint())
    phone_config = TransportConfig(kind="ble", ble_hci=radio.endpoint())
    say("   two virtual BLE controllers on one in-process link: the watch's and the phone's")
    relayed: list[str] = []

    def watch_says(event: CompanionEvent) -> None:
        if event.step is CompanionStep.RELAY:
            words = event.text.split()
            relayed.append(words[2] if len(words) > 2 and words[1] == "request" else "??")
            return
        say(f"   watch   . {event.text}")

    def phone_says(event: CompanionEvent) -> None:
        say(f"   phone   . {event.text}")

    offered: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_offer(invitation: Invitation, _listener: Listener) -> None:
        say("   the watch (no camera, no network) shows its pairing offer:")
        shown = RspfedUri.parse(invitation.uri).qr_terminal()
        say(shown)
        say(f"   {invitation.uri[:60]}...  short code {invitation.code}")
        offered.set_result(shown)

    watch_store = DeviceStore.create(root / "watch-device.db")
    own_store = phone.store is None
    phone_store = (
        DeviceStore.create(root / "phone-companions.db") if phone.store is None else phone.store
    )
    watch_es10 = ApduEs10(watch.euicc.card)
    trust = store_ci_certificates(phone.euicc.store)
    try:
        responder = CompanionResponder(watch_es10)
        serving = asyncio.create_task(
            companion_serve(
                watch_config,
                local=LocalDevice(WATCH_NAME, DeviceClass.WATCH, watch.eid),
                device_info=DeviceInfo(),
                answer=responder.answer,
                store=watch_store,
                once=True,
                on_offer=on_offer,
                progress=watch_says,
                timeout=_TIMEOUT,
                accept_timeout=_TIMEOUT,
                # the watch registers its own key once its profile is enabled
                register_with=WatchRegistration(
                    operator_url,
                    watch.euicc.card,
                    operator_tls_context(
                        "localhost", trust=store_ci_certificates(watch.euicc.store)
                    ),
                ),
            )
        )
        either: set[asyncio.Future[Any]] = {serving, offered}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not offered.done():  # pragma: no cover - the watch failed before its offer
            await serving
            raise click.ClickException("the watch showed no pairing offer")
        scanned = read_terminal_qr(offered.result())
        say(f"   the phone scans the watch's QR code: {scanned[:40]}...")
        outcome = await companion_add(
            phone_config,
            target=scanned,
            local=LocalDevice("Ana's phone", DeviceClass.PHONE, phone.eid),
            authority=PrimaryAuthority(phone.key, subscription_id, operator_url),
            store=phone_store,
            settings=Es9Settings(trust=trust),
            operator_ssl=operator_tls_context("localhost", trust=trust),
            now=lambda: datetime.now(UTC),
            rand=os.urandom,
            progress=phone_says,
            timeout=_TIMEOUT,
        )
        (session,) = await asyncio.wait_for(serving, _TIMEOUT)
        if session.device is None:  # pragma: no cover - announced by the watch above
            raise click.ClickException("the watch did not register its own key")
        registered_key = watch_store.private_key()
        say(f"   watch   . relayed to its eUICC: {_relay_names(relayed)}")
        ok(
            f"{session.answered} ES10 requests answered by the watch's eUICC, "
            f"{session.refused} refused; the phone's LPA ran unchanged behind the relay"
        )
        managed = await _manage_once(
            radio,
            phone=phone,
            watch=watch,
            watch_store=watch_store,
            phone_store=phone_store,
            answer=responder.answer,
            settings=Es9Settings(trust=trust),
        )
        listed = ", ".join(f"{p.iccid} {p.state}" for p in managed.profiles)
        ok(f"later the phone reconnects (stored key) and lists the watch's profiles: {listed}")
    finally:
        watch_es10.close()
        watch_store.close()
        if own_store:
            phone_store.close()
    watch.iccid = outcome.iccid
    watch.key = registered_key
    took = asyncio.get_running_loop().time() - started

    on_watch = {p.iccid: p.state for p in profiles_of(watch)}
    on_phone = {p.iccid: p.state for p in profiles_of(phone)}
    if on_watch.get(outcome.iccid) != "enabled" or outcome.iccid in on_phone:
        raise click.ClickException("the watch's profile is not where it belongs")
    ok(
        f"the watch's profile {outcome.iccid} is enabled on the watch's eUICC (EID {watch.eid}); "
        f"not on the phone's (it holds {', '.join(on_phone) or 'nothing'})"
    )
    imsi, _ = read_usim_identity(watch.euicc.card)
    phone_imsi, _ = read_usim_identity(phone.euicc.card)
    granted = await watch.attach(Service.VOICE)
    ok(
        f"the watch attaches with its own IMSI {imsi} (the phone's is {phone_imsi}): "
        f"{service_list(granted)}"
    )
    assert session.device is not None
    key_id = session.device.device_key_id
    by_id = {d.id: d for d in await phone.client.devices(phone.key)}
    record = by_id.get(session.device.id)
    if record is None or record.device_key_id != key_id or key_id is None:
        raise click.ClickException("the operator does not list the watch's own key")
    ok(
        f"the watch registered its own device key by itself (EAP-AKA' with its USIM, straight "
        f"to the operator): device {record.id} key id {key_id.hex()[:16]}...; the phone never "
        "held it"
    )
    bearer = await watch.bearer()
    used = await watch.client.use(bearer, WATCH_USE)
    usage = await phone.client.usage(phone.key)
    mine = [d for d in usage["devices"] if d.get("iccid") == outcome.iccid]
    in_pool = int(mine[0]["used"]) if mine else 0
    ok(
        f"the watch uses {amount(used.carried)} on its own: the pool counts {amount(in_pool)} "
        f"for {WATCH_NAME} (the pool so far: {amount(int(usage['pool']['used']))})"
    )
    return WatchOutcome(outcome.iccid, imsi, len(relayed), took)


async def _manage_once(
    radio: LocalRadio,
    *,
    phone: DemoDevice,
    watch: DemoDevice,
    watch_store: DeviceStore,
    phone_store: DeviceStore,
    answer: Es10Answerer,
    settings: Es9Settings,
) -> ManageOutcome:
    """One management session: the watch serves a reconnection (method PAIRED, Noise
    keyed by the stored psk), the phone lists its profiles through the relay."""
    watch_config = TransportConfig(kind="ble", ble_hci=radio.endpoint())
    phone_config = TransportConfig(kind="ble", ble_hci=radio.endpoint())

    def watch_says(event: CompanionEvent) -> None:
        if event.step is CompanionStep.PAIRED:
            say("   watch   . the paired phone reconnects (Noise keyed by the stored psk)")
        elif event.step is CompanionStep.DONE:
            say(f"   watch   . {event.text}")

    serving = asyncio.create_task(
        companion_serve(
            watch_config,
            local=LocalDevice(WATCH_NAME, DeviceClass.WATCH, watch.eid),
            device_info=DeviceInfo(),
            answer=answer,
            store=watch_store,
            once=True,
            progress=watch_says,
            timeout=_TIMEOUT,
            accept_timeout=_TIMEOUT,
        )
    )
    try:
        managed = await companion_manage(
            phone_config,
            "profiles",
            local=LocalDevice("Ana's phone", DeviceClass.PHONE, phone.eid),
            store=phone_store,
            settings=settings,
            eid=watch.eid,
            rand=os.urandom,
            timeout=_TIMEOUT,
        )
        await asyncio.wait_for(serving, _TIMEOUT)
    finally:
        if not serving.done():  # pragma: no cover - the phone failed first
            serving.cancel()
    return managed
