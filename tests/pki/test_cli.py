"""``rspfed pki``: CliRunner for behaviour, real subprocesses for exit codes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed.cli.pki import pki
from rspfed.crypto.ecka import generate_key_pair
from rspfed.pki import Curve
from rspfed.pki.testpki import TestPki
from tests.paths import REPO, SGP26
from tests.pki.conftest import counter_rand

CI_DIR = SGP26 / "CertificateIssuer"
DPAUTH = SGP26 / "DPauth" / "CERT_S_SM_DPauth_ECDSA_NIST.der"
DPPB = SGP26 / "DPpb" / "CERT_S_SM_DPpb_ECDSA_BRP.der"
DPTLS_PEM = SGP26 / "DPtls" / "CERT_S_SM_DP_TLS_NIST.pem"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    path = [str(REPO), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    return subprocess.run(
        [sys.executable, "-c", "from rspfed.cli import main; main()", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def invoke(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(pki, [str(a) for a in args])
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_verify_sgp26_valid() -> None:
    code, out, err = invoke("verify", DPAUTH, "--ci", CI_DIR, "--at", "2025-07-01")
    assert code == 0, err
    assert "dp-auth" in out
    assert "CN=Test CI" in out
    assert "F54172BDF98A95D65CBEB88A38A1C11D800A85C3" in out
    assert out.strip().splitlines()[-1].startswith("valid: dp-auth certificate on secp256r1")


def test_verify_pem_and_chain_in_any_order() -> None:
    code, out, err = invoke(
        "verify", CI_DIR / "CERT_CI_ECDSA_NIST.pem", DPTLS_PEM, "--ci", CI_DIR, "--at", "2025-07-01"
    )
    assert code == 0, err
    assert "valid: dp-tls" in out


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((DPTLS_PEM, "--at", "2026-09-01"), "expired at 2026-08-02"),
        ((DPPB, "--role", "dp-auth", "--at", "2025-07-01"), "has role id-rspRole-dp-pb"),
    ],
)
def test_verify_invalid_exits_1_with_one_line(args: tuple[str | Path, ...], reason: str) -> None:
    code, _, err = invoke("verify", *args, "--ci", CI_DIR)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rspfed: invalid:")
    assert reason in lines[0]


def test_init_verify_revoke_round_trip(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    passphrase = tmp_path / "pass.txt"
    passphrase.write_text("s3cret\n")
    code, out, err = invoke("init", directory, "--curve", "nist", "--passphrase-file", passphrase)
    assert code == 0, err
    assert "nist: CI key id" in out
    assert stat.S_IMODE((directory / "nist" / "ci.key.pem").stat().st_mode) == 0o600
    assert not (directory / "brainpool").exists()

    store = TestPki.open(directory, passphrase=b"s3cret")
    key = generate_key_pair(Curve.NIST, counter_rand("cli"))
    euicc = store.issue_euicc_certificate(
        "89049032123451234512345678901235", key.public_key(), Curve.NIST
    )
    leaf = tmp_path / "euicc.der"
    leaf.write_bytes(euicc.public_bytes(Encoding.DER))

    code, out, err = invoke("verify", leaf, "--ci", directory)
    assert code == 0, err
    assert "EID 89049032123451234512345678901235" in out
    assert len([line for line in out.splitlines() if line.startswith("[")]) == 3

    code, _, err = invoke("revoke", directory, leaf)
    assert code == 2
    assert "passphrase is needed" in err
    code, out, err = invoke("revoke", directory, leaf, "--passphrase-file", passphrase)
    assert code == 0, err
    assert "is now number 2" in out

    code, _, err = invoke("verify", leaf, "--ci", directory)
    assert code == 1
    assert "was revoked" in err


def test_wrong_eid_and_unknown_ci(tmp_path: Path) -> None:
    code, _, err = invoke("verify", DPAUTH, "--ci", tmp_path)
    assert code == 2
    assert "no CI certificate" in err
    (tmp_path / "ci.pem").write_bytes((CI_DIR / "CERT_CI_ECDSA_BRP.pem").read_bytes())
    code, _, err = invoke("verify", DPAUTH, "--ci", tmp_path, "--at", "2025-07-01")
    assert code == 1
    assert "unknown CI key id" in err


@pytest.mark.parametrize(
    "args",
    [
        ("verify", SGP26 / "DPauth" / "data_sig.der", "--ci", CI_DIR),
        ("verify", DPAUTH, "--ci", CI_DIR, "--at", "not-a-date"),
        ("verify", DPAUTH),
        ("verify", "/nonexistent.der", "--ci", CI_DIR),
        ("revoke", CI_DIR, DPAUTH),
    ],
)
def test_bad_input_exits_2(args: tuple[str | Path, ...]) -> None:
    code, _, err = invoke(*args)
    assert code == 2
    assert "Traceback" not in err


def test_subprocess_exit_codes(tmp_path: Path) -> None:
    ok = run("pki", "verify", DPAUTH, "--ci", CI_DIR, "--at", "2025-07-01")
    assert ok.returncode == 0, ok.stderr
    assert "valid: dp-auth" in ok.stdout

    expired = run("pki", "verify", DPTLS_PEM, "--ci", CI_DIR, "--at", "2026-09-01")
    assert expired.returncode == 1
    assert expired.stderr.count("\n") == 1
    assert "expired" in expired.stderr

    bad = run("pki", "verify", SGP26 / "DPauth" / "data_sig.der", "--ci", CI_DIR)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr

    init = run("pki", "init", tmp_path / "pki", "--curve", "brainpool")
    assert init.returncode == 0, init.stderr
    again = run("pki", "init", tmp_path / "pki")
    assert again.returncode == 2
    assert "not an empty directory" in again.stderr
    assert "Traceback" not in again.stderr
