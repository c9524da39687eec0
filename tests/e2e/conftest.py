"""End-to-end harness: the SM-DP+ app on real HTTPS, real SQLite files, real eUICCs over APDUs.

* :class:`SmdpServer`: a data directory made by ``init_data_dir`` for
  ``localhost:PORT`` (the port reserved first, so the activation codes and
  CERT.DPtls name the address the server really listens on), the aiohttp
  application of :mod:`rspfed.smdp.http` served from a thread with its own
  event loop, and a core built by the app factory with an injected
  :class:`Clock` (``Smdp(config, store, now=clock)``).  A tiny middleware
  records every ES9+/ES2+ answer as it goes on the wire (:class:`WireRecord`):
  observation only, the answer is passed on unchanged.
* the test side uses a second core on its own connection to the same store
  file for ES2+ orders and for reading the inventory, and reads the
  ``session`` table of the SQLite file directly.
* eUICCs are :class:`rspfed.euicc.Euicc` stores driven by :func:`rspfed.lpa.download`
  over :class:`rspfed.lpa.ApduEs10` on ``euicc.card``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest
from aiohttp import web
from aiohttp.typedefs import Middleware
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.crypto.curves import Curve
from rspfed.euicc.euicc import Euicc
from rspfed.lpa import ActivationCode, ApduEs10, Es9Settings, Lpa, store_ci_certificates
from rspfed.pki.testpki import TestPki
from rspfed.saip.install import install_package, load_profile
from rspfed.smdp import ItemState, ProfileType, Smdp, SmdpConfig
from rspfed.smdp.datadir import STORE_NAME, init_data_dir, load_config, open_store
from rspfed.smdp.http import make_app, server_ssl_context
from tests.paths import TS48
from tests.smdp_http.conftest import ServerThread

PACKAGE = (TS48 / "TS48v2_SAIP2.3_BERTLV.der").read_bytes()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(
        tmp_path_factory.mktemp("e2e-pki") / "pki",
        curves=[Curve.NIST, Curve.BRAINPOOL],
        now=datetime.now(UTC),
    )


class Clock:
    """The SM-DP+'s ``now``: wall time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@attrs.frozen
class WireRecord:
    """One answer as the server sent it."""

    function: str
    http_status: int
    status: str | None  # header.functionExecutionStatus.status (None: no JSON header)
    code: tuple[str, str] | None  # (subjectCode, reasonCode) on Failed

    @property
    def failed(self) -> bool:
        return self.status == "Failed"


def _record(body: bytes | None, function: str, http_status: int) -> WireRecord:
    status: str | None = None
    code: tuple[str, str] | None = None
    if body:
        try:
            parsed = json.loads(body)
            fes = parsed["header"]["functionExecutionStatus"]
            status = str(fes["status"])
            data = fes.get("statusCodeData")
            if data is not None:
                code = (str(data["subjectCode"]), str(data["reasonCode"]))
        except (ValueError, KeyError, TypeError):
            pass
    elif http_status == 204:
        status = "Executed-Success"  # HandleNotification: 204, no body
    return WireRecord(function, http_status, status, code)


