"""Benchmark: the LPA's share of a profile download (rspfed.lpa.download).

A test PKI on both curves, an SM-DP+ data directory (``init_data_dir``) with
the TS.48 package ``TS48v2_SAIP2.3_BERTLV.der`` registered, and a software
eUICC per curve (SAIP installer on).  Two set-ups:

in-process
    the LPA talks to the eUICC through :class:`rspfed.lpa.InProcessEs10`
    (``isdr.handle``) and to the SM-DP+ core through an in-process ES9+
    adapter (``download(es9=...)``): no APDUs, no HTTP.
https
    the LPA talks to the eUICC over APDUs (:class:`rspfed.lpa.ApduEs10` on
    its card) and to H2's aiohttp application over HTTPS on loopback (same
    event loop), one keep-alive TLS connection per download.

Per download: total, time inside ES10 calls (the eUICC), time inside ES9+
calls (the SM-DP+, plus HTTP/TLS/JSON on both ends in the https set-up), and
the rest = the LPA's own work (ASN.1 decoding of the answers, request
building, BPP segmentation, hashing, notifications bookkeeping).

Run: ``python benchmarks/lpa_bench.py [--quick]``.  Prints milliseconds; no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed.crypto.curves import Curve
from rspfed.euicc.euicc import Euicc
from rspfed.lpa import ApduEs10, DownloadResult, Es9Settings, InProcessEs10, download
from rspfed.pki.testpki import TestPki
from rspfed.saip.install import install_package
from rspfed.smdp import InProcessEs9, ProfileType, Smdp
from rspfed.smdp.datadir import init_data_dir, load_config, open_store
from rspfed.smdp.http import make_app, server_ssl_context

PACKAGE = (
    Path(__file__).resolve().parent.parent
    / "rspfed"
    / "data"
    / "ts48"
    / "TS48v2_SAIP2.3_BERTLV.der"
)



def free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def report(name: str, results: list[DownloadResult]) -> None:
    def med(key: str) -> float:
        return statistics.median(r.timings[key] for r in results) * 1000

    total, euicc, server, lpa = med("total"), med("euicc"), med("server"), med("lpa")
    print(
        f"{name:28} n={len(results):3}  total {total:7.2f}  eUICC {euicc:7.2f}  "
        f"SM-DP+ {server:7.2f}  LPA {lpa:6.2f} ms ({100 * lpa / total:4.1f} %)"
    )


async def run(n: int, root: Path) -> None:
    now = datetime.now(UTC)
    pki = TestPki.create(root / "pki", now=now)
    port = free_port()
    address = f"localhost:{port}"
    data = root / "smdp"
    init_data_dir(data, pki, address=address)
    smdp = Smdp(load_config(data), open_store(data), now=lambda: datetime.now(UTC))
    smdp.add_profile_type(
        ProfileType.from_metadata(
            "bench",
            PACKAGE.read_bytes(),
            {"serviceProviderName": "bench", "profileName": "TS.48", "profileClass": "test"},
        )
    )
    nist_ci = pki.material(Curve.NIST).ci.public_bytes(Encoding.DER)

    def order() -> str:
        iccid = smdp.download_order(profile_type="bench")
        code = smdp.confirm_order(iccid=iccid).activation_code
        assert code is not None
        return code

    def euicc(curve: Curve, name: str) -> Euicc:
        return Euicc.create(
            root / f"{name}.db",
            pki,
            curves=(curve,),
            extra_cis=[nist_ci] if curve is not Curve.NIST else [],
            installer=lambda package: install_package(package).iccid,
        )

    es9 = InProcessEs9(smdp)
    for curve in (Curve.NIST, Curve.BRAINPOOL):
        card = euicc(curve, f"inproc-{curve.value}")
        link = InProcessEs10(card.isdr)
        await download(link, order(), es9=es9)  # warm-up (template preparation, caches)
        results = [await download(link, order(), es9=es9) for _ in range(n)]
        report(f"in-process {curve.value}", results)
        card.close()

    app = make_app(smdp, deliver_progress=False)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ssl_context(data)).start()
    try:
        for curve in (Curve.NIST, Curve.BRAINPOOL):
            card = euicc(curve, f"https-{curve.value}")
            cis = tuple(
                der
                for name in card.store.certificate_names()
                if name.startswith("ci-") and (der := card.store.certificate(name)) is not None
            )
            settings = Es9Settings(trust=cis)
            with ApduEs10(card.card) as apdu:
                await download(apdu, order(), settings=settings)
                results = [await download(apdu, order(), settings=settings) for _ in range(n)]
            report(f"https + APDUs {curve.value}", results)
            card.close()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 downloads per set-up")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(5 if args.quick else 30, Path(tmp)))


if __name__ == "__main__":
    main()
