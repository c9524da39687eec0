"""Benchmark: a whole profile download (issue C item 8): in-process split, HTTPS rate, server CPU.

(a) **In-process download** (``--only a``): :func:`rspfed.lpa.download` with an
    in-process ES9+ adapter into a real :class:`rspfed.smdp.Smdp` (the data
    directory's SQLite store, as ``rspfed smdp serve`` opens it) and
    :class:`rspfed.lpa.InProcessEs10` into a real :class:`rspfed.euicc.Euicc`
    with the SAIP installer on.  The time of each download is split, as in
    issue B, by wrapping functions (exclusive time, nested calls not counted
    twice):

    * crypto floor: ``rspfed.crypto`` sign / verify, key-pair generation,
      ECKA-DH and point decoding, the session-key KDF, BSP protect/unprotect,
      and the certificate signature checks inside ``rspfed.pki`` chain
      validation;
    * SAIP: personalisation on the SM-DP+ (``PreparedTemplate.personalise``),
      installation on the eUICC (the installer);
    * SQLite: every statement on the two stores' connections, ``COMMIT``
      (with its fsync) included;
    * the rest: everything else inside the SM-DP+ calls, inside the ES10
      calls, and the LPA itself (outside both).

    Printed per curve, medians over the downloads: each part per side and
    "rest / floor" against the issue's goal (<= 25 %).

(b) **HTTPS** (``--only b``): ``rspfed smdp serve`` as a real subprocess
    (``--workers 1`` and ``2``) on a fresh P-256 data directory; ES2+ orders
    are placed first (mutual TLS; their server CPU is reported apart), then
    1, 8 and 32 concurrent downloads by :func:`rspfed.lpa.download` (its
    HTTPS client: a fresh TLS connection per download, kept alive for the
    download's requests, the PIR delivered with HandleNotification) into
    in-process eUICCs (no SAIP installer: the client is the bottleneck on
    a small machine).  The clients run in separate processes (one per 8
    concurrent downloads, at most 4), their eUICCs created beforehand, so
    they do not count in the server's CPU.  Server CPU = user + system time
    of the server process and its workers (every thread) from
    ``/proc/<pid>/task/*/schedstat`` (nanoseconds; ``/proc/<pid>/stat`` ticks
    as fallback) before and after, divided by the downloads: TLS handshake, HTTP, JSON, core and
    SQLite persistence.

    Also, as parts of that cost: an ES9+ request the core refuses at once
    (wrong SM-DP+ address) on keep-alive connections (HTTP + JSON per
    request) and on a new TLS connection per request (+ the handshake).

(c) **Peak RSS** of the server (``VmHWM`` of every server process from
    ``/proc/<pid>/status``) after the 32-client run.

Run: ``python benchmarks/download_bench.py [--quick] [--only a|b]``.  Prints figures; no
assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

from rspfed import es2p, es9p  # noqa: E402
from rspfed.crypto import bsp, ecka, kdf, signature  # noqa: E402
from rspfed.crypto.curves import Curve  # noqa: E402
from rspfed.es2p.client import requester_of  # noqa: E402
from rspfed.euicc.euicc import Euicc  # noqa: E402
from rspfed.lpa import Es9Settings, InProcessEs10, download  # noqa: E402
from rspfed.pki import validate  # noqa: E402
from rspfed.pki.testpki import TestPki  # noqa: E402
from rspfed.saip.install import install_package  # noqa: E402
from rspfed.saip.personalise import PreparedTemplate  # noqa: E402
from rspfed.smdp import InProcessEs9, ProfileType, Smdp  # noqa: E402
from rspfed.smdp.datadir import init_data_dir, load_config, open_store, tls_paths  # noqa: E402

PACKAGE = REPO / "rspfed" / "data" / "ts48" / "TS48v2_SAIP2.3_BERTLV.der"
METADATA = {"serviceProviderName": "bench", "profileName": "TS.48", "profileClass": "test"}
TICK = os.sysconf("SC_CLK_TCK")
GOAL_REST = 0.25
GOAL_CPU_MS = 4.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def setup(root: Path, curves: tuple[Curve, ...]) -> tuple[Path, TestPki, str]:
    """A test PKI, an SM-DP+ data directory at ``localhost:PORT`` with the profile type."""
    now = datetime.now(UTC)
    pki = TestPki.create(root / "pki", now=now, curves=list(curves))
    address = f"localhost:{free_port()}"
    data = root / "smdp"
    init_data_dir(data, pki, address=address, curves=curves)
    with open_store(data) as store:
        core = Smdp(load_config(data), store, now=lambda: datetime.now(UTC))
        core.add_profile_type(ProfileType.from_metadata("bench", PACKAGE.read_bytes(), METADATA))
    return data, pki, address


# --------------------------------------------------------------------------
# (a) in-process split


class Meter:
    """Exclusive time per (side, category); the side is the call we are in."""

    def __init__(self) -> None:
        self.side = "lpa"
        self.parts: dict[tuple[str, str], float] = defaultdict(float)
        self.totals: dict[str, float] = defaultdict(float)
        self._stack: list[list[Any]] = []

    def reset(self) -> None:
        self.parts.clear()
        self.totals.clear()

    def category(self, category: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self._stack and self._stack[-1][0] == category:
                return fn(*args, **kwargs)
            frame: list[Any] = [category, 0.0]
            self._stack.append(frame)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                self._stack.pop()
                self.parts[(self.side, category)] += dt - frame[1]
                if self._stack:
                    self._stack[-1][1] += dt

        return wrapper

    def side_call(self, side: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            previous, self.side = self.side, side
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.totals[side] += time.perf_counter() - t0
                self.side = previous

        return wrapper


class TimedConnection:
    """A sqlite3 connection whose statements are timed as category "sqlite"."""

    def __init__(self, db: Any, meter: Meter) -> None:
        self._db = db
        self.execute = meter.category("sqlite", db.execute)
        self.executemany = meter.category("sqlite", db.executemany)
        self.commit = meter.category("sqlite", db.commit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def instrument_crypto(meter: Meter) -> Callable[[], None]:
    """Wrap the crypto functions wherever rspfed modules hold them; returns an undo."""
    functions: list[tuple[Any, str]] = [
        (signature, "sign"),
        (signature, "verify"),
        (ecka, "generate_key_pair"),
        (ecka, "ecka_dh"),
        (ecka, "decode_public_key"),
        (kdf, "derive_session_keys"),
        (kdf, "x963_kdf"),
        (validate, "_check_signature"),
    ]
    undo: list[tuple[Any, str, Any]] = []
    for owner, name in functions:
        original = getattr(owner, name)
        wrapped = meter.category("crypto", original)
        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("rspfed") and any(
                value is original for value in vars(module).values()
            ):
                for attr, value in list(vars(module).items()):
                    if value is original:
                        setattr(module, attr, wrapped)
                        undo.append((module, attr, original))
    methods = [
        (bsp.BspEncryptor, "protect"),
        (bsp.BspEncryptor, "protect_mac_only"),
        (bsp.BspEncryptor, "protect_split"),
        (bsp.BspDecryptor, "unprotect"),
        (bsp.BspDecryptor, "unprotect_mac_only"),
        (PreparedTemplate, "personalise"),
    ]
    for cls, name in methods:
        original = cls.__dict__[name]
        category = "saip" if cls is PreparedTemplate else "crypto"
        setattr(cls, name, meter.category(category, original))
        undo.append((cls, name, original))

    def restore() -> None:
        for owner, attr, original in reversed(undo):
            setattr(owner, attr, original)

    return restore



async def in_process(root: Path, n: int) -> None:
    curves = (Curve.NIST, Curve.BRAINPOOL)
    data, pki, _address = setup(root, curves)
    meter = Meter()
    smdp = Smdp(load_config(data), open_store(data), now=lambda: datetime.now(UTC))
    store: Any = smdp.store
    store._db = TimedConnection(store._db, meter)
    for name in (
        "initiate_authentication",
        "authenticate_client",
        "get_bound_profile_package",
        "handle_notification",
        "cancel_session",
    ):
        setattr(smdp, name, meter.side_call("smdp", getattr(smdp, name)))
    es9 = InProcessEs9(smdp)
    nist_ci = pki.material(Curve.NIST).ci.public_bytes(Encoding.DER)
    installer = meter.category("saip", lambda package: install_package(package).iccid)
    restore = instrument_crypto(meter)
    print(
        f"\n(a) in-process download, {n} downloads per curve after one warm-up; "
        "milliseconds, median per download (SM-DP+ store synchronous as served)"
    )
    try:
        for curve in curves:
            euicc = Euicc.create(
                root / f"euicc-{curve.value}.db",
                pki,
                curves=(curve,),
                extra_cis=[nist_ci] if curve is not Curve.NIST else [],
                installer=installer,
            )
            estore: Any = euicc.store
            estore._db = TimedConnection(estore._db, meter)
            link = InProcessEs10(euicc.isdr)
            link.transceive = meter.side_call("euicc", link.transceive)  # type: ignore[method-assign]
            rows: list[dict[str, float]] = []
            for i in range(n + 1):
                iccid = smdp.download_order(profile_type="bench")
                code = smdp.confirm_order(iccid=iccid).activation_code
                meter.reset()
                t0 = time.perf_counter()
                await download(link, code, es9=es9)
                total = time.perf_counter() - t0
                if i == 0:
                    continue  # warm-up
                row = {"total": total}
                for side in ("smdp", "euicc"):
                    row[f"{side} total"] = meter.totals[side]
                    for cat in ("crypto", "saip", "sqlite"):
                        row[f"{side} {cat}"] = meter.parts[(side, cat)]
                    row[f"{side} rest"] = meter.totals[side] - sum(
                        meter.parts[(side, cat)] for cat in ("crypto", "saip", "sqlite")
                    )
                row["lpa crypto"] = meter.parts[("lpa", "crypto")]
                row["lpa rest"] = (
                    total - meter.totals["smdp"] - meter.totals["euicc"] - row["lpa crypto"]
                )
                rows.append(row)
                # keep the eUICC small: delete nothing, the profile list grows (as a phone)
            euicc.close()
            report_split(curve, rows)
    finally:
        restore()
        smdp.store.close()


def report_split(curve: Curve, rows: list[dict[str, float]]) -> None:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows) * 1000

    def ratio(rest_keys: tuple[str, ...], floor_keys: tuple[str, ...]) -> float:
        return statistics.median(
            sum(r[k] for k in rest_keys) / max(1e-9, sum(r[k] for k in floor_keys)) for r in rows
        )

    print(f"  {curve.spec_name}: whole download {med('total'):.2f} ms")
    print(f"    {'side':8}{'total':>9}{'crypto':>9}{'SAIP':>9}{'SQLite':>9}{'rest':>9}")
    for side, label in (("smdp", "SM-DP+"), ("euicc", "eUICC")):
        print(
            f"    {label:8}{med(f'{side} total'):9.2f}{med(f'{side} crypto'):9.2f}"
            f"{med(f'{side} saip'):9.2f}{med(f'{side} sqlite'):9.2f}{med(f'{side} rest'):9.2f}"
        )
    print(
        f"    {'LPA':8}{med('lpa crypto') + med('lpa rest'):9.2f}{med('lpa crypto'):9.2f}"
        f"{'':9}{'':9}{med('lpa rest'):9.2f}"
    )
    all_rest = ("smdp rest", "euicc rest", "lpa rest")
    floor = ("smdp crypto", "euicc crypto", "lpa crypto")
    r_all = ratio(all_rest, floor)
    r_dp = ratio(("smdp rest",), ("smdp crypto",))
    r_eu = ratio(("euicc rest",), ("euicc crypto",))
    r_dp_all = ratio(("smdp rest", "smdp sqlite", "smdp saip"), ("smdp crypto",))
    verdict = "met" if r_all <= GOAL_REST else "missed"
    print(
        f"    rest / floor: whole download {100 * r_all:.0f} % (goal <= 25 %: {verdict}); "
        f"SM-DP+ {100 * r_dp:.0f} % (with its SAIP + SQLite {100 * r_dp_all:.0f} %); "
        f"eUICC {100 * r_eu:.0f} %"
    )


# --------------------------------------------------------------------------
# (b) and (c): HTTPS through `rspfed smdp serve`


def proc_children(pid: int) -> list[int]:
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


def server_pids(pid: int) -> list[int]:
    return [pid, *proc_children(pid)]


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of ``pids`` (the server and its workers), all their threads.

    ``/proc/<pid>/task/<tid>/schedstat`` (nanoseconds on a CPU, user +
    system) when the kernel has it, else utime + stime from
    ``/proc/<pid>/stat`` (clock ticks, 10 ms)."""
    total = 0.0
    for p in pids:
        try:
            tasks = os.listdir(f"/proc/{p}/task")
            total += (
                sum(
                    int(Path(f"/proc/{p}/task/{t}/schedstat").read_text().split()[0]) for t in tasks
                )
                / 1e9
            )
        except (OSError, ValueError, IndexError):
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def peak_rss_mb(pids: list[int]) -> float:
    total = 0
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return total / 1024


