"""``rspfed pair show`` / ``pair join`` as two processes over LAN on loopback, against
``rspfed operator serve`` over HTTPS.

A laptop joins by the QR offer's URI and a tablet by the short code: each ends
with its own profile installed and enabled, its device key registered, and
the operator lists it.  A wrong short code is refused and burns the offer (the
right code no longer reaches anything); a join the primary's user denies ends
with no token issued (the operator knows no such device, and none was
redeemed).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rspfed.transfer.wordlist import ODD_WORDS
from tests.federation_cli.conftest import Service, cli
from tests.pair_cli.conftest import Primary, make_primary

LO = "127.0.0.1"
TIMEOUT = 60


def _rspfed(*args: str, stdin: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rspfed", *args],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


class Show:
    """A running ``pair show``: its offer URI and short code, read from its output."""

    def __init__(
        self, primary: Primary, *extra: str, yes: bool = True, transport: tuple[str, ...] = ()
    ) -> None:
        self.proc = _rspfed(
            "pair",
            "show",
            "--device",
            str(primary.device),
            "--euicc",
            str(primary.euicc),
            "--no-qr",
            *(transport or ("--lan-address", LO)),
            "--timeout",
            "30",
            "--wait",
            "60",
            *(["--yes"] if yes else []),
            *extra,
            stdin=not yes,
        )
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            assert line, self.finish()
            self.lines.append(line)
            if line.startswith("waiting for a device"):
                break
        text = "".join(self.lines)
        uri = re.search(r"^(rspfed:1:pair:\S+)$", text, re.M)
        code = re.search(r"^short code: (\S+)$", text, re.M)
        assert uri is not None, text
        assert code is not None, text
        self.uri, self.code = uri.group(1), code.group(1)

    def answer(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text)
        self.proc.stdin.flush()

    def finish(self) -> tuple[int, str]:
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:  # pragma: no cover - a hung process
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode, "".join(self.lines) + out + err


def join(
    service: Service, name: str, cls: str, *target: str, transport: tuple[str, ...] = ()
) -> tuple[int, str, Path, Path]:
    """``pair join`` for a new device (its eUICC made here); exit status, output, stores."""
    euicc, _ = service.euicc(name)
    device = service.tmp / f"{name}.device"
    proc = _rspfed(
        "pair",
        "join",
        "--device",
        str(device),
        "--euicc",
        str(euicc),
        "--class",
        cls,
        "--name",
        name,
        *(transport or ("--lan-address", LO)),
        "--timeout",
        "30",
        *target,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:  # pragma: no cover - a hung process
            proc.kill()
            proc.wait()
    return proc.returncode, out + err, euicc, device


def devices(primary: Primary) -> dict[str, dict[str, object]]:
    """The subscription's devices by EID, as the primary lists them."""
    out = cli(
        "federation",
        "devices",
        "--device",
        str(primary.device),
        "--euicc",
        str(primary.euicc),
        "--json",
    ).stdout
    return {str(d["eid"]): d for d in json.loads(out)}


def eid_of(euicc: Path) -> str:
    return str(json.loads(cli("euicc", "info", str(euicc), "--json").stdout)["eid"])


@pytest.fixture(scope="module")
def primary(service: Service) -> Primary:
    return make_primary(service, "pair", "--classes", "phone,laptop,tablet")


def test_join_by_qr_uri(service: Service, primary: Primary) -> None:
    show = Show(primary)
    code, out, euicc, device = join(service, "ana-laptop", "laptop", "--uri", show.uri)
    shown_code, shown = show.finish()
    assert code == 0, out
    assert shown_code == 0, shown
    assert "paired by QR code" in out
    assert "Allow ana-laptop \u2014 laptop, data only \u2014 to join? yes (--yes)" in shown
    installed = re.search(r"ICCID (\d+), data only", out)
    assert installed is not None, out
    assert "registered" in out
    assert f"ana-laptop joined: laptop, ICCID {installed.group(1)}" in shown
    profiles = json.loads(cli("lpa", "profiles", "--euicc", str(euicc), "--json").stdout)
    assert [(p["iccid"], p["state"]) for p in profiles] == [(installed.group(1), "enabled")]
    listed = devices(primary)[eid_of(euicc)]
    assert (listed["class"], listed["state"], listed["services"]) == ("laptop", "active", ["data"])
    assert listed["iccid"] == installed.group(1)
    # the laptop's own key is registered: it may ask the operator about itself
    assert (
        "active" in cli("federation", "sync", "--device", str(device), "--euicc", str(euicc)).stdout
    )
    # the offer was used once: the same URI reaches nothing now
    again, out, _, _ = join(service, "ana-laptop2", "laptop", "--uri", show.uri, "--timeout", "1")
    assert again == 2, out


