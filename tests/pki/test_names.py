"""Issuer/subject names read from the DER framing agree with ``cryptography``."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from rspfed.pki import parse_certificate
from tests.pki.conftest import sgp26_files

FILES = [
    path
    for directory in ("CertificateIssuer", "DPauth", "DPpb", "DPtls")
    for path in sgp26_files(directory)
]


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_names_match_cryptography(path: Path) -> None:
    der = path.read_bytes()
    reference = x509.load_der_x509_certificate(der)
    parsed = parse_certificate(der)
    # twice: the second parse takes the names from the memo
    again = parse_certificate(der)
    for cert in (parsed, again):
        assert cert.subject == reference.subject
        assert cert.issuer == reference.issuer
        assert cert.subject_der == reference.subject.public_bytes()
        assert cert.issuer_der == reference.issuer.public_bytes()
    assert parsed.is_self_issued == (reference.subject == reference.issuer)


def test_issued_by_pairs() -> None:
    certs = [parse_certificate(path.read_bytes()) for path in FILES]
    for leaf in certs:
        for issuer in certs:
            expected = leaf.certificate.issuer == issuer.certificate.subject
            assert leaf.issued_by(issuer) == expected
