"""``rspfed demo``: the story so far, in one run, on a fresh machine.

No arguments, a temporary directory, about a second, exit status 0.  Each
chapter uses the public library API the way an application would; later
issues add chapters (devices joining the subscription, switching, ...).

1. A test PKI: CIs, EUMs and CRLs on both curves; every chain validated for
   its role; a wrong role and a revoked certificate refused with the reason.
2. The operator's data directory: SM-DP+ (DPauth/DPpb/DPtls, ES2+ client
   CA), operator and network stores, and a profile type made from a GSMA
   TS.48 template (MILENAGE).
3. The operator service over HTTPS on loopback: ES9+, ES2+ and the
   federation API in one application.
4. A subscription (20 GB pool, 5 devices) and its primary's activation code
   as a QR code; a phone with a software eUICC.
5. The LPA's SGP.22 download over HTTPS, step by step, into the eUICC over
   APDUs; enabled; notifications delivered.
6. The phone attaches to the simulated network: EAP-AKA' answered by its
   USIM (AUTHENTICATE over APDUs); the services its class gets.
7. The phone registers its federation key (EAP-AKA', the key in an
   attribute covered by AT_MAC).
8. A laptop and a hotspot join by QR code: the phone signs a federation
   token per EID; each redeems it for its own linked profile; the network
   gives the laptop data and refuses it voice, the hotspot tethering; the
   used token is refused.
9. A tablet joins from the cloud: join request, the phone approves it with a
   token, the tablet collects its code.
10. The phone lists the subscription's four devices: four profiles.
11. The phone removes the laptop: the network refuses it, its next sync tells
    it, its LPA deletes the profile.
12. The shared pool: the phone and the tablet carry traffic through the
    metering gateway; alerts at 50/75/90 % of the pool and of the tablet's
    quota, each delivered once; the tablet stopped at its quota; a top-up
    re-arms the thresholds above its opening ratio; the tablet syncs the
    ledger; the primary's signed dashboard link opens the usage page.
"""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import aiohttp
import attrs
import click
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed import asn1
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
from rspfed.federation.types import Device, Plan
from rspfed.lpa import (
    ActivationCode,
    ApduEs10,
    DownloadResult,
    DownloadStep,
    Es9Settings,
    Lpa,
    download,
    store_ci_certificates,
)
from rspfed.network import NetworkRefusedError
from rspfed.network.usim import eap_usim, read_usim_identity
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
_METADATA: Final[dict[str, Any]] = {
    "serviceProviderName": "rspfed mobile",
    "profileName": "Demo subscription",
    "profileClass": "operational",
    "iccidPrefix": "8999001",
    "imsiPrefix": "00101",
    "op": "cdc202d5123e20f62b6d676ac72cb318",  # TS 35.208 set 1's OP
    "algorithm": "milenage",
}
_GB: Final = 10**9


def _say(text: str = "") -> None:
    click.echo(text)


def _chapter(number: int, title: str) -> None:
    _say()
    _say(click.style(f"{number}. {title}", bold=True))


def _ok(text: str) -> None:
    _say(f"   {click.style('ok', fg='green')}  {text}")


def _refused(text: str) -> None:
    _say(f"   {click.style('no', fg='yellow')}  {text}")


def _chapter_pki(directory: Path, now: datetime, rand: Callable[[int], bytes]) -> TestPki:
    _chapter(1, "A test PKI (GSMA SGP.22 roles, both curves)")
    pki = TestPki.create(directory, now=now, rand=rand)
    _say(f"   written to {directory} (private keys mode 0600)")
    anchors = pki.ci_certificates()
    for curve in (Curve.NIST, Curve.BRAINPOOL):
        material = pki.material(curve)
        _say(f"   {curve.spec_name}: CI key id {material.ci_pkid.hex()}")
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
        _ok(f"eUICC EID {chain.eid}: eUICC -> EUM -> CI valid")
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
        _ok("SM-DP+ DPauth, DPpb and DPtls certificates valid for their roles")
        try:
            verify_chain(
                issued[CertificateRole.DPPB],
                role=CertificateRole.DPAUTH,
                trust_anchors=anchors,
                now=now,
            )
        except CertificateError as exc:
            _refused(f"DPpb presented as DPauth: {exc.reason}")
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
            _refused(f"revoked DPauth: {exc.reason}")
    return pki