def start_server(data: Path, port: int, workers: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rspfed", "smdp", "serve", "--data", str(data),
         "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not re.search(r":(\d+)/", line):
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc


async def error_round_trips(
    url: str, data: Path, concurrency: int, per: int, *, fresh: bool
) -> None:
    """InitiateAuthentication naming a wrong SM-DP+ address (refused at once,
    8.8.1/3.8): the HTTP + JSON cost of one request; ``fresh`` opens a new TLS
    connection per request (the handshake's cost), else one keep-alive connection."""
    body = es9p.encode_request(
        es9p.InitiateAuthenticationRequest(bytes(16), b"\xbf\x20\x00", "elsewhere.example")
    )
    path = url + es9p.FUNCTIONS["initiateAuthentication"].path
    headers = {"Content-Type": "application/json", "X-Admin-Protocol": es9p.ADMIN_PROTOCOL}
    ctx = ssl.create_default_context(cafile=str(tls_paths(data).server_ca))

    async def client() -> None:
        connector = aiohttp.TCPConnector(limit=1, force_close=fresh)
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(per):
                async with session.post(path, data=body, headers=headers, ssl=ctx) as resp:
                    await resp.read()

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def place_orders(url: str, data: Path, count: int) -> list[str]:
    """``count`` activation codes through ES2+ (one mutual-TLS connection)."""
    files = tls_paths(data)
    ctx = es2p.client_ssl_context(
        cert=files.operator_cert, key=files.operator_key, ca_file=files.server_ca
    )
    codes: list[str] = []
    async with es2p.Es2Client(
        url, requester=requester_of(files.operator_cert), ssl_context=ctx
    ) as c:
        for _ in range(count):
            iccid = await c.download_order(profile_type="bench")
            code = (await c.confirm_order(iccid=iccid)).activation_code
            assert code is not None
            codes.append(code)
    return codes


def client_process(
    conn: multiprocessing.connection.Connection,
    pki_dir: str,
    root: str,
    codes: list[str],
    concurrency: int,
) -> None:
    """One client process: create its eUICCs, wait for "go", download ``concurrency`` at a time."""
    pki = TestPki.open(Path(pki_dir))
    euiccs = [Euicc.create(Path(root) / f"euicc-{i}.db", pki) for i in range(len(codes))]
    cis = tuple(
        der
        for name in euiccs[0].store.certificate_names()
        if name.startswith("ci-") and (der := euiccs[0].store.certificate(name)) is not None
    )
    settings = Es9Settings(trust=cis)
    conn.send("ready")
    conn.recv()
    jobs = list(zip(euiccs, codes, strict=True))
    failures: list[str] = []

    async def worker() -> None:
        while jobs:
            euicc, code = jobs.pop()
            try:
                await download(InProcessEs10(euicc.isdr), code, settings=settings)
            except Exception as exc:  # reported, not fatal
                failures.append(f"{type(exc).__name__}: {exc}"[:200])

    async def run() -> None:
        await asyncio.gather(*(worker() for _ in range(concurrency)))

    t0 = time.perf_counter()
    asyncio.run(run())
    conn.send((time.perf_counter() - t0, failures))
    for e in euiccs:
        e.close()


def run_downloads(
    root: Path, pki_dir: Path, codes: list[str], concurrency: int, pids: list[int]
) -> tuple[float, float, list[str]]:
    """(wall s, server CPU s, failures): ``codes`` downloaded ``concurrency`` at a time."""
    nproc = max(1, min(4, (concurrency + 7) // 8))
    root.mkdir(parents=True, exist_ok=True)
    spawn = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    for k in range(nproc):
        mine = codes[k::nproc]
        per = concurrency // nproc + (1 if k < concurrency % nproc else 0)
        proc_root = Path(tempfile.mkdtemp(prefix=f"clients-{concurrency}-{k}-", dir=root))
        parent, child = spawn.Pipe()
        p = spawn.Process(
            target=client_process, args=(child, str(pki_dir), str(proc_root), mine, per)
        )
        p.start()
        child.close()  # a client that dies closes its end: recv() then raises EOFError
        pipes.append(parent)
        procs.append(p)
    for pipe in pipes:
        assert pipe.recv() == "ready"
    c0 = cpu_seconds(pids)
    t0 = time.perf_counter()
    for pipe in pipes:
        pipe.send("go")
    failures: list[str] = []
    for pipe in pipes:
        _secs, fails = pipe.recv()
        failures.extend(fails)
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(pids) - c0
    for p in procs:
        p.join()
    return wall, cpu, failures


@contextlib.contextmanager
def server(data: Path, port: int, workers: int) -> Iterator[subprocess.Popen[str]]:
    proc = start_server(data, port, workers)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)


def over_https(root: Path, quick: bool) -> None:
    data, _pki, address = setup(root, (Curve.NIST,))
    port = int(address.rsplit(":", 1)[1])
    url = f"https://{address}"
    levels = (1, 8, 32)
    print(
        f"\n(b) downloads over HTTPS through `rspfed smdp serve` ({address}), P-256; "
        f"{os.cpu_count()} CPUs shared by server and clients"
    )
    results: dict[tuple[int, int], tuple[float, float]] = {}
    for workers in (1, 2):
        with server(data, port, workers) as proc:
            pids = server_pids(proc.pid)
            warm = asyncio.run(place_orders(url, data, 4 * workers))
            run_downloads(root / f"w{workers}", root / "pki", warm, 4 * workers, pids)
            for label, conc, fresh in (
                ("keep-alive connection,  1 client ", 1, False),
                ("keep-alive connections, 8 clients", 8, False),
                ("new TLS connection each, 1 client", 1, True),
            ):
                per = (100 if quick else 400) // conc // (4 if fresh else 1)
                c0 = cpu_seconds(pids)
                t0 = time.perf_counter()
                asyncio.run(error_round_trips(url, data, conc, per, fresh=fresh))
                secs, cpu = time.perf_counter() - t0, cpu_seconds(pids) - c0
                print(
                    f"  workers={workers} ES9+ refused request, {label}: "
                    f"{per * conc / secs:6.0f} req/s, "
                    f"server CPU {1000 * cpu / (per * conc):.3f} ms/req"
                )
            for conc in levels:
                count = max(conc, 8) if quick else max(24, 3 * conc)
                c0 = cpu_seconds(pids)
                codes = asyncio.run(place_orders(url, data, count))
                order_cpu = cpu_seconds(pids) - c0
                wall, cpu, failures = run_downloads(
                    root / f"w{workers}", root / "pki", codes, conc, pids
                )
                ok = count - len(failures)
                results[(workers, conc)] = (ok / wall, 1000 * cpu / max(1, ok))
                print(
                    f"  workers={workers} clients={conc:2d}: {ok / wall:6.1f} downloads/s, "
                    f"server CPU {1000 * cpu / max(1, ok):5.2f} ms/download "
                    f"({count} downloads, {len(failures)} failed; "
                    f"ES2+ order {1000 * order_cpu / count:.2f} ms CPU each, not included)"
                )
                for f in failures[:3]:
                    print(f"    failure: {f}")
            print(
                f"(c) workers={workers}: server peak RSS after 32 clients "
                f"{peak_rss_mb(pids):.0f} MB ({len(pids)} processes, VmHWM summed)"
            )
    best = min(cpu for _rate, cpu in results.values())
    worst = max(cpu for _rate, cpu in results.values())
    print(
        f"  server CPU per P-256 download {best:.2f}-{worst:.2f} ms "
        f"(goal <= {GOAL_CPU_MS:.0f} ms: {'met' if worst <= GOAL_CPU_MS else 'missed'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer downloads")
    parser.add_argument("--only", choices=("a", "b"), help="only part (a) or (b)+(c)")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, aiohttp {aiohttp.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "a"):
            asyncio.run(in_process(Path(tmp) / "a", 5 if args.quick else 30))
        if args.only in (None, "b"):
            over_https(Path(tmp) / "b", args.quick)


if __name__ == "__main__":
    main()
