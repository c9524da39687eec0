"""Chain validation against the GSMA SGP.26 test certificates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from rspfed.errors import (
    CertificateExpiredError,
    CertificateRoleError,
    DecodeError,
    UntrustedCertificateError,
    UsageError,
)
from rspfed.pki import CertificateRole, Curve, parse_certificate, verify_chain
from tests.pki.conftest import NOW, sgp26, sgp26_files

ROLE_DIRS = [
    ("DPauth", CertificateRole.DPAUTH),
    ("DPpb", CertificateRole.DPPB),
    ("DPtls", CertificateRole.DPTLS),
]
ALL = [(path, role) for directory, role in ROLE_DIRS for path in sgp26_files(directory)]
NIST_CI_SKI = bytes.fromhex("F54172BDF98A95D65CBEB88A38A1C11D800A85C3")
BRP_CI_SKI = bytes.fromhex("C0BC70BA36929D43B467FF57570530E57AB8FCD8")


def test_every_role_directory_has_certificates() -> None:
    assert len(ALL) == 13
    for directory, _ in ROLE_DIRS:
        assert sgp26_files(directory)


@pytest.mark.parametrize(("path", "role"), ALL, ids=[p.name for p, _ in ALL])
def test_sgp26_certificate_validates_for_its_role(
    path: Path, role: CertificateRole, sgp26_cis: list[bytes]
) -> None:
    result = verify_chain(path.read_bytes(), role=role, trust_anchors=sgp26_cis, now=NOW)
    brainpool = "BRP" in path.name
    assert result.role is role
    assert result.curve is (Curve.BRAINPOOL if brainpool else Curve.NIST)
    # The CI key ids printed by `openssl x509 -text` for the two SGP.26 CIs.
    assert result.ci_pkid == (BRP_CI_SKI if brainpool else NIST_CI_SKI)
    assert len(result.chain) == 2
    assert result.leaf.der == path.read_bytes()
    assert result.eid is None
    leaf_key = x509.load_der_x509_certificate(path.read_bytes()).public_key()
    assert isinstance(leaf_key, ec.EllipticCurvePublicKey)
    assert result.public_key.public_numbers() == leaf_key.public_numbers()


def test_ci_pkid_list_selects_the_anchor(sgp26_cis: list[bytes]) -> None:
    leaf = sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der")
    ok = verify_chain(
        leaf,
        role=CertificateRole.DPAUTH,
        trust_anchors=sgp26_cis,
        ci_pkids=[NIST_CI_SKI],
        now=NOW,
    )
    assert ok.ci_pkid == NIST_CI_SKI
    with pytest.raises(UntrustedCertificateError, match="unknown CI key id F54172BD"):
        verify_chain(
            leaf,
            role=CertificateRole.DPAUTH,
            trust_anchors=sgp26_cis,
            ci_pkids=[BRP_CI_SKI],
            now=NOW,
        )


def test_the_ci_itself_validates_as_ci(sgp26_cis: list[bytes]) -> None:
    result = verify_chain(sgp26_cis[0], role=CertificateRole.CI, trust_anchors=sgp26_cis, now=NOW)
    assert result.chain == (parse_certificate(sgp26_cis[0]),)


@pytest.mark.parametrize("path", sgp26_files("DPtls"), ids=lambda p: p.name)
def test_dptls_certificates_are_expired_after_2026_08_02(
    path: Path, sgp26_cis: list[bytes]
) -> None:
    with pytest.raises(CertificateExpiredError, match="expired at 2026-08-02"):
        verify_chain(
            path.read_bytes(),
            role=CertificateRole.DPTLS,
            trust_anchors=sgp26_cis,
            now=datetime(2026, 9, 1, tzinfo=UTC),
        )


def test_not_yet_valid_is_rejected(sgp26_cis: list[bytes]) -> None:
    with pytest.raises(CertificateExpiredError, match="not valid before 2025-06-30"):
        verify_chain(
            sgp26("DPtls/CERT_S_SM_DP_TLS_NIST.der"),
            role=CertificateRole.DPTLS,
            trust_anchors=sgp26_cis,
            now=datetime(2025, 6, 1, tzinfo=UTC),
        )


def test_expired_ci_is_rejected(sgp26_cis: list[bytes]) -> None:
    # DPauth is valid to 2030; at 2056 both it and the CI (to 2055) are expired.
    with pytest.raises(CertificateExpiredError):
        verify_chain(
            sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der"),
            role=CertificateRole.DPAUTH,
            trust_anchors=sgp26_cis,
            now=datetime(2056, 1, 1, tzinfo=UTC),
        )


def _flip(data: bytes, offset: int, mask: int = 0x01) -> bytes:
    return data[:offset] + bytes([data[offset] ^ mask]) + data[offset + 1 :]


@pytest.mark.parametrize(
    "name", ["DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der", "DPauth/CERT_S_SM_DPauth_ECDSA_BRP.der"]
)
def test_tampered_tbs_is_untrusted(name: str, sgp26_cis: list[bytes]) -> None:
    der = sgp26(name)
    offset = der.index(b"TEST SM-DP+")  # inside the subject CN, part of tbsCertificate
    with pytest.raises(UntrustedCertificateError, match="does not verify"):
        verify_chain(
            _flip(der, offset), role=CertificateRole.DPAUTH, trust_anchors=sgp26_cis, now=NOW
        )


def test_tampered_public_key_is_untrusted(sgp26_cis: list[bytes]) -> None:
    der = sgp26("DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der")
    leaf = x509.load_der_x509_certificate(der)
    point = leaf.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    # Swap the key for the CI's own (valid) point: still DER, still a key, wrong signature.
    ci = x509.load_der_x509_certificate(sgp26_cis[0])
    ci_point = ci.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    tampered = der.replace(point, ci_point)
    assert tampered != der
    with pytest.raises(UntrustedCertificateError):
        verify_chain(tampered, role=CertificateRole.DPPB, trust_anchors=sgp26_cis, now=NOW)


def test_tampered_signature_is_untrusted(sgp26_cis: list[bytes]) -> None:
    der = sgp26("DPtls/CERT_S_SM_DP_TLS_BRP.der")
    with pytest.raises(UntrustedCertificateError, match="does not verify"):
        verify_chain(
            _flip(der, len(der) - 1), role=CertificateRole.DPTLS, trust_anchors=sgp26_cis, now=NOW
        )


def test_tampered_ci_is_untrusted(sgp26_cis: list[bytes]) -> None:
    ci = sgp26_cis[0]
    bad_ci = _flip(ci, ci.index(b"RSPTEST"))
    # The subject changes, so the DPauth certificate's issuer name no longer matches.
    with pytest.raises(UntrustedCertificateError):
        verify_chain(
            sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der"),
            role=CertificateRole.DPAUTH,
            trust_anchors=[bad_ci],
            now=NOW,
        )
    # A change elsewhere in the CI's TBS (its CRL distribution point URI)
    # breaks its self-signature, checked on every use of the CI.
    bad_ci = _flip(ci, ci.index(b"CRL-A"))
    with pytest.raises(UntrustedCertificateError, match="does not verify"):
        verify_chain(bad_ci, role=CertificateRole.CI, trust_anchors=[bad_ci], now=NOW)
    with pytest.raises(UntrustedCertificateError, match="does not verify"):
        verify_chain(
            sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der"),
            role=CertificateRole.DPAUTH,
            trust_anchors=[bad_ci],
            now=NOW,
        )


@pytest.mark.parametrize(
    ("name", "presented", "actual"),
    [
        ("DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der", CertificateRole.DPAUTH, "dp-pb"),
        ("DPauth/CERT_S_SM_DPauth_ECDSA_BRP.der", CertificateRole.DPPB, "dp-auth"),
        ("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der", CertificateRole.DPTLS, "dp-auth"),
        ("DPtls/CERT_S_SM_DP_TLS_NIST.der", CertificateRole.DPAUTH, "dp-tls"),
    ],
)
def test_wrong_role_is_rejected(
    name: str, presented: CertificateRole, actual: str, sgp26_cis: list[bytes]
) -> None:
    with pytest.raises(CertificateRoleError, match=f"has role id-rspRole-{actual}"):
        verify_chain(sgp26(name), role=presented, trust_anchors=sgp26_cis, now=NOW)


def test_dp_certificate_cannot_be_an_euicc(sgp26_cis: list[bytes]) -> None:
    # An eUICC chain needs an EUM issuer; the CI-issued DPauth has none.
    with pytest.raises(UntrustedCertificateError, match="eum certificate with key id"):
        verify_chain(
            sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der"),
            role=CertificateRole.EUICC,
            trust_anchors=sgp26_cis,
            now=NOW,
        )


def test_unknown_ci_is_untrusted(sgp26_cis: list[bytes]) -> None:
    with pytest.raises(UntrustedCertificateError, match="unknown CI key id"):
        verify_chain(
            sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der"),
            role=CertificateRole.DPAUTH,
            trust_anchors=[sgp26_cis[1]],
            now=NOW,
        )
    with pytest.raises(UntrustedCertificateError, match="trusted: none"):
        verify_chain(
            sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der"),
            role=CertificateRole.DPAUTH,
            trust_anchors=[],
            now=NOW,
        )


def test_a_leaf_is_not_a_ci(sgp26_cis: list[bytes]) -> None:
    leaf = sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der")
    with pytest.raises(UntrustedCertificateError, match="not self-issued"):
        verify_chain(leaf, role=CertificateRole.CI, trust_anchors=[*sgp26_cis, leaf], now=NOW)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x30", b"\x30\x03\x02\x01\x01", b"\x04\x00", sgp26("DPauth/data_sig.der")],
)
def test_malformed_der_is_a_decode_error(data: bytes, sgp26_cis: list[bytes]) -> None:
    with pytest.raises(DecodeError):
        verify_chain(data, role=CertificateRole.DPAUTH, trust_anchors=sgp26_cis, now=NOW)


def test_trailing_data_is_a_decode_error(sgp26_cis: list[bytes]) -> None:
    der = sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der")
    with pytest.raises(DecodeError, match="trailing data"):
        verify_chain(der + b"\x00", role=CertificateRole.DPAUTH, trust_anchors=sgp26_cis, now=NOW)


def test_naive_now_is_a_usage_error(sgp26_cis: list[bytes]) -> None:
    with pytest.raises(UsageError, match="timezone-aware"):
        verify_chain(
            sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der"),
            role=CertificateRole.DPAUTH,
            trust_anchors=sgp26_cis,
            now=datetime(2025, 7, 1),
        )


def test_cryptography_objects_are_accepted(sgp26_cis: list[bytes]) -> None:
    leaf = x509.load_der_x509_certificate(sgp26("DPpb/CERT_S_SM_DPpb_ECDSA_BRP.der"))
    anchors = [x509.load_der_x509_certificate(ci) for ci in sgp26_cis]
    result = verify_chain(leaf, role=CertificateRole.DPPB, trust_anchors=anchors, now=NOW)
    assert result.curve is Curve.BRAINPOOL
