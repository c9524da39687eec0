"""Fixtures: a running operator (``rspfed operator serve`` over HTTPS on loopback,
from :mod:`tests.federation_cli.conftest`) and a primary phone set up through the
real commands (subscribe, download, enable, register), as a user would."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from tests.federation_cli.conftest import Service, cli, service

__all__ = ["Primary", "make_primary", "service"]


@attrs.frozen
class Primary:
    """A subscription's phone: its eUICC store, device store and the subscription id."""

    subscription_id: str
    euicc: Path
    device: Path


def make_primary(service: Service, name: str, *extra: str) -> Primary:
    """``operator subscribe`` then the phone's download, enable and ``federation register``."""
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
        *extra,
    ).stdout
    sub = re.search(r"^subscription (\S+)$", out, re.M)
    code = re.search(r"^(LPA:1\$\S+)$", out, re.M)
    iccid = re.search(r"ICCID (\d+)", out)
    assert sub is not None, out
    assert code is not None, out
    assert iccid is not None, out
    phone, _ = service.euicc(f"{name}-phone")
    cli("lpa", "download", "--euicc", str(phone), code.group(1), "--yes", "--quiet")
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
    return Primary(sub.group(1), phone, device)
