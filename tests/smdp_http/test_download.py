"""End to end over real HTTPS on loopback: an ES2+ order (mutual TLS), a whole ES9+ download
into a real rspfed eUICC (test-side ES10 loop), notifications, and HandleDownloadProgressInfo
delivered to a test operator endpoint (with one failed delivery retried)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from rspfed import asn1, es2p, es9p
from rspfed.asn1 import rsp
from rspfed.crypto.curves import Curve
from rspfed.errors import ConfirmationCodeError, MatchingIdError
from rspfed.es2p.client import requester_of
from rspfed.euicc.euicc import Euicc
from rspfed.pki.testpki import TestPki
from rspfed.saip.install import install_package
from rspfed.smdp import ItemState
from rspfed.smdp.datadir import tls_paths
from rspfed.smdp.http import SMDP_KEY, make_app, server_ssl_context, smdp_factory
from tests.smdp_http import es10_loop
from tests.smdp_http.conftest import ADDRESS, ServerThread, client_context, make_data_dir


class Operator:
    """The operator's HandleDownloadProgressInfo endpoint: the first call fails with 503."""

    def __init__(self) -> None:
        self.received: list[tuple[es2p.RequestHeader, es2p.HandleDownloadProgressInfoRequest]] = []
        self.calls = 0
        app = web.Application()
        app.router.add_post(es2p.FUNCTIONS["handleDownloadProgressInfo"].path, self.handle)
        self.server = ServerThread(app, None)

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        assert request.headers["X-Admin-Protocol"] == es9p.ADMIN_PROTOCOL
        if self.calls == 1:
            return web.Response(status=503)
        header, message = es2p.decode_es2_request(
            es2p.HandleDownloadProgressInfoRequest, await request.read()
        )
        self.received.append((header, message))
        return web.Response(status=204)


@pytest.fixture(scope="module")
def operator() -> Any:
    op = Operator()
    op.server.start()
    yield op
    op.server.stop()


@pytest.mark.parametrize("curve", [Curve.NIST, Curve.BRAINPOOL], ids=["nist", "brainpool"])
def test_order_and_download_over_https(
    tmp_path: Path, pki: TestPki, operator: Operator, curve: Curve
) -> None:
    before = len(operator.received)
    data = make_data_dir(tmp_path / "data", pki, callback_url=operator.server.url + "/")
    app = make_app(smdp_factory(data), progress_first_delay=0.05, progress_poll_interval=0.2)
    server = ServerThread(app, server_ssl_context(data)).start()
    try:
        euicc = Euicc.create(
            tmp_path / "euicc.db",
            pki,
            curves=(curve,),
            installer=lambda p: install_package(p).iccid,
        )
        files = tls_paths(data)
        es2_ctx = es2p.client_ssl_context(
            cert=files.operator_cert, key=files.operator_key, ca_file=files.server_ca
        )

        async def run() -> tuple[str, es10_loop.DownloadTrace]:
            async with es2p.Es2Client(
                server.url, requester=requester_of(files.operator_cert), ssl_context=es2_ctx
            ) as es2:
                iccid = await es2.download_order(profile_type="test", eid=euicc.eid)
                order = await es2.confirm_order(iccid=iccid, eid=euicc.eid)
            assert order.smdp_address == ADDRESS
            assert order.activation_code == f"LPA:1${ADDRESS}${order.matching_id}"
            async with aiohttp.ClientSession() as session:
                trace = await es10_loop.download(
                    session,
                    server.url,
                    client_context(data),
                    euicc.isdr.handle,
                    address=ADDRESS,
                    matching_id=order.matching_id,
                )
                # the matchingId is single use
                with pytest.raises(MatchingIdError):
                    await es10_loop.download(
                        session,
                        server.url,
                        client_context(data),
                        euicc.isdr.handle,
                        address=ADDRESS,
                        matching_id=order.matching_id,
                    )
            return iccid, trace

        iccid, trace = asyncio.run(run())
        pir = asn1.decode(rsp.ProfileInstallationResult, trace.pir)
        final = pir["profileInstallationResultData"]["finalResult"]
        assert final.name == "successResult"
        assert trace.notifications >= 1
        item = server.call(lambda: app[SMDP_KEY].item(iccid))
        assert item.state in (ItemState.DOWNLOADED, ItemState.INSTALLED)
        assert item.eid == euicc.eid
        # HandleDownloadProgressInfo reaches the operator despite its first 503
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            mine = [m for _, m in operator.received[before:] if m.iccid == iccid]
            if any(m.notification_point_id == 4 for m in mine):
                break
            time.sleep(0.05)
        mine = [m for _, m in operator.received[before:] if m.iccid == iccid]
        points = {m.notification_point_id for m in mine}
        assert 4 in points, points
        assert all(m.profile_type == "test" for m in mine)
        assert all(m.notification_point_status.status == "Executed-Success" for m in mine)
        headers = [h for h, m in operator.received[before:] if m.iccid == iccid]
        assert all(h.function_requester_identifier == ADDRESS for h in headers)
        assert operator.calls > len(operator.received)  # the 503 was retried
    finally:
        server.stop()


def test_confirmation_code_over_https(
    tmp_path: Path, pki: TestPki, data_dir: Path, server: ServerThread
) -> None:
    """A wrong code is 8.2.7/3.8 on the wire; the right one then downloads."""
    euicc = Euicc.create(tmp_path / "euicc.db", pki, installer=lambda p: install_package(p).iccid)
    files = tls_paths(data_dir)
    es2_ctx = es2p.client_ssl_context(
        cert=files.operator_cert, key=files.operator_key, ca_file=files.server_ca
    )

    async def run() -> es10_loop.DownloadTrace:
        async with es2p.Es2Client(
            server.url, requester=requester_of(files.operator_cert), ssl_context=es2_ctx
        ) as es2:
            iccid = await es2.download_order(profile_type="test")
            order = await es2.confirm_order(iccid=iccid, confirmation_code="2468")
        async with aiohttp.ClientSession() as session:
            with pytest.raises(ConfirmationCodeError) as info:
                await es10_loop.download(
                    session, server.url, client_context(data_dir), euicc.isdr.handle,
                    address=ADDRESS, matching_id=order.matching_id, confirmation_code="1357",
                )  # fmt: skip
            assert (info.value.subject_code, info.value.reason_code) == ("8.2.7", "3.8")
            return await es10_loop.download(
                session, server.url, client_context(data_dir), euicc.isdr.handle,
                address=ADDRESS, matching_id=order.matching_id, confirmation_code="2468",
            )  # fmt: skip

    trace = asyncio.run(run())
    pir = asn1.decode(rsp.ProfileInstallationResult, trace.pir)
    assert pir["profileInstallationResultData"]["finalResult"].name == "successResult"
