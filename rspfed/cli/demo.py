"""``rspfed demo``: the guide's whole story, in one run, on a fresh machine (issue J).

No arguments, a temporary directory, about ten seconds (most of it the
shortened timers of chapters 14 and 16 and zeroconf's probing in chapter 8),
exit status 0.  ``--step`` pauses before each chapter ("press Enter") when
stdin is a terminal; at its EOF, or without one, it goes on.  The end prints
each chapter's time and ``demo finished in N s``.  Each chapter uses the
public library API the way an application would.

1. A test PKI: CIs, EUMs and CRLs on both curves; every chain validated for
   its role; a wrong role and a revoked certificate refused with the reason.
2. The operator's data directory: SM-DP+ (DPauth/DPpb/DPtls, ES2+ client
   CA), operator and network stores, and a profile type made from a GSMA
   TS.48 template (MILENAGE).
3. The operator service over HTTPS on loopback: ES9+, ES2+ and the
   federation API in one application.
4. A subscription (20 GB pool, 5 devices; phone, laptop, hotspot, watch and
   tablet classes) and its primary's activation code as a QR code; a phone
   with a software eUICC.
5. The phone reads the activation code back from the rendered QR code
   (:mod:`rspfed.cli._demo_qr`), then the LPA's SGP.22 download over HTTPS,
   step by step, into the eUICC over APDUs; enabled; notifications delivered.
6. The phone attaches to the simulated network: EAP-AKA' answered by its
   USIM (AUTHENTICATE over APDUs); the services its class gets.
7. The phone registers its federation key (EAP-AKA', the key in an
   attribute covered by AT_MAC).
8. A laptop joins by short code over the LAN: the phone shows a pairing
   offer (QR code and short code), the laptop finds it by zeroconf, they
   pair (SPAKE2, key confirmation, Noise NNpsk0), the phone approves and
   hands over a federation token for the laptop's EID, the laptop redeems
   it, installs its own profile and registers its device key; the network
   gives the laptop data and refuses it voice.  A hotspot joins by a token
   QR code; the used token is refused.
9. The watch joins as a companion over BLE on an in-process virtual radio
   (:mod:`rspfed.cli._demo_companion`): it shows a pairing offer, the phone
   scans it, signs a watch-class token, redeems it and downloads the
   watch's own profile into the watch's eUICC through the ES10 relay; the
   watch registers its own key by itself; the phone reconnects on the
   stored key and lists the watch's profiles; the watch attaches with its
   own IMSI and uses the pool.
10. A tablet joins from the cloud: join request, the phone approves it with
    a token, the tablet collects its code.
11. The phone lists the subscription's five devices: five profiles.
12. The phone removes the hotspot: the network refuses it, its next sync
    tells it, its LPA deletes the profile.
13. The shared pool: the phone and the tablet carry traffic through the
    metering gateway; alerts at 50/75/90 % of the pool and of the tablet's
    quota, each delivered once; the tablet stopped at its quota; a top-up
    re-arms the thresholds above its opening ratio; the tablet syncs the
    ledger; the primary's signed dashboard link opens the usage page.
14. Abroad: the phone selects a network as TS 23.122 automatic mode does (a
    roaming partner in EF.OPLMNwAcT before a stronger stranger, which
    refuses it and goes into EF.FPLMN); the periodic search (EF.HPPLMN, 6
    minutes shortened to 1 second) takes the higher-priority partner over
    when it comes on air; traffic is metered against each visited network.
15. A second carrier with its own SM-DP+: the phone downloads its profile
    next to the first and marks it as the backup.
16. Carrier One's network goes down and comes back while the LPA's watch
    runs: the backup takes over, then a trial switch gives back, confirmed
    by an attach; each switch notified to each profile's own SM-DP+.
17. The subscription moves to a new phone (:mod:`rspfed.cli._demo_change`,
    issue I): the old phone shows a short code, the new one pairs over the
    LAN and asks; the old phone asks the operator for a device-change order
    for the new EID, the new phone downloads and enables its own profile,
    the network switches from the old IMSI to the new one, the old profile
    is deleted, the new phone registers its key; the laptop, the watch and
    the tablet still attach.
18. The subscription at the end: every device (name, class, role, EID,
    ICCID, state), the profiles on each eUICC, the pool (used/limit, per
    device).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import click
from aiohttp import web
from cryptography import x509

from rspfed import asn1
from rspfed.cli._demo_carriers import chapter_backup, chapter_roaming, configure_network
from rspfed.cli._demo_change import chapter_device_change
from rspfed.cli._demo_common import (
    GB,
    PACING,
    DemoDevice,
    amount,
    chapter,
    free_port,
    ok,
    profiles_of,
    refused,
    say,
    service_list,
)
from rspfed.cli._demo_companion import chapter_watch
from rspfed.cli._demo_pairing import join_by_short_code
from rspfed.cli._demo_qr import read_terminal_qr
from rspfed.cli._util import reports_errors
from rspfed.crypto import ecka
from rspfed.crypto.curves import Curve as CryptoCurve
from rspfed.errors import CertificateError, TokenConsumedError
from rspfed.euicc.euicc import Euicc
from rspfed.federation import (
    DeviceClass,
    RspfedUri,
    Service,
    issue_token,
    primary_key_id,
    token_from_uri,
    token_uri,
)
from rspfed.federation.client import OperatorClient, operator_tls_context, sync_usage
from rspfed.federation.dashboard import issue_link, link_url
from rspfed.federation.datadir import close_operator, init_operator_dir, open_operator
from rspfed.federation.http import operator_app_for
from rspfed.federation.ledger import LedgerState, SourceKind
from rspfed.federation.operator import Operator
from rspfed.federation.pool import PoolService
from rspfed.federation.types import Plan
from rspfed.lpa import (
    ActivationCode,
    DownloadStep,
    store_ci_certificates,
)
from rspfed.network import NetworkRefusedError
from rspfed.pki import CertificateRole, Curve, generate_eid, verify_chain
from rspfed.pki.testpki import TestPki
from rspfed.saip import summarise
from rspfed.smdp import ProfileType, Smdp
from rspfed.smdp.datadir import load_config, open_store
from rspfed.smdp.http import server_ssl_context

__all__ = ["DEMO_PROFILE", "demo"]

DEMO_PROFILE = "TS48v5_SAIP2.3_BERTLV_SUCI.der"
"""The TS.48 package the demo shows (shipped in ``rspfed/data/ts48``)."""

_PROFILES = Path(__file__).resolve().parent.parent / "data" / "ts48"
_PROFILE_TYPE: Final = "demo-mobile"
_CLASSES: Final = frozenset(
    {
        DeviceClass.PHONE,
        DeviceClass.LAPTOP,
        DeviceClass.HOTSPOT,
        DeviceClass.WATCH,
        DeviceClass.TABLET,
    }
)
"""The device classes the demo's plan allows (the watch among them)."""
_METADATA: Final[dict[str, Any]] = {
    "serviceProviderName": "rspfed mobile",
    "profileName": "Demo subscription",
    "profileClass": "operational",
    "iccidPrefix": "8999001",
    "imsiPrefix": "00101",
    "op": "cdc202d5123e20f62b6d676ac72cb318",  # TS 35.208 set 1's OP
    "algorithm": "milenage",
}


