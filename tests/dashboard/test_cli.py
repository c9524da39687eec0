"""``rspfed federation dashboard``: the primary prints a link the served operator accepts.

``rspfed operator serve`` runs in a subprocess (tests/federation_cli's fixture);
the phone downloads and registers through the real commands.
"""

from __future__ import annotations

import re
import ssl
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

from rspfed.federation.dashboard import link_from_text, parse_link
from tests.federation_cli.conftest import Service, cli
from tests.federation_cli.test_story import primary


def _get(url: str, ca_file: str) -> int:
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with urllib.request.urlopen(url, context=context, timeout=30) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_dashboard_link(service: Service) -> None:
    sub, _phone, device = primary(service, "dash")
    before = datetime.now(UTC).replace(microsecond=0)
    result = cli("federation", "dashboard", "--device", str(device), "--ttl", "5m")
    url = result.stdout.strip()
    match = re.fullmatch(re.escape(service.url) + r"/rspfed/v1/dashboard\?t=([A-Za-z0-9_-]+)", url)
    assert match is not None, url
    link = parse_link(link_from_text(match.group(1)))
    assert link.subscription_id == sub
    assert before <= link.not_before <= datetime.now(UTC)
    assert link.not_after - link.not_before == timedelta(minutes=5)
    assert "valid until" in result.stderr
    # the served operator accepts it, twice (read-only, reusable in its window)
    assert _get(url, str(service.ca_file)) == 200
    assert _get(url, str(service.ca_file)) == 200
    tampered = url[:-2] + ("A" if url[-2] != "A" else "B") + url[-1]
    assert _get(tampered, str(service.ca_file)) in (400, 401)
    # --check opens it once
    checked = cli(
        "federation",
        "dashboard",
        "--device",
        str(device),
        "--check",
        "--ca-file",
        str(service.ca_file),
    )
    assert "the operator answered 200" in checked.stderr


def test_dashboard_refusals(service: Service) -> None:
    _sub, _phone, device = primary(service, "dash-bad")
    too_long = cli("federation", "dashboard", "--device", str(device), "--ttl", "25h", ok=False)
    assert too_long.exit_code == 2
    assert "ttl" in too_long.stderr
    no_trust = cli("federation", "dashboard", "--device", str(device), "--check", ok=False)
    assert no_trust.exit_code == 2
    assert "--ca-file" in no_trust.stderr
    missing = cli(
        "federation", "dashboard", "--device", str(service.tmp / "nobody.device"), ok=False
    )
    assert missing.exit_code == 2
