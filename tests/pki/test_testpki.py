"""The test-PKI directory: layout, file modes, passphrases, issuing and revocation."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.crypto.ecka import generate_key_pair
from rspfed.errors import (
    CertificateRevokedError,
    StorageError,
    UsageError,
)
from rspfed.pki import CertificateRole, Curve, verify_chain
from rspfed.pki.eid import generate_eid
from rspfed.pki.testpki import (
    MANIFEST_NAME,
    TestPki,
    load_trust_directory,
)
from tests.pki.conftest import NOW, counter_rand


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki") / "store"
    TestPki.create(directory, now=NOW, rand=counter_rand("store"))
    return directory


def test_layout_and_file_modes(pki_dir: Path) -> None:
    manifest = json.loads((pki_dir / MANIFEST_NAME).read_text())
    assert manifest["format"] == "rspfed-test-pki"
    assert set(manifest["curves"]) == {"nist", "brainpool"}
    assert manifest["encrypted_keys"] is False
    for curve in ("nist", "brainpool"):
        for name in ("ci.der", "ci.pem", "ci.crl", "eum.der", "eum.pem", "eum.crl"):
            assert (pki_dir / curve / name).is_file()
        for name in ("ci.key.pem", "eum.key.pem"):
            mode = stat.S_IMODE((pki_dir / curve / name).stat().st_mode)
            assert mode == 0o600, oct(mode)
            assert (pki_dir / curve / name).read_bytes().startswith(b"-----BEGIN PRIVATE KEY")
    assert not list(pki_dir.rglob("*.tmp"))


def test_pem_and_der_hold_the_same_certificate(pki_dir: Path) -> None:
    from cryptography import x509

    for curve in ("nist", "brainpool"):
        der = x509.load_der_x509_certificate((pki_dir / curve / "ci.der").read_bytes())
        pem = x509.load_pem_x509_certificate((pki_dir / curve / "ci.pem").read_bytes())
        assert der == pem


@pytest.mark.parametrize("curve", list(Curve), ids=lambda c: c.value)
def test_issued_chains_are_valid(pki_dir: Path, curve: Curve) -> None:
    store = TestPki.open(pki_dir)
    rand = counter_rand(f"issue-{curve.value}")
    key = generate_key_pair(curve, rand)
    eid = generate_eid(store.ein, rand)
    euicc = store.issue_euicc_certificate(eid, key.public_key(), curve, now=NOW, rand=rand)
    result = verify_chain(
        euicc,
        role=CertificateRole.EUICC,
        trust_anchors=store.ci_certificates(),
        intermediates=store.eum_certificates(),
        crls=store.crls(),
        now=NOW,
    )
    assert result.eid == eid
    assert result.curve is curve
    for role in (CertificateRole.DPAUTH, CertificateRole.DPPB, CertificateRole.DPTLS):
        cert = store.issue_smdp_certificate(
            role,
            key.public_key(),
            curve,
            common_name="smdp.example.org",
            dns_names=["smdp.example.org"],
            now=NOW,
            rand=rand,
        )
        assert (
            verify_chain(
                cert, role=role, trust_anchors=store.ci_certificates(), crls=store.crls(), now=NOW
            ).curve
            is curve
        )


def test_issuing_checks_arguments(pki_dir: Path) -> None:
    store = TestPki.open(pki_dir)
    nist_key = generate_key_pair(Curve.NIST, counter_rand("args")).public_key()
    with pytest.raises(UsageError, match="outside"):
        store.issue_euicc_certificate(
            generate_eid("89049033", counter_rand("a")), nist_key, Curve.NIST, now=NOW
        )
    with pytest.raises(UsageError, match="brainpoolP256r1"):
        store.issue_euicc_certificate(
            generate_eid("89049032", counter_rand("b")), nist_key, Curve.BRAINPOOL, now=NOW
        )


def test_revoke_updates_the_crl_on_disk(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    TestPki.create(directory, now=NOW, curves=[Curve.NIST], rand=counter_rand("revoke"))
    store = TestPki.open(directory)
    key = generate_key_pair(Curve.NIST, counter_rand("revoke-key"))
    cert = store.issue_smdp_certificate(
        CertificateRole.DPAUTH, key.public_key(), Curve.NIST, now=NOW
    )
    euicc = store.issue_euicc_certificate(
        generate_eid(store.ein, counter_rand("e")), key.public_key(), Curve.NIST, now=NOW
    )
    later = NOW + timedelta(minutes=5)
    store.revoke(cert, now=later)
    store.revoke(euicc, now=later)
    crl_mode = stat.S_IMODE((directory / "nist" / "ci.crl").stat().st_mode)
    assert crl_mode == 0o644
    reopened = TestPki.open(directory)
    trust = load_trust_directory(directory)
    for crls in (reopened.crls(), trust.crls):
        with pytest.raises(CertificateRevokedError):
            verify_chain(
                cert,
                role=CertificateRole.DPAUTH,
                trust_anchors=reopened.ci_certificates(),
                crls=crls,
                now=later,
            )
        with pytest.raises(CertificateRevokedError):
            verify_chain(
                euicc,
                role=CertificateRole.EUICC,
                trust_anchors=trust.anchors,
                intermediates=trust.intermediates,
                crls=crls,
                now=later,
            )
    # Revoking twice changes nothing; the CRL number went 1 -> 2.
    from cryptography import x509

    again = reopened.revoke(cert, now=later)
    assert again.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    assert len(list(again)) == 1


def test_revoking_a_foreign_certificate_is_refused(pki_dir: Path) -> None:
    from tests.pki.conftest import sgp26

    with pytest.raises(UsageError, match="not issued by this test PKI"):
        TestPki.open(pki_dir).revoke(sgp26("DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der"))


def test_passphrase_encrypted_keys(tmp_path: Path) -> None:
    directory = tmp_path / "enc"
    TestPki.create(directory, now=NOW, curves=[Curve.BRAINPOOL], passphrase=b"correct horse")
    key_file = directory / "brainpool" / "ci.key.pem"
    assert key_file.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with pytest.raises(UsageError, match="passphrase is needed"):
        TestPki.open(directory)
    with pytest.raises(UsageError, match="wrong passphrase"):
        TestPki.open(directory, passphrase=b"wrong")
    store = TestPki.open(directory, passphrase=b"correct horse")
    original = serialization.load_pem_private_key(key_file.read_bytes(), b"correct horse")
    assert isinstance(original, ec.EllipticCurvePrivateKey)
    loaded = store.curves[Curve.BRAINPOOL].ci_key
    assert loaded.private_numbers() == original.private_numbers()
    assert json.loads((directory / MANIFEST_NAME).read_text())["encrypted_keys"] is True


def test_create_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("x")
    with pytest.raises(UsageError, match="not an empty directory"):
        TestPki.create(tmp_path, now=NOW)
    with pytest.raises(UsageError, match="EIN"):
        TestPki.create(tmp_path / "new", now=NOW, ein="12ab")


def test_open_refuses_what_is_not_a_test_pki(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="not a test PKI"):
        TestPki.open(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text('{"format": "other"}')
    with pytest.raises(StorageError, match="not a test-PKI manifest"):
        TestPki.open(tmp_path)


def test_corrupt_certificate_file_is_a_storage_error(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    TestPki.create(directory, now=NOW, curves=[Curve.NIST])
    (directory / "nist" / "eum.der").write_bytes(b"\x30\x03\x02\x01\x01")
    with pytest.raises(StorageError, match="corrupt"):
        TestPki.open(directory)


def test_trust_directory_of_plain_files(tmp_path: Path) -> None:
    from tests.pki.conftest import CI_DIR

    trust = load_trust_directory(CI_DIR)
    assert len(trust.anchors) == 4  # DER and PEM of both CIs
    assert trust.intermediates == ()
    with pytest.raises(StorageError, match="no CI certificate"):
        load_trust_directory(tmp_path)


def test_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(StorageError, match="No space left"):
        TestPki.create(tmp_path / "pki", now=NOW, curves=[Curve.NIST])
    assert [p.name for p in (tmp_path / "pki").rglob("*") if p.is_file()] == []
