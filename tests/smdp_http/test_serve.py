"""``rspfed smdp serve`` as a subprocess: workers sharing the port, orders, clean shutdown."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import aiohttp

from rspfed import es2p, es9p
from rspfed.es2p.client import requester_of
from rspfed.pki.testpki import TestPki
from rspfed.smdp.datadir import tls_paths
from tests.paths import REPO
from tests.smdp_http.conftest import client_context, make_data_dir


def _start(
    args: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], int, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rspfed", "smdp", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )
    assert proc.stdout is not None
    line: list[str] = []
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: line.append(stdout.readline()))
    reader.start()
    reader.join(60)
    assert line, "the server printed nothing"
    match = re.search(r"://[^:/]+:(\d+)/", line[0])
    assert match, line[0]
    return proc, int(match.group(1)), line[0]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _listeners(port: int) -> int:
    """Sockets listening on 127.0.0.1:``port`` (each SO_REUSEPORT worker has its own)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
            count += 1
    return count


def _stop(proc: subprocess.Popen[str], sig: int) -> str:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    return out


def test_serve_two_workers(tmp_path: Path, pki: TestPki) -> None:
    data = make_data_dir(tmp_path / "data", pki)
    proc, port, _ = _start(["--data", str(data), "--port", "0", "--workers", "2"])
    try:
        assert len(_children(proc.pid)) >= 1  # the second worker (and the spawn helper)
        assert _listeners(port) == 2
        files = tls_paths(data)
        url = f"https://localhost:{port}"

        async def run() -> list[str]:
            async def one_order() -> str:
                # a new connection each time: the kernel spreads them over the workers
                ctx = es2p.client_ssl_context(
                    cert=files.operator_cert, key=files.operator_key, ca_file=files.server_ca
                )
                async with es2p.Es2Client(
                    url, requester=requester_of(files.operator_cert), ssl_context=ctx
                ) as es2:
                    iccid = await es2.download_order(profile_type="test")
                    order = await es2.confirm_order(iccid=iccid)
                    assert order.activation_code is not None
                    return order.activation_code

            codes = list(await asyncio.gather(*(one_order() for _ in range(12))))
            async with aiohttp.ClientSession() as session:
                body = es9p.encode_request(
                    es9p.InitiateAuthenticationRequest(bytes(16), b"\xbf\x20\x00", "elsewhere")
                )
                async with session.post(
                    url + es9p.FUNCTIONS["initiateAuthentication"].path,
                    data=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-Admin-Protocol": es9p.ADMIN_PROTOCOL,
                    },
                    ssl=client_context(data),
                ) as resp:
                    assert resp.status == 200
            return codes

        codes = asyncio.run(run())
        assert len(set(codes)) == 12  # concurrent orders, distinct matchingIds, one store
    finally:
        out = _stop(proc, signal.SIGTERM)
    assert "stopped" in out
    assert not [p for p in _children(proc.pid) if Path(f"/proc/{p}").exists()]


def test_serve_no_tls_sigint_passphrase(tmp_path: Path, pki: TestPki) -> None:
    data = make_data_dir(tmp_path / "data", pki, template=False, passphrase=b"pw")
    wrong = subprocess.run(
        [sys.executable, "-m", "rspfed", "smdp", "serve", "--data", str(data), "--port", "0"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "RSPFED_SMDP_PASSPHRASE": "wrong"},
        timeout=60,
    )
    assert wrong.returncode == 2
    assert "passphrase" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    proc, port, line = _start(
        ["--data", str(data), "--port", "0", "--no-tls", "--workers", "2"],
        env={"RSPFED_SMDP_PASSPHRASE": "pw"},
    )
    assert "http://127.0.0.1:" in line
    try:

        async def run() -> tuple[int, int]:
            async with aiohttp.ClientSession() as session:
                headers = {
                    "Content-Type": "application/json",
                    "X-Admin-Protocol": "gsma/rsp/v2.2.0",
                }
                base = f"http://127.0.0.1:{port}"
                async with session.post(
                    base + "/gsma/rsp2/es9plus/authenticateClient", data=b"{}", headers=headers
                ) as resp:
                    es9_status = resp.status
                async with session.post(
                    base + "/gsma/rsp2/es2plus/downloadOrder", data=b"{}", headers=headers
                ) as resp:
                    es2_status = resp.status
            return es9_status, es2_status

        assert asyncio.run(run()) == (400, 403)  # ES2+ needs a TLS client certificate
    finally:
        out = _stop(proc, signal.SIGINT)
    assert "stopped" in out
