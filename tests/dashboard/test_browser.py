"""The dashboard in a real browser: Debian's chromium, headless, against a real operator.

A real operator serves HTTPS on loopback (the fixtures of tests/federation_http);
the phone downloads its profile and registers its federation key by EAP-AKA',
a tablet joins through the cloud join with a hostile name, both carry traffic
through the operator's pool service (its packet gateway), and chromium loads
the link the primary signed.  The test reads what chromium rendered
(``--dump-dom``) with the standard library's HTML parser: the pool
percentage, each device's name and used figure, the alert rows, the number of
points of the chart.  The HTTP answers to bad links are checked with aiohttp.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from multidict import CIMultiDictProxy

from rspfed.federation import DeviceClass, Service, issue_token
from rspfed.federation.client import OperatorClient
from rspfed.federation.dashboard import (
    CONTENT_SECURITY_POLICY,
    issue_link,
    link_text,
    link_url,
    render_dashboard,
)
from rspfed.federation.http import POOL_KEY
from rspfed.federation.types import Plan
from rspfed.pki.testpki import TestPki
from tests.dashboard.page import Page
from tests.federation_http.conftest import (
    download_and_enable,
    make_euicc,
    make_operator_dir,
    running,
    tls_for,
    usim_of,
)

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)",
)

PLAN = Plan(pool_bytes=10_000_000_000, device_limit=4)  # 10 GB, decimal
TABLET_NAME = 'Zoë\'s <b>tablet</b> & "co"'


async def dump_dom(url: str, profile: Path) -> str:
    """What chromium renders at ``url`` (its DOM after load, serialised)."""
    assert CHROMIUM is not None
    args = [
        CHROMIUM,
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        # The operator's certificate chains to the test's own throwaway CA (made
        # by TestPki for this run only); chromium's trust store cannot be told
        # about it without a NSS database, so certificate errors are ignored
        # here -- acceptable only because that CA signs nothing else.
        "--ignore-certificate-errors",
        "--dump-dom",
        url,
    ]
    if os.geteuid() == 0:
        args.insert(1, "--no-sandbox")  # chromium refuses to run as root with its sandbox
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HOME": str(profile)},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode("utf-8")


def test_dashboard_in_chromium(tmp_path: Path, pki: TestPki) -> None:
    directory = make_operator_dir(tmp_path, pki)
    phone = make_euicc(tmp_path, pki, "phone")
    tablet = make_euicc(tmp_path, pki, "tablet")

    async def story() -> None:
        async with running(directory) as server:
            op = server.operator
            pool = server.app[POOL_KEY]
            sub, enrolment = op.subscribe("ts48", PLAN)
            await download_and_enable(phone, enrolment.activation_code)
            key = ec.generate_private_key(ec.SECP256R1())
            async with OperatorClient(server.url, ssl_context=tls_for(phone)) as client:
                await client.register(**usim_of(phone), eid=phone.eid, key=key)
                # the tablet joins (cloud join) under a name full of markup
                async with OperatorClient(server.url, ssl_context=tls_for(tablet)) as tc:
                    ticket = await tc.join(sub.id, tablet.eid, DeviceClass.TABLET, TABLET_NAME)
                    token = issue_token(
                        primary_key=key,
                        subscription_id=sub.id,
                        eid=tablet.eid,
                        device_class=DeviceClass.TABLET,
                        services={Service.DATA},
                        quota=1_000_000_000,
                        now=datetime.now(UTC),
                        rand=os.urandom,
                    )
                    await client.approve(key, ticket.request.id, token)
                    joined = await tc.collect(ticket.request.id, ticket.secret)
                    assert joined is not None
                await download_and_enable(tablet, joined.activation_code)

            # traffic through the operator's packet gateway (PoolService)
            devices = {d.device_class: d for d in op.store.devices(sub.id)}
            phone_bearer, _ = pool.open_bearer(devices[DeviceClass.PHONE].imsi)
            tablet_bearer, _ = pool.open_bearer(devices[DeviceClass.TABLET].imsi)
            for _ in range(5):
                assert pool.use(phone_bearer, 1_000_000_000).carried == 1_000_000_000
            for _ in range(3):
                assert pool.use(tablet_bearer, 250_000_000).carried == 250_000_000
            view = pool.view(sub.id)
            assert view.pool_used == 5_750_000_000

            link = issue_link(key, subscription_id=sub.id, now=datetime.now(UTC), rand=os.urandom)
            url = link_url(server.url, link)
            html = await dump_dom(url, tmp_path / "chromium")
            page = Page(html)

            # what the page shows
            assert page.text_in("#pool-percent") == ["57.5 %"]  # 5.75 GB of 10 GB
            assert "5.75 GB of 10 GB used (57.5 %)" in page.all_text()
            names = page.text_in("th.name")
            used = page.text_in("td.used")
            shown = dict(zip(names, used, strict=True))
            assert shown[TABLET_NAME] == "750 MB"
            assert shown[devices[DeviceClass.PHONE].name] == "5 GB"
            assert page.tags("b") == []  # the tablet's name stayed text
            assert sorted(page.text_in("td.quota")) == ["1 GB", "unlimited"]
            rows = list(zip(page.text_in("td.threshold"), page.text_in("td.scope"), strict=True))
            assert ("50 %", "pool") in rows
            assert ("50 %", TABLET_NAME) in rows
            assert ("75 %", TABLET_NAME) in rows
            assert len(rows) == len(view.alerts) == 3
            [svg] = page.tags("svg")
            assert len(page.tags("circle")) == len(view.points) > 0
            assert f"{len(view.points)} points" in (svg["aria-label"] or "")
            assert page.tags("script") == []
            # the renderer takes the pool service's view as it is, too
            direct = Page(render_dashboard(view, now=datetime.now(UTC)))
            assert direct.text_in("#pool-percent") == ["57.5 %"]
            assert direct.text_in("th.name") == names

            # a forged link shows the error page in the browser too
            forged = bytearray(link)
            forged[-1] ^= 1
            error = Page(await dump_dom(link_url(server.url, bytes(forged)), tmp_path / "c2"))
            assert "401 Unauthorized" in error.all_text()
            assert page.text_in("#pool-percent") != []

            # the HTTP answers
            async with aiohttp.ClientSession() as http:
                ssl = tls_for(phone)

                async def get(t: str | None) -> tuple[int, str, CIMultiDictProxy[str]]:
                    target = server.url + "/rspfed/v1/dashboard" + ("" if t is None else f"?t={t}")
                    async with http.get(target, ssl=ssl) as r:
                        return r.status, await r.text(), r.headers

                status, body, headers = await get(link_text(link))
                assert status == 200
                assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
                assert headers["Cache-Control"] == "no-store"
                assert headers["Content-Type"].startswith("text/html")
                assert (await get(link_text(link)))[0] == 200  # reusable within its window
                assert (await get(None))[0] == 400
                assert (await get("not*base64"))[0] == 400
                assert (await get(link_text(bytes(forged))))[0] == 401
                old = issue_link(
                    key,
                    subscription_id=sub.id,
                    now=datetime.now(UTC) - timedelta(hours=1),
                    rand=os.urandom,
                )
                status, body, _ = await get(link_text(old))
                assert status == 403
                assert "expired" in body
                stranger = ec.generate_private_key(ec.SECP256R1())
                unknown = issue_link(
                    stranger, subscription_id=sub.id, now=datetime.now(UTC), rand=os.urandom
                )
                assert (await get(link_text(unknown)))[0] == 401
                async with http.post(url, ssl=ssl) as r:
                    assert r.status == 405

            # the primary registers a new key: links signed by the old one stop working
            new_key = ec.generate_private_key(ec.SECP256R1())
            async with OperatorClient(server.url, ssl_context=tls_for(phone)) as client:
                await client.register(**usim_of(phone), eid=phone.eid, key=new_key)
            async with aiohttp.ClientSession() as http:
                async with http.get(url, ssl=tls_for(phone)) as r:
                    assert r.status == 403
                    assert "replaced" in await r.text()
                fresh = issue_link(
                    new_key, subscription_id=sub.id, now=datetime.now(UTC), rand=os.urandom
                )
                async with http.get(link_url(server.url, fresh), ssl=tls_for(phone)) as r:
                    assert r.status == 200

    asyncio.run(story())
