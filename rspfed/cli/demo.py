"""``rspfed demo``: the story so far, in one run, on a fresh machine.

No arguments, a temporary directory, about a second, exit status 0.  Each
chapter uses the public library API the way an application would; later
issues add chapters (devices joining the subscription, switching, ...).

1. A test PKI: CIs, EUMs and CRLs on both curves; every chain validated for
   its role; a wrong role and a revoked certificate refused with the reason.
2. The operator's SM-DP+ data directory (DPauth/DPpb/DPtls, ES2+ client CA)
   and a profile type made from a GSMA TS.48 template (MILENAGE).
3. The SM-DP+ served over HTTPS on loopback (ES9+ and mutual-TLS ES2+).
4. A phone: a software eUICC certified by the test EUM.
5. The operator's ES2+ order (DownloadOrder + ConfirmOrder, bound to the
   EID) and its activation code as a QR code in the terminal.
6. The LPA's SGP.22 download over HTTPS, step by step, into the eUICC over
   APDUs (logical channel, STORE DATA).
7. EnableProfile, then the network's 3G AKA challenge (RAND/AUTN made from
   the subscriber's K/OPc) answered by the USIM: RES = XRES, CK and IK agree.
8. The pending notifications delivered to the SM-DP+ and removed; the
   SM-DP+ inventory shows the profile installed.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import socket
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import click
from aiohttp import web
from cryptography import x509

from rspfed import asn1
from rspfed.cli._util import reports_errors
from rspfed.crypto import ecka
from rspfed.crypto.aka import build_autn
from rspfed.crypto.curves import Curve as CryptoCurve
from rspfed.crypto.milenage import Milenage
from rspfed.errors import CertificateError
from rspfed.es2p import Es2Client, client_ssl_context
from rspfed.es2p.client import requester_of
from rspfed.euicc.card import Card
from rspfed.euicc.euicc import Euicc
from rspfed.lpa import (
    ActivationCode,
    ApduEs10,
    DownloadStep,
    Es9Settings,
    Lpa,
    download,
    store_ci_certificates,
)
from rspfed.pki import CertificateRole, Curve, generate_eid, verify_chain
from rspfed.pki.testpki import TestPki
from rspfed.saip import summarise
from rspfed.smdp import InventoryItem, ProfileType, Smdp
from rspfed.smdp.datadir import TlsFiles, init_data_dir, load_config, open_store
from rspfed.smdp.datadir import tls_paths as load_tls_paths
from rspfed.smdp.http import make_app, server_ssl_context, smdp_factory

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
_USIM_AID_PREFIX: Final = bytes.fromhex("A0000000871002")  # 3GPP RID + USIM code


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
    _chapter(2, "The operator's SM-DP+ and its profile type")
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
    return _PROFILE_TYPE


async def _order(tls: TlsFiles, base: str, profile_type: str, eid: str) -> tuple[str, str]:
    ctx = client_ssl_context(cert=tls.operator_cert, key=tls.operator_key, ca_file=tls.server_ca)
    requester = requester_of(str(tls.operator_cert))
    async with Es2Client(base, requester=requester, ssl_context=ctx) as es2:
        iccid = await es2.download_order(profile_type=profile_type)
        order = await es2.confirm_order(iccid=iccid, eid=eid, release_flag=True)
    code = order.activation_code
    if code is None:  # pragma: no cover - our SM-DP+ always sends its address
        raise click.ClickException("the SM-DP+ did not send its address")
    return iccid, code


def _authenticate(card: Card, k: bytes, opc: bytes, rand: Callable[[int], bytes]) -> None:
    """The network's side of 3G AKA against the enabled profile's USIM, over APDUs."""
    select = bytes([0x00, 0xA4, 0x04, 0x0C, len(_USIM_AID_PREFIX)]) + _USIM_AID_PREFIX
    if card.transmit(select)[-2:] != b"\x90\x00":
        raise click.ClickException("the USIM of the enabled profile cannot be selected")
    algorithm = Milenage(k, opc)
    challenge = rand(16)
    sqn = (1 << 5).to_bytes(6, "big")  # SEQ 1, IND 0: fresh for a new profile
    autn, expected = build_autn(algorithm, challenge, sqn, b"\x80\x00")
    command = (
        bytes.fromhex("0088008122") + b"\x10" + challenge + b"\x10" + autn.to_bytes() + b"\x00"
    )
    answer = card.transmit(command)
    if answer[-2:] != b"\x90\x00" or answer[:1] != b"\xdb":
        raise click.ClickException(f"AUTHENTICATE failed: status {answer[-2:].hex()}")
    body = answer[1:-2]
    res = body[1 : 1 + body[0]]
    rest = body[1 + body[0] :]
    ck = rest[1 : 1 + rest[0]]
    rest = rest[1 + rest[0] :]
    ik = rest[1 : 1 + rest[0]]
    _say(f"   network side: RAND {challenge.hex()[:16]}..., AUTN from K/OPc (SM-DP+ inventory)")
    if not (
        hmac.compare_digest(res, expected.res)
        and hmac.compare_digest(ck, expected.ck)
        and hmac.compare_digest(ik, expected.ik)
    ):
        raise click.ClickException("AUTHENTICATE: RES/CK/IK differ from the network's")
    _ok(f"AUTHENTICATE (3G context): RES = XRES ({len(res)} octets), CK and IK agree")


async def _story(root: Path, pki: TestPki, rand: Callable[[int], bytes]) -> dict[str, str]:
    facts: dict[str, str] = {}
    data = root / "smdp"
    port = _free_port()
    address = f"localhost:{port}"
    init_data_dir(data, pki, address=address, rand=rand)
    package = (_PROFILES / DEMO_PROFILE).read_bytes()
    profile_type = _chapter_profile_type(data, package, address)

    _chapter(3, "The SM-DP+ on HTTPS (ES9+ for devices, ES2+ for the operator)")
    app = make_app(smdp_factory(data), deliver_progress=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ssl_context(data))
    await site.start()
    base = f"https://{address}"
    try:
        _ok(
            f"listening on {base} (TLS 1.2+, CERT.DPtls for localhost, ES2+ needs a client "
            "certificate)"
        )

        _chapter(4, "A phone with a software eUICC")
        phone = Euicc.create(
            root / "phone-euicc.db",
            pki,
            curves=(Curve.NIST,),
            rand=rand,
        )
        with phone:
            eid = phone.eid
            _ok(f"EID {eid} (certified by the test EUM, store mode 0600)")
            facts["EID"] = eid

            _chapter(5, "The operator orders a profile for it (ES2+, mutual TLS)")
            iccid, code = await _order(load_tls_paths(data), base, profile_type, eid)
            _ok(f"DownloadOrder + ConfirmOrder: ICCID {iccid}, bound to the EID")
            _say(f"   activation code: {code}")
            _say(ActivationCode.parse(code).qr_terminal())
            facts["ICCID"] = iccid

            _chapter(6, "The phone scans the QR code: SGP.22 download over HTTPS")
            es10 = ApduEs10(phone.card)
            trust = store_ci_certificates(phone.store)
            settings = Es9Settings(trust=trust)
            started = time.perf_counter()

            def progress(step: DownloadStep) -> None:
                _say(f"   ... {step.value}")

            result = await download(es10, code, progress=progress, settings=settings)
            elapsed = (time.perf_counter() - started) * 1000
            _ok(
                f'installed "{result.metadata.profile_name}" from '
                f"{result.metadata.service_provider_name} in {elapsed:.0f} ms; "
                "installation result delivered"
            )
            facts["download"] = f"{elapsed:.0f} ms"

            _chapter(7, "Enable it and check it works on the network")
            lpa = Lpa(es10, settings=settings)
            lpa.enable(iccid)
            states = {p.iccid: p.state for p in lpa.profiles()}
            _ok(f"profile {iccid} is {states.get(iccid)}")
            es10.close()
            item = _inventory_item(data, iccid)
            _authenticate(phone.card, item.k, item.opc, rand)

            _chapter(8, "Notifications back to the SM-DP+")
            pending = lpa.notifications()
            delivered = await lpa.deliver_notifications()
            _ok(
                f"{len(delivered)} of {len(pending)} pending notification(s) delivered "
                "and removed from the eUICC"
            )
            item = _inventory_item(data, iccid)
            _ok(f"SM-DP+ inventory: {iccid} is {item.state.value}")
            facts["inventory"] = item.state.value
    finally:
        await runner.cleanup()
    return facts


def _inventory_item(data: Path, iccid: str) -> InventoryItem:
    store = open_store(data)
    try:
        item = Smdp(load_config(data), store, now=lambda: datetime.now(UTC)).item(iccid)
    finally:
        store.close()
    if item is None:  # pragma: no cover
        raise click.ClickException(f"ICCID {iccid} is not in the SM-DP+ inventory")
    return item


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@click.command("demo")
@reports_errors
def demo() -> None:
    """Show the story so far (PKI, SM-DP+, eUICC, LPA) in a temporary directory."""
    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    _say(click.style("rspfed demo", bold=True) + " - one eSIM subscription across devices")
    with tempfile.TemporaryDirectory(prefix="rspfed-demo-") as tmp:
        root = Path(tmp)
        pki = _chapter_pki(root / "pki", now, os.urandom)
        facts = asyncio.run(_story(root, pki, os.urandom))
    _chapter(9, "Summary")
    for name, value in facts.items():
        _say(f"   {name:<10} {value}")
    _say()
    _say(f"done in {time.perf_counter() - started:.2f} s")
