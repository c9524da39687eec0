"""The dashboard page: escaping, the CSP, empty and edge figures, the view from a ledger.

The page is read back with the standard library's HTML parser (an
independent reader), never by searching our own markup for our own strings
only.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from rspfed.federation.alerts import fire_alerts
from rspfed.federation.dashboard import (
    CONTENT_SECURITY_POLICY,
    MAX_CHART_POINTS,
    AlertEntry,
    DashboardView,
    DeviceUsage,
    UsagePoint,
    error_page,
    percent,
    render_dashboard,
    view_from_ledger,
)
from rspfed.federation.ledger import LedgerState, SourceKind, UsageRecord
from rspfed.federation.token import DeviceClass, Service
from rspfed.federation.types import Device, DeviceRole, DeviceState, Plan
from tests.dashboard.page import Page

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
GB = 10**9


def _view(**kw: object) -> DashboardView:
    base: dict[str, object] = {"subscription_id": "sub-1", "pool_limit": 10 * GB, "pool_used": 0}
    base.update(kw)
    return DashboardView(**base)  # type: ignore[arg-type]


HOSTILE = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>&amp;"


def test_hostile_names_are_text() -> None:
    view = _view(
        subscription_id="s<b>1",
        pool_used=GB,
        devices=(DeviceUsage(HOSTILE, "phone", GB, 2 * GB, HOSTILE),),
        alerts=(AlertEntry(50, HOSTILE, NOW),),
        points=(UsagePoint(NOW, GB),),
    )
    html = render_dashboard(view, now=NOW)
    page = Page(html)
    assert page.tags("script") == []
    assert page.tags("img") == []
    assert page.tags("b") == []
    assert not any(k.startswith("on") for _, a in page.elements for k in a)
    assert page.text_in("th.name") == [HOSTILE]
    assert page.text_in("td.state") == [HOSTILE]
    assert page.text_in("td.scope") == [HOSTILE]
    assert "s<b>1" in page.text_in("h1")[0]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40))
def test_any_name_reads_back(name: str) -> None:
    view = _view(devices=(DeviceUsage(name, "tablet", 1, 0),))
    page = Page(render_dashboard(view, now=NOW))
    assert page.tags("script") == []
    assert "".join(page.text_in("th.name")) == name


def test_csp_names_the_one_style_and_allows_no_script() -> None:
    html = render_dashboard(_view(), now=NOW)
    [style] = re.findall(r"<style>(.*?)</style>", html, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["style-src"] == f"'sha256-{digest}'"
    assert "script-src" not in directives
    assert "style=" not in html  # no inline style attributes the hash would not cover
    assert html.startswith("<!DOCTYPE html>")


def test_empty_pool() -> None:
    page = Page(render_dashboard(_view(), now=NOW))
    text = page.all_text()
    assert page.text_in("#pool-percent") == ["0.0 %"]
    assert "No devices use the pool yet." in text
    assert "No alerts yet." in text
    assert "No usage recorded yet." in text
    assert page.tags("svg") == []
    [meter] = page.tags("meter")
    assert meter["value"] == "0"


def test_no_pool_limit() -> None:
    page = Page(render_dashboard(_view(pool_limit=0, pool_used=5), now=NOW))
    assert "5 B used (no pool limit)" in page.all_text()
    assert page.tags("meter") == []


def test_zero_quota_is_unlimited() -> None:
    view = _view(pool_used=3 * GB, devices=(DeviceUsage("laptop", "laptop", 3 * GB, 0),))
    page = Page(render_dashboard(view, now=NOW))
    assert page.text_in("td.quota") == ["unlimited"]
    assert page.text_in("td.used") == ["3 GB"]
    assert len(page.tags("meter")) == 1  # the pool's only


def test_over_100_percent() -> None:
    view = _view(
        pool_limit=10 * GB,
        pool_used=12 * GB,
        devices=(DeviceUsage("watch", "watch", 1_500_000, 1_000_000, "barred (quota)"),),
    )
    page = Page(render_dashboard(view, now=NOW))
    assert page.text_in("#pool-percent") == ["120.0 %"]
    assert page.text_in("td.share") == ["150.0 %"]
    pool, device = page.tags("meter")
    assert pool["value"] == pool["max"] == str(10 * GB)  # the bar is full, the text says 120 %
    assert device["value"] == device["max"] == "1000000"
    assert "12 GB of 10 GB used (120.0 %)" in page.all_text()


def test_percent_rounding() -> None:
    assert percent(1, 3) == "33.3 %"
    assert percent(2, 3) == "66.7 %"
    assert percent(1, 8) == "12.5 %"
    assert percent(1, 2000) == "0.1 %"  # 0.05 rounds half up
    assert percent(5, 0) == "–"


def test_chart_points_and_labels() -> None:
    points = tuple(UsagePoint(NOW + timedelta(hours=i), i * GB) for i in (3, 0, 1, 2))
    page = Page(render_dashboard(_view(pool_used=3 * GB, points=points), now=NOW))
    [svg] = page.tags("svg")
    assert svg["role"] == "img"
    assert "4 points" in (svg["aria-label"] or "")
    circles = page.tags("circle")
    assert len(circles) == 4
    ys = [float(c["cy"] or 0) for c in circles]
    assert ys == sorted(ys, reverse=True)  # sorted by time: usage grows, y falls
    assert "time (UTC)" in page.all_text()
    assert "pool used" in page.all_text()
    assert len(page.text_in("#points")) > 0


def test_many_samples_are_thinned() -> None:
    samples = tuple(UsagePoint(NOW + timedelta(seconds=7 * i), i * 1000) for i in range(5000))
    page = Page(render_dashboard(_view(pool_used=4999 * 1000, points=samples), now=NOW))
    circles = page.tags("circle")
    assert 2 <= len(circles) <= MAX_CHART_POINTS
    [svg] = page.tags("svg")
    assert f"{len(circles)} points (of 5000 samples)" in (svg["aria-label"] or "")
    times = [a["datetime"] for a in page.tags("time")]
    assert samples[0].at.isoformat() in times  # the first and the latest samples stay
    assert samples[-1].at.isoformat() in times
    cx = [float(c["cx"] or 0) for c in circles]
    assert cx == sorted(cx)


def test_alerts_in_time_order() -> None:
    alerts = (
        AlertEntry(75, "pool", NOW + timedelta(hours=2)),
        AlertEntry(50, "pool", NOW + timedelta(hours=1)),
        AlertEntry(90, "phone", None),
    )
    page = Page(render_dashboard(_view(alerts=alerts), now=NOW))
    assert page.text_in("td.threshold") == ["90 %", "50 %", "75 %"]
    assert [a["datetime"] for a in page.tags("time")][:2] == [
        (NOW + timedelta(hours=1)).isoformat(),
        (NOW + timedelta(hours=2)).isoformat(),
    ]


def test_error_page_escapes() -> None:
    page = Page(error_page(403, "<i>expired</i>"))
    assert page.tags("i") == []
    assert "<i>expired</i>" in page.all_text()
    assert "403 Forbidden" in page.all_text()


# --- the view from a ledger -----------------------------------------------------

PHONE_ICCID = "89000000000000000017"
WATCH_ICCID = "89000000000000000025"


def _device(name: str, iccid: str, cls: DeviceClass, quota: int | None) -> Device:
    return Device(
        id=f"dev-{name}",
        subscription_id="sub-1",
        role=DeviceRole.PRIMARY if cls is DeviceClass.PHONE else DeviceRole.SECONDARY,
        device_class=cls,
        name=name,
        state=DeviceState.ACTIVE,
        eid=None,
        iccid=iccid,
        imsi="001010000000001",
        services=frozenset({Service.DATA}),
        quota_bytes=quota,
    )


def test_view_from_ledger() -> None:
    period = int(NOW.timestamp())
    plan = Plan(pool_bytes=10 * GB, device_limit=4)
    state = LedgerState("sub-1")
    # two gateways and a counter reset for the phone; duplicates and an older value
    phone = [("gw1", 0, 2 * GB), ("gw1", 0, 1 * GB), ("gw1", 1, GB // 2), ("gw2", 0, 3 * GB)]
    records = [
        UsageRecord(SourceKind.NETWORK, src, PHONE_ICCID, period, epoch, octets)
        for src, epoch, octets in phone
    ]
    records.append(UsageRecord(SourceKind.NETWORK, "gw1", WATCH_ICCID, period, 0, 600 * 10**6))
    records.append(UsageRecord(SourceKind.DEVICE, "watch", WATCH_ICCID, period, 0, 9 * GB))
    state.add_records(records * 2)
    fired = fire_alerts(state, plan=plan, period=period, quotas={WATCH_ICCID: 500 * 10**6})
    devices = [
        _device("My phone", PHONE_ICCID, DeviceClass.PHONE, None),
        _device("watch", WATCH_ICCID, DeviceClass.WATCH, 500 * 10**6),
    ]
    view = view_from_ledger(state, plan=plan, period=period, devices=devices)
    phone_used = 2 * GB + GB // 2 + 3 * GB  # max per counter, summed; device figures ignored
    assert view.pool_used == phone_used + 600 * 10**6
    assert view.pool_limit == 10 * GB
    rows = {d.name: d for d in view.devices}
    assert rows["My phone"].used == phone_used
    assert rows["My phone"].quota == 0
    assert rows["My phone"].state == "active"
    assert rows["watch"].used == 600 * 10**6
    assert rows["watch"].state == "barred (quota)"
    scopes = {(a.scope, a.threshold) for a in view.alerts}
    assert ("pool", 50) in scopes  # 6.1 GB of 10 GB
    assert ("watch", 100) in scopes
    assert len(view.alerts) == len(fired)
    page = Page(render_dashboard(view, now=NOW))
    assert page.text_in("#pool-percent") == ["61.0 %"]