def _chapter_profile_type(data: Path, package: bytes, address: str) -> str:
    _chapter(2, "The operator: SM-DP+, network core and a profile type")
    elements = asn1.decode_profile_elements(package)
    summary = summarise(elements)
    _say(
        f"   template {DEMO_PROFILE}: {summary.size} octets, {summary.element_total} "
        f'profile elements, SAIP {summary.saip_version}, "{summary.profile_type}"'
    )
    same = asn1.encode_profile_elements(elements) == package
    if not same:  # pragma: no cover - the test suite checks every TS.48 package
        raise click.ClickException("TS.48 package did not re-encode byte-exact")
    _ok("strict DER decode of the template, re-encoded byte-exact")
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
    _ok(
        f'profile type "{_PROFILE_TYPE}" registered: MILENAGE, notifications to the SM-DP+ '
        "(install, enable, disable, delete)"
    )
    _ok("operator store and the network's AuC (subscriber store) beside the SM-DP+'s, mode 0600")
    return _PROFILE_TYPE


@attrs.define
class _Device:
    """One of the demo's devices: its eUICC, its key, its client to the operator."""

    name: str
    euicc: Euicc
    client: OperatorClient
    key: ec.EllipticCurvePrivateKey | None = None
    iccid: str | None = None

    @property
    def eid(self) -> str:
        return self.euicc.eid

    async def install(
        self, code: str, *, progress: Callable[[DownloadStep], None] | None = None
    ) -> DownloadResult:
        """Download over HTTPS into the eUICC over APDUs, enable, send the notifications."""
        es10 = ApduEs10(self.euicc.card)
        try:
            settings = Es9Settings(trust=store_ci_certificates(self.euicc.store))
            result = await download(es10, code, progress=progress, settings=settings)
            lpa = Lpa(es10, settings=settings)
            if self.iccid is not None:
                lpa.disable(self.iccid)
            lpa.enable(result.iccid)
            await lpa.deliver_notifications()
        finally:
            es10.close()
        self.iccid = result.iccid
        return result

    def _usim(self) -> dict[str, Any]:
        imsi, mnc_length = read_usim_identity(self.euicc.card)
        return {"usim": eap_usim(self.euicc.card), "imsi": imsi, "mnc_length": mnc_length}

    async def attach(self, service: Service | None = None) -> frozenset[Service]:
        """EAP-AKA' with the enabled profile's USIM; the services the network grants."""
        return await self.client.attach(service=service, **self._usim())

    async def bearer(self) -> str:
        """Attach for data (EAP-AKA'); the bearer to carry traffic on."""
        return await self.client.attach_data(**self._usim())

    async def register(self) -> Device:
        """A fresh P-256 key registered by EAP-AKA' with this device's USIM."""
        self.key = ec.generate_private_key(ec.SECP256R1())
        return await self.client.register(eid=self.eid, key=self.key, **self._usim())

    async def delete_profile(self) -> None:
        es10 = ApduEs10(self.euicc.card)
        try:
            lpa = Lpa(es10, settings=Es9Settings(trust=store_ci_certificates(self.euicc.store)))
            assert self.iccid is not None
            lpa.disable(self.iccid)
            lpa.delete(self.iccid)
            await lpa.deliver_notifications()
        finally:
            es10.close()
        self.iccid = None


async def _carry(device: _Device, bearer: str, octets: int) -> str:
    result = await device.client.use(bearer, octets)
    said = f"{device.name} uses {_size(octets)}: carried {_size(result.carried)}"
    if result.refusal is not None:
        said += f", then refused: {result.refusal.value}"
    return said


