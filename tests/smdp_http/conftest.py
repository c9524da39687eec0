"""Fixtures: a test PKI, an SM-DP+ data directory, and a real HTTPS server on loopback.

The server runs its own event loop in a thread (real sockets, real TLS); the
tests talk to it with aiohttp clients under ``asyncio.run`` or raw sockets.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from rspfed.crypto.curves import Curve
from rspfed.pki.testpki import TestPki
from rspfed.smdp.datadir import init_data_dir, tls_paths
from tests.paths import TS48

ADDRESS = "localhost"
PACKAGE = TS48 / "TS48v2_SAIP2.3_BERTLV.der"
METADATA: dict[str, Any] = {
    "serviceProviderName": "rspfed test",
    "profileName": "TS.48 test profile",
    "profileClass": "test",
}


class ServerThread:
    """An aiohttp application served on 127.0.0.1 from a thread with its own loop."""

    def __init__(self, app: web.Application, ssl_context: ssl.SSLContext | None) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as exc:  # reported to the test thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._stop())
        self.loop.close()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def start(self) -> ServerThread:
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def call(self, func: Callable[[], Any]) -> Any:
        """Run ``func`` on the server's loop thread (e.g. to read its state)."""

        async def run() -> Any:
            return func()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{ADDRESS}:{self.port}"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(
        tmp_path_factory.mktemp("pki") / "pki",
        curves=[Curve.NIST, Curve.BRAINPOOL],
        now=datetime.now(UTC),
    )


def make_data_dir(
    directory: Path,
    pki: TestPki,
    *,
    callback_url: str | None = None,
    template: bool = True,
    passphrase: bytes | None = None,
) -> Path:
    """A fresh data directory with the TS.48 template registered as profile type ``test``."""
    from rspfed.smdp import ProfileType, Smdp
    from rspfed.smdp.datadir import load_config, open_store

    init_data_dir(
        directory,
        pki,
        address=ADDRESS,
        progress_callback_url=callback_url,
        passphrase=passphrase,
    )
    if template:
        store = open_store(directory)
        try:
            config = load_config(directory, passphrase=passphrase)
            core = Smdp(config, store, now=lambda: datetime.now(UTC))
            core.add_profile_type(ProfileType.from_metadata("test", PACKAGE.read_bytes(), METADATA))
        finally:
            store.close()
    return directory


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, pki: TestPki) -> Path:
    return make_data_dir(tmp_path_factory.mktemp("smdp") / "data", pki)


def client_context(data: Path, *, with_cert: bool = False) -> ssl.SSLContext:
    files = tls_paths(data)
    ctx = ssl.create_default_context(cafile=str(files.server_ca))
    if with_cert:
        ctx.load_cert_chain(files.operator_cert, files.operator_key)
    return ctx


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[ServerThread]:
    from rspfed.smdp.http import make_app, server_ssl_context, smdp_factory

    app = make_app(smdp_factory(data_dir), deliver_progress=False)
    thread = ServerThread(app, server_ssl_context(data_dir)).start()
    yield thread
    thread.stop()


def metadata_file(directory: Path) -> Path:
    path = directory / "metadata.json"
    path.write_text(json.dumps(METADATA))
    return path
