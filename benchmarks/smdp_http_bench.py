"""Benchmark: the SM-DP+ HTTP layer (``rspfed smdp serve``) over real HTTPS on loopback.

Starts ``rspfed smdp serve`` as a subprocess (1 or 2 workers) on a fresh data
directory and measures, from one client process (aiohttp):

* **ES9+ error round trip, keep-alive**: InitiateAuthentication naming a
  wrong SM-DP+ address (the core refuses at once with 8.8.1/3.8): the cost
  of TLS records, HTTP parsing, JSON codec and the ``Failed`` answer.
  ``C`` concurrent clients, each on one keep-alive connection.
* **New TLS connection per request**: the same request on a fresh
  connection each time (full TLS 1.3 handshake with the P-256 DPtls key).
* **Whole downloads over HTTPS** with 1, 8 and 32 concurrent clients: ES2+
  orders first (mutual TLS, CPU reported apart), then InitiateAuthentication
  ... GetBoundProfilePackage + HandleNotification against in-process rspfed
  eUICCs (the test-side ES10 loop of ``tests/smdp_http/es10_loop.py``), one
  keep-alive connection per download; the server's peak RSS at the end.

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
    for p in [pid, *children(pid)]:
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


async def place_orders(url: str, data: Path, count: int) -> tuple[list[str], float]:
    """``count`` orders over one mutual-TLS connection; (matchingIds, seconds)."""
    files = tls_paths(data)
    es2_ctx = es2p.client_ssl_context(
        cert=files.operator_cert, key=files.operator_key, ca_file=files.server_ca
    )
    t0 = time.perf_counter()
    codes = []
    async with es2p.Es2Client(
        url, requester=requester_of(files.operator_cert), ssl_context=es2_ctx
    ) as es2:
        for _ in range(count):
            iccid = await es2.download_order(profile_type="bench")
            codes.append((await es2.confirm_order(iccid=iccid)).matching_id)
    return codes, time.perf_counter() - t0


async def downloads(
    url: str, data: Path, euiccs: list[Euicc], codes: list[str], concurrency: int
) -> float:
    """Whole downloads, ``concurrency`` at a time, each on its own keep-alive connection."""
    ctx = ssl.create_default_context(cafile=str(tls_paths(data).server_ca))
    queue = list(zip(euiccs, codes, strict=True))

    async def client() -> None:
        while queue:
            euicc, mid = queue.pop()
            async with aiohttp.ClientSession() as session:
                trace = await es10_loop.download(
                    session, url, ctx, euicc.isdr.handle, address="localhost", matching_id=mid
                )
            assert trace.pir

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return time.perf_counter() - t0


def peak_rss_mb(pid: int) -> float:
    """Sum of VmHWM (peak resident set) of the server and its workers, MB."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = 200 if args.quick else 1000
    levels = (1, 8) if args.quick else (1, 8, 32)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = setup(root)
        pki = TestPki.open(root / "pki")
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
                # warm up every worker (each prepares the template once)
                warm = [Euicc.create(root / f"w{workers}-{i}.db", pki) for i in range(8)]
                codes = [asyncio.run(place_orders(url, data, 1))[0][0] for _ in warm]
                asyncio.run(downloads(url, data, warm, codes, len(warm)))
                for conc in levels:
                    count = max(16, 2 * conc) if not args.quick else max(4, conc)
                    euiccs = [
                        Euicc.create(root / f"e{workers}-{conc}-{i}.db", pki) for i in range(count)
                    ]
                    c0 = cpu_seconds(proc.pid)
                    codes, order_s = asyncio.run(place_orders(url, data, count))
                    c1 = cpu_seconds(proc.pid)
                    secs = asyncio.run(downloads(url, data, euiccs, codes, conc))
                    c2 = cpu_seconds(proc.pid)
                    print(
                        f"workers={workers} downloads over HTTPS, {conc:2d} clients: "
                        f"{count / secs:6.1f} downloads/s, server CPU "
                        f"{1000 * (c2 - c1) / count:.2f} ms/download "
                        f"(+ {1000 * (c1 - c0) / count:.2f} ms/order; "
                        f"orders {1000 * order_s / count:.2f} ms wall each)"
                    )
                print(
                    f"workers={workers} server peak RSS (all processes): "
                    f"{peak_rss_mb(proc.pid):.0f} MB"
                )
            finally:
                proc.terminate()
                proc.wait(30)


if __name__ == "__main__":
    main()