def test_join_by_short_code(service: Service, primary: Primary) -> None:
    show = Show(primary)
    code, out, euicc, _ = join(service, "kitchen-tablet", "tablet", "--code", show.code)
    shown_code, shown = show.finish()
    assert code == 0, out
    assert shown_code == 0, shown
    assert "paired by short code" in out
    assert (
        "Allow kitchen-tablet \u2014 tablet, data, voice, SMS and tethering \u2014 to join?"
        in shown
    )
    assert "usage ledger" in out
    listed = devices(primary)[eid_of(euicc)]
    assert (listed["class"], listed["state"]) == ("tablet", "active")
    profiles = json.loads(cli("lpa", "profiles", "--euicc", str(euicc), "--json").stdout)
    assert [p["state"] for p in profiles] == ["enabled"]


def test_wrong_code_is_refused_and_burns_the_offer(service: Service, primary: Primary) -> None:
    show = Show(primary)
    nameplate, first, second = show.code.split("-")
    other = next(word for word in ODD_WORDS if word != first)
    wrong = f"{nameplate}-{other}-{second}"  # the same nameplate: it reaches the offer
    code, out, euicc, _ = join(service, "mallory", "laptop", "--code", wrong)
    shown_code, shown = show.finish()
    assert code == 2, out
    assert shown_code == 2, shown
    assert "Traceback" not in out + shown
    assert "asks to join" not in shown  # nothing was asked, nothing signed
    assert "token" not in shown
    # the right code now finds nobody: the offer is burnt
    code, out, _, _ = join(service, "late", "laptop", "--code", show.code, "--timeout", "1")
    assert code == 2, out
    assert eid_of(euicc) not in devices(primary)


def test_denied_join_issues_no_token(service: Service, primary: Primary) -> None:
    show = Show(primary, yes=False)
    euicc, eid = service.euicc("denied-laptop")
    device = service.tmp / "denied-laptop.device"
    proc = _rspfed(
        "pair",
        "join",
        "--device",
        str(device),
        "--euicc",
        str(euicc),
        "--class",
        "laptop",
        "--name",
        "stranger",
        "--lan-address",
        LO,
        "--timeout",
        "30",
        "--uri",
        show.uri,
    )
    show.answer("n\n")
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:  # pragma: no cover - a hung process
            proc.kill()
            proc.wait()
    shown_code, shown = show.finish()
    assert proc.returncode == 2, out + err
    assert "refused to let this device join (denied)" in err
    assert shown_code == 1, shown
    assert "Allow stranger \u2014 laptop, data only \u2014 to join?" in shown
    assert "no token was issued" in shown
    assert "token" not in out
    # the operator never saw a token for that EID: no device, no order, nothing installed
    assert eid not in devices(primary)
    listing = cli(
        "operator",
        "devices",
        "--data",
        str(service.data),
        "--subscription",
        primary.subscription_id,
    ).stdout
    assert eid not in listing
    assert json.loads(cli("lpa", "profiles", "--euicc", str(euicc), "--json").stdout) == []


def test_join_over_the_ble_virtual_radio(service: Service, primary: Primary) -> None:
    from rspfed.transport.ble import ControllerProcess

    with ControllerProcess.start() as radio:
        offerer, joiner = radio.specs
        show = Show(primary, transport=("--transport", "ble", "--ble-hci", offerer))
        code, out, euicc, _ = join(
            service,
            "ble-tablet",
            "tablet",
            "--code",
            show.code,
            transport=("--transport", "ble", "--ble-hci", joiner),
        )
        shown_code, shown = show.finish()
    assert code == 0, out
    assert shown_code == 0, shown
    assert "connected: ble:" in out
    assert "paired by short code" in out
    assert "waiting for a device to join over BLE" in shown
    listed = devices(primary)[eid_of(euicc)]
    assert (listed["class"], listed["state"]) == ("tablet", "active")
