"""Many downloads at once against one SM-DP+: all succeed, the inventory stays consistent.

* 50 eUICCs, 50 ES2+ orders over mutual TLS, 50 LPA downloads over HTTPS
  gathered on one event loop against the app served from a thread;
* ``rspfed smdp serve --workers 2`` as a subprocess with 20 downloads whose
  every ES9+ request opens a new connection, so the kernel spreads the steps
  of one RSP session over both workers: they share the store file.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from rspfed import es2p
from rspfed.errors import EidError, MatchingIdError
from rspfed.es2p.client import requester_of
from rspfed.es9p import (
    AuthenticateClientRequest,
    AuthenticateClientResponse,
    CancelSessionRequest,
    CancelSessionResponse,
    GetBoundProfilePackageRequest,
    GetBoundProfilePackageResponse,
    HandleNotificationRequest,
    InitiateAuthenticationRequest,
    InitiateAuthenticationResponse,
)
from rspfed.euicc.euicc import Euicc
from rspfed.lpa import ActivationCode, ApduEs10, DownloadResult, Es9Client, download
from rspfed.pki.testpki import TestPki
from rspfed.smdp import ItemState, Smdp
from rspfed.smdp.datadir import STORE_NAME, load_config, open_store, tls_paths
from tests.e2e.conftest import (
    SmdpServer,
    iccids_on,
    make_data,
    make_euicc,
    reserve_port,
    settings_for,
    start_server,
)
from tests.paths import REPO


async def place_orders(url: str, data: Path, count: int) -> list[tuple[str, str]]:
    """``count`` ES2+ DownloadOrder + ConfirmOrder pairs, concurrently; (ICCID, activation code)."""
    files = tls_paths(data)

    async def one() -> tuple[str, str]:
        ctx = es2p.client_ssl_context(
            cert=files.operator_cert, key=files.operator_key, ca_file=files.server_ca
        )
        async with es2p.Es2Client(
            url, requester=requester_of(files.operator_cert), ssl_context=ctx
        ) as es2:
            iccid = await es2.download_order(profile_type="test")
            order = await es2.confirm_order(iccid=iccid)
            assert order.activation_code is not None
            return iccid, order.activation_code

    return list(await asyncio.gather(*(one() for _ in range(count))))


def session_rows(data: Path) -> int:
    db = sqlite3.connect(f"file:{data / STORE_NAME}?mode=ro", uri=True)
    try:
        (count,) = db.execute("SELECT COUNT(*) FROM session").fetchone()
    finally:
        db.close()
    return int(count)


def check_inventory(core: Smdp, orders: list[tuple[str, str]], euiccs: list[Euicc]) -> None:
    """Every order installed on exactly its eUICC, nothing duplicated."""
    items = core.inventory()
    assert len(items) == len(orders)
    assert {i.iccid for i in items} == {iccid for iccid, _ in orders}
    assert all(i.state is ItemState.INSTALLED for i in items), [i.state for i in items]
    matching_ids = [i.matching_id for i in items]
    assert len(set(matching_ids)) == len(matching_ids)
    assert {i.iccid: i.eid for i in items} == {
        iccid: euicc.eid for (iccid, _), euicc in zip(orders, euiccs, strict=True)
    }
    for (iccid, _), euicc in zip(orders, euiccs, strict=True):
        assert iccids_on(euicc) == [iccid]
    installs = [n for n in core.notifications() if n.event == "install"]
    assert sorted(str(n.iccid) for n in installs) == sorted(iccid for iccid, _ in orders)


async def download_all(
    euiccs: list[Euicc], codes: list[str], *, fresh_connections: bool = False
) -> list[DownloadResult]:
    async def one(euicc: Euicc, code: str) -> DownloadResult:
        link = ApduEs10(euicc.card)
        settings = settings_for(euicc)
        try:
            if fresh_connections:
                es9 = FreshConnections(ActivationCode.parse(code).address, settings.trust)
                return await download(link, code, settings=settings, es9=es9)
            return await download(link, code, settings=settings)
        finally:
            link.close()

    return list(await asyncio.gather(*(one(e, c) for e, c in zip(euiccs, codes, strict=True))))


@attrs.define
class FreshConnections:
    """An :class:`rspfed.lpa.Es9` that opens a new HTTPS connection for every request."""

    address: str
    trust: tuple[bytes, ...]

    async def _call(self, name: str, request: object) -> object:
        async with Es9Client(self.address, trust=self.trust) as client:
            return await getattr(client, name)(request)

    async def initiate_authentication(
        self, request: InitiateAuthenticationRequest
    ) -> InitiateAuthenticationResponse:
        answer = await self._call("initiate_authentication", request)
        assert isinstance(answer, InitiateAuthenticationResponse)
        return answer

    async def authenticate_client(
        self, request: AuthenticateClientRequest
    ) -> AuthenticateClientResponse:
        answer = await self._call("authenticate_client", request)
        assert isinstance(answer, AuthenticateClientResponse)
        return answer

    async def get_bound_profile_package(
        self, request: GetBoundProfilePackageRequest
    ) -> GetBoundProfilePackageResponse:
        answer = await self._call("get_bound_profile_package", request)
        assert isinstance(answer, GetBoundProfilePackageResponse)
        return answer

    async def cancel_session(self, request: CancelSessionRequest) -> CancelSessionResponse:
        answer = await self._call("cancel_session", request)
        assert isinstance(answer, CancelSessionResponse)
        return answer

    async def handle_notification(self, request: HandleNotificationRequest) -> None:
        await self._call("handle_notification", request)


@pytest.mark.slow
def test_fifty_concurrent_downloads(
    tmp_path: Path, pki: TestPki, servers: list[SmdpServer]
) -> None:
    count = 50
    server = start_server(tmp_path / "smdp", pki)
    servers.append(server)
    url = f"https://{server.address}"
    with ExitStack() as stack:
        euiccs = [stack.enter_context(make_euicc(tmp_path / f"e{n}.db", pki)) for n in range(count)]

        async def body() -> tuple[list[tuple[str, str]], list[DownloadResult]]:
            orders = await place_orders(url, server.data, count)
            results = await download_all(euiccs, [code for _, code in orders])
            return orders, results

        orders, results = asyncio.run(body())
        assert [r.iccid for r in results] == [iccid for iccid, _ in orders]
        assert all(r.attempts == 1 for r in results)
        assert all(r.notification is not None and r.notification.delivered for r in results)
        check_inventory(server.core, orders, euiccs)
    assert server.failures() == []
    assert server.calls().count("getBoundProfilePackage") == count
    assert session_rows(server.data) == 0


# -- rspfed smdp serve --workers 2 ---------------------------------------------------------------


def listeners(port: int) -> int:
    """Sockets listening on 127.0.0.1:``port``."""
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for f in map(str.split, lines) if f[1] == f"0100007F:{port:04X}" and f[3] == "0A")


def _serve(data: Path, port: int) -> subprocess.Popen[str] | None:
    """``rspfed smdp serve --workers 2`` on ``port``; None if it did not come up."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "rspfed", "smdp", "serve"),
            *("--data", str(data), "--port", str(port), "--workers", "2"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    stdout = proc.stdout
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(60)
    if line and re.search(rf"://[^:/]+:{port}/", line[0]):
        return proc
    proc.kill()
    proc.communicate(timeout=30)
    return None


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_concurrent_downloads_through_two_workers(tmp_path: Path, pki: TestPki) -> None:
    count = 20
    proc: subprocess.Popen[str] | None = None
    for attempt in range(3):  # the port is free when reserved; retry if taken meanwhile
        sock = reserve_port()
        port = int(sock.getsockname()[1])
        sock.close()
        data = make_data(tmp_path / f"smdp{attempt}", pki, f"localhost:{port}")
        proc = _serve(data, port)
        if proc is not None:
            break
    assert proc is not None, "rspfed smdp serve did not start"
    try:
        assert listeners(port) == 2  # two worker processes, one port (SO_REUSEPORT)
        with ExitStack() as stack:
            euiccs = [
                stack.enter_context(make_euicc(tmp_path / f"e{n}.db", pki)) for n in range(count)
            ]

            async def body() -> tuple[list[tuple[str, str]], list[DownloadResult]]:
                orders = await place_orders(f"https://localhost:{port}", data, count)
                results = await download_all(
                    euiccs, [code for _, code in orders], fresh_connections=True
                )
                return orders, results

            orders, results = asyncio.run(body())
            assert [r.iccid for r in results] == [iccid for iccid, _ in orders]
            assert all(r.notification is not None and r.notification.delivered for r in results)
            core = Smdp(load_config(data), open_store(data), now=lambda: datetime.now(UTC))
            try:
                check_inventory(core, orders, euiccs)
            finally:
                core.store.close()
        assert session_rows(data) == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize("bound", [False, True], ids=["free-order", "eid-bound"])
def test_one_activation_code_two_euiccs_at_once(
    tmp_path: Path, pki: TestPki, servers: list[SmdpServer], bound: bool
) -> None:
    """Two eUICCs race for one activation code: exactly one gets the profile."""
    server = start_server(tmp_path / "smdp", pki)
    servers.append(server)
    with make_euicc(tmp_path / "a.db", pki) as first, make_euicc(tmp_path / "b.db", pki) as second:
        iccid, code = server.order(order_eid=second.eid if bound else None)

        async def body() -> list[DownloadResult | BaseException]:
            return await asyncio.gather(
                *(
                    download(ApduEs10(e.card), code, settings=settings_for(e))
                    for e in (first, second)
                ),
                return_exceptions=True,
            )

        outcomes = asyncio.run(body())
        won = [isinstance(o, DownloadResult) for o in outcomes]
        assert won.count(True) == 1, outcomes
        [loser] = [o for o in outcomes if not isinstance(o, DownloadResult)]
        # refused for its EID while the winner's order is open, or for the
        # matchingId once the winner has installed it (the interleaving decides)
        assert isinstance(loser, EidError | MatchingIdError), loser
        refusal = (loser.subject_code, loser.reason_code)
        assert refusal == (("8.1.1", "3.8") if isinstance(loser, EidError) else ("8.2.6", "3.8"))
        assert ("authenticateClient", refusal) in server.failures()
        winner = (first, second)[won.index(True)]
        if bound:
            assert winner is second
        assert [iccids_on(e) for e in (first, second)].count([iccid]) == 1
        assert iccids_on(winner) == [iccid]
        item = server.core.item(iccid)
        assert item is not None
        assert (item.state, item.eid) == (ItemState.INSTALLED, winner.eid)
    assert [f for f, _ in server.failures()].count("authenticateClient") == 1
