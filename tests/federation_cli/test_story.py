"""The federation story through the command line, against ``rspfed operator serve``.

A subscription; the phone downloads, enables and registers; it signs a
token for a laptop, which redeems it with its eUICC (download, enable,
registration of its device key); the network gives the laptop data and
refuses voice; the phone lists and removes it; the network refuses it; the
laptop's next sync deletes its profile.  Then the cloud path (join,
requests, approve, join --wait in another process), revocation, and the
command-line refusals (TLS trust, --no-tls, device-store passphrase).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.federation import parse_token, token_from_uri, verify_token
from rspfed.federation.device import DeviceStore
from tests.federation_cli.conftest import Service, cli, start_server, stop_server


def primary(service: Service, name: str, *extra: str) -> tuple[str, Path, Path]:
    """``operator subscribe`` and the phone's download, enable and registration;
    the subscription id, the phone's eUICC store and its device store."""
    out = cli(
        "operator",
        "subscribe",
        "--data",
        str(service.data),
        "--profile-type",
        "ts48",
        "--pool",
        "20GB",
        "--devices",
        "5",
        "--period",
        "30d",
        *extra,
    ).stdout
    sub = re.search(r"^subscription (\S+)$", out, re.M)
    code = re.search(r"^(LPA:1\$\S+)$", out, re.M)
    iccid = re.search(r"ICCID (\d+)", out)
    assert sub is not None, out
    assert code is not None, out
    assert iccid is not None, out
    assert "20GB per 30d, 5 devices" in out

    phone, _ = service.euicc(f"{name}-phone")
    result = cli("lpa", "download", "--euicc", str(phone), code.group(1), "--yes", "--quiet")
    assert f"installed {iccid.group(1)}" in result.stdout
    cli("lpa", "enable", iccid.group(1), "--euicc", str(phone))

    device = service.tmp / f"{name}-phone.device"
    out = cli(
        "federation",
        "register",
        "--device",
        str(device),
        "--euicc",
        str(phone),
        "--operator",
        service.url,
    ).stdout
    assert "registered primary device" in out
    assert f"of subscription {sub.group(1)}" in out
    return sub.group(1), phone, device


def attach(service: Service, euicc: Path, svc: str) -> tuple[int, str]:
    result = cli(
        "network",
        "attach",
        "--euicc",
        str(euicc),
        "--operator",
        service.url,
        "--service",
        svc,
        ok=False,
    )
    return result.exit_code, result.output


