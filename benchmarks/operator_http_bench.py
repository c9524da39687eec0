"""Benchmark: the operator service over HTTPS on loopback (issue D item 11, the HTTP half).

A fresh operator data directory (``init_operator_dir``, P-256 test PKI, the
TS.48 template), served by :func:`rspfed.federation.http.make_operator_app`
on 127.0.0.1 with CERT.DPtls, **in this process and on the same event loop as
the clients** (so every figure is client + server CPU on one core); the
devices are real software eUICCs (SAIP installer on).

(a) **Join end to end**: for each of N laptops, the phone signs a token,
    the laptop redeems it (``OperatorClient.redeem``), downloads and enables
    its linked profile (:func:`rspfed.lpa.download` over HTTPS, install
    notification included) and attaches with service data (EAP-AKA' with its
    USIM over HTTPS).  Median and best per phase.
(b) **Registration**: EAP-AKA' registration of a new key (two round trips).
(c) **Signed requests**: ``devices`` signed by the primary, sequential on
    one keep-alive connection: requests per second (sign + verify + nonce
    write + core + JSON).
(d) **Unsigned requests**: ``join/collect`` of a pending request, same way.

Run: ``python benchmarks/operator_http_bench.py [--laptops N]``.  Prints figures; no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rspfed.crypto.curves import Curve
from rspfed.euicc.euicc import Euicc
from rspfed.federation import DeviceClass, Service, issue_token
from rspfed.federation.client import OperatorClient, operator_tls_context
from rspfed.federation.datadir import close_operator, init_operator_dir, open_operator
from rspfed.federation.http import OPERATOR_KEY, make_operator_app
from rspfed.federation.types import Plan
from rspfed.lpa import Es9Settings, InProcessEs10, Lpa, download, store_ci_certificates
from rspfed.network.usim import eap_usim, read_usim_identity
from rspfed.pki.testpki import TestPki
from rspfed.saip.install import install_package
from rspfed.smdp import ProfileType, Smdp
from rspfed.smdp.datadir import load_config, open_store
from rspfed.smdp.http import server_ssl_context

TEMPLATE = Path(__file__).resolve().parent.parent / "rspfed/data/ts48/TS48v4_SAIP2.3_NoBERTLV.der"
GB = 1 << 30


def _metadata(address: str) -> dict[str, Any]:
    return {
        "serviceProviderName": "rspfed",
        "profileName": "TS.48 test profile",
        "profileClass": "operational",
        "notificationConfigurationInfo": [{"events": ["install"], "address": address}],
        "iccidPrefix": "8900000",
        "imsiPrefix": "00101",
        "op": "cdc202d5123e20f62b6d676ac72cb318",
    }


def _euicc(tmp: Path, pki: TestPki, name: str) -> Euicc:
    (tmp / name).mkdir()
    return Euicc.create(
        tmp / name / "euicc.db",
        pki,
        curves=(Curve.NIST,),
        installer=lambda package: install_package(package).iccid,
    )


async def _download(euicc: Euicc, code: str) -> str:
    result = await download(
        InProcessEs10(euicc.isdr),
        code,
        settings=Es9Settings(trust=store_ci_certificates(euicc.store)),
    )
    Lpa(InProcessEs10(euicc.isdr)).enable(result.iccid)
    return result.iccid


def _usim(euicc: Euicc) -> dict[str, Any]:
    imsi, mnc = read_usim_identity(euicc.card)
    return {"usim": eap_usim(euicc.card), "imsi": imsi, "mnc_length": mnc}


async def _timed(into: list[float], call: Awaitable[Any]) -> Any:
    start = time.perf_counter()
    result = await call
    into.append(time.perf_counter() - start)
    return result


def _ms(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1e3:7.1f} ms   best {min(values) * 1e3:7.1f} ms"


async def _rate(call: Callable[[], Awaitable[Any]], seconds: float = 2.0) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        await call()
        count += 1
    return count / (time.perf_counter() - start)


async def main(laptops: int) -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        pki = TestPki.create(tmp / "pki", curves=[Curve.NIST], now=datetime.now(UTC))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        address = f"localhost:{sock.getsockname()[1]}"
        data = tmp / "op"
        init_operator_dir(data, pki=pki, address=address, curves=(Curve.NIST,))
        store = open_store(data)
        Smdp(load_config(data), store, now=lambda: datetime.now(UTC)).add_profile_type(
            ProfileType.from_metadata("ts48", TEMPLATE.read_bytes(), _metadata(address))
        )
        store.close()
        app = make_operator_app(
            lambda: open_operator(data), close=close_operator, deliver_progress=False
        )
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, sock, ssl_context=server_ssl_context(data)).start()
        url = f"https://{address}"
        operator = app[OPERATOR_KEY]
        try:
            phone = _euicc(tmp, pki, "phone")
            sub, enrolment = operator.subscribe("ts48", Plan(pool_bytes=20 * GB, device_limit=64))
            await _download(phone, enrolment.activation_code)
            ctx = operator_tls_context("localhost", trust=store_ci_certificates(phone.store))
            key = ec.generate_private_key(ec.SECP256R1())
            registration: list[float] = []
            async with OperatorClient(url, ssl_context=ctx) as op:
                for _ in range(5):
                    key = ec.generate_private_key(ec.SECP256R1())
                    await _timed(registration, op.register(**_usim(phone), eid=phone.eid, key=key))
            phases: dict[str, list[float]] = {
                k: [] for k in ("token", "redeem", "download", "attach", "total")
            }
            for i in range(laptops):
                laptop = _euicc(tmp, pki, f"laptop{i}")
                lctx = operator_tls_context("localhost", trust=store_ci_certificates(laptop.store))
                start = time.perf_counter()
                t0 = time.perf_counter()
                token = issue_token(
                    primary_key=key, subscription_id=sub.id, eid=laptop.eid,
                    device_class=DeviceClass.LAPTOP, services=frozenset({Service.DATA}),
                    quota=GB, now=datetime.now(UTC), rand=os.urandom,
                )  # fmt: skip
                phases["token"].append(time.perf_counter() - t0)
                async with OperatorClient(url, ssl_context=lctx) as lop:
                    linked = await _timed(phases["redeem"], lop.redeem(token, laptop.eid))
                    await _timed(phases["download"], _download(laptop, linked.activation_code))
                    await _timed(
                        phases["attach"], lop.attach(**_usim(laptop), service=Service.DATA)
                    )
                phases["total"].append(time.perf_counter() - start)
                laptop.close()
            print(
                f"operator over HTTPS on loopback, client and server on one loop ({laptops} joins)"
            )
            print(f"(b) EAP-AKA' registration        {_ms(registration)}")
            print("(a) join end to end, per phase:")
            for phase, values in phases.items():
                print(f"      {phase:9s}                  {_ms(values)}")
            async with OperatorClient(url, ssl_context=ctx) as op:
                signed = await _rate(lambda: op.devices(key))
                ticket = await op.join(sub.id, phone.eid, DeviceClass.TABLET, "t")
                unsigned = await _rate(lambda: op.collect(ticket.request.id, ticket.secret))
            print(
                f"(c) signed 'devices'             {signed:7.0f} requests/s ({laptops + 1} devices)"
            )
            print(f"(d) unsigned 'join/collect'      {unsigned:7.0f} requests/s")
            phone.close()
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laptops", type=int, default=8)
    asyncio.run(main(parser.parse_args().laptops))