def _chapter_pki(directory: Path, now: datetime, rand: Callable[[int], bytes]) -> TestPki:
    chapter(1, "A test PKI (GSMA SGP.22 roles, both curves)")
    pki = TestPki.create(directory, now=now, rand=rand)
    say(f"   written to {directory} (private keys mode 0600)")
    anchors = pki.ci_certificates()
    for curve in (Curve.NIST, Curve.BRAINPOOL):
        material = pki.material(curve)
        say(f"   {curve.spec_name}: CI key id {material.ci_pkid.hex()}")
        euicc_key = ecka.generate_key_pair(CryptoCurve(curve.value), rand)
        eid = generate_eid(pki.ein, rand)
        euicc_cert = pki.issue_euicc_certificate(eid, euicc_key.public_key(), curve, now=now)
        chain = verify_chain(
            euicc_cert,
            role=CertificateRole.EUICC,
            trust_anchors=anchors,
            intermediates=pki.eum_certificates(),
            crls=pki.crls(),
            now=now,
        )
        ok(f"eUICC EID {chain.eid}: eUICC -> EUM -> CI valid")
        issued: dict[CertificateRole, x509.Certificate] = {}
        for role in (CertificateRole.DPAUTH, CertificateRole.DPPB, CertificateRole.DPTLS):
            key = ecka.generate_key_pair(CryptoCurve(curve.value), rand)
            issued[role] = pki.issue_smdp_certificate(
                role,
                key.public_key(),
                curve,
                dns_names=("smdp.rspfed.test",) if role.is_tls else (),
                now=now,
            )
            verify_chain(issued[role], role=role, trust_anchors=anchors, crls=pki.crls(), now=now)
        ok("SM-DP+ DPauth, DPpb and DPtls certificates valid for their roles")
        try:
            verify_chain(
                issued[CertificateRole.DPPB],
                role=CertificateRole.DPAUTH,
                trust_anchors=anchors,
                now=now,
            )
        except CertificateError as exc:
            refused(f"DPpb presented as DPauth: {exc.reason}")
        pki.revoke(issued[CertificateRole.DPAUTH], now=now)
        try:
            verify_chain(
                issued[CertificateRole.DPAUTH],
                role=CertificateRole.DPAUTH,
                trust_anchors=anchors,
                crls=pki.crls(),
                now=now,
            )
        except CertificateError as exc:
            refused(f"revoked DPauth: {exc.reason}")
    return pki


