"""Fixtures: ``rspfed operator serve`` in a subprocess on a free loopback port.

Everything else goes through the real commands (click's ``CliRunner``):
``pki init``, ``operator init``, ``smdp template add`` with a TS.48 package,
``euicc create``.  The server runs until the module's tests are done.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner, Result

from rspfed.cli import main
from tests.paths import TS48

PACKAGE = TS48 / "TS48v4_SAIP2.3_NoBERTLV.der"


def cli(*args: str, ok: bool = True, env: Mapping[str, str] | None = None) -> Result:
    """Run ``rspfed ARGS``; with ``ok`` the exit status must be 0."""
    result = CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


@attrs.frozen
class Service:
    """A running operator: its data directory, URL, CA file and test PKI."""

    tmp: Path
    pki: Path
    data: Path
    address: str
    ca_file: Path

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    def euicc(self, name: str) -> tuple[Path, str]:
        """A new software eUICC store from the test PKI; its path and EID."""
        store = self.tmp / f"{name}.euicc"
        cli("euicc", "create", str(store), "--pki", str(self.pki))
        info = json.loads(cli("euicc", "info", str(store), "--json").stdout)
        return store, str(info["eid"])


def _metadata(address: str) -> dict[str, object]:
    return {
        "serviceProviderName": "rspfed operator",
        "profileName": "TS.48 test profile",
        "profileClass": "operational",
        "notificationConfigurationInfo": [
            {"events": ["install", "enable", "disable", "delete"], "address": address}
        ],
    }


def start_server(
    tmp: Path, pki: Path, *, tls: bool = True
) -> tuple[subprocess.Popen[str], Service]:
    """``operator init`` + ``template add`` + ``operator serve`` on a free port (retried
    if the port is taken between choosing it and listening)."""
    line = "?"
    tmp.mkdir(parents=True, exist_ok=True)
    for attempt in range(5):
        address = f"localhost:{free_port()}"
        data = tmp / f"operator{attempt}"
        out = cli(
            "operator", "init", "--data", str(data), "--pki", str(pki), "--address", address
        ).stdout
        assert "--ca-file" in out
        meta = tmp / "metadata.json"
        meta.write_text(json.dumps(_metadata(address)))
        cli(
            "smdp",
            "template",
            "add",
            "--data",
            str(data),
            "ts48",
            str(PACKAGE),
            "--metadata",
            str(meta),
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "rspfed", "operator", "serve", "--data", str(data)]
            + ([] if tls else ["--no-tls"]),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert server.stdout is not None
        line = "?"
        while line and "serving" not in line and "error" not in line:
            line = server.stdout.readline()  # a warning (--no-tls) may come first
        if "serving" in line:
            ca_file = data / "tls" / "server-ca.pem"
            return server, Service(tmp, pki, data, address, ca_file)
        server.kill()
        server.wait()
    pytest.fail(f"rspfed operator serve did not start: {line}")


def stop_server(server: subprocess.Popen[str]) -> None:
    """SIGTERM, as an operator would stop it; killed if it does not stop."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        server.kill()
        server.wait()
    if server.stdout is not None:
        server.stdout.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("federation-cli")
    pki = tmp / "pki"
    cli("pki", "init", str(pki), "--curve", "nist")
    server, found = start_server(tmp, pki)
    try:
        yield found
    finally:
        stop_server(server)
