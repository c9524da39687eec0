"""``pair show`` and ``pair join`` in two network namespaces joined by a veth pair (root).

The operator (``rspfed operator serve``) and the primary phone live in
namespace a; the new laptop in namespace b reaches the operator through a
small TCP forwarder on its own loopback (the operator's TLS name and the
activation code say ``localhost``) and finds the primary's offer by its short
code through zeroconf across the veth (no address in a short code).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.federation_cli.conftest import PACKAGE, cli, free_port
from tests.federation_cli.conftest import _metadata as metadata
from tests.transport.netns import Child, Namespace, NetnsPair, netns_unavailable_reason

pytestmark = [pytest.mark.root, pytest.mark.slow]

TIMEOUT = 60

_FORWARDER = """
import asyncio, json, sys
lport, host, rport = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
async def handle(reader, writer):
    try:
        r2, w2 = await asyncio.open_connection(host, rport)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pipe(reader, w2), pipe(r2, writer))
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", lport)
    print(json.dumps({"event": "ready"}), flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def _in(ns: Namespace, *args: str) -> subprocess.CompletedProcess[str]:
    """``rspfed ARGS`` inside ``ns``, to completion."""
    return subprocess.run(
        ["ip", "netns", "exec", ns.name, sys.executable, "-m", "rspfed", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _ok(ns: Namespace, *args: str) -> str:
    done = _in(ns, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _read_line(child: Child, pattern: str, timeout: float = 30) -> str:
    """Read the child's stdout until a line matches (not JSON: the rspfed commands)."""
    assert child.proc.stdout is not None
    seen: list[str] = []
    while True:
        line = child.proc.stdout.readline().decode()
        assert line, f"{child.label} ended: {''.join(seen)}{child._err()}"
        seen.append(line)
        if re.search(pattern, line):
            return line


def test_join_by_short_code_between_two_namespaces(tmp_path: Path) -> None:
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    pki = tmp_path / "pki"
    cli("pki", "init", str(pki), "--curve", "nist")
    port = free_port()
    address = f"localhost:{port}"
    data = tmp_path / "operator"
    cli("operator", "init", "--data", str(data), "--pki", str(pki), "--address", address)
    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps(metadata(address)))
    cli(
        "smdp",
        "template",
        "add",
        "--data",
        str(data),
        "ts48",
        str(PACKAGE),
        "--metadata",
        str(meta),
    )
    out = cli(
        "operator",
        "subscribe",
        "--data",
        str(data),
        "--profile-type",
        "ts48",
        "--pool",
        "5GB",
        "--devices",
        "3",
    ).stdout
    code = re.search(r"^(LPA:1\$\S+)$", out, re.M)
    iccid = re.search(r"ICCID (\d+)", out)
    assert code is not None, out
    assert iccid is not None, out
    phone, laptop = tmp_path / "phone.euicc", tmp_path / "laptop.euicc"
    for store in (phone, laptop):
        cli("euicc", "create", str(store), "--pki", str(pki))
    phone_device, laptop_device = tmp_path / "phone.device", tmp_path / "laptop.device"

    with NetnsPair() as net:
        server = net.spawn(
            net.a,
            ["-m", "rspfed", "operator", "serve", "--data", str(data), "--bind", "0.0.0.0"],
            label="operator",
        )
        _read_line(server, "serving")
        forwarder = net.spawn(
            net.b, ["-c", _FORWARDER, str(port), net.a.address, str(port)], label="forwarder"
        )
        assert forwarder.read_json(10)["event"] == "ready"

        # the phone, in namespace a: download, enable, register its federation key
        _ok(net.a, "lpa", "download", "--euicc", str(phone), code.group(1), "--yes", "--quiet")
        _ok(net.a, "lpa", "enable", iccid.group(1), "--euicc", str(phone))
        url = f"https://{address}"
        _ok(
            net.a,
            "federation",
            "register",
            "--device",
            str(phone_device),
            "--euicc",
            str(phone),
            "--operator",
            url,
        )

        show = net.spawn(
            net.a,
            [
                "-m",
                "rspfed",
                "pair",
                "show",
                "--device",
                str(phone_device),
                "--euicc",
                str(phone),
                "--yes",
                "--no-qr",
                "--lan-address",
                net.a.address,
                "--wait",
                "60",
            ],
            label="pair show",
        )
        short = _read_line(show, r"^short code: ").split(":", 1)[1].strip()
        _read_line(show, r"^waiting for a device")
        joined = _in(
            net.b,
            "pair",
            "join",
            "--device",
            str(laptop_device),
            "--euicc",
            str(laptop),
            "--code",
            short,
            "--class",
            "laptop",
            "--name",
            "netns-laptop",
            "--lan-address",
            net.b.address,
        )
        assert joined.returncode == 0, joined.stdout + joined.stderr
        assert f"connected: tcp:{net.a.address}:" in joined.stdout
        assert "paired by short code" in joined.stdout
        assert show.wait(TIMEOUT) == 0
        assert show.proc.stdout is not None
        shown = show.proc.stdout.read().decode()
        assert "netns-laptop joined: laptop" in shown
        installed = re.search(r"ICCID (\d+), data only", joined.stdout)
        assert installed is not None, joined.stdout
        listed = json.loads(
            _ok(
                net.a,
                "federation",
                "devices",
                "--device",
                str(phone_device),
                "--euicc",
                str(phone),
                "--json",
            )
        )
        assert {(d["class"], d["iccid"], d["state"]) for d in listed} >= {
            ("laptop", installed.group(1), "active")
        }
