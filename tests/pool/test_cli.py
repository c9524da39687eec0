"""The pool's commands against ``rspfed operator serve``: network use, usage, topup, alerts."""

from __future__ import annotations

import json
import re

from tests.federation_cli.conftest import Service, cli
from tests.federation_cli.conftest import service as service  # the module's server

GB = 10**9
MB = 10**6


def test_use_usage_topup_alerts(service: Service) -> None:
    out = cli(
        "operator",
        "subscribe",
        "--data",
        str(service.data),
        "--profile-type",
        "ts48",
        "--pool",
        "1GB",
        "--devices",
        "3",
    ).stdout
    sub = re.search(r"^subscription (\S+)$", out, re.M)
    code = re.search(r"^(LPA:1\$\S+)$", out, re.M)
    iccid = re.search(r"ICCID (\d+)", out)
    assert sub is not None
    assert code is not None
    assert iccid is not None
    phone, _ = service.euicc("pool-phone")
    cli("lpa", "download", "--euicc", str(phone), code.group(1), "--yes", "--quiet")
    cli("lpa", "enable", iccid.group(1), "--euicc", str(phone))
    device = service.tmp / "pool-phone.device"
    cli(
        "federation",
        "register",
        "--device",
        str(device),
        "--euicc",
        str(phone),
        "--operator",
        service.url,
    )

    out = cli(
        "network",
        "use",
        "--euicc",
        str(phone),
        "--operator",
        service.url,
        "--bytes",
        "500MB",
        "--device",
        str(device),
    ).stdout
    assert "carried 500MB of 500MB" in out
    assert "reported this device's own count: 500MB" in out
    out = cli(
        "network",
        "use",
        "--euicc",
        str(phone),
        "--operator",
        service.url,
        "--bytes",
        "100MB",
        "--device",
        str(device),
    ).stdout
    assert "carried 100MB of 100MB" in out
    view = json.loads(
        cli("federation", "usage", "--device", str(device), "--euicc", str(phone), "--json").stdout
    )
    assert view["pool"]["used"] == 600 * MB
    assert view["pool"]["limit"] == GB
    assert [a["threshold"] for a in view["alerts"]] == [50]
    [line] = view["devices"]
    assert line["used"] == 600 * MB
    assert line["reported"] == 600 * MB  # two runs, two counter epochs of the device's own

    out = cli(
        "operator",
        "topup",
        "--data",
        str(service.data),
        "--subscription",
        sub.group(1),
        "--add",
        "1GB",
    ).stdout
    assert "pool 2GB" in out
    refused = cli(
        "network",
        "use",
        "--euicc",
        str(phone),
        "--operator",
        service.url,
        "--bytes",
        "2GB",
        ok=False,
    )
    assert refused.exit_code == 1
    assert "carried 1.4GB of 2GB" in refused.stdout
    assert "pool-exhausted" in refused.stderr

    text = cli("federation", "usage", "--device", str(device), "--euicc", str(phone)).stdout
    assert "pool  2GB of 2GB (100.0 %), pool epoch 1" in text
    assert "barred (pool)" in text

    first = json.loads(
        cli("federation", "alerts", "--device", str(device), "--euicc", str(phone), "--json").stdout
    )
    got = sorted((a["pool-epoch"], a["threshold"]) for a in first)
    assert got == [(0, 50), (1, 50), (1, 75), (1, 90), (1, 100)]
    again = cli("federation", "alerts", "--device", str(device), "--euicc", str(phone)).stdout
    assert "0 new alert(s)" in again
