"""BLE between two processes on linked virtual controllers (bumble.apps.controllers).

The bleak-API central (bumble-backed bleak backend) runs in this process on
one controller, the bumble peripheral in a child process on the other; the
controllers run in a third process (:class:`ControllerProcess`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from rspfed.errors import TransportError
from rspfed.transfer.code import ShortCode
from rspfed.transfer.connection import (
    NEED_DATA,
    ByeReceived,
    ConnectionClosed,
    PairingConnection,
    Role,
)
from rspfed.transfer.offer import PairingOffer
from rspfed.transport import Driver
from rspfed.transport.ble import ControllerProcess, ble_connect
from rspfed.transport.stream import ByteStream
from tests.paths import REPO
from tests.transfer.pairing_world import ICCID, SECONDARY_HELLO, App

CHECK = Path(REPO) / "examples" / "ble_check.py"


@pytest.fixture(scope="module")
def radio() -> Iterator[ControllerProcess]:
    with ControllerProcess.start() as controllers:
        yield controllers


def _spawn(*argv: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(child: subprocess.Popen[str]) -> str:
    try:
        out, _ = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        out, _ = child.communicate()
        pytest.fail(f"the peer process hung:\n{out}")
    return out


def _load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ble_check", CHECK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_check_script_passes_between_two_processes(radio: ControllerProcess) -> None:
    session = os.urandom(8).hex()
    peripheral = _spawn(
        str(CHECK), "--peripheral", "--hci", radio.specs[1], "--session", session,
        "--timeout", "25",
    )  # fmt: skip
    check = _load_check()
    args = argparse.Namespace(session=session, hci=radio.specs[0], timeout=25.0)
    try:
        failure = asyncio.run(check.run_central(args))
    finally:
        out = _finish(peripheral)
    assert failure is None
    assert peripheral.returncode == 0, out
    assert out.strip().endswith("PASS"), out


@pytest.mark.parametrize("mode", ["drop", "send"])
def test_a_link_drop_mid_transfer_fails_both_processes(radio: ControllerProcess, mode: str) -> None:
    did = os.urandom(16)
    count = "3000" if mode == "drop" else "300000"
    peer = _spawn("-m", "tests.transport_ble.ble_peer", radio.specs[1], did.hex(), mode, count)

    async def central() -> None:
        async with asyncio.timeout(30):
            stream = await ble_connect(did, hci=radio.specs[0], timeout=25)
            try:
                if mode == "drop":
                    # The peer drops the link after 3000 octets of this send.
                    with pytest.raises(TransportError):
                        await stream.send(os.urandom(300_000))
                else:
                    # Take some of the peer's send, then walk away.
                    assert await stream.receive()
                    assert stream.client is not None
                    await stream.client.disconnect()
                with pytest.raises(TransportError):
                    await _drain(stream)
            finally:
                await stream.aclose()

    try:
        asyncio.run(central())
    finally:
        out = _finish(peer)
    assert "LOST TransportError" in out, out


async def _drain(stream: ByteStream) -> None:
    while await stream.receive():
        pass


@pytest.mark.parametrize("method", ["qr", "code"])
def test_a_whole_pairing_between_two_processes(radio: ControllerProcess, method: str) -> None:
    """The offerer (a primary) in a child process, the joiner here: QR or short code."""
    offerer = _spawn("-m", "tests.transport_ble.ble_peer", radio.specs[1], "00", "offer")
    assert offerer.stdout is not None
    lines: dict[str, str] = {}
    while "ready" not in lines:
        line = offerer.stdout.readline()
        assert line, _finish(offerer)
        key, _, value = line.strip().partition(" ")
        lines[key] = value
    app = App(granter=False)
    if method == "qr":
        offer = PairingOffer.from_uri(lines["uri"])
        conn = PairingConnection(Role.JOINER, local=SECONDARY_HELLO, rand=os.urandom, offer=offer)
        did = offer.discovery_id
    else:
        code = ShortCode.parse(lines["code"])
        conn = PairingConnection(Role.JOINER, local=SECONDARY_HELLO, rand=os.urandom, code=code)
        did = code.discovery_id

    async def join() -> None:
        async with asyncio.timeout(30):
            stream = await ble_connect(did, hci=radio.specs[0], timeout=20)
            async with Driver(conn, stream, need_data=NEED_DATA, timeout=10) as driver:
                while True:
                    event = await driver.next_event()
                    if isinstance(event, ConnectionClosed):
                        return
                    app.on_event(conn, event)
                    await driver.flush()
                    if isinstance(event, ByeReceived):
                        return

    try:
        asyncio.run(join())
    finally:
        out = _finish(offerer)
    assert app.token_received
    assert conn.state.value == "closed"
    assert f"PAIRED granted=1 iccid={ICCID} state=closed" in out, out