def _chapter_profile_type(data: Path, package: bytes, address: str) -> str:
    chapter(2, "The operator: SM-DP+, network core and a profile type")
    elements = asn1.decode_profile_elements(package)
    summary = summarise(elements)
    say(
        f"   template {DEMO_PROFILE}: {summary.size} octets, {summary.element_total} "
        f'profile elements, SAIP {summary.saip_version}, "{summary.profile_type}"'
    )
    same = asn1.encode_profile_elements(elements) == package
    if not same:  # pragma: no cover - the test suite checks every TS.48 package
        raise click.ClickException("TS.48 package did not re-encode byte-exact")
    ok("strict DER decode of the template, re-encoded byte-exact")
    store = open_store(data)
    try:
        core = Smdp(load_config(data), store, now=lambda: datetime.now(UTC))
        metadata = dict(_METADATA)
        metadata["notificationConfigurationInfo"] = [
            {"events": ["install", "enable", "disable", "delete"], "address": address}
        ]
        core.add_profile_type(ProfileType.from_metadata(_PROFILE_TYPE, package, metadata))
    finally:
        store.close()
    ok(
        f'profile type "{_PROFILE_TYPE}" registered: MILENAGE, notifications to the SM-DP+ '
        "(install, enable, disable, delete)"
    )
    ok("operator store and the network's AuC (subscriber store) beside the SM-DP+'s, mode 0600")
    return _PROFILE_TYPE


async def _carry(device: DemoDevice, bearer: str, octets: int) -> str:
    result = await device.client.use(bearer, octets)
    said = f"{device.name} uses {amount(octets)}: carried {amount(result.carried)}"
    if result.refusal is not None:
        said += f", then refused: {result.refusal.value}"
    return said


async def _show_alerts(device: DemoDevice) -> tuple[int, list[int]]:
    """Show and acknowledge the alerts queued for ``device``: how many, and the pool's
    thresholds among them."""
    assert device.key is not None
    alerts = await device.client.alerts(device.key)
    for alert in alerts:
        what = "pool" if alert.scope == "pool" else "tablet's quota"
        say(
            f"   {click.style('alert', fg='yellow')}  {alert.threshold} % of the {what} "
            f"({amount(alert.used)} of {amount(alert.limit)})"
        )
    await device.client.ack_alerts(device.key, [a.id for a in alerts])
    return len(alerts), [alert.threshold for alert in alerts if alert.scope == "pool"]


