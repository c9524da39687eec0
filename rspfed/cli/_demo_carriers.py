"""The demo's carrier chapters: roaming, a second carrier, a backup profile.

- :func:`configure_network` gives Carrier One's simulated network its home
  cell, two roaming partners (which its profiles then carry in
  EF.OPLMNwAcT) and a 6-minute EF.HPPLMN period.
- :func:`chapter_roaming`: abroad, the phone selects a network as TS 23.122
  automatic mode does (partners before a stronger stranger, whose refusal
  puts it in EF.FPLMN), and when the higher-priority partner comes on air
  the periodic search (EF.HPPLMN, 6 minutes shortened to 1 second) takes it
  over; traffic is metered against the visited network.
- :func:`chapter_backup`: a second carrier's operator service (its own
  SM-DP+), a profile from it downloaded next to the first and marked as the
  backup; then Carrier One's network goes down and comes back while the LPA's
  watch runs: the backup takes over and gives back, each switch notified to
  each profile's own SM-DP+.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from aiohttp import web

from rspfed.cli._demo_common import GB, DemoDevice, amount, chapter, free_port, ok, refused, say
from rspfed.euicc.euicc import Euicc
from rspfed.federation import cells as radio
from rspfed.federation.client import OperatorClient, operator_tls_context
from rspfed.federation.datadir import close_operator, init_operator_dir, open_operator
from rspfed.federation.http import operator_app_for
from rspfed.federation.operator import Operator
from rspfed.federation.store import SqliteOperatorStore
from rspfed.federation.types import Plan
from rspfed.lpa import ApduEs10, Es9Settings, Lpa, download, store_ci_certificates
from rspfed.lpa._failover_state import Phase, Timers
from rspfed.lpa.failover import Failover
from rspfed.lpa.policy import ProfilePolicy
from rspfed.lpa.settings import LpaSettings, default_path
from rspfed.lpa.watch import Watch, software_euicc
from rspfed.network import NetworkRefusedError
from rspfed.network.radio import Rat
from rspfed.network.selection import (
    NetworkSelected,
    NetworkSelector,
    PlmnForbidden,
    SelectorEvent,
    classify,
    read_plmn_lists,
    write_fplmn,
)
from rspfed.network.usim import eap_usim, read_usim_identity
from rspfed.pki.testpki import TestPki
from rspfed.smdp import ProfileType, Smdp
from rspfed.smdp.datadir import load_config, open_store
from rspfed.smdp.http import server_ssl_context

__all__: list[str] = []

HOME = "00101"
"""Carrier One's home network (the demo profile's IMSI prefix)."""
PARTNER_1, PARTNER_2, STRANGER = "20801", "20810", "20815"
"""Carrier One's roaming partners abroad (in that order of priority) and a network that
is not one."""
CARRIER_TWO = "00102"
"""Carrier Two's home network."""

_TIMERS = Timers(
    lost_after=timedelta(seconds=0.5),
    seen_for=timedelta(seconds=0.5),
    trial_timeout=timedelta(seconds=1),
    hold=timedelta(seconds=1),
)


def _now() -> datetime:
    return datetime.now(UTC)


def configure_network(store: SqliteOperatorStore) -> None:
    """Carrier One's cells, partners and EF.HPPLMN period (before any profile is made)."""
    now = _now()
    radio.set_cell(store, HOME, Rat.EUTRAN, -80, now=now, name="rspfed mobile")
    for plmn in (PARTNER_1, PARTNER_2):
        radio.add_partner(store, plmn, now=now)
    radio.set_hpplmn_period(store, timedelta(minutes=6), off=False)
    ok(
        f"its network: home cell {HOME} on air; roaming partners {PARTNER_1}, {PARTNER_2} "
        "(the profiles carry them in EF.OPLMNwAcT); EF.HPPLMN 6 minutes"
    )


def _usim(device: DemoDevice) -> dict[str, Any]:
    imsi, mnc_length = read_usim_identity(device.euicc.card)
    return {"usim": eap_usim(device.euicc.card), "imsi": imsi, "mnc_length": mnc_length}


