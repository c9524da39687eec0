"""Benchmark: the strict DER check of one certificate (and one CRL).

Measures, per SGP.26 certificate class (CI, DPauth, DPpb, DPtls) and for a
CRL, microseconds per ``rspfed.asn1._strict.check``:

* cold: the table of already-checked encodings is cleared before each call
  (a certificate never seen before; the per-plan memo tables of tag shapes
  and run-time types stay warm, as in a running server),
* warm: the same bytes again (the CI/EUM/DPauth certificates repeat),

and, for comparison, asn1crypto's full parse + re-encode of the same bytes
(``load(...).dump(force=True)``), the final step of the former check.

Run: ``python benchmarks/cert_check_bench.py [--quick]``.  Prints figures; no
assertions.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asn1crypto import crl, x509

from rspfed.asn1 import _strict

REPO = Path(__file__).resolve().parent.parent
SGP26 = REPO / "tests" / "data" / "sgp26-certs"


def per_op_us(fn: Callable[[], object], repeat: int, number: int) -> float:
    """Best-of-``repeat`` microseconds per call."""
    return min(timeit.Timer(fn).repeat(repeat=repeat, number=number)) / number * 1e6


def _crl_der() -> bytes:
    import datetime as dt

    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    ci = cx509.load_der_x509_certificate(
        (SGP26 / "CertificateIssuer" / "CERT_CI_ECDSA_NIST.der").read_bytes()
    )
    key = ec.derive_private_key(0x5EED, ec.SECP256R1())
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    builder = (
        cx509.CertificateRevocationListBuilder()
        .issuer_name(ci.subject)
        .last_update(when)
        .next_update(when + dt.timedelta(days=30))
        .add_extension(cx509.CRLNumber(7), critical=False)
    )
    for serial in range(1, 11):
        builder = builder.add_revoked_certificate(
            cx509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing loops")
    args = parser.parse_args()
    repeat, number = (3, 200) if args.quick else (7, 1000)
    inputs: list[tuple[str, Any, bytes]] = [
        (path.stem, x509.Certificate, path.read_bytes())
        for path in sorted(SGP26.rglob("CERT_*_NIST.der"))
    ]
    inputs.append(("CRL (10 entries)", crl.CertificateList, _crl_der()))
    clear: Callable[[], None] = getattr(_strict, "clear_caches", lambda: None)

    print(
        f"{'input':34} {'bytes':>5} {'cold us':>8} {'warm us':>8} {'asn1crypto re-encode us':>24}"
    )
    for name, cls, der in inputs:
        _strict.check(cls, der)

        def cold(cls: Any = cls, der: bytes = der) -> None:
            clear()
            _strict.check(cls, der)

        def warm(cls: Any = cls, der: bytes = der) -> None:
            _strict.check(cls, der)

        def reencode(cls: Any = cls, der: bytes = der) -> None:
            cls.load(der, strict=True).dump(force=True)

        print(
            f"{name:34} {len(der):5d} {per_op_us(cold, repeat, number):8.1f}"
            f" {per_op_us(warm, repeat, number):8.1f}"
            f" {per_op_us(reencode, repeat, max(1, number // 5)):24.1f}"
        )


if __name__ == "__main__":
    main()
