"""HandleDownloadProgressInfo delivery: retries, and events kept across a shutdown."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from rspfed import es2p
from rspfed.es9p import StatusCodeData
from rspfed.pki.testpki import TestPki
from rspfed.smdp import DownloadProgressEvent
from rspfed.smdp.datadir import open_store
from rspfed.smdp.http import make_app, progress_delivery, server_ssl_context, smdp_factory
from tests.smdp_http.conftest import ServerThread, make_data_dir


class Refusing:
    """An operator endpoint that answers 503 to everything, counting the calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.bodies: list[bytes] = []
        app = web.Application()
        app.router.add_post(es2p.FUNCTIONS["handleDownloadProgressInfo"].path, self.handle)
        self.server = ServerThread(app, None)

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        self.bodies.append(await request.read())
        return web.Response(status=503)


def _wait(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def test_undelivered_events_go_back_into_the_store(tmp_path: Path, pki: TestPki) -> None:
    op = Refusing()
    op.server.start()
    try:
        data = make_data_dir(tmp_path / "data", pki, template=False)
        event = DownloadProgressEvent(
            eid="89049032000000000000000000000016",
            iccid="8900000000000000001",
            profile_type="test",
            timestamp=datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
            notification_point_id=4,
            status=StatusCodeData("8.1", "6.1"),
            result_data=b"\xbf\x37\x00",
            callback_url=op.server.url,
        )
        store = open_store(data)
        store.add_progress_event(event)
        store.close()
        app = make_app(smdp_factory(data), progress_first_delay=60.0, progress_poll_interval=0.1)
        server = ServerThread(app, server_ssl_context(data)).start()
        try:
            _wait(lambda: op.calls >= 1)
            delivery = progress_delivery(app)
            assert delivery is not None
            assert delivery.delivered == 0
        finally:
            server.stop()
        header, sent = es2p.decode_es2_request(es2p.HandleDownloadProgressInfoRequest, op.bodies[0])
        assert header.function_requester_identifier == "localhost"
        assert sent.iccid == event.iccid
        assert sent.eid == event.eid
        assert sent.notification_point_id == 4
        assert sent.notification_point_status == es2p.NotificationPointStatus(
            "Failed", "8.1", "6.1"
        )
        assert sent.result_data == event.result_data
        assert sent.timestamp == "2026-11-28T12:00:00Z"
        store = open_store(data)
        try:
            back = store.take_progress_events(10)
        finally:
            store.close()
        assert [(e.iccid, e.notification_point_id, e.callback_url) for e in back] == [
            (event.iccid, 4, op.server.url)
        ]
    finally:
        op.server.stop()
