"""``rspfed decode`` / ``rspfed encode``: every SGP.26 certificate and TS.48 package
goes DER -> JSON -> the same DER through the command line; bad input exits 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rspfed.cli import main
from tests.paths import SGP26, TS48

CERTIFICATES = sorted(SGP26.rglob("CERT_*.der"))
PACKAGES = sorted(TS48.glob("*.der"))


def _round_trip(runner: CliRunner, type_name: str, path: Path) -> None:
    decoded = runner.invoke(main, ["decode", "--type", type_name, str(path)])
    assert decoded.exit_code == 0, decoded.output
    document = json.loads(decoded.stdout)
    assert document["type"] == type_name
    encoded = runner.invoke(main, ["encode", type_name, "-"], input=decoded.stdout)
    assert encoded.exit_code == 0, encoded.output
    assert encoded.stdout_bytes == path.read_bytes()


@pytest.mark.parametrize("path", CERTIFICATES, ids=lambda p: p.name)
def test_sgp26_certificates_round_trip(path: Path) -> None:
    _round_trip(CliRunner(), "Certificate", path)


@pytest.mark.parametrize("path", PACKAGES, ids=lambda p: p.name)
def test_ts48_packages_round_trip(path: Path) -> None:
    _round_trip(CliRunner(), "ProfileElements", path)


def test_ts48_package_type_is_inferred(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["decode", str(PACKAGES[0])])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["type"] == "ProfileElements"
    assert "header" in document["value"][0]


def test_hex_and_base64_input() -> None:
    import base64

    der = CERTIFICATES[0].read_bytes()
    runner = CliRunner()
    plain = runner.invoke(main, ["decode", "--type", "Certificate", str(CERTIFICATES[0])])
    as_hex = runner.invoke(main, ["decode", "--type", "Certificate", "--hex", "-"],
                           input=der.hex())
    as_b64 = runner.invoke(main, ["decode", "--type", "Certificate", "--base64", "-"],
                           input=base64.b64encode(der).decode())
    assert plain.exit_code == as_hex.exit_code == as_b64.exit_code == 0
    assert plain.stdout == as_hex.stdout == as_b64.stdout


def test_pem_certificate_is_accepted() -> None:
    pem = SGP26 / "CertificateIssuer" / "CERT_CI_ECDSA_NIST.pem"
    der = SGP26 / "CertificateIssuer" / "CERT_CI_ECDSA_NIST.der"
    runner = CliRunner()
    from_pem = runner.invoke(main, ["decode", "--type", "Certificate", str(pem)])
    from_der = runner.invoke(main, ["decode", "--type", "Certificate", str(der)])
    assert from_pem.exit_code == 0, from_pem.output
    assert from_pem.stdout == from_der.stdout


def test_ambiguous_tag_lists_candidates() -> None:
    # a certificate is an untagged SEQUENCE: many types share its tag
    result = CliRunner().invoke(main, ["decode", str(CERTIFICATES[0])])
    assert result.exit_code == 2
    assert "Certificate" in result.output
    assert "give --type" in result.output


def _run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "rspfed", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (("decode", "--type", "Certificate", "-"), b"\x30\x03\x02\x01"),  # truncated
        (("decode", "--type", "Certificate", "-"), b""),  # empty
        (("decode", "--type", "EUICCInfo1", "--hex", "-"), b"zz"),  # not hex
        (("decode", "--type", "NoSuchType", "-"), b"\x30\x00"),  # unknown type
        (("decode", "--type", "EUICCInfo1", "-"), b"\xbf\x20\x81\x00"),  # non-minimal length
        (("encode", "EUICCInfo1", "-"), b"{not json"),
        (("encode", "EUICCInfo1", "-"), b'{"svn": 3}'),  # wrong shape
        (("decode", "/nonexistent/file.der"), b""),
    ],
)
def test_bad_input_exits_2_with_one_line(args: tuple[str, ...], stdin: bytes) -> None:
    result = _run(*args, stdin=stdin)
    assert result.returncode == 2, result
    err = result.stderr.decode()
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert result.stdout == b""