async def _chapter_pool(
    admin: Operator,
    subscription_id: str,
    phone: DemoDevice,
    tablet: DemoDevice,
    base: str,
    facts: dict[str, str],
) -> None:
    chapter(13, "One 20 GB pool: metering, alerts at 50/75/90 %, quotas, a top-up")
    assert phone.key is not None
    assert tablet.key is not None
    phone_bearer, tablet_bearer = await phone.bearer(), await tablet.bearer()
    ok("phone and tablet attached for data; the gateway meters each profile")
    for device, bearer, octets in (
        (phone, phone_bearer, 8 * GB),
        (tablet, tablet_bearer, 3 * GB),
        (tablet, tablet_bearer, 2_500_000_000),
        (phone, phone_bearer, 3 * GB),
        (phone, phone_bearer, 2_500_000_000),
    ):
        say(f"   {await _carry(device, bearer, octets)}")
    shown, pool_fired = await _show_alerts(phone)
    fired = ", ".join(f"{t} %" for t in sorted(pool_fired))
    ok(f"the pool's alerts fired as it filled: {fired}")
    again, _ = await _show_alerts(phone)
    ok(f"{shown} alerts delivered to the phone, each once ({again} on the next fetch)")
    usage = await phone.client.usage(phone.key)
    ok(
        f"pool: {amount(usage['pool']['used'])} of {amount(usage['pool']['limit'])} "
        f"({usage['pool']['percent']:.1f} %)"
    )
    pool = PoolService(admin, now=lambda: datetime.now(UTC), rand=os.urandom)
    epoch = pool.top_up(subscription_id, 5 * GB)
    ok(f"the operator tops the pool up by 5 GB: {amount(epoch.limit)} (pool epoch {epoch.index})")
    say(f"   {await _carry(phone, phone_bearer, GB)}")
    await _show_alerts(phone)
    usage = await phone.client.usage(phone.key)
    for d in usage["devices"]:
        if d["state"] == "active":
            quota = amount(d["quota"]) if d.get("quota") else "no quota"
            say(f"   {d['name']:<13} {amount(d['used']):>8}  {quota:<9} data {d['data']}")
    replica, version = await sync_usage(tablet.client, tablet.key, LedgerState(subscription_id))
    total = sum(v for k, v in replica.counters.items() if k[0] == SourceKind.NETWORK)
    ok(
        f"the tablet synced the ledger (version {version}): {amount(total)} used, "
        f"the same as the operator's {amount(usage['pool']['used'])}"
    )
    link = issue_link(
        phone.key, subscription_id=subscription_id, now=datetime.now(UTC), rand=os.urandom
    )
    url = link_url(base, link)
    async with aiohttp.ClientSession() as session:
        tls = operator_tls_context("localhost", trust=store_ci_certificates(phone.euicc.store))
        async with session.get(url, ssl=tls) as response:
            page = await response.text()
            status = response.status
    ok(f"the phone's dashboard link ({len(url)} characters, 10 minutes): HTTP {status}")
    if f"{usage['pool']['percent']:.0f}" not in page:  # pragma: no cover - a broken page
        raise click.ClickException("the dashboard page does not show the pool")
    facts["pool"] = f"{usage['pool']['percent']:.1f} % of {amount(usage['pool']['limit'])}"


async def _attach_refused(device: DemoDevice, service: Service | None) -> str:
    try:
        await device.attach(service)
    except NetworkRefusedError as exc:
        return exc.reason.value
    raise click.ClickException(f"the network let the {device.name} use {service}")


def _token(
    phone: DemoDevice,
    subscription_id: str,
    eid: str,
    device_class: DeviceClass,
    services: set[Service],
    quota: int,
) -> bytes:
    assert phone.key is not None
    return issue_token(
        primary_key=phone.key,
        subscription_id=subscription_id,
        eid=eid,
        device_class=device_class,
        services=services,
        quota=quota,
        now=datetime.now(UTC),
        rand=os.urandom,
    )


