"""Cost of RSP certificate chain validation (rspfed.pki).

Prints, for each curve, the rate of:

1. ``parse_certificate`` on an SGP.26 certificate (DER parse + extensions);
2. ``verify_chain`` for an SGP.26 SM-DP+ certificate (leaf + CI self-signature);
3. ``verify_chain`` for a generated eUICC -> EUM -> CI chain with both CRLs;

each "cold" (signature memo cleared: every ECDSA verification done) and
"memoised" (the same chain again: only parsing and profile checks);
4. ``build_euicc_certificate`` (issuing an eUICC certificate).

Run: ``python benchmarks/pki.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from rspfed.crypto.ecka import generate_key_pair
from rspfed.pki import CertificateRole, Curve, parse_certificate, validate, verify_chain
from rspfed.pki.testpki import TestPki, build_euicc_certificate, random_serial

SGP26 = Path(__file__).resolve().parent.parent / "tests" / "data" / "sgp26-certs"
NOW = datetime(2025, 7, 1, tzinfo=UTC)


def rate(label: str, func: Callable[[], object], seconds: float = 0.5) -> None:
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        func()
        count += 1
    print(f"{label:58} {count / elapsed:9.0f} /s  {1e6 * elapsed / count:8.1f} us")


def cold(func: Callable[[], object]) -> object:
    """Run ``func`` with the signature memo emptied first."""
    validate._VERIFIED.clear()
    return func()


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pki = TestPki.create(Path(tmp) / "pki", now=NOW)
    for curve, tag in ((Curve.NIST, "NIST"), (Curve.BRAINPOOL, "BRP")):
        bench_curve(pki, curve, tag)


def bench_curve(pki: TestPki, curve: Curve, tag: str) -> None:
    ci = (SGP26 / "CertificateIssuer" / f"CERT_CI_ECDSA_{tag}.der").read_bytes()
    leaf = (SGP26 / "DPauth" / f"CERT_S_SM_DPauth_ECDSA_{tag}.der").read_bytes()
    rate(f"{curve.value}: parse_certificate (SGP.26 DPauth)", lambda: parse_certificate(leaf))
    rate(
        f"{curve.value}: verify_chain DPauth -> CI (SGP.26), cold",
        lambda: cold(
            lambda: verify_chain(leaf, role=CertificateRole.DPAUTH, trust_anchors=[ci], now=NOW)
        ),
    )
    rate(
        f"{curve.value}: verify_chain DPauth -> CI (SGP.26), memoised",
        lambda: verify_chain(leaf, role=CertificateRole.DPAUTH, trust_anchors=[ci], now=NOW),
    )
    material = pki.material(curve)
    key = generate_key_pair(curve, os.urandom).public_key()
    euicc = build_euicc_certificate(
        material.eum,
        material.eum_key,
        key,
        eid="89049032123451234512345678901235",
        serial=random_serial(os.urandom),
        not_before=NOW,
    )

    def verify_euicc() -> object:
        return verify_chain(
            euicc,
            role=CertificateRole.EUICC,
            trust_anchors=[material.ci],
            intermediates=[material.eum],
            crls=[material.ci_crl, material.eum_crl],
            now=NOW,
        )

    rate(
        f"{curve.value}: verify_chain eUICC -> EUM -> CI + 2 CRLs, cold",
        lambda: cold(verify_euicc),
    )
    rate(f"{curve.value}: verify_chain eUICC -> EUM -> CI + 2 CRLs, memoised", verify_euicc)
    rate(
        f"{curve.value}: build_euicc_certificate",
        lambda: build_euicc_certificate(
            material.eum,
            material.eum_key,
            key,
            eid="89049032123451234512345678901235",
            serial=random_serial(os.urandom),
            not_before=NOW,
        ),
    )


if __name__ == "__main__":
    main()
