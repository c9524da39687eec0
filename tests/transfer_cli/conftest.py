"""Fixtures and helpers: ``rspfed operator serve`` over HTTPS on loopback (from
:mod:`tests.federation_cli.conftest`), phones and linked devices made through the
real commands, and ``rspfed transfer send`` / ``receive`` as two processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.federation_cli.conftest import Service, cli, service
from tests.pair_cli.conftest import Primary, make_primary

__all__ = [
    "LO",
    "Primary",
    "Receive",
    "Send",
    "Service",
    "attach",
    "cli",
    "devices",
    "linked",
    "make_primary",
    "profiles",
    "service",
    "status",
]

LO = "127.0.0.1"
TIMEOUT = 90


def rspfed(*args: str, stdin: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rspfed", *args],
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


class _Process:
    proc: subprocess.Popen[str]
    lines: list[str]

    def read_until(self, marker: str) -> str:
        """Read stdout lines until one contains ``marker`` (that line)."""
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            assert line, self.finish()
            self.lines.append(line)
            if marker in line:
                return line

    def kill9(self) -> None:
        self.proc.kill()  # SIGKILL: no cleanup, no bye
        self.proc.wait()

    def finish(self) -> tuple[int, str]:
        try:
            out, err = self.proc.communicate(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:  # pragma: no cover - a hung process
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode, "".join(self.lines) + out + err


class Send(_Process):
    """A running ``transfer send``: its offer URI and short code, read from its output."""

    def __init__(
        self,
        device: Path,
        euicc: Path,
        *extra: str,
        yes: bool = True,
        transport: tuple[str, ...] = (),
    ) -> None:
        self.proc = rspfed(
            "transfer",
            "send",
            "--device",
            str(device),
            "--euicc",
            str(euicc),
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
        self.lines = []
        self.read_until("waiting for the new device")
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


class Receive(_Process):
    """A running ``transfer receive`` for a new device."""

    def __init__(
        self,
        device: Path,
        euicc: Path,
        *target: str,
        name: str = "new-phone",
        cls: str = "phone",
        transport: tuple[str, ...] = (),
    ) -> None:
        self.proc = rspfed(
            "transfer",
            "receive",
            "--device",
            str(device),
            "--euicc",
            str(euicc),
            "--name",
            name,
            "--class",
            cls,
            *(transport or ("--lan-address", LO)),
            "--timeout",
            "30",
            *target,
        )
        self.lines = []


def linked(service: Service, primary: Primary, name: str, cls: str) -> tuple[Path, Path, str]:
    """A linked device (token signed by the primary, redeemed): eUICC, device store, EID."""
    euicc, eid = service.euicc(name)
    uri = cli(
        "federation", "token", "--device", str(primary.device), "--eid", eid, "--class", cls
    ).stdout.strip()
    device = service.tmp / f"{name}.device"
    out = cli(
        "federation",
        "redeem",
        uri,
        "--euicc",
        str(euicc),
        "--device",
        str(device),
        "--operator",
        service.url,
    ).stdout
    assert "registered secondary device" in out, out
    return euicc, device, eid


def profiles(euicc: Path) -> list[tuple[str, str]]:
    listed = json.loads(cli("lpa", "profiles", "--euicc", str(euicc), "--json").stdout)
    return [(str(p["iccid"]), str(p["state"])) for p in listed]


def attach(service: Service, euicc: Path, svc: str = "data") -> tuple[int, str]:
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


def devices(device: Path, euicc: Path) -> dict[str, dict[str, object]]:
    """The subscription's devices by EID, as the device ``device`` lists them (signed)."""
    out = cli(
        "federation", "devices", "--device", str(device), "--euicc", str(euicc), "--json"
    ).stdout
    return {str(d["eid"]): d for d in json.loads(out)}


def status(device: Path) -> dict[str, object] | None:
    found = json.loads(cli("transfer", "status", "--device", str(device), "--json").stdout)
    return None if found is None else dict(found)