async def chapter_roaming(number: int, admin: Operator, phone: DemoDevice) -> str:
    """Abroad: selection by priority, a refusal remembered, the periodic search."""
    chapter(number, "Abroad: automatic network selection (3GPP TS 23.122)")
    store = admin.store
    now = _now()
    radio.set_cell(store, HOME, Rat.EUTRAN, None, now=now)
    radio.set_cell(store, STRANGER, Rat.EUTRAN, -70, now=now, name="Réseau Fort")
    radio.set_cell(store, PARTNER_2, Rat.EUTRAN, -100, now=now, name="Partenaire Deux")
    soon = now + timedelta(seconds=1.5)
    radio.set_cell(store, PARTNER_1, Rat.EUTRAN, -85, now=now, at=soon, name="Partenaire Un")
    lists = read_plmn_lists(phone.euicc.card)
    say(
        f"   the profile's files: HPLMN {lists.hplmn}; EF.OPLMNwAcT "
        f"{', '.join(p for p, _ in lists.operator)}; EF.HPPLMN "
        f"{int((lists.hpplmn_period or timedelta()).total_seconds() // 60)} minutes"
    )
    selector = NetworkSelector(lists, scale=1 / 360)  # 6 minutes -> 1 second
    started = time.perf_counter()
    visible = await phone.client.cells()
    for network in visible:
        kind = classify(lists, network)
        rank = "forbidden" if kind is None else kind.name.lower().replace("_", " ")
        say(
            f"   scan: {network.plmn} {network.name:<16} {network.country or '--'} "
            f"{network.signal_dbm} dBm  ({rank})"
        )

    def handle(events: list[SelectorEvent]) -> str | None:
        selected = None
        for event in events:
            if isinstance(event, PlmnForbidden):
                written = write_fplmn(phone.euicc.card, event.forbidden)
                where = "EF.FPLMN" if written else "the forbidden list"
                refused(f"{event.plmn} is not allowed for this profile: added to {where}")
            if isinstance(event, NetworkSelected):
                selected = event.selection.network.plmn
        return selected

    plmn = handle(selector.on_scan(visible, _now()))
    if plmn is None:  # pragma: no cover - the partners are on air
        raise click.ClickException("no network selected")
    ok(f"selected {plmn}: an operator-list partner ranks above the stronger {STRANGER}")
    try:
        await phone.client.attach(plmn=STRANGER, **_usim(phone))
    except NetworkRefusedError as exc:
        refused(f"the phone tries {STRANGER} by hand: {exc.reason.value}")
        handle(selector.on_refused(STRANGER, exc.reason, _now()))
    bearer = await phone.client.attach_data(plmn=plmn, **_usim(phone))
    selector.on_attached(plmn, _now())
    used = await phone.client.use(bearer, 200 * 10**6)
    ok(f"roaming on {plmn}: {amount(used.carried)} carried and metered against {plmn}")
    while True:
        await asyncio.sleep(0.25)
        now = _now()
        if not selector.search_due(now):
            continue
        events = selector.on_scan(await phone.client.cells(), now)
        better = [e for e in events if isinstance(e, NetworkSelected)]
        if better:
            plmn = better[0].selection.network.plmn
            break
        if time.perf_counter() - started > 20:  # pragma: no cover - a stuck clock
            raise click.ClickException("the periodic search found nothing better")
    bearer = await phone.client.attach_data(plmn=plmn, **_usim(phone))
    selector.on_attached(plmn, _now())
    took = time.perf_counter() - started
    ok(f"the periodic search found partner {plmn} (higher priority): taken over in {took:.1f} s")
    used = await phone.client.use(bearer, 300 * 10**6)
    assert phone.key is not None
    usage = await phone.client.usage(phone.key)
    by_plmn = {k: v for k, v in usage.get("by-plmn", {}).items() if k}
    shown = ", ".join(f"{k} {amount(v)}" for k, v in sorted(by_plmn.items()))
    ok(f"usage by visited network: {shown or '-'}")
    # home again: the partners abroad go out of range
    now = _now()
    radio.set_cell(store, HOME, Rat.EUTRAN, -80, now=now)
    for abroad in (PARTNER_1, PARTNER_2, STRANGER):
        radio.set_cell(store, abroad, Rat.EUTRAN, None, now=now)
    ok(f"back home: {HOME} on air again")
    return f"{PARTNER_2} then {PARTNER_1} in {took:.1f} s"


async def _carrier_two(
    root: Path, pki: TestPki, rand: Callable[[int], bytes], template: bytes
) -> tuple[Path, int]:
    port = free_port()
    address = f"localhost:{port}"
    data = root / "carrier-two"
    init_operator_dir(data, pki=pki, address=address, rand=rand)
    store = open_store(data)
    try:
        core = Smdp(load_config(data), store, now=_now)
        metadata: dict[str, Any] = {
            "serviceProviderName": "Carrier Two",
            "profileName": "Carrier Two travel",
            "profileClass": "operational",
            "iccidPrefix": "8999002",
            "imsiPrefix": CARRIER_TWO,
            "op": "cdc202d5123e20f62b6d676ac72cb318",
            "algorithm": "milenage",
            "notificationConfigurationInfo": [
                {"events": ["install", "enable", "disable", "delete"], "address": address}
            ],
        }
        core.add_profile_type(ProfileType.from_metadata("travel", template, metadata))
    finally:
        store.close()
    return data, port