def _size(octets: int) -> str:
    return f"{octets / _GB:.1f} GB" if octets >= _GB // 10 else f"{octets / 10**6:.0f} MB"


async def _show_alerts(device: _Device) -> int:
    assert device.key is not None
    alerts = await device.client.alerts(device.key)
    for alert in alerts:
        what = "pool" if alert.scope == "pool" else "tablet's quota"
        _say(
            f"   {click.style('alert', fg='yellow')}  {alert.threshold} % of the {what} "
            f"({_size(alert.used)} of {_size(alert.limit)})"
        )
    await device.client.ack_alerts(device.key, [a.id for a in alerts])
    return len(alerts)


async def _chapter_pool(
    admin: Operator,
    subscription_id: str,
    phone: _Device,
    tablet: _Device,
    base: str,
    facts: dict[str, str],
) -> None:
    _chapter(12, "One 20 GB pool: metering, alerts at 50/75/90 %, quotas, a top-up")
    assert phone.key is not None
    assert tablet.key is not None
    phone_bearer, tablet_bearer = await phone.bearer(), await tablet.bearer()
    _ok("phone and tablet attached for data; the gateway meters each profile")
    for device, bearer, octets in (
        (phone, phone_bearer, 8 * _GB),
        (tablet, tablet_bearer, 3 * _GB),
        (tablet, tablet_bearer, 2_500_000_000),
        (phone, phone_bearer, 3 * _GB),
        (phone, phone_bearer, 2_500_000_000),
    ):
        _say(f"   {await _carry(device, bearer, octets)}")
    shown = await _show_alerts(phone)
    again = await _show_alerts(phone)
    _ok(f"{shown} alerts delivered to the phone, each once ({again} on the next fetch)")
    usage = await phone.client.usage(phone.key)
    _ok(
        f"pool: {_size(usage['pool']['used'])} of {_size(usage['pool']['limit'])} "
        f"({usage['pool']['percent']:.1f} %)"
    )
    pool = PoolService(admin, now=lambda: datetime.now(UTC), rand=os.urandom)
    epoch = pool.top_up(subscription_id, 5 * _GB)
    _ok(f"the operator tops the pool up by 5 GB: {_size(epoch.limit)} (pool epoch {epoch.index})")
    _say(f"   {await _carry(phone, phone_bearer, _GB)}")
    await _show_alerts(phone)
    usage = await phone.client.usage(phone.key)
    for d in usage["devices"]:
        if d["state"] == "active":
            quota = _size(d["quota"]) if d.get("quota") else "no quota"
            _say(f"   {d['name']:<8} {_size(d['used']):>8}  {quota:<9} data {d['data']}")
    replica, version = await sync_usage(tablet.client, tablet.key, LedgerState(subscription_id))
    total = sum(v for k, v in replica.counters.items() if k[0] == SourceKind.NETWORK)
    _ok(
        f"the tablet synced the ledger (version {version}): {_size(total)} used, "
        f"the same as the operator's {_size(usage['pool']['used'])}"
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
    _ok(f"the phone's dashboard link ({len(url)} characters, 10 minutes): HTTP {status}")
    if f"{usage['pool']['percent']:.0f}" not in page:  # pragma: no cover - a broken page
        raise click.ClickException("the dashboard page does not show the pool")
    facts["pool"] = f"{usage['pool']['percent']:.1f} % of {_size(usage['pool']['limit'])}"


def _services(granted: frozenset[Service]) -> str:
    return ", ".join(s.value for s in Service if s in granted)


async def _attach_refused(device: _Device, service: Service | None) -> str:
    try:
        await device.attach(service)
    except NetworkRefusedError as exc:
        return exc.reason.value
    raise click.ClickException(f"the network let the {device.name} use {service}")


def _token(
    phone: _Device,
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
    port = _free_port()
    address = f"localhost:{port}"
    init_operator_dir(data, pki=pki, address=address, rand=rand)
    package = (_PROFILES / DEMO_PROFILE).read_bytes()
    profile_type = _chapter_profile_type(data, package, address)

    _chapter(3, "The operator service on HTTPS (ES9+, ES2+ and the federation API)")
    app = operator_app_for(data, tls=True, passphrase=None)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ssl_context(data))
    await site.start()
    base = f"https://{address}"
    admin = open_operator(data)
    euiccs: list[Euicc] = []
    clients: list[OperatorClient] = []

    def device(name: str) -> _Device:
        card = Euicc.create(root / f"{name}-euicc.db", pki, curves=(Curve.NIST,), rand=rand)
        euiccs.append(card)
        tls = operator_tls_context("localhost", trust=store_ci_certificates(card.store))
        client = OperatorClient(base, ssl_context=tls)
        clients.append(client)
        return _Device(name, card, client)

    try:
        _ok(f"listening on {base} (TLS 1.2+, CERT.DPtls for localhost)")

        _chapter(4, "A subscription and a phone")
        plan = Plan(pool_bytes=20 * _GB, device_limit=5)
        subscription, primary = admin.subscribe(profile_type, plan)
        _ok(
            f"subscription {subscription.id}: 20 GB pool, up to {plan.device_limit} devices, "
            f"profile type {profile_type}"
        )
        _say(f"   the phone's activation code: {primary.activation_code}")
        _say(ActivationCode.parse(primary.activation_code).qr_terminal())
        phone = device("phone")
        _ok(f"phone EID {phone.eid} (a software eUICC certified by the test EUM)")
        facts["EID"] = phone.eid

        _chapter(5, "The phone scans the QR code: SGP.22 download over HTTPS")
        started = time.perf_counter()

        def progress(step: DownloadStep) -> None:
            _say(f"   ... {step.value}")

        result = await phone.install(primary.activation_code, progress=progress)
        elapsed = (time.perf_counter() - started) * 1000
        _ok(
            f'installed and enabled "{result.metadata.profile_name}" from '
            f"{result.metadata.service_provider_name} (ICCID {result.iccid}) in {elapsed:.0f} ms; "
            "notifications delivered"
        )
        facts["ICCID"] = result.iccid
        facts["download"] = f"{elapsed:.0f} ms"
        item = admin.smdp.item(result.iccid)
        _ok(f"SM-DP+ inventory: {result.iccid} is {item.state.value if item else '?'}")

        _chapter(6, "On the network: EAP-AKA' with the phone's USIM")
        granted = await phone.attach(Service.VOICE)
        _ok(f"attached (AUTHENTICATE answered by the USIM over APDUs): {_services(granted)}")

        _chapter(7, "The phone registers its federation key (EAP-AKA', key in AT_MAC's cover)")
        registered = await phone.register()
        assert phone.key is not None
        _ok(
            f"device {registered.id} is the primary; federation key "
            f"{primary_key_id(phone.key.public_key()).hex()[:16]}... registered"
        )

        _chapter(8, "A laptop and a hotspot join by QR code (federation tokens)")
        laptop, hotspot = device("laptop"), device("hotspot")
        token = _token(
            phone, subscription.id, laptop.eid, DeviceClass.LAPTOP, {Service.DATA}, 5 * _GB
        )
        uri = token_uri(token)
        _say(f"   the phone signs a token for the laptop's EID: {uri[:60]}...")
        _say(RspfedUri.parse(uri).qr_terminal())
        enrolment = await laptop.client.redeem(token_from_uri(uri), laptop.eid)
        await laptop.install(enrolment.activation_code)
        _ok(f"laptop redeemed it: its own profile {laptop.iccid}, bound to its EID")
        _ok(f"laptop on the network: {_services(await laptop.attach(Service.DATA))}")
        _refused(f"laptop asks for voice: {await _attach_refused(laptop, Service.VOICE)}")
        await laptop.register()
        _ok("laptop registered its own device key with its own USIM (EAP-AKA')")
        try:
            await laptop.client.redeem(token, laptop.eid)
        except TokenConsumedError as exc:
            _refused(f"the same token again: {exc}")
        token = _token(
            phone,
            subscription.id,
            hotspot.eid,
            DeviceClass.HOTSPOT,
            {Service.DATA, Service.TETHERING},
            0,
        )
        enrolment = await hotspot.client.redeem(token, hotspot.eid)
        await hotspot.install(enrolment.activation_code)
        granted = await hotspot.attach(Service.TETHERING)
        _ok(f"hotspot redeemed its token: {hotspot.iccid}; on the network: {_services(granted)}")

        _chapter(9, "A tablet joins from the cloud (join request, approved by the phone)")
        tablet = device("tablet")
        ticket = await tablet.client.join(
            subscription.id, tablet.eid, DeviceClass.TABLET, "kitchen"
        )
        _ok(f"tablet asked to join: request {ticket.request.id}")
        pending = await phone.client.requests(phone.key)
        request = next(r for r in pending if r.id == ticket.request.id)
        token = _token(
            phone,
            subscription.id,
            request.eid,
            request.device_class,
            {Service.DATA, Service.VOICE, Service.SMS},
            5 * _GB,
        )
        await phone.client.approve(phone.key, request.id, token)
        _ok(f'phone approved "{request.name}" ({request.device_class.value}, EID {request.eid})')
        collected = await tablet.client.collect(ticket.request.id, ticket.secret)
        if collected is None:  # pragma: no cover - approved just above
            raise click.ClickException("the join request is still pending")
        await tablet.install(collected.activation_code)
        await tablet.register()
        granted = await tablet.attach(Service.VOICE)
        _ok(
            f"tablet collected its code, installed {tablet.iccid}; "
            f"on the network: {_services(granted)}"
        )

        _chapter(10, "One subscription, four devices, four profiles")
        listed = await phone.client.devices(phone.key)
        for d in listed:
            _say(
                f"   {d.device_class.value:<8} {d.name:<8} {d.state.value:<7} ICCID {d.iccid} "
                f"IMSI {d.imsi}  {_services(d.services)}"
            )
        iccids = {d.iccid for d in listed}
        _ok(f"{len(listed)} devices, {len(iccids)} distinct profiles: nothing cloned")
        facts["devices"] = ", ".join(d.device_class.value for d in listed)

        _chapter(11, "The phone removes the laptop")
        laptop_id = next(d.id for d in listed if d.device_class is DeviceClass.LAPTOP)
        await phone.client.remove(phone.key, laptop_id)
        _ok(f"device {laptop_id} removed; the slot is free")
        _refused(f"laptop attaches: {await _attach_refused(laptop, None)}")
        assert laptop.key is not None
        told = await laptop.client.status(laptop.key)
        removed_iccid = laptop.iccid
        await laptop.delete_profile()
        _ok(f"laptop's next sync: {told.state.value}; its LPA deleted {removed_iccid}")
        remaining = [d for d in await phone.client.devices(phone.key) if d.occupies_slot]
        facts["removed"] = f"laptop ({len(remaining)} devices left)"

        await _chapter_pool(admin, subscription.id, phone, tablet, base, facts)
    finally:
        for client in clients:
            await client.close()
        for card in euiccs:
            card.close()
        close_operator(admin)
        await runner.cleanup()
    return facts


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@click.command("demo")
@reports_errors
def demo() -> None:
    """Show the story so far (PKI, operator, eUICCs, devices joining) in a temporary directory."""
    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    _say(click.style("rspfed demo", bold=True) + " - one eSIM subscription across devices")
    with tempfile.TemporaryDirectory(prefix="rspfed-demo-") as tmp:
        root = Path(tmp)
        pki = _chapter_pki(root / "pki", now, os.urandom)
        facts = asyncio.run(_story(root, pki, os.urandom))
    _chapter(13, "Summary")
    for name, value in facts.items():
        _say(f"   {name:<10} {value}")
    _say()
    _say(f"done in {time.perf_counter() - started:.2f} s")
