"""``rspfed demo``: the story so far, in one run, on a fresh machine.

No arguments, a temporary directory, a few seconds, exit status 0.  Each
chapter uses the public library API the way an application would; later
issues add chapters (a download over HTTPS, devices joining, ...).

1. A test PKI: CIs, EUMs and CRLs on both curves; an eUICC and an SM-DP+
   certified; every chain validated for its role; a wrong role and a
   revoked certificate refused with the reason.
2. A GSMA TS.48 test profile decoded, summarised and re-encoded byte-exact.
3. The profile bound for one eUICC with SGP.22's crypto: one-time keys,
   ECKA-DH, the X9.63 KDF and BSP segments, then verified and decrypted back;
   one flipped bit is caught by the MAC.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click
from cryptography import x509

from rspfed import asn1
from rspfed.cli._util import reports_errors
from rspfed.crypto import bsp, ecka, kdf
from rspfed.crypto.curves import Curve as CryptoCurve
from rspfed.errors import CertificateError, IntegrityError
from rspfed.pki import CertificateRole, Curve, generate_eid, verify_chain
from rspfed.pki.testpki import TestPki
from rspfed.saip import summarise

__all__ = ["DEMO_PROFILE", "demo"]

DEMO_PROFILE = "TS48v5_SAIP2.3_BERTLV_SUCI.der"
"""The TS.48 package the demo shows (shipped in ``rspfed/data/ts48``)."""

_PROFILES = Path(__file__).resolve().parent.parent / "data" / "ts48"


def _say(text: str = "") -> None:
    click.echo(text)


def _chapter(number: int, title: str) -> None:
    _say()
    _say(click.style(f"{number}. {title}", bold=True))


def _ok(text: str) -> None:
    _say(f"   {click.style('ok', fg='green')}  {text}")


def _refused(text: str) -> None:
    _say(f"   {click.style('no', fg='yellow')}  {text}")


def _chapter_pki(directory: Path, now: datetime, rand: Callable[[int], bytes]) -> None:
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


def _chapter_profile(package: bytes) -> None:
    _chapter(2, f"A GSMA TS.48 test profile ({DEMO_PROFILE})")
    elements = asn1.decode_profile_elements(package)
    summary = summarise(elements)
    _say(f"   {summary.size} octets, {summary.element_total} profile elements, "
         f"SAIP {summary.saip_version}, \"{summary.profile_type}\"")
    _say(f"   ICCID {summary.iccid}, IMSI {', '.join(summary.imsis)}, "
         f"AKA {', '.join(sorted(set(summary.aka_algorithms)))}")
    kinds = ", ".join(
        f"{name}" + (f" x{count}" if count > 1 else "") for name, count in summary.element_counts
    )
    _say(f"   elements: {kinds}")
    same = asn1.encode_profile_elements(elements) == package
    _ok("strict DER decode, re-encoded from the parsed values: byte-exact" if same
        else "re-encoding differs")
    if not same:  # pragma: no cover - the test suite checks every TS.48 package
        raise click.ClickException("TS.48 package did not re-encode byte-exact")


def _chapter_binding(package: bytes, rand: Callable[[int], bytes]) -> None:
    _chapter(3, "Binding the profile to one eUICC (SGP.22 BSP)")
    curve = CryptoCurve.NIST
    euicc_otsk = ecka.generate_key_pair(curve, rand)
    smdp_otsk = ecka.generate_key_pair(curve, rand)
    eid = bytes.fromhex("89049032123451234512345678901235")
    host_id = b"rspfed-demo"
    started = time.perf_counter()
    smdp_keys = kdf.derive_session_keys(
        ecka.ecka_dh(smdp_otsk, euicc_otsk.public_key()), host_id, eid
    )
    segments = bsp.BspEncryptor(smdp_keys).protect_split(0x86, package)
    euicc_keys = kdf.derive_session_keys(
        ecka.ecka_dh(euicc_otsk, smdp_otsk.public_key()), host_id, eid
    )
    decryptor = bsp.BspDecryptor(euicc_keys)
    recovered = b"".join(decryptor.unprotect(segment, tag=0x86) for segment in segments)
    elapsed_ms = (time.perf_counter() - started) * 1000
    size = sum(len(segment) for segment in segments)
    _say(f"   one-time keys on {curve.spec_name}, ECKA-DH, X9.63 KDF -> S-ENC, S-MAC, MCV")
    _ok(f"{len(segments)} encrypted + MACed segments ({size} octets), "
        f"decrypted back byte-exact: {recovered == package} ({elapsed_ms:.1f} ms)")
    tampered = bytearray(segments[3])
    tampered[40] ^= 0x01
    check = bsp.BspDecryptor(euicc_keys)
    try:
        for segment in (*segments[:3], bytes(tampered)):
            check.unprotect(segment, tag=0x86)
    except IntegrityError as exc:
        _refused(f"one bit flipped in segment 4: {exc}")


@click.command("demo")
@reports_errors
def demo() -> None:
    """Show what rspfed does so far, in a temporary directory."""
    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    _say(click.style("rspfed demo", bold=True) + " - one eSIM subscription across devices")
    package = (_PROFILES / DEMO_PROFILE).read_bytes()
    with tempfile.TemporaryDirectory(prefix="rspfed-demo-") as tmp:
        _chapter_pki(Path(tmp) / "pki", now, os.urandom)
        _chapter_profile(package)
        _chapter_binding(package, os.urandom)
    _say()
    _say(f"done in {time.perf_counter() - started:.2f} s")
