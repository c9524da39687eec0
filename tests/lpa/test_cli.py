"""``rspfed lpa`` end to end: ``rspfed smdp serve`` in a subprocess, everything else via the CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from rspfed.cli import main
from rspfed.smdp.datadir import tls_paths
from tests.paths import TS48

PACKAGE = TS48 / "TS48v2_SAIP2.3_BERTLV.der"


def cli(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def start_smdp(tmp: Path, pki: Path) -> tuple[subprocess.Popen[str], str, Path]:
    """``rspfed smdp init`` + ``template add`` + ``serve`` on a free port (retried if the
    port is taken between choosing it and listening)."""
    for attempt in range(5):
        port = free_port()
        address = f"localhost:{port}"
        data = tmp / f"smdp{attempt}"
        cli("smdp", "init", "--data", str(data), "--pki", str(pki), "--address", address)
        meta = tmp / "meta.json"
        meta.write_text(
            json.dumps(
                {
                    "serviceProviderName": "rspfed test",
                    "profileName": "CLI profile",
                    "profileClass": "test",
                    "notificationConfigurationInfo": [
                        {"events": ["install", "enable", "disable"], "address": address}
                    ],
                }
            )
        )
        cli(
            "smdp",
            "template",
            "add",
            "--data",
            str(data),
            "test",
            str(PACKAGE),
            "--metadata",
            str(meta),
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "rspfed", "smdp", "serve", "--data", str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert server.stdout is not None
        line = "?"
        while line and "serving" not in line and "error" not in line:
            line = server.stdout.readline()  # a warning may come first
        if "serving" in line:
            return server, address, data
        server.kill()
        server.wait()
    pytest.fail(f"rspfed smdp serve did not start: {line}")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("lpa-cli")
    pki, store = tmp / "pki", tmp / "euicc.db"
    cli("pki", "init", str(pki))
    cli("euicc", "create", str(store), "--pki", str(pki))
    server, address, data = start_smdp(tmp, pki)
    try:
        yield {"data": str(data), "store": str(store), "address": address}
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            server.kill()
            server.wait()


def order(setup: dict[str, str], *extra: str) -> tuple[str, str]:
    files = tls_paths(setup["data"])
    out = cli(
        "smdp",
        "order",
        "--es2-url",
        f"https://{setup['address']}",
        "--cert",
        str(files.operator_cert),
        "--key",
        str(files.operator_key),
        "--ca-file",
        str(files.server_ca),
        "--profile-type",
        "test",
        *extra,
    ).output
    iccid = re.search(r"ICCID (\d+)", out)
    code = re.search(r"(LPA:1\$\S+)", out)
    assert iccid is not None
    assert code is not None
    return iccid.group(1), code.group(1)


def test_download_enable_notifications(setup: dict[str, str]) -> None:
    iccid, code = order(setup)
    store = setup["store"]
    result = cli("lpa", "download", "--euicc", store, code, "--yes")
    assert f"installed {iccid}" in result.output
    # the progress display went to stderr, one line per step, ending with "done"
    assert "ES9+ InitiateAuthentication" in result.output
    assert "done" in result.output

    listed = json.loads(cli("lpa", "profiles", "--euicc", store, "--json").output)
    assert [(p["iccid"], p["state"], p["profileName"]) for p in listed] == [
        (iccid, "disabled", "CLI profile")
    ]
    cli("lpa", "enable", iccid, "--euicc", store)
    cli("lpa", "nickname", iccid, "mine", "--euicc", store)
    out = cli("lpa", "profiles", "--euicc", store).output
    assert f"{iccid} enabled" in out
    assert "(mine)" in out
    pending = json.loads(cli("lpa", "notifications", "--euicc", store, "--json").output)
    assert [n["event"] for n in pending] == ["enable"]
    delivered = json.loads(
        cli("lpa", "notifications", "--euicc", store, "--deliver", "--json").output
    )
    assert [n["status"] for n in delivered] == ["delivered"]
    assert json.loads(cli("lpa", "notifications", "--euicc", store, "--json").output) == []
    cli("lpa", "disable", iccid, "--euicc", store)


def test_confirmation_code_and_refusal(setup: dict[str, str]) -> None:
    iccid, code = order(setup, "--confirmation-code", "7788")
    store = setup["store"]
    # not a terminal and no --yes: the user did not accept
    refused = cli(
        "lpa", "download", "--euicc", store, code, "--confirmation-code", "7788", ok=False
    )
    assert refused.exit_code == 2
    assert "refused" in refused.output
    iccid2, code2 = order(setup, "--confirmation-code", "7788")
    wrong = cli(
        "lpa", "download", "--euicc", store, code2, "-y", "-q", "--confirmation-code", "1", ok=False
    )
    assert wrong.exit_code == 2
    assert "8.2.7" in wrong.output
    done = cli(
        "lpa", "download", "--euicc", store, code2, "-y", "-q", "--confirmation-code", "7788"
    )
    assert f"installed {iccid2}" in done.output
    assert iccid != iccid2


def test_untrusted_server_is_refused(setup: dict[str, str], tmp_path: Path) -> None:
    # an eUICC from another PKI: its CIs (the CLI's default trust) did not issue DPtls
    other = tmp_path / "pki"
    cli("pki", "init", str(other))
    store = tmp_path / "other.db"
    cli("euicc", "create", str(store), "--pki", str(other))
    _, code = order(setup)
    result = cli("lpa", "download", "--euicc", str(store), code, "-y", ok=False)
    assert result.exit_code == 2
    assert "rspfed: error:" in result.output
    assert "CI" in result.output


def test_usage_errors() -> None:
    result = cli("lpa", "profiles", ok=False)
    assert result.exit_code == 2
    assert "exactly one of --euicc" in result.output
    bad = cli("lpa", "qr", "LPA:1$bad host$X", ok=False)
    assert bad.exit_code == 2


def test_qr(tmp_path: Path) -> None:
    png = tmp_path / "ac.png"
    out = cli("lpa", "qr", "LPA:1$smdp.example$ABC", "--png", str(png)).output
    assert "LPA:1$smdp.example$ABC" in out
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "█" in cli("lpa", "qr", "LPA:1$smdp.example$ABC").output


@pytest.mark.timeout(120)
def test_download_with_pcsc(setup: dict[str, str], tmp_path: Path) -> None:
    """``rspfed lpa download --pcsc READER --ci PKIDIR`` (card: ``rspfed euicc serve``)."""
    from tests.euicc.test_serve_pcsc import serve

    pki = Path(setup["store"]).parent / "pki"
    store = tmp_path / "card.db"
    cli("euicc", "create", str(store), "--pki", str(pki))
    iccid, code = order(setup)
    with serve(store, tmp_path) as card:
        reader = str(card.reader)
        # no store, so no default trust: the test PKI's CIs come from --ci
        refused = cli("lpa", "download", "--pcsc", reader, code, "-y", "-q", ok=False)
        assert refused.exit_code == 2
        done = cli("lpa", "download", "--pcsc", reader, code, "-y", "-q", "--ci", str(pki))
        assert f"installed {iccid}" in done.output
        cli("lpa", "enable", iccid, "--pcsc", reader)
        listed = json.loads(cli("lpa", "profiles", "--pcsc", reader, "--json").output)
        assert [(p["iccid"], p["state"]) for p in listed] == [(iccid, "enabled")]
