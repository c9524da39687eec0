"""Benchmark: the SM-DP+ core (rspfed.smdp.Smdp) on its side of a download, in-process.

A test PKI (both curves) in a temporary directory, an SM-DP+ on a SQLite store
file (WAL, synchronous=FULL unless ``--normal``), the TS.48 package
``TS48v4_SAIP2.3_NoBERTLV.der`` as profile type, and a software eUICC
(rspfed.euicc, no SAIP installer) driven by a minimal LPA loop.  Only the time
inside the SM-DP+ calls is counted (process CPU time and wall time):
InitiateAuthentication, AuthenticateClient, GetBoundProfilePackage,
HandleNotification (the PIR), and separately the ES2+ DownloadOrder +
ConfirmOrder of each download.  The first download of each run (template
preparation, caches) is excluded and reported apart.

Run: ``python benchmarks/smdp_core.py [--downloads N] [--normal]``.  Prints
milliseconds; no assertions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import x509 as ax509
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed import asn1, es8p
from rspfed.asn1 import rsp
from rspfed.crypto import ecka
from rspfed.crypto.curves import Curve
from rspfed.es9p import messages as m
from rspfed.euicc.euicc import Euicc
from rspfed.pki import CertificateRole
from rspfed.pki.testpki import TestPki
from rspfed.smdp import ProfileType, Smdp, SmdpConfig, SmdpCredential, SqliteSmdpStore

PACKAGE = Path(__file__).resolve().parent.parent / "rspfed/data/ts48/TS48v4_SAIP2.3_NoBERTLV.der"
ADDRESS = "smdp.example.com"
T = TypeVar("T")


class Timer:
    """Accumulates CPU and wall time per label."""

    def __init__(self) -> None:
        self.cpu: dict[str, list[float]] = {}
        self.wall: dict[str, list[float]] = {}

    def run(self, label: str, call: Callable[[], T]) -> T:
        c0, w0 = time.process_time(), time.perf_counter()
        result = call()
        c1, w1 = time.process_time(), time.perf_counter()
        self.cpu.setdefault(label, []).append(c1 - c0)
        self.wall.setdefault(label, []).append(w1 - w0)
        return result


def credential(pki: TestPki, curve: Curve, now: datetime) -> SmdpCredential:
    auth = ecka.generate_key_pair(curve, os.urandom)
    pb = ecka.generate_key_pair(curve, os.urandom)

    def issue(role: CertificateRole, key: Any) -> bytes:
        return pki.issue_smdp_certificate(role, key.public_key(), curve, now=now).public_bytes(
            Encoding.DER
        )

    return SmdpCredential(
        curve, auth, issue(CertificateRole.DPAUTH, auth), pb, issue(CertificateRole.DPPB, pb)
    )


def download(smdp: Smdp, euicc: Euicc, timer: Timer) -> None:
    isdr = euicc.isdr
    iccid = timer.run("ES2+ DownloadOrder", lambda: smdp.download_order(profile_type="t"))
    order = timer.run("ES2+ ConfirmOrder", lambda: smdp.confirm_order(iccid=iccid))
    info1 = isdr.handle(bytes.fromhex("BF2000"))
    challenge = asn1.decode(rsp.GetEuiccChallengeResponse, isdr.handle(b"\xbf\x2e\x00"))
    init = timer.run(
        "InitiateAuthentication",
        lambda: smdp.initiate_authentication(
            m.InitiateAuthenticationRequest(
                bytes(challenge["euiccChallenge"].native), info1, ADDRESS
            )
        ),
    )
    ctx = {
        "matchingId": order.matching_id,
        "deviceInfo": {"tac": b"\x35\x29\x06\x11", "deviceCapabilities": {}},
    }
    asr = isdr.handle(
        asn1.encode(
            rsp.AuthenticateServerRequest(
                {
                    "serverSigned1": asn1.decode(rsp.ServerSigned1, init.server_signed1),
                    "serverSignature1": init.server_signature1[3:],
                    "euiccCiPKIdToBeUsed": init.euicc_ci_pkid_to_be_used[2:],
                    "serverCertificate": ax509.Certificate.load(init.server_certificate),
                    "ctxParams1": rsp.CtxParams1(
                        name="ctxParamsForCommonAuthentication", value=ctx
                    ),
                }
            )
        )
    )
    auth = timer.run(
        "AuthenticateClient",
        lambda: smdp.authenticate_client(m.AuthenticateClientRequest(init.transaction_id, asr)),
    )
    pdr = isdr.handle(
        asn1.encode(
            rsp.PrepareDownloadRequest(
                {
                    "smdpSigned2": asn1.decode(rsp.SmdpSigned2, auth.smdp_signed2),
                    "smdpSignature2": auth.smdp_signature2[3:],
                    "smdpCertificate": ax509.Certificate.load(auth.smdp_certificate),
                }
            )
        )
    )
    bpp = timer.run(
        "GetBoundProfilePackage",
        lambda: smdp.get_bound_profile_package(
            m.GetBoundProfilePackageRequest(auth.transaction_id, pdr)
        ),
    )
    pir = b""
    for block in es8p.segment_bpp_for_es10b(bpp.bound_profile_package):
        pir = isdr.handle(block)
        if pir:
            break
    timer.run(
        "HandleNotification (PIR)",
        lambda: smdp.handle_notification(m.HandleNotificationRequest(pir)),
    )


ES9 = (
    "InitiateAuthentication",
    "AuthenticateClient",
    "GetBoundProfilePackage",
    "HandleNotification (PIR)",
)


def run(curve: Curve, downloads: int, synchronous: str, root: Path) -> None:
    now = datetime.now(UTC)
    pki = TestPki.create(root / f"pki-{curve.value}", now=now, curves=[curve])
    config = SmdpConfig(
        ADDRESS,
        (credential(pki, curve, now),),
        (pki.material(curve).ci.public_bytes(Encoding.DER),),
    )
    store = SqliteSmdpStore.create(root / f"smdp-{curve.value}.db", synchronous=synchronous)
    smdp = Smdp(config, store, now=lambda: datetime.now(UTC))
    t0 = time.perf_counter()
    smdp.add_profile_type(
        ProfileType.from_metadata(
            "t", PACKAGE.read_bytes(), {"serviceProviderName": "b", "profileName": "b"}
        )
    )
    prepare = time.perf_counter() - t0
    euicc = Euicc.create(root / f"euicc-{curve.value}.db", pki, curves=(curve,), now=now)
    warm = Timer()
    t0 = time.perf_counter()
    download(smdp, euicc, warm)
    first = time.perf_counter() - t0
    timer = Timer()
    for _ in range(downloads):
        download(smdp, euicc, timer)
    print(f"\n{curve.spec_name}, {downloads} downloads, synchronous={synchronous}")
    print(f"  profile type registration (PreparedTemplate): {prepare * 1e3:8.1f} ms (once)")
    print(f"  first download, whole loop incl. eUICC:        {first * 1e3:8.1f} ms (excluded)")
    print(
        f"  {'SM-DP+ call':28s} {'CPU ms median':>14s} {'CPU ms mean':>12s} {'wall ms median':>15s}"
    )
    total_cpu = total_mean = total_wall = 0.0
    for label in (*ES9, "ES2+ DownloadOrder", "ES2+ ConfirmOrder"):
        cpu = statistics.median(timer.cpu[label]) * 1e3
        mean = statistics.fmean(timer.cpu[label]) * 1e3
        wall = statistics.median(timer.wall[label]) * 1e3
        if label in ES9:
            total_cpu += cpu
            total_mean += mean
            total_wall += wall
        print(f"  {label:28s} {cpu:14.3f} {mean:12.3f} {wall:15.3f}")
    print(
        f"  {'ES9+ total per download':28s} {total_cpu:14.3f} {total_mean:12.3f} {total_wall:15.3f}"
    )
    store.close()
    euicc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--downloads", type=int, default=30)
    parser.add_argument("--normal", action="store_true", help="synchronous=NORMAL store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for curve in (Curve.NIST, Curve.BRAINPOOL):
            run(curve, args.downloads, "NORMAL" if args.normal else "FULL", Path(tmp))


if __name__ == "__main__":
    main()