def test_phone_and_laptop(service: Service) -> None:
    sub, phone, phone_device = primary(service, "story")
    assert attach(service, phone, "voice")[0] == 0

    # the device store remembers the operator, subscription, role and key
    with DeviceStore.open(phone_device) as store:
        record = store.record()
        key = store.private_key()
    assert record is not None
    assert key is not None
    assert (record.operator_url, record.subscription_id, record.role) == (
        service.url,
        sub,
        "primary",
    )

    laptop, laptop_eid = service.euicc("story-laptop")
    result = cli(
        "federation",
        "token",
        "--device",
        str(phone_device),
        "--eid",
        laptop_eid,
        "--class",
        "laptop",
        "--quota",
        "5GB",
        "--ttl",
        "10m",
    )
    uri = result.stdout.strip()
    assert uri.startswith("rspfed:1:token:")
    assert "valid until" in result.stderr
    # the token verifies offline with the phone's federation key
    der = token_from_uri(uri)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    verify_token(der, primary_public_key=key.public_key(), now=datetime.now(UTC))
    token = parse_token(der)
    assert (token.eid, token.device_class.value, token.quota) == (laptop_eid, "laptop", 5 * 10**9)
    assert sorted(s.value for s in token.services) == ["data"]
    assert token.token_id.hex() in result.stderr

    laptop_device = service.tmp / "story-laptop.device"
    out = cli(
        "federation",
        "redeem",
        uri,
        "--euicc",
        str(laptop),
        "--device",
        str(laptop_device),
        "--operator",
        service.url,
    ).stdout
    assert re.search(r"^LPA:1\$\S+$", out, re.M)
    installed = re.search(r"installed and enabled (\d+)", out)
    assert installed is not None, out
    assert "registered secondary device" in out
    profiles = json.loads(cli("lpa", "profiles", "--euicc", str(laptop), "--json").stdout)
    assert [(p["iccid"], p["state"]) for p in profiles] == [(installed.group(1), "enabled")]

    # the primary's device store is not turned into a secondary's by mistake
    mistaken = cli(
        "federation",
        "redeem",
        uri,
        "--eid",
        laptop_eid,
        "--device",
        str(phone_device),
        "--ca-file",
        str(service.ca_file),
        ok=False,
    )
    assert mistaken.exit_code == 2
    assert "primary's" in mistaken.output
    # a token is used once
    again = cli(
        "federation",
        "redeem",
        uri,
        "--eid",
        laptop_eid,
        "--operator",
        service.url,
        "--ca-file",
        str(service.ca_file),
        ok=False,
    )
    assert again.exit_code == 2
    assert "already used" in again.output

    # the network: data yes, voice no (exit status 1, the reason named)
    code, out = attach(service, laptop, "data")
    assert code == 0, out
    assert "services data" in out
    code, out = attach(service, laptop, "voice")
    assert code == 1
    assert "refused: service voice" in out
    assert "service-not-allowed" in out

    devices = json.loads(
        cli(
            "federation", "devices", "--device", str(phone_device), "--euicc", str(phone), "--json"
        ).stdout
    )
    by_class = {d["class"]: d for d in devices}
    assert set(by_class) == {"phone", "laptop"}
    assert by_class["laptop"]["eid"] == laptop_eid
    assert by_class["laptop"]["state"] == "active"
    assert by_class["laptop"]["services"] == ["data"]
    assert by_class["laptop"]["iccid"] == installed.group(1)
    assert by_class["laptop"]["tokenConsumed"] is True
    laptop_id = by_class["laptop"]["id"]

    # only the primary manages
    refused = cli(
        "federation", "devices", "--device", str(laptop_device), "--euicc", str(laptop), ok=False
    )
    assert refused.exit_code == 2
    assert "only the primary" in refused.output

    # removal, with trust from --ca-file alone
    out = cli(
        "federation",
        "remove",
        laptop_id,
        "--device",
        str(phone_device),
        "--ca-file",
        str(service.ca_file),
    ).stdout
    assert f"removed device {laptop_id}" in out
    code, out = attach(service, laptop, "data")
    assert code == 1
    assert "removed" in out

    out = cli("federation", "sync", "--device", str(laptop_device), "--euicc", str(laptop)).stdout
    assert f"device {laptop_id} was removed" in out
    assert f"deleted profile {installed.group(1)}" in out
    assert json.loads(cli("lpa", "profiles", "--euicc", str(laptop), "--json").stdout) == []

    out = cli("federation", "sync", "--device", str(phone_device), "--euicc", str(phone)).stdout
    assert "active" in out
    listing = cli("operator", "devices", "--data", str(service.data), "--subscription", sub).stdout
    assert "1/5 devices" in listing
    assert re.search(rf"{laptop_id}\s+secondary laptop\s+removed", listing)