async def chapter_backup(
    numbers: tuple[int, int],
    *,
    root: Path,
    pki: TestPki,
    rand: Callable[[int], bytes],
    template: bytes,
    admin: Operator,
    phone: DemoDevice,
    phone_store: Path,
    base: str,
) -> str:
    """A second carrier, its profile as the backup; the failover and the failback."""
    chapter(numbers[0], "A second carrier: its own SM-DP+, a backup profile")
    data, port = await _carrier_two(root, pki, rand, template)
    two = open_operator(data)
    app = operator_app_for(data, tls=True, passphrase=None)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ssl_context(data))
    await site.start()
    base_two = f"https://localhost:{port}"
    tls = operator_tls_context("localhost", trust=store_ci_certificates(phone.euicc.store))
    clients = [OperatorClient(base, ssl_context=tls), OperatorClient(base_two, ssl_context=tls)]
    try:
        radio.set_cell(two.store, CARRIER_TWO, Rat.EUTRAN, -95, now=_now(), name="Carrier Two")
        _, enrolment = two.subscribe("travel", Plan(pool_bytes=5 * GB, device_limit=1))
        ok(f"Carrier Two on {base_two}: its own SM-DP+ and network ({CARRIER_TWO})")
        assert phone.iccid is not None
        primary = phone.iccid
        es10 = ApduEs10(phone.euicc.card)
        try:
            settings = Es9Settings(trust=store_ci_certificates(phone.euicc.store))
            result = await download(es10, enrolment.activation_code, settings=settings)
            await Lpa(es10, settings=settings).deliver_notifications()
        finally:
            es10.close()
        backup = result.iccid
        ok(f"the phone downloads Carrier Two's profile {backup} next to {primary} (disabled)")
        phone.euicc.close()
        with (
            software_euicc(phone_store) as link,
            LpaSettings.open(default_path(phone_store)) as lpa_settings,
        ):
            await ProfilePolicy(Failover(link.lpa, lpa_settings, now=_now)).set_backup(backup)
        ok(f"{backup} marked as the backup (the LPA's settings, beside the eUICC store)")

        chapter(numbers[1], "Carrier One's network goes down: the backup takes over and gives back")
        started = time.perf_counter()

        def decision(text: str) -> None:
            text = re.sub(r"^\d\d:\d\d:\d\d ", "", text)  # the watch's own clock
            say(f"   {time.perf_counter() - started:5.1f} s  {text}")

        watch = Watch(
            open_device=lambda: software_euicc(phone_store),
            settings_path=default_path(phone_store),
            clients=clients,
            timers=_TIMERS,
            interval=timedelta(seconds=0.25),
            on_decision=decision,
        )
        down = _now() + timedelta(seconds=0.5)
        radio.set_cell(admin.store, HOME, Rat.EUTRAN, None, now=_now(), at=down)
        radio.set_cell(
            admin.store, HOME, Rat.EUTRAN, -80, now=_now(), at=down + timedelta(seconds=3)
        )
        say(f"   Carrier One's cell {HOME} goes off air in 0.5 s and comes back 3 s later")
        failed_over = gave_back = False
        while time.perf_counter() - started < 20 and not gave_back:
            await watch.round()
            with LpaSettings.open(default_path(phone_store)) as lpa_settings:
                phase = lpa_settings.failover_state().phase
            failed_over = failed_over or phase in (Phase.ON_BACKUP, Phase.PRIMARY_SEEN)
            gave_back = failed_over and phase is Phase.ON_PRIMARY
            await asyncio.sleep(0.25)
        if not gave_back:  # pragma: no cover - a machine far too slow
            raise click.ClickException("the backup did not give back in 20 s")
        took = time.perf_counter() - started
        ok(f"on {primary} again after {took:.1f} s; never without an enabled profile")
        got_one = [n for n in admin.smdp.notifications() if n.iccid == primary]
        got_two = [n for n in two.smdp.notifications() if n.iccid == backup]
        ok(
            "each SM-DP+ got its own profile's notifications: Carrier One "
            f"{', '.join(n.event for n in got_one[-2:])}; Carrier Two "
            f"{', '.join(n.event for n in got_two[-3:])}"
        )
        return f"backup {backup} took over and gave back in {took:.1f} s"
    finally:
        phone.euicc = Euicc.open(phone_store)
        for client in clients:
            await client.close()
        close_operator(two)
        await runner.cleanup()
