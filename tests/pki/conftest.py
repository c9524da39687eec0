"""Fixtures for the PKI tests: SGP.26 certificates and an in-memory test PKI."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rspfed.crypto.curves import Curve
from rspfed.crypto.ecka import generate_key_pair
from rspfed.pki.testpki import (
    CRL_VALIDITY,
    build_ci_certificate,
    build_crl,
    build_eum_certificate,
)
from tests.paths import SGP26

#: SGP.26 certificate directory of each role (DER files named CERT_*.der).
CI_DIR = SGP26 / "CertificateIssuer"
NOW = datetime(2025, 7, 1, tzinfo=UTC)


def counter_rand(seed: str) -> Callable[[int], bytes]:
    """A deterministic ``os.urandom`` stand-in (SHA-256 in counter mode)."""
    state = {"n": 0}

    def rand(size: int) -> bytes:
        out = b""
        while len(out) < size:
            out += hashlib.sha256(f"{seed}/{state['n']}".encode()).digest()
            state["n"] += 1
        return out[:size]

    return rand


@pytest.fixture(scope="session")
def sgp26_cis() -> list[bytes]:
    return [
        (CI_DIR / "CERT_CI_ECDSA_NIST.der").read_bytes(),
        (CI_DIR / "CERT_CI_ECDSA_BRP.der").read_bytes(),
    ]


@attrs.frozen
class MemoryPki:
    """A CI and an EUM on one curve, built in memory with the pure builders."""

    curve: Curve
    ci: x509.Certificate
    ci_key: ec.EllipticCurvePrivateKey
    eum: x509.Certificate
    eum_key: ec.EllipticCurvePrivateKey
    ein: str
    organisation: str

    def crl(
        self, issuer: str, revoked: tuple[tuple[int, datetime], ...] = (), *, at: datetime = NOW
    ) -> x509.CertificateRevocationList:
        cert, key = (self.ci, self.ci_key) if issuer == "ci" else (self.eum, self.eum_key)
        return build_crl(
            cert,
            key,
            revoked=revoked,
            crl_number=1,
            this_update=at - timedelta(days=1),
            next_update=at + CRL_VALIDITY,
        )


def make_memory_pki(curve: Curve, seed: str, ein: str = "89049032") -> MemoryPki:
    rand = counter_rand(seed)
    ci_key = generate_key_pair(curve, rand)
    start = NOW - timedelta(days=365)
    ci = build_ci_certificate(
        ci_key,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Test CI {seed}")]),
        serial=1,
        not_before=start,
        not_after=start + timedelta(days=3650),
    )
    eum_key = generate_key_pair(curve, rand)
    organisation = "Test EUM"
    eum = build_eum_certificate(
        ci,
        ci_key,
        eum_key.public_key(),
        subject=x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, "Test EUM"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            ]
        ),
        permitted=x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, ein),
            ]
        ),
        serial=2,
        not_before=start,
        not_after=start + timedelta(days=3000),
    )
    return MemoryPki(curve, ci, ci_key, eum, eum_key, ein, organisation)


@pytest.fixture(scope="session", params=[Curve.NIST, Curve.BRAINPOOL], ids=lambda c: c.value)
def mem_pki(request: pytest.FixtureRequest) -> MemoryPki:
    curve: Curve = request.param
    return make_memory_pki(curve, f"mem-{curve.value}")


def sgp26(path: str) -> bytes:
    return (SGP26 / path).read_bytes()


def sgp26_files(directory: str) -> list[Path]:
    return sorted((SGP26 / directory).glob("CERT_*.der"))
