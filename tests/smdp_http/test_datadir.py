"""The SM-DP+ data directory: certificates per role and curve, modes, passphrase, config."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.cli import main
from rspfed.crypto.curves import Curve
from rspfed.errors import StorageError, UsageError
from rspfed.pki import CertificateRole, verify_chain
from rspfed.pki.testpki import TestPki
from rspfed.smdp.datadir import (
    init_data_dir,
    load_config,
    open_store,
    read_settings,
    split_address,
    tls_paths,
)
from rspfed.smdp.http import server_ssl_context
from tests.smdp_http.conftest import METADATA, PACKAGE, metadata_file


def test_layout_and_certificates(tmp_path: Path, pki: TestPki) -> None:
    data = tmp_path / "d"
    init_data_dir(data, pki, address="smdp.example.org:8443", operator="ACME Mobile")
    config = load_config(data)
    assert config.address == "smdp.example.org:8443"
    assert {c.curve for c in config.credentials} == {Curve.NIST, Curve.BRAINPOOL}
    now = datetime.now(UTC)
    cis = [m.ci for m in pki.curves.values()]
    for cred in config.credentials:
        for der, key, role in (
            (cred.dp_auth_certificate, cred.dp_auth_key, CertificateRole.DPAUTH),
            (cred.dp_pb_certificate, cred.dp_pb_key, CertificateRole.DPPB),
        ):
            chain = verify_chain(der, role=role, trust_anchors=cis, now=now)
            assert chain is not None
            cert = x509.load_der_x509_certificate(der)
            assert cert.public_key() == key.public_key()
            assert isinstance(key.curve, type(cred.curve.ec_curve))
    files = tls_paths(data)
    tls = x509.load_pem_x509_certificate(files.server_chain.read_bytes())
    san = tls.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["smdp.example.org"]
    tls_key = tls.public_key()
    assert isinstance(tls_key, ec.EllipticCurvePublicKey)
    assert tls_key.curve.name == "secp256r1"
    verify_chain(
        tls,
        role=CertificateRole.DPTLS,
        trust_anchors=cis,
        now=now,
    )
    operator = x509.load_pem_x509_certificate(files.operator_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(files.client_ca.read_bytes())
    operator.verify_directly_issued_by(ca)
    assert operator.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == (
        "ACME Mobile"
    )
    for key_file in (data / "keys").iterdir():
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600, key_file
    assert stat.S_IMODE(files.operator_key.stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "smdp.sqlite").stat().st_mode) == 0o600
    assert b"PRIVATE KEY" not in (data / "config.json").read_bytes()
    open_store(data).close()
    server_ssl_context(data)


def test_passphrase(tmp_path: Path, pki: TestPki) -> None:
    data = tmp_path / "d"
    init_data_dir(data, pki, address="localhost", passphrase=b"s3cret", curves=[Curve.NIST])
    assert b"ENCRYPTED PRIVATE KEY" in (data / "keys" / "dptls.key.pem").read_bytes()
    with pytest.raises(UsageError) as info:
        load_config(data)
    assert "RSPFED_SMDP_PASSPHRASE" in str(info.value)
    with pytest.raises(UsageError):
        load_config(data, passphrase=b"wrong")
    assert len(load_config(data, passphrase=b"s3cret").credentials) == 1
    with pytest.raises(UsageError):
        server_ssl_context(data, passphrase=b"wrong")
    server_ssl_context(data, passphrase=b"s3cret")


@pytest.mark.parametrize(
    "address",
    ["", "a b", "host:", "host:0", "host:70000", "-bad.example", "x" * 300, "h:p", "127.0.0.1:80"],
)
def test_bad_addresses(address: str) -> None:
    with pytest.raises(UsageError):
        split_address(address)


def test_addresses() -> None:
    assert split_address("smdp.example.com") == ("smdp.example.com", None)
    assert split_address("localhost:8443") == ("localhost", 8443)


def test_refusals(tmp_path: Path, pki: TestPki) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UsageError):
        init_data_dir(tmp_path / "full", pki, address="localhost")
    with pytest.raises(StorageError):
        read_settings(tmp_path / "nothing")
    data = tmp_path / "d"
    init_data_dir(data, pki, address="localhost", curves=[Curve.NIST])
    settings = json.loads((data / "config.json").read_text())
    settings["trusted_cis"] = ["../../etc/passwd"]
    (data / "config.json").write_text(json.dumps(settings))
    with pytest.raises(StorageError):
        load_config(data)
    settings["version"] = 99
    (data / "config.json").write_text(json.dumps(settings))
    with pytest.raises(StorageError):
        read_settings(data)


def test_cli_init_and_template(tmp_path: Path, pki: TestPki) -> None:
    data = tmp_path / "d"
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "smdp", "init", "--data", str(data), "--pki", str(pki.directory),
            "--address", "localhost:8443", "--curve", "nist",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "operator" in result.output
    meta = metadata_file(tmp_path)
    add = ["smdp", "template", "add", "--data", str(data), "t1", str(PACKAGE), "--metadata"]
    result = runner.invoke(main, [*add, str(meta)])
    assert result.exit_code == 0, result.output
    store = open_store(data)
    try:
        registered = store.get_profile_type("t1")
        assert registered is not None
        assert registered.profile_name == METADATA["profileName"]
    finally:
        store.close()
    # a second registration of the name, a bad package, bad metadata: exit 2, one line
    for argv in (
        [*add, str(meta)],
        ["smdp", "template", "add", "--data", str(data), "t2", str(meta), "--metadata", str(meta)],
        [*add[:-3], "t3", str(PACKAGE), "--metadata", str(PACKAGE)],
    ):
        result = runner.invoke(main, argv)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
    again = runner.invoke(
        main,
        ["smdp", "init", "--data", str(data), "--pki", str(pki.directory), "--address", "x"],
    )
    assert again.exit_code == 2
    assert os.path.exists(data / "config.json")
    result = runner.invoke(main, ["smdp", "inventory", "--data", str(data)])
    assert result.exit_code == 0, result.output


def test_cli_init_from_encrypted_pki(tmp_path: Path) -> None:
    pki_dir = tmp_path / "pki"
    TestPki.create(pki_dir, curves=[Curve.NIST], now=datetime.now(UTC), passphrase=b"pkipw")
    (tmp_path / "pw").write_bytes(b"pkipw\n")
    base = ["smdp", "init", "--pki", str(pki_dir), "--address", "localhost"]
    refused = CliRunner().invoke(main, [*base, "--data", str(tmp_path / "a")])
    assert refused.exit_code == 2
    assert "passphrase" in refused.output
    result = CliRunner().invoke(
        main, [*base, "--data", str(tmp_path / "b"), "--pki-passphrase-file", str(tmp_path / "pw")]
    )
    assert result.exit_code == 0, result.output
    assert load_config(tmp_path / "b").address == "localhost"


def test_store_synchronous_setting(tmp_path: Path, pki: TestPki) -> None:
    """config.json's store_synchronous: NORMAL by default, FULL on request, else refused."""
    import sqlite3

    data = tmp_path / "d"
    init_data_dir(data, pki, address="smdp.example.org", curves=[Curve.NIST])
    assert read_settings(data)["store_synchronous"] == "NORMAL"

    def synchronous() -> int:
        # PRAGMA synchronous is per connection: read it through the store's own
        store = open_store(data)
        try:
            db = store._db
            assert isinstance(db, sqlite3.Connection)
            return int(db.execute("PRAGMA synchronous").fetchone()[0])
        finally:
            store.close()

    assert synchronous() == 1  # NORMAL
    path = data / "config.json"
    for value, expected in (("FULL", 2), (None, 1)):
        settings = json.loads(path.read_text())
        if value is None:
            del settings["store_synchronous"]  # data directories made before the setting
        else:
            settings["store_synchronous"] = value
        path.write_text(json.dumps(settings))
        assert synchronous() == expected
    settings["store_synchronous"] = "OFF"
    path.write_text(json.dumps(settings))
    with pytest.raises(StorageError, match="store_synchronous"):
        open_store(data)