async def _story(root: Path, pki: TestPki, rand: Callable[[int], bytes]) -> dict[str, str]:
    facts: dict[str, str] = {}
    data = root / "operator"
    port = free_port()
    address = f"localhost:{port}"
    init_operator_dir(data, pki=pki, address=address, rand=rand)
    package = (_PROFILES / DEMO_PROFILE).read_bytes()
    profile_type = _chapter_profile_type(data, package, address)

    chapter(3, "The operator service on HTTPS (ES9+, ES2+ and the federation API)")
    app = operator_app_for(data, tls=True, passphrase=None)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ssl_context(data))
    await site.start()
    base = f"https://{address}"
    admin = open_operator(data)
    devices: list[DemoDevice] = []
    clients: list[OperatorClient] = []

    def device(name: str) -> DemoDevice:
        card = Euicc.create(root / f"{name}-euicc.db", pki, curves=(Curve.NIST,), rand=rand)
        tls = operator_tls_context("localhost", trust=store_ci_certificates(card.store))
        client = OperatorClient(base, ssl_context=tls)
        clients.append(client)
        devices.append(DemoDevice(name, card, client))
        return devices[-1]

    try:
        ok(f"listening on {base} (TLS 1.2+, CERT.DPtls for localhost)")
        configure_network(admin.store)

        chapter(4, "A subscription and a phone")
        plan = Plan(pool_bytes=20 * GB, device_limit=5, device_classes=_CLASSES)
        subscription, primary = admin.subscribe(profile_type, plan)
        ok(
            f"subscription {subscription.id}: 20 GB pool, up to {plan.device_limit} devices "
            f"({', '.join(c.value for c in DeviceClass if c in plan.device_classes)}), "
            f"profile type {profile_type}"
        )
        say(f"   the phone's activation code: {primary.activation_code}")
        shown = ActivationCode.parse(primary.activation_code).qr_terminal()
        say(shown)
        phone = device("phone")
        ok(f"phone EID {phone.eid} (a software eUICC certified by the test EUM)")
        facts["EID"] = phone.eid

        chapter(5, "The phone scans the QR code: SGP.22 download over HTTPS")
        scanned = read_terminal_qr(shown)
        say(f"   the phone's camera reads the QR code above: {scanned}")
        if scanned != primary.activation_code:  # pragma: no cover - a broken decoder
            raise click.ClickException("the QR code does not read back as the activation code")
        ok("read back from the rendered QR code, not from the operator's string")
        started = time.perf_counter()

        def progress(step: DownloadStep) -> None:
            say(f"   ... {step.value}")

        result = await phone.install(scanned, progress=progress)
        elapsed = (time.perf_counter() - started) * 1000
        ok(
            f'installed and enabled "{result.metadata.profile_name}" from '
            f"{result.metadata.service_provider_name} (ICCID {result.iccid}) in {elapsed:.0f} ms; "
            "notifications delivered"
        )
        facts["ICCID"] = result.iccid
        facts["download"] = f"{elapsed:.0f} ms"
        item = admin.smdp.item(result.iccid)
        ok(f"SM-DP+ inventory: {result.iccid} is {item.state.value if item else '?'}")

        chapter(6, "On the network: EAP-AKA' with the phone's USIM")
        granted = await phone.attach(Service.VOICE)
        ok(f"attached (AUTHENTICATE answered by the USIM over APDUs): {service_list(granted)}")

        chapter(7, "The phone registers its federation key (EAP-AKA', key in AT_MAC's cover)")
        registered = await phone.register_in_store(root / "phone-device.db", base)
        assert phone.key is not None
        ok(
            f"device {registered.id} is the primary; federation key "
            f"{primary_key_id(phone.key.public_key()).hex()[:16]}... registered"
        )

        chapter(8, "A laptop joins by short code over the LAN; a hotspot by a token QR code")
        laptop, hotspot = device("laptop"), device("hotspot")
        await join_by_short_code(
            phone,
            laptop,
            subscription_id=subscription.id,
            operator_url=base,
            store_path=root / "laptop-device.db",
        )
        ok(f"laptop on the network: {service_list(await laptop.attach(Service.DATA))}")
        refused(f"laptop asks for voice: {await _attach_refused(laptop, Service.VOICE)}")
        token = _token(
            phone,
            subscription.id,
            hotspot.eid,
            DeviceClass.HOTSPOT,
            {Service.DATA, Service.TETHERING},
            0,
        )
        uri = token_uri(token)
        say(f"   the phone signs a token for the hotspot's EID: {uri[:60]}...")
        token_qr = RspfedUri.parse(uri).qr_terminal()
        say(token_qr)
        scanned_token = read_terminal_qr(token_qr)
        say(f"   the hotspot scans it: {scanned_token[:40]}...")
        enrolment = await hotspot.client.redeem(token_from_uri(scanned_token), hotspot.eid)
        await hotspot.install(enrolment.activation_code)
        await hotspot.register()
        granted = await hotspot.attach(Service.TETHERING)
        ok(f"hotspot redeemed its token: {hotspot.iccid}; on the network: {service_list(granted)}")
        try:
            await hotspot.client.redeem(token, hotspot.eid)
        except TokenConsumedError as exc:
            refused(f"the same token again: {exc}")

        watch = device("watch")
        told_watch = await chapter_watch(
            9,
            root=root,
            phone=phone,
            watch=watch,
            subscription_id=subscription.id,
            operator_url=base,
        )
        facts["watch"] = (
            f"ICCID {told_watch.iccid}, IMSI {told_watch.imsi}: {told_watch.relayed} ES10 "
            f"requests relayed over BLE in {told_watch.seconds:.1f} s"
        )

        chapter(10, "A tablet joins from the cloud (join request, approved by the phone)")
        tablet = device("tablet")
        ticket = await tablet.client.join(
            subscription.id, tablet.eid, DeviceClass.TABLET, "kitchen"
        )
        ok(f"tablet asked to join: request {ticket.request.id}")
        pending = await phone.client.requests(phone.key)
        request = next(r for r in pending if r.id == ticket.request.id)
        token = _token(
            phone,
            subscription.id,
            request.eid,
            request.device_class,
            {Service.DATA, Service.VOICE, Service.SMS},
            5 * GB,
        )
        await phone.client.approve(phone.key, request.id, token)
        ok(f'phone approved "{request.name}" ({request.device_class.value}, EID {request.eid})')
        collected = await tablet.client.collect(ticket.request.id, ticket.secret)
        if collected is None:  # pragma: no cover - approved just above
            raise click.ClickException("the join request is still pending")
        await tablet.install(collected.activation_code)
        await tablet.register()
        granted = await tablet.attach(Service.VOICE)
        ok(
            f"tablet collected its code, installed {tablet.iccid}; "
            f"on the network: {service_list(granted)}"
        )

        chapter(11, "One subscription, five devices, five profiles")
        listed = await phone.client.devices(phone.key)
        for d in listed:
            say(
                f"   {d.device_class.value:<8} {d.name:<13} {d.state.value:<7} ICCID {d.iccid} "
                f"IMSI {d.imsi}  {service_list(d.services)}"
            )
        iccids = {d.iccid for d in listed}
        ok(f"{len(listed)} devices, {len(iccids)} distinct profiles: nothing cloned")
        facts["devices"] = ", ".join(d.device_class.value for d in listed)

        chapter(12, "The phone removes the hotspot")
        hotspot_id = next(d.id for d in listed if d.device_class is DeviceClass.HOTSPOT)
        await phone.client.remove(phone.key, hotspot_id)
        ok(f"device {hotspot_id} removed; the slot is free")
        refused(f"hotspot attaches: {await _attach_refused(hotspot, None)}")
        assert hotspot.key is not None
        told = await hotspot.client.status(hotspot.key)
        removed_iccid = hotspot.iccid
        await hotspot.delete_profile()
        ok(f"hotspot's next sync: {told.state.value}; its LPA deleted {removed_iccid}")
        remaining = [d for d in await phone.client.devices(phone.key) if d.occupies_slot]
        facts["removed"] = f"hotspot ({len(remaining)} devices left)"

        await _chapter_pool(admin, subscription.id, phone, tablet, base, facts)
        facts["roaming"] = await chapter_roaming(14, admin, phone)
        facts["backup"] = await chapter_backup(
            (15, 16),
            root=root,
            pki=pki,
            rand=rand,
            template=package,
            admin=admin,
            phone=phone,
            phone_store=root / "phone-euicc.db",
            base=base,
        )
        moved = await chapter_device_change(
            17, root=root, phone=phone, device=device, watch=watch, tablet=tablet, laptop=laptop
        )
        phone = moved.phone  # device() listed it among the devices already
        facts["change"] = (
            f"ICCID {moved.old_iccid} -> {moved.new_iccid} in {moved.seconds:.1f} s; "
            f"still attached: {', '.join(moved.attached)}"
        )
        chapter(18, "The subscription at the end: devices, profiles, pool")
        await _final_tables(phone, devices)
    finally:
        for client in clients:
            await client.close()
        for each in devices:
            each.euicc.close()
            if each.store is not None:
                each.store.close()
        close_operator(admin)
        await runner.cleanup()
    return facts