def wire_observer(records: list[WireRecord]) -> Middleware:
    """An aiohttp middleware that records each answer (function, HTTP status, SGP.22 code)."""

    @web.middleware
    async def observe(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        function = request.path.rsplit("/", 1)[-1]
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            records.append(WireRecord(function, exc.status, None, None))
            raise
        body = response.body if isinstance(response, web.Response) else None
        records.append(
            _record(body if isinstance(body, bytes) else None, function, response.status)
        )
        return response

    return observe


class _SockServerThread(ServerThread):
    """:class:`ServerThread` on a socket reserved before the data directory was made."""

    def __init__(self, app: web.Application, ssl_context: Any, sock: socket.socket) -> None:
        super().__init__(app, ssl_context)
        self._sock = sock

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.SockSite(self._runner, self._sock, ssl_context=self.ssl_context)
        await site.start()
        self.port = int(self._sock.getsockname()[1])


def reserve_port() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def make_data(directory: Path, pki: TestPki, address: str) -> Path:
    """A data directory for ``address`` with the TS.48 template registered as type ``test``."""
    init_data_dir(directory, pki, address=address)
    store = open_store(directory)
    try:
        core = Smdp(load_config(directory), store, now=lambda: datetime.now(UTC))
        core.add_profile_type(
            ProfileType.from_metadata(
                "test",
                PACKAGE,
                {
                    "serviceProviderName": "rspfed e2e",
                    "profileName": "TS.48 test profile",
                    "profileClass": "test",
                    "notificationConfigurationInfo": [
                        {"events": ["install", "enable", "disable", "delete"], "address": address}
                    ],
                },
            )
        )
    finally:
        store.close()
    return directory


@attrs.define
class SmdpServer:
    """A running SM-DP+ (see the module doc) and the test's own view of its store."""

    data: Path
    address: str
    clock: Clock
    thread: ServerThread
    core: Smdp  # the test's core (own connection, same file, same clock)
    wire: list[WireRecord]

    @property
    def port(self) -> int:
        return self.thread.port

    # -- ES2+ through the test's core ------------------------------------------------

    def order(self, **confirm: Any) -> tuple[str, ActivationCode]:
        eid = confirm.pop("order_eid", None)
        iccid = self.core.download_order(profile_type="test", eid=eid)
        confirmed = self.core.confirm_order(iccid=iccid, **confirm)
        return iccid, ActivationCode.parse(confirmed.activation_code)

    # -- observation ------------------------------------------------------------------

    def state(self, iccid: str) -> ItemState:
        item = self.core.item(iccid)
        assert item is not None
        return item.state

    def states(self) -> dict[str, ItemState]:
        return {item.iccid: item.state for item in self.core.inventory()}

    def live_sessions(self) -> int:
        """Session rows in the SQLite file that have not expired (by the server's clock)."""
        now = self.clock()
        micros = int((now - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
        db = sqlite3.connect(f"file:{self.data / STORE_NAME}?mode=ro", uri=True)
        try:
            query = "SELECT COUNT(*) FROM session WHERE expires > ?"
            (count,) = db.execute(query, (micros,)).fetchone()
        finally:
            db.close()
        return int(count)

    def calls(self) -> list[str]:
        return [r.function for r in self.wire]

    def failures(self) -> list[tuple[str, tuple[str, str] | None]]:
        return [(r.function, r.code) for r in self.wire if r.failed]


ConfigEdit = Callable[[SmdpConfig], SmdpConfig]


def start_server(
    directory: Path,
    pki: TestPki,
    *,
    edit: ConfigEdit | None = None,
    tls_data: Path | None = None,
    pki_for_data: TestPki | None = None,
    middlewares: tuple[Middleware, ...] = (),
) -> SmdpServer:
    """Make a data directory for ``localhost:PORT`` and serve it from a thread.

    ``edit`` changes the loaded configuration (both cores); ``tls_data`` serves
    the TLS files of another data directory; ``pki_for_data`` makes the data
    directory from another PKI.
    """
    sock = reserve_port()
    address = f"localhost:{sock.getsockname()[1]}"
    data = make_data(directory, pki_for_data or pki, address)
    clock = Clock()
    wire: list[WireRecord] = []

    def config() -> SmdpConfig:
        loaded = load_config(data)
        return edit(loaded) if edit is not None else loaded

    def factory() -> Smdp:  # called on the server thread: its own store connection
        return Smdp(config(), open_store(data), now=clock)

    app = make_app(factory, deliver_progress=False)
    app.middlewares.insert(0, wire_observer(wire))
    for middleware in middlewares:
        app.middlewares.insert(1, middleware)
    thread = _SockServerThread(app, server_ssl_context(tls_data or data), sock).start()
    core = Smdp(config(), open_store(data), now=clock)
    return SmdpServer(data, address, clock, thread, core, wire)


@pytest.fixture
def servers() -> Iterator[list[SmdpServer]]:
    """Servers started by a test (stopped and closed afterwards)."""
    started: list[SmdpServer] = []
    yield started
    for server in started:
        server.thread.stop()
        server.core.store.close()


def make_euicc(
    path: Path, pki: TestPki, curve: Curve = Curve.NIST, *, eid: str | None = None
) -> Euicc:
    """A software eUICC on ``curve`` (a brainpool one also lists the NIST CI: DPtls is P-256)."""
    extra = (
        [pki.material(Curve.NIST).ci.public_bytes(Encoding.DER)] if curve is not Curve.NIST else []
    )
    return Euicc.create(
        path,
        pki,
        eid=eid,
        curves=(curve,),
        extra_cis=extra,
        loader=load_profile,
        installer=lambda package: install_package(package).iccid,
    )


def settings_for(euicc: Euicc) -> Es9Settings:
    """The LPA's TLS trust as the CLI does it: the CIs in the eUICC store."""
    return Es9Settings(trust=store_ci_certificates(euicc.store))


def iccids_on(euicc: Euicc) -> list[str]:
    link = ApduEs10(euicc.card)
    try:
        return [p.iccid for p in Lpa(link).profiles()]
    finally:
        link.close()


def euicc_has_no_session(link: ApduEs10) -> bool:
    """True when the eUICC holds no RSP session (an ES10b CancelSession is refused)."""
    answer = link.transceive(
        asn1.encode(rsp.CancelSessionRequest({"transactionId": b"\x01\x02", "reason": 0}))
    )
    return asn1.decode(rsp.CancelSessionResponse, answer).name == "cancelSessionResponseError"


T = TypeVar("T")


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``coro_fn()`` on a new event loop (the server has its own, on its thread)."""

    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())
