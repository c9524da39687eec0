"""``rspfed operator init`` options land in the data directory's ``config.json``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.federation_cli.conftest import cli


def test_init_options(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    cli("pki", "init", str(pki), "--curve", "nist")
    data = tmp_path / "op"
    cli(
        "operator",
        "init",
        "--data",
        str(data),
        "--pki",
        str(pki),
        "--address",
        "op.example:8443",
        "--callback-url",
        "https://op.example/progress",
        "--network-name",
        "rspfed.test",
        "--order-ttl",
        "10m",
        "--join-ttl",
        "2h",
        "--sync-interval",
        "2s",
    )
    config = json.loads((data / "config.json").read_text())
    assert config["address"] == "op.example:8443"
    assert config["progress_callback_url"] == "https://op.example/progress"
    section = config["operator_service"]
    assert section["network_name"] == "rspfed.test"
    assert section["order_ttl_seconds"] == 600
    assert section["join_ttl_seconds"] == 7200
    assert section["sync_interval_seconds"] == 2
    assert (data / "operator.sqlite").stat().st_mode & 0o777 == 0o600
    assert (data / "network.sqlite").stat().st_mode & 0o777 == 0o600

    # the directory is the SM-DP+'s: smdp inventory works on it (empty)
    assert cli("smdp", "inventory", "--data", str(data)).stdout == ""
    # and it is not made twice
    again = cli(
        "operator", "init", "--data", str(data), "--pki", str(pki), "--address", "x:1", ok=False
    )
    assert again.exit_code == 2

    bad = cli(
        "operator",
        "init",
        "--data",
        str(tmp_path / "bad"),
        "--pki",
        str(pki),
        "--address",
        "op.example",
        "--order-ttl",
        "0s",
        ok=False,
    )
    assert bad.exit_code == 2
    assert "order_ttl" in bad.output
    assert not (tmp_path / "bad" / "config.json").exists()