async def _final_tables(phone: DemoDevice, devices: list[DemoDevice]) -> None:
    """The closing tables: every device of the subscription, each eUICC's profiles,
    the pool (used/limit and per device)."""
    assert phone.key is not None
    listed = await phone.client.devices(phone.key)
    say(click.style("   Devices", underline=True))
    say(f"   {'name':<13} {'class':<8} {'role':<9} {'EID':<32}  {'ICCID':<20}  state")
    for d in listed:
        say(
            f"   {d.name:<13} {d.device_class.value:<8} {d.role.value:<9} {d.eid or '-':<32}  "
            f"{d.iccid:<20}  {d.state.value}"
        )
    say(click.style("   Profiles on each eUICC", underline=True))
    for each in devices:
        found = profiles_of(each)
        first = f"   {each.name:<8} EID {each.eid}"
        if not found:
            say(f"{first}  (no profile)")
        for i, p in enumerate(found):
            say(
                f"{first if i == 0 else ' ' * len(first)}  {p.iccid}  {p.state:<8} "
                f"{p.profile_name} [{p.service_provider_name}]"
            )
    usage = await phone.client.usage(phone.key)
    pool = usage["pool"]
    say(click.style("   Pool", underline=True))
    say(f"   used {amount(pool['used'])} of {amount(pool['limit'])} ({pool['percent']:.1f} %)")
    for d in usage["devices"]:
        quota = amount(d["quota"]) if d.get("quota") else "-"
        say(
            f"   {d['name']:<13} {d['device-class']:<8} {amount(d['used']):>8}  quota {quota:<7} "
            f"{d['state']}"
        )
    ok(
        f"{len(listed)} devices ({sum(1 for d in listed if d.occupies_slot)} in service), "
        f"{len({d.iccid for d in listed})} profiles, one pool"
    )


@click.command("demo")
@click.option(
    "--step",
    is_flag=True,
    help="Pause before each chapter (press Enter); without a terminal it does not pause.",
)
@reports_errors
def demo(step: bool) -> None:
    """Tell the whole story (PKI, operator, a phone, a laptop, a watch, a tablet, the pool,
    roaming, a backup carrier) in a temporary directory; no arguments."""
    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    say(click.style("rspfed demo", bold=True) + " - one eSIM subscription across devices")
    PACING.start(step=step)
    with tempfile.TemporaryDirectory(prefix="rspfed-demo-") as tmp:
        root = Path(tmp)
        pki = _chapter_pki(root / "pki", now, os.urandom)
        facts = asyncio.run(_story(root, pki, os.urandom))
    PACING.close()
    say(click.style("   In short", underline=True))
    for name, value in facts.items():
        say(f"   {name:<10} {value}")
    say()
    say(
        "   chapter times: "
        + ", ".join(f"{number} {seconds:.1f} s" for number, _, seconds in PACING.times)
    )
    paced = sum(seconds for _, _, seconds in PACING.times)
    total = time.perf_counter() - started
    say(f"demo finished in {total:.1f} s" + (f" ({paced:.1f} s of chapters)" if step else ""))
