"""Benchmark: the SM-DP+ HTTP layer (``rspfed smdp serve``) over real HTTPS on loopback.

Starts ``rspfed smdp serve`` as a subprocess (1 or 2 workers) on a fresh data
directory and measures, from one client process (aiohttp):

* **ES9+ error round trip, keep-alive**: InitiateAuthentication naming a
  wrong SM-DP+ address (the core refuses at once with 8.8.1/3.8): the cost
  of TLS records, HTTP parsing, JSON codec and the ``Failed`` answer.
  ``C`` concurrent clients, each on one keep-alive connection.
* **New TLS connection per request**: the same request on a fresh
  connection each time (full TLS 1.3 handshake with the P-256 DPtls key).
* **Whole downloads over HTTPS**: ES2+ order (mutual TLS), then
  InitiateAuthentication ... GetBoundProfilePackage + HandleNotification
  against an in-process rspfed eUICC (the test-side ES10 loop of
  ``tests/smdp_http/es10_loop.py``), one keep-alive connection per download.

Server CPU is read from ``/proc/<pid>/stat`` (user + system of the server
and its worker processes) before and after each phase, so the per-request and
per-download figures are the server's own CPU, not the client's.  The client
(one Python process) is often the bottleneck at higher concurrency: the
requests/s are a floor for the server.

Run: ``python benchmarks/smdp_http_bench.py [--quick]``.  No assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rspfed import es2p, es9p  # noqa: E402
from rspfed.crypto.curves import Curve  # noqa: E402
from rspfed.es2p.client import requester_of  # noqa: E402
from rspfed.euicc.euicc import Euicc  # noqa: E402
from rspfed.pki.testpki import TestPki  # noqa: E402
from rspfed.smdp import ProfileType, Smdp  # noqa: E402
from rspfed.smdp.datadir import init_data_dir, load_config, open_store, tls_paths  # noqa: E402
from tests.smdp_http import es10_loop  # noqa: E402

PACKAGE = REPO / "rspfed" / "data" / "ts48" / "TS48v2_SAIP2.3_BERTLV.der"
HEADERS = {"Content-Type": "application/json", "X-Admin-Protocol": es9p.ADMIN_PROTOCOL}
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children (live ones, via /proc)."""
    total = 0.0
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                pids.append(int(entry))
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def setup(root: Path) -> Path:
    pki = TestPki.create(root / "pki", curves=[Curve.NIST], now=datetime.now(UTC))
    data = root / "data"
    init_data_dir(data, pki, address="localhost", curves=[Curve.NIST])
    store = open_store(data)
    try:
        core = Smdp(load_config(data), store, now=lambda: datetime.now(UTC))
        core.add_profile_type(
            ProfileType.from_metadata(
                "bench",
                PACKAGE.read_bytes(),
                {"serviceProviderName": "bench", "profileName": "TS.48", "profileClass": "test"},
            )
        )
    finally:
        store.close()
    return data


def start(data: Path, workers: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rspfed", "smdp", "serve", "--data", str(data), "--port", "0",
         "--workers", str(workers)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r":(\d+)/", line)
    assert match, line
    return proc, int(match.group(1))


def ssl_ctx(data: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_paths(data).server_ca))


async def error_round_trips(
    url: str, data: Path, concurrency: int, per_client: int, *, keep_alive: bool
) -> float:
    body = es9p.encode_request(
        es9p.InitiateAuthenticationRequest(bytes(16), b"\xbf\x20\x00", "elsewhere.example")
    )
    path = url + es9p.FUNCTIONS["initiateAuthentication"].path
    ctx = ssl_ctx(data)

    async def client() -> None:
        connector = aiohttp.TCPConnector(limit=1, force_close=not keep_alive)
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(per_client):
                async with session.post(path, data=body, headers=HEADERS, ssl=ctx) as resp:
                    await resp.read()
                    assert resp.status == 200

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - t0


async def downloads(url: str, data: Path, root: Path, count: int) -> tuple[float, float]:
    """``count`` sequential whole downloads; (order seconds, download seconds) in total."""
    files = tls_paths(data)
    pki = TestPki.open(root / "pki")
    es2_ctx = es2p.client_ssl_context(
        cert=files.operator_cert, key=files.operator_key, ca_file=files.server_ca
    )
    ctx = ssl.create_default_context(cafile=str(files.server_ca))
    euiccs = [Euicc.create(root / f"e{i}-{time.monotonic_ns()}.db", pki) for i in range(count)]
    t0 = time.perf_counter()
    codes = []
    async with es2p.Es2Client(
        url, requester=requester_of(files.operator_cert), ssl_context=es2_ctx
    ) as es2:
        for _ in range(count):
            iccid = await es2.download_order(profile_type="bench")
            codes.append((await es2.confirm_order(iccid=iccid)).matching_id)
    t1 = time.perf_counter()
    for euicc, mid in zip(euiccs, codes, strict=True):
        async with aiohttp.ClientSession() as session:
            await es10_loop.download(
                session, url, ctx, euicc.isdr.handle, address="localhost", matching_id=mid
            )
    return t1 - t0, time.perf_counter() - t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 200 if args.quick else 1000
    n_dl = 5 if args.quick else 20
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = setup(root)
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; aiohttp {aiohttp.__version__}"
        )
        for workers in (1, 2):
            proc, port = start(data, workers)
            url = f"https://localhost:{port}"
            try:
                asyncio.run(error_round_trips(url, data, 1, 20, keep_alive=True))  # warm up
                for conc in (1, 8):
                    per = max(1, n // conc)
                    c0 = cpu_seconds(proc.pid)
                    secs = asyncio.run(error_round_trips(url, data, conc, per, keep_alive=True))
                    cpu = cpu_seconds(proc.pid) - c0
                    total = per * conc
                    print(
                        f"workers={workers} ES9+ error round trip, keep-alive, {conc:2d} clients: "
                        f"{total / secs:7.0f} req/s, server CPU {1000 * cpu / total:.3f} ms/req"
                    )
                per = max(1, n // 4)
                c0 = cpu_seconds(proc.pid)
                secs = asyncio.run(error_round_trips(url, data, 1, per, keep_alive=False))
                cpu = cpu_seconds(proc.pid) - c0
                print(
                    f"workers={workers} new TLS connection per request, 1 client:        "
                    f"{per / secs:7.0f} req/s, server CPU {1000 * cpu / per:.3f} ms/req"
                )
                if workers == 1:
                    asyncio.run(downloads(url, data, root, 1))  # warm up: template prepared
                    c0 = cpu_seconds(proc.pid)
                    order_s, dl_s = asyncio.run(downloads(url, data, root, n_dl))
                    cpu = cpu_seconds(proc.pid) - c0
                    print(
                        f"workers=1 {n_dl} orders (ES2+, one mTLS connection): "
                        f"{1000 * order_s / n_dl:.2f} ms/order wall"
                    )
                    print(
                        f"workers=1 {n_dl} whole downloads over HTTPS (client eUICC in-process): "
                        f"{1000 * dl_s / n_dl:.1f} ms/download wall; server CPU incl. orders, TLS "
                        f"and store {1000 * cpu / n_dl:.2f} ms/download"
                    )
            finally:
                proc.terminate()
                proc.wait(30)


if __name__ == "__main__":
    main()
