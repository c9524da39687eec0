"""Fixtures: an operator data directory from a test PKI and its HTTPS server on loopback.

The server is the real application (:func:`make_operator_app` around
:func:`open_operator` of a directory made by :func:`init_operator_dir`),
served with CERT.DPtls on 127.0.0.1 from the test's own event loop; devices
are real software eUICCs downloading through :func:`rspfed.lpa.download`.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed.crypto.curves import Curve
from rspfed.euicc.euicc import Euicc
from rspfed.federation.client import operator_tls_context
from rspfed.federation.datadir import close_operator, init_operator_dir, open_operator
from rspfed.federation.http import OPERATOR_KEY, make_operator_app
from rspfed.federation.operator import Operator
from rspfed.federation.types import OperatorConfig, Plan
from rspfed.lpa import Es9Settings, InProcessEs10, Lpa, download, store_ci_certificates
from rspfed.network.usim import eap_usim, read_usim_identity
from rspfed.pki.testpki import TestPki
from rspfed.saip.install import install_package
from rspfed.smdp import ProfileType, Smdp
from rspfed.smdp.datadir import load_config, open_store
from rspfed.smdp.http import server_ssl_context
from tests.paths import TS48

GB = 1 << 30
PLAN = Plan(pool_bytes=20 * GB, device_limit=4)
TEMPLATE = (TS48 / "TS48v4_SAIP2.3_NoBERTLV.der").read_bytes()


def _metadata(address: str) -> dict[str, Any]:
    return {
        "serviceProviderName": "rspfed",
        "profileName": "TS.48 test profile",
        "profileClass": "operational",
        "notificationConfigurationInfo": [
            {"events": ["install", "enable", "disable", "delete"], "address": address}
        ],
        "iccidPrefix": "8900000",
        "imsiPrefix": "00101",
        "op": "cdc202d5123e20f62b6d676ac72cb318",
    }


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(
        tmp_path_factory.mktemp("fed-pki") / "pki",
        curves=[Curve.NIST],
        now=datetime.now(UTC),
    )


def reserve_port() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@attrs.define
class OperatorDir:
    """An operator data directory with the ``ts48`` profile type, and a reserved port."""

    data: Path
    address: str
    sock: socket.socket

    port: int


def make_operator_dir(
    tmp: Path, pki: TestPki, config: OperatorConfig | None = None, passphrase: bytes | None = None
) -> OperatorDir:
    sock = reserve_port()
    address = f"localhost:{sock.getsockname()[1]}"
    data = tmp / "operator"
    init_operator_dir(
        data, pki=pki, address=address, curves=(Curve.NIST,), config=config, passphrase=passphrase
    )
    store = open_store(data)
    try:
        core = Smdp(load_config(data, passphrase=passphrase), store, now=lambda: datetime.now(UTC))
        core.add_profile_type(ProfileType.from_metadata("ts48", TEMPLATE, _metadata(address)))
    finally:
        store.close()
    return OperatorDir(data, address, sock, int(sock.getsockname()[1]))


@attrs.define
class Running:
    """A running operator server and what a test needs to talk to it."""

    directory: OperatorDir
    app: web.Application
    url: str

    @property
    def operator(self) -> Operator:
        return self.app[OPERATOR_KEY]


@asynccontextmanager
async def running(
    directory: OperatorDir, *, tls: bool = True, sync_interval: float = 5.0
) -> AsyncIterator[Running]:
    """Serve the directory on its reserved port for the duration of the block."""
    data = directory.data
    app = make_operator_app(
        lambda: open_operator(data),
        sync_interval=sync_interval,
        close=close_operator,
        deliver_progress=False,
    )
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    context = server_ssl_context(data) if tls else None
    site = web.SockSite(runner, directory.sock, ssl_context=context)  # the reserved port
    await site.start()
    scheme = "https" if tls else "http"
    try:
        yield Running(directory, app, f"{scheme}://{directory.address}")
    finally:
        await runner.cleanup()


def make_euicc(tmp: Path, pki: TestPki, name: str) -> Euicc:
    (tmp / name).mkdir(parents=True, exist_ok=True)
    return Euicc.create(
        tmp / name / "euicc.db",
        pki,
        curves=(Curve.NIST,),
        installer=lambda package: install_package(package).iccid,
    )


def tls_for(euicc: Euicc, host: str = "localhost") -> ssl.SSLContext:
    """The client TLS context a device with this eUICC uses (its CIs)."""
    return operator_tls_context(host, trust=store_ci_certificates(euicc.store))


async def download_and_enable(euicc: Euicc, activation_code: str) -> str:
    """Download over HTTPS (trusting the eUICC's CIs) and enable; the ICCID."""
    result = await download(
        InProcessEs10(euicc.isdr),
        activation_code,
        settings=Es9Settings(trust=store_ci_certificates(euicc.store)),
    )
    Lpa(InProcessEs10(euicc.isdr)).enable(result.iccid)
    return result.iccid


def usim_of(euicc: Euicc) -> dict[str, Any]:
    """``usim``, ``imsi`` and ``mnc_length`` for OperatorClient.register/attach."""
    imsi, mnc = read_usim_identity(euicc.card)
    return {"usim": eap_usim(euicc.card), "imsi": imsi, "mnc_length": mnc}


def ci_der(pki: TestPki) -> bytes:
    return pki.material(Curve.NIST).ci.public_bytes(Encoding.DER)