def test_join_approve_wait_and_revoke(service: Service) -> None:
    sub, phone, phone_device = primary(service, "cloud", "--classes", "phone,tablet,watch")
    tablet, tablet_eid = service.euicc("cloud-tablet")
    tablet_device = service.tmp / "cloud-tablet.device"
    env = {"RSPFED_DEVICE_PASSPHRASE": "tablet secret"}

    out = cli(
        "federation",
        "join",
        "--class",
        "tablet",
        "--name",
        "kitchen",
        "--subscription",
        sub,
        "--euicc",
        str(tablet),
        "--device",
        str(tablet_device),
        "--operator",
        service.url,
        env=env,
    ).stdout
    posted = re.search(r"join request (\S+) posted", out)
    assert posted is not None, out
    request_id = posted.group(1)
    assert "pending" in out

    requests = json.loads(
        cli(
            "federation", "requests", "--device", str(phone_device), "--euicc", str(phone), "--json"
        ).stdout
    )
    assert [(r["id"], r["eid"], r["class"], r["name"], r["state"]) for r in requests] == [
        (request_id, tablet_eid, "tablet", "kitchen", "pending")
    ]

    # the tablet waits in another process (operator URL and ticket from its store)
    waiting = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rspfed",
            "federation",
            "join",
            "--wait",
            "--euicc",
            str(tablet),
            "--device",
            str(tablet_device),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )
    try:
        out = cli(
            "federation",
            "approve",
            request_id,
            "--device",
            str(phone_device),
            "--euicc",
            str(phone),
        ).stdout
        assert f"approved join request {request_id}" in out
        output, _ = waiting.communicate(timeout=60)
    finally:
        if waiting.poll() is None:  # pragma: no cover - a hung wait
            waiting.kill()
            waiting.wait()
    assert waiting.returncode == 0, output
    assert "installed and enabled" in output
    assert "registered secondary device" in output
    code, out = attach(service, tablet, "voice")
    assert code == 0, out

    # the device store's key is encrypted: without the passphrase, a clear refusal
    refused = cli(
        "federation", "sync", "--device", str(tablet_device), "--euicc", str(tablet), ok=False
    )
    assert refused.exit_code == 2
    assert "passphrase" in refused.output
    assert (
        "active"
        in cli(
            "federation", "sync", "--device", str(tablet_device), "--euicc", str(tablet), env=env
        ).stdout
    )

    # the plan has no laptops: the token is refused at redemption
    _, laptop_eid = service.euicc("cloud-laptop")
    uri = cli(
        "federation",
        "token",
        "--device",
        str(phone_device),
        "--eid",
        laptop_eid,
        "--class",
        "laptop",
    ).stdout.strip()
    refused = cli(
        "federation",
        "redeem",
        uri,
        "--eid",
        laptop_eid,
        "--operator",
        service.url,
        "--ca-file",
        str(service.ca_file),
        ok=False,
    )
    assert refused.exit_code == 2
    assert "does not allow a laptop" in refused.output

    # a redeemed token whose profile is not downloaded yet, then revoked
    _, watch_eid = service.euicc("cloud-watch")
    token = cli(
        "federation",
        "token",
        "--device",
        str(phone_device),
        "--eid",
        watch_eid,
        "--class",
        "watch",
        "--ttl",
        "5m",
        "--qr",
        str(service.tmp / "watch-token.png"),
    )
    token_id = re.search(r"token ([0-9a-f]{32}) for watch", token.stderr)
    assert token_id is not None
    assert (service.tmp / "watch-token.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    token_file = service.tmp / "watch.token"
    token_file.write_text(token.stdout)
    out = cli(
        "federation",
        "redeem",
        str(token_file),
        "--eid",
        watch_eid,
        "--operator",
        service.url,
        "--ca-file",
        str(service.ca_file),
    ).stdout
    assert re.search(r"^LPA:1\$\S+$", out, re.M)
    states = {
        d["class"]: d["state"]
        for d in json.loads(
            cli(
                "federation",
                "devices",
                "--device",
                str(phone_device),
                "--euicc",
                str(phone),
                "--json",
            ).stdout
        )
    }
    assert states == {"phone": "active", "tablet": "active", "watch": "ordered"}
    out = cli(
        "federation",
        "revoke",
        token_id.group(1),
        "--device",
        str(phone_device),
        "--euicc",
        str(phone),
    ).stdout
    assert "1 pending order(s) cancelled" in out
    classes = {
        d["class"]
        for d in json.loads(
            cli(
                "federation",
                "devices",
                "--device",
                str(phone_device),
                "--euicc",
                str(phone),
                "--json",
            ).stdout
        )
    }
    assert classes == {"phone", "tablet"}
    out = cli(
        "federation", "revoke", "--all", "--device", str(phone_device), "--euicc", str(phone)
    ).stdout
    assert "0 pending order(s) cancelled" in out


def test_trust_and_usage_refusals(service: Service, tmp_path: Path) -> None:
    store, eid = service.euicc("refusals")
    # no trust anchor for the operator's TLS certificate
    result = cli(
        "federation",
        "join",
        "--class",
        "tablet",
        "--subscription",
        "s-any",
        "--wait",
        "--eid",
        eid,
        "--operator",
        service.url,
        ok=False,
    )
    assert result.exit_code == 2
    assert "--ca-file" in result.output
    # --no-tls only with an http:// URL, and an http:// URL only with --no-tls
    result = cli(
        "network", "attach", "--euicc", str(store), "--operator", service.url, "--no-tls", ok=False
    )
    assert result.exit_code == 2
    assert "http://" in result.output
    result = cli(
        "network",
        "attach",
        "--euicc",
        str(store),
        "--operator",
        f"http://{service.address}",
        ok=False,
    )
    assert result.exit_code == 2
    assert "--no-tls" in result.output
    # an eUICC without an enabled profile has no USIM to attach with
    result = cli("network", "attach", "--euicc", str(store), "--operator", service.url, ok=False)
    assert result.exit_code == 2
    assert "is a profile enabled" in result.output
    # a device store without a registration cannot sign management requests
    device = tmp_path / "empty.device"
    DeviceStore.create(device).close()
    result = cli(
        "federation",
        "devices",
        "--device",
        str(device),
        "--ca-file",
        str(service.ca_file),
        ok=False,
    )
    assert result.exit_code == 2
    assert "not registered" in result.output
    # units
    result = cli(
        "federation",
        "token",
        "--device",
        str(device),
        "--eid",
        eid,
        "--class",
        "laptop",
        "--quota",
        "5",
        ok=False,
    )
    assert result.exit_code == 2
    assert "NUMBER+UNIT" in result.output
    result = cli(
        "operator",
        "subscribe",
        "--data",
        str(service.data),
        "--profile-type",
        "ts48",
        "--pool",
        "1GB",
        "--devices",
        "2",
        "--period",
        "4w",
        ok=False,
    )
    assert result.exit_code == 2
    assert "unknown unit" in result.output


def test_plain_http_and_key_rotation(service: Service) -> None:
    """A --no-tls server: every client command with --no-tls and an http:// URL; the
    primary rotates its federation key and the tokens of the old key are refused."""
    server, plain = start_server(service.tmp / "plain", service.pki, tls=False)
    try:
        url = f"http://{plain.address}"
        out = cli(
            "operator",
            "subscribe",
            "--data",
            str(plain.data),
            "--profile-type",
            "ts48",
            "--pool",
            "1.5GiB",
            "--devices",
            "2",
            "--json",
        ).stdout
        sub = json.loads(out)
        phone, _ = plain.euicc("plain-phone")
        cli(
            "lpa",
            "download",
            "--euicc",
            str(phone),
            sub["activationCode"],
            "--yes",
            "--quiet",
            "--no-tls",
        )
        cli("lpa", "enable", sub["iccid"], "--euicc", str(phone))
        device = plain.tmp / "plain-phone.device"
        first = cli(
            "federation",
            "register",
            "--device",
            str(device),
            "--euicc",
            str(phone),
            "--operator",
            url,
            "--no-tls",
        ).stdout
        assert f"registered primary device {sub['deviceId']}" in first
        code = cli("network", "attach", "--euicc", str(phone), "--operator", url, "--no-tls")
        assert "voice" in code.stdout

        _, tablet_eid = plain.euicc("plain-tablet")
        old = cli(
            "federation", "token", "--device", str(device), "--eid", tablet_eid, "--class", "tablet"
        ).stdout.strip()
        # the URL is remembered, and so is the need for --no-tls
        again = cli(
            "federation", "register", "--device", str(device), "--euicc", str(phone), ok=False
        )
        assert again.exit_code == 2
        assert "--no-tls" in again.output
        rotated = cli(
            "federation", "register", "--device", str(device), "--euicc", str(phone), "--no-tls"
        ).stdout
        assert "new key id" in rotated
        assert rotated.split("key id ")[1] != first.split("key id ")[1]
        refused = cli(
            "federation",
            "redeem",
            old,
            "--eid",
            tablet_eid,
            "--device",
            str(plain.tmp / "plain-tablet.device"),
            "--operator",
            url,
            "--no-tls",
            ok=False,
        )
        assert refused.exit_code == 2
        assert "replaced" in refused.output
        fresh = cli(
            "federation", "token", "--device", str(device), "--eid", tablet_eid, "--class", "tablet"
        ).stdout.strip()
        out = cli(
            "federation", "redeem", fresh, "--eid", tablet_eid, "--operator", url, "--no-tls"
        ).stdout
        assert re.search(r"^LPA:1\$\S+$", out, re.M)
    finally:
        stop_server(server)


def test_join_forgets_a_ticket_the_operator_does_not_know(service: Service, tmp_path: Path) -> None:
    _, eid = service.euicc("lost-ticket")
    device = tmp_path / "lost.device"
    with DeviceStore.create(device) as store:
        store.add_join(
            "r-unknown", "not-the-secret", "s-any", datetime.now(UTC) + timedelta(hours=1)
        )
    result = cli(
        "federation",
        "join",
        "--device",
        str(device),
        "--eid",
        eid,
        "--operator",
        service.url,
        "--ca-file",
        str(service.ca_file),
        ok=False,
    )
    assert result.exit_code == 2
    assert "no such join request" in result.output
    with DeviceStore.open(device) as store:
        assert store.joins() == []
