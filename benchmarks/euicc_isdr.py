"""Benchmark: the ISD-R (rspfed.euicc.isdr) on the eUICC side of a download and of ES10c.

A test PKI (NIST curve) in a temporary directory, a test SM-DP+ built here
from ``rspfed.es8p`` and ``rspfed.crypto``, the TS.48 package
``TS48v2_SAIP2.3_BERTLV.der``.  Measured per download (eUICC side only:
GetEuiccChallenge, AuthenticateServer, PrepareDownload, every BPP block):
the total, the durable install commit (SQLite, WAL, synchronous=FULL), and
the time inside ECDSA sign/verify calls made through ``rspfed.crypto.signature``
(the certificate chain checks are not included there), and the SAIP
installer (``rspfed.saip.install.install_package``, run before the commit).  Then ES10c:
an EnableProfile + DisableProfile pair (two signed notifications, two
commits) and GetProfilesInfo.

Run: ``python benchmarks/euicc_isdr.py [--quick]``.  Prints milliseconds; no assertions.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import x509 as ax509
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed import asn1, es8p
from rspfed.asn1 import rsp
from rspfed.crypto import ecka, signature
from rspfed.crypto.curves import Curve
from rspfed.euicc import isdr as isdr_module
from rspfed.euicc.isdr import EuiccCredential, IsdR
from rspfed.euicc.store import Store
from rspfed.pki import CertificateRole, generate_eid, parse_certificate
from rspfed.pki.testpki import TestPki
from rspfed.saip.identifiers import encode_iccid
from rspfed.saip.install import install_package

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PACKAGE = (
    Path(__file__).resolve().parent.parent
    / "rspfed"
    / "data"
    / "ts48"
    / "TS48v2_SAIP2.3_BERTLV.der"
).read_bytes()

SIGN_TIME = [0.0]


def _timed(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SIGN_TIME[0] += time.perf_counter() - t

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    n = 5 if parser.parse_args().quick else 30
    work = Path(tempfile.mkdtemp())
    pki = TestPki.create(work / "pki", now=NOW, curves=[Curve.NIST])
    material = pki.material(Curve.NIST)
    eid = generate_eid(pki.ein, os.urandom)
    key = ecka.generate_key_pair(Curve.NIST, os.urandom)
    cred = EuiccCredential(
        key,
        pki.issue_euicc_certificate(eid, key.public_key(), Curve.NIST, now=NOW).public_bytes(
            Encoding.DER
        ),
        material.eum.public_bytes(Encoding.DER),
    )
    ci_der = material.ci.public_bytes(Encoding.DER)
    ski = parse_certificate(ci_der).subject_key_id
    auth = ecka.generate_key_pair(Curve.NIST, os.urandom)
    pb = ecka.generate_key_pair(Curve.NIST, os.urandom)

    def issue(role: CertificateRole, k: Any) -> Any:
        der = pki.issue_smdp_certificate(
            role, k.public_key(), Curve.NIST, registered_id="1.2.3.4", now=NOW
        ).public_bytes(Encoding.DER)
        return ax509.Certificate.load(der)

    auth_cert, pb_cert = issue(CertificateRole.DPAUTH, auth), issue(CertificateRole.DPPB, pb)
    iccid = encode_iccid(install_package(PACKAGE).iccid)
    metadata = es8p.store_metadata_request(iccid, "rspfed", "bench")
    ctx = rsp.CtxParams1(
        name="ctxParamsForCommonAuthentication",
        value={"deviceInfo": {"tac": bytes(4), "deviceCapabilities": {}}},
    )

    # time ECDSA inside the ISD-R module (sign and verify via rspfed.crypto.signature)
    isdr_module.signature = type(  # type: ignore[attr-defined]
        "S",
        (),
        {
            "sign": staticmethod(_timed(signature.sign)),
            "verify": staticmethod(_timed(signature.verify)),
        },
    )

    totals = {"total": 0.0, "commit": 0.0, "ecdsa": 0.0, "saip": 0.0}
    for i in range(n):
        store = Store.create(work / f"e{i}.db", eid=bytes.fromhex(eid))
        commit_time = [0.0]
        original = store.commit

        def commit(*a: Any, _o: Any = original, _c: list[float] = commit_time, **k: Any) -> None:
            t = time.perf_counter()
            _o(*a, **k)
            _c[0] += time.perf_counter() - t

        store.commit = commit  # type: ignore[method-assign]
        saip_time = [0.0]

        def installer(package: bytes, _t: list[float] = saip_time) -> str:
            t = time.perf_counter()
            try:
                return install_package(package).iccid
            finally:
                _t[0] += time.perf_counter() - t

        isdr = IsdR(
            store=store,
            credentials=[cred],
            rand=random.Random(i).randbytes,
            now=lambda: NOW,
            ci_certificates=[ci_der],
            installer=installer,
        )
        tid = i.to_bytes(16, "big")
        # SM-DP+ side messages are prepared outside the timed calls
        spent = 0.0
        SIGN_TIME[0] = 0.0

        def call(der: bytes, isdr: IsdR = isdr) -> bytes:
            nonlocal spent
            t = time.perf_counter()
            out = isdr.handle(der)
            spent += time.perf_counter() - t
            return out

        challenge = asn1.decode(rsp.GetEuiccChallengeResponse, call(bytes.fromhex("BF2E00")))
        s1 = asn1.encode(
            rsp.ServerSigned1(
                {
                    "transactionId": tid,
                    "euiccChallenge": bytes(challenge["euiccChallenge"].native),
                    "serverAddress": "smdp.example",
                    "serverChallenge": bytes(16),
                }
            )
        )
        req = rsp.AuthenticateServerRequest(
            {
                "serverSigned1": asn1.decode(rsp.ServerSigned1, s1),
                "serverSignature1": signature.sign(auth, s1),
                "euiccCiPKIdToBeUsed": ski,
                "serverCertificate": auth_cert,
                "ctxParams1": ctx,
            }
        )
        resp = asn1.decode(rsp.AuthenticateServerResponse, call(asn1.encode(req)))
        sig1 = bytes(resp.chosen["euiccSignature1"].native)
        s2 = asn1.encode(rsp.SmdpSigned2({"transactionId": tid, "ccRequiredFlag": False}))
        req2 = rsp.PrepareDownloadRequest(
            {
                "smdpSigned2": asn1.decode(rsp.SmdpSigned2, s2),
                "smdpSignature2": signature.sign(pb, s2 + b"\x5f\x37\x40" + sig1),
                "smdpCertificate": pb_cert,
            }
        )
        prep = asn1.decode(rsp.PrepareDownloadResponse, call(asn1.encode(req2)))
        otpk = bytes(prep.chosen["euiccSigned2"]["euiccOtpk"].native)
        bpp = es8p.build_bound_profile_package(
            transaction_id=tid,
            euicc_otpk=otpk,
            smdp_ot_key=ecka.generate_key_pair(Curve.NIST, os.urandom),
            dp_pb_key=pb,
            eid=bytes.fromhex(eid),
            host_id=b"host",
            metadata=metadata,
            profile=PACKAGE,
        )
        for block in es8p.segment_bpp_for_es10b(bpp):
            call(block)
        assert store.state.profiles, "not installed"
        totals["total"] += spent
        totals["commit"] += commit_time[0]
        totals["ecdsa"] += SIGN_TIME[0]
        totals["saip"] += saip_time[0]
        store.close()
    print(f"download, eUICC side ({len(PACKAGE)} octet package, {n} runs, NIST):")
    for name, value in totals.items():
        print(f"  {name:7} {value / n * 1000:7.2f} ms")

    enable = asn1.encode(
        rsp.EnableProfileRequest(
            {
                "profileIdentifier": rsp.EnableProfileRequest_profileIdentifier(
                    name="iccid", value=iccid
                ),
                "refreshFlag": False,
            }
        )
    )
    disable = asn1.encode(
        rsp.DisableProfileRequest(
            {
                "profileIdentifier": rsp.DisableProfileRequest_profileIdentifier(
                    name="iccid", value=iccid
                ),
                "refreshFlag": False,
            }
        )
    )
    store = Store.open(work / "e0.db")
    isdr = IsdR(store=store, credentials=[cred], rand=os.urandom, now=lambda: NOW)
    m = n * 5
    t = time.perf_counter()
    for _ in range(m):
        isdr.handle(enable)
        isdr.handle(disable)
    print(f"EnableProfile + DisableProfile pair: {(time.perf_counter() - t) / m * 1000:.2f} ms")
    t = time.perf_counter()
    for _ in range(m * 10):
        isdr.handle(bytes.fromhex("BF2D00"))
    print(f"GetProfilesInfo (1 profile): {(time.perf_counter() - t) / (m * 10) * 1000:.3f} ms")


if __name__ == "__main__":
    main()
