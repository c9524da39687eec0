"""``rspfed transfer send`` / ``receive`` as two processes over LAN on loopback (real
zeroconf for the short code, the QR offer's direct address for the URI), against
``rspfed operator serve`` over HTTPS.

The primary phone's subscription moves to a new eUICC store by short code: the old
profile is deleted, the new one is served, the laptop (a linked device) still
attaches, and the new primary's key signs tokens the operator accepts.  A tablet (a
secondary) moves by the QR URI.  A "no" leaves everything as it was.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.transfer_cli.conftest import (
    Primary,
    Receive,
    Send,
    Service,
    attach,
    cli,
    devices,
    linked,
    make_primary,
    profiles,
    status,
)


def test_primary_moves_by_short_code(service: Service) -> None:
    primary = make_primary(service, "move", "--classes", "phone,laptop,tablet")
    laptop, _, laptop_eid = linked(service, primary, "move-laptop", "laptop")
    ((old_iccid, _),) = profiles(primary.euicc)
    new_euicc, new_eid = service.euicc("move-new-phone")
    new_device = service.tmp / "move-new-phone.device"
    assert attach(service, primary.euicc, "voice")[0] == 0

    started = time.monotonic()
    send = Send(primary.device, primary.euicc)
    receive = Receive(new_device, new_euicc, "--code", send.code, name="ana-new-phone")
    got, out = receive.finish()
    sent, shown = send.finish()
    elapsed = time.monotonic() - started
    assert got == 0, out
    assert sent == 0, shown
    print(f"\nprimary change over loopback LAN: {elapsed:.2f} s; {out.splitlines()[-1].strip()}")
    assert "paired by short code" in out
    assert f"Move your subscription to 'ana-new-phone' (phone, EID {new_eid})? yes (--yes)" in shown
    ((new_iccid, state),) = profiles(new_euicc)
    assert state == "enabled"
    assert new_iccid != old_iccid
    assert f"ICCID {old_iccid} -> {new_iccid}; old profile deleted" in shown
    assert profiles(primary.euicc) == []  # the old profile is gone, nothing cloned
    # the network serves the new profile; the laptop keeps its own
    assert attach(service, new_euicc, "voice")[0] == 0
    assert attach(service, laptop, "data")[0] == 0
    # the new phone is the subscription's primary now: it lists the devices (signed)
    listed = devices(new_device, new_euicc)
    assert new_eid in listed
    assert listed[new_eid]["role"] == "primary"
    assert listed[new_eid]["iccid"] == new_iccid
    assert laptop_eid in listed
    assert listed[laptop_eid]["state"] == "active"
    # its key signs a token the operator accepts (a tablet redeems it)
    new_primary = type(primary)(primary.subscription_id, new_euicc, new_device)
    _, _, tablet_eid = linked(service, new_primary, "move-tablet", "tablet")
    assert tablet_eid in devices(new_device, new_euicc)
    # both journals are done
    old_status, new_status = status(primary.device), status(new_device)
    assert old_status is not None
    assert new_status is not None
    assert (old_status["side"], old_status["phase"]) == ("old", "done")
    assert (new_status["side"], new_status["phase"]) == ("new", "done")
    timings = re.search(r"timings: (.*)$", out, re.M)
    assert timings is not None, out


@pytest.fixture(scope="module")
def shared(service: Service) -> Primary:
    """A primary the tests below do not move (a tablet moves, or nothing does)."""
    return make_primary(service, "shared", "--classes", "phone,laptop,tablet")


def test_secondary_tablet_moves_by_qr_uri(service: Service, shared: Primary) -> None:
    old, old_device, old_eid = linked(service, shared, "old-tablet", "tablet")
    ((old_iccid, _),) = profiles(old)
    device_id = devices(shared.device, shared.euicc)[old_eid]["id"]
    new, new_eid = service.euicc("new-tablet")
    new_device = service.tmp / "new-tablet.device"
    send = Send(old_device, old)
    receive = Receive(new_device, new, "--uri", send.uri, name="new-tablet", cls="tablet")
    got, out = receive.finish()
    sent, shown = send.finish()
    assert got == 0, out
    assert sent == 0, shown
    assert "paired by QR code" in out
    assert "as secondary device" in out
    assert profiles(old) == []
    ((new_iccid, state),) = profiles(new)
    assert state == "enabled"
    assert new_iccid != old_iccid
    # the same device record, on the new eUICC; the primary is untouched
    listed = devices(shared.device, shared.euicc)
    assert old_eid not in listed
    assert (listed[new_eid]["id"], listed[new_eid]["class"]) == (device_id, "tablet")
    assert listed[new_eid]["iccid"] == new_iccid
    assert attach(service, new, "data")[0] == 0
    assert attach(service, shared.euicc, "voice")[0] == 0
    # the new tablet registered its own key: it asks the operator about itself
    synced = cli("federation", "sync", "--device", str(new_device), "--euicc", str(new)).stdout
    assert "active" in synced


def test_no_leaves_everything_unchanged(service: Service, shared: Primary) -> None:
    before = profiles(shared.euicc)
    listed = devices(shared.device, shared.euicc)
    new, new_eid = service.euicc("unwanted-phone")
    new_device = service.tmp / "unwanted-phone.device"
    send = Send(shared.device, shared.euicc, yes=False)
    receive = Receive(new_device, new, "--code", send.code, name="stranger")
    send.answer("n\n")
    got, out = receive.finish()
    sent, shown = send.finish()
    assert sent == 1, shown
    assert got == 2, out
    assert f"Move your subscription to 'stranger' (phone, EID {new_eid})?" in shown
    assert "nothing changed" in shown
    assert "refused to hand over its subscription (denied)" in out
    assert "Traceback" not in out + shown
    # nothing ordered, nothing installed, nothing journalled
    assert profiles(shared.euicc) == before
    assert profiles(new) == []
    assert devices(shared.device, shared.euicc) == listed
    assert status(shared.device) is None
    assert status(new_device) is None
    assert attach(service, shared.euicc, "voice")[0] == 0


def _resume(device: Path, euicc: Path) -> str:
    return cli("transfer", "resume", "--device", str(device), "--euicc", str(euicc)).stdout


@pytest.mark.parametrize(
    ("marker", "step"),
    [("order for profile", "order"), ("enabled", "enabled")],
    ids=["after-the-order", "after-the-enable"],
)
def test_receiver_killed_then_both_resume(service: Service, marker: str, step: str) -> None:
    primary = make_primary(service, f"crash-{step}", "--classes", "phone,laptop")
    laptop, _, _ = linked(service, primary, f"crash-{step}-laptop", "laptop")
    new, new_eid = service.euicc(f"crash-{step}-device")
    new_device = service.tmp / f"crash-{step}-device.device"
    send = Send(primary.device, primary.euicc)
    receive = Receive(new_device, new, "--code", send.code)
    # the line comes after the journal write: kill -9 right after it
    receive.read_until(marker)
    receive.kill9()
    sent, shown = send.finish()
    assert sent == 2, shown
    assert "run rspfed transfer resume" in shown
    old_status, new_status = status(primary.device), status(new_device)
    assert old_status is not None
    assert new_status is not None
    assert old_status["phase"] == "order_sent"
    assert new_status["phase"] in ("order_received", "downloaded", "enabled")
    if step == "order":  # not enabled on the new eUICC yet: the old profile is the one served
        assert attach(service, primary.euicc, "voice")[0] == 0
    out = _resume(new_device, new)
    assert "new device: change" in out
    assert "-> done" in out, out
    out = _resume(primary.device, primary.euicc)
    assert "old device: change" in out
    assert "-> done" in out, out
    assert profiles(primary.euicc) == []
    ((_, state),) = profiles(new)
    assert state == "enabled"
    assert attach(service, new, "voice")[0] == 0
    assert attach(service, laptop, "data")[0] == 0
    assert devices(new_device, new)[new_eid]["role"] == "primary"


def test_sender_killed_after_the_order_then_it_resumes(service: Service) -> None:
    primary = make_primary(service, "crash-old", "--classes", "phone,laptop")
    ((old_iccid, _),) = profiles(primary.euicc)
    new, new_eid = service.euicc("crash-old-new-phone")
    new_device = service.tmp / "crash-old-new-phone.device"
    send = Send(primary.device, primary.euicc)
    receive = Receive(new_device, new, "--code", send.code)
    send.read_until("change order sent")  # journalled order_sent: kill -9 now
    send.kill9()
    got, out = receive.finish()
    assert got == 0, out  # the new device goes on with the operator alone
    assert "the old device went away" in out
    status_new = status(new_device)
    assert status_new is not None
    assert status_new["phase"] == "done"
    # switched: the network refuses the old IMSI (its profile is still enabled there)
    assert profiles(primary.euicc) == [(old_iccid, "enabled")]
    code, text = attach(service, primary.euicc, "voice")
    assert code != 0, text
    assert attach(service, new, "voice")[0] == 0
    out = _resume(primary.device, primary.euicc)
    assert "order_sent -> done" in out, out
    assert profiles(primary.euicc) == []
    assert devices(new_device, new)[new_eid]["role"] == "primary"


def test_primary_moves_over_the_ble_virtual_radio(service: Service) -> None:
    from rspfed.transport.ble import ControllerProcess

    primary = make_primary(service, "ble-move", "--classes", "phone")
    new, new_eid = service.euicc("ble-new-phone")
    new_device = service.tmp / "ble-new-phone.device"
    with ControllerProcess.start() as radio:
        offerer, joiner = radio.specs
        send = Send(
            primary.device, primary.euicc, transport=("--transport", "ble", "--ble-hci", offerer)
        )
        receive = Receive(
            new_device,
            new,
            "--code",
            send.code,
            transport=("--transport", "ble", "--ble-hci", joiner),
        )
        got, out = receive.finish()
        sent, shown = send.finish()
    assert got == 0, out
    assert sent == 0, shown
    assert "connected: ble:" in out
    assert "waiting for the new device over BLE" in shown
    assert profiles(primary.euicc) == []
    assert attach(service, new, "voice")[0] == 0
    assert devices(new_device, new)[new_eid]["role"] == "primary"


def test_operator_refusal_is_a_clear_error_and_changes_nothing(
    service: Service, shared: Primary
) -> None:
    before = profiles(shared.euicc)
    new, _ = service.euicc("wrong-class")
    new_device = service.tmp / "wrong-class.device"
    send = Send(shared.device, shared.euicc)
    # a primary stays a phone: the operator refuses to move it onto a tablet
    receive = Receive(new_device, new, "--code", send.code, name="slate", cls="tablet")
    got, out = receive.finish()
    sent, shown = send.finish()
    assert sent == 2, shown
    assert got == 2, out
    assert "the operator refused" in shown
    assert "rspfed: error:" in shown
    assert "refused to hand over its subscription (error)" in out
    assert "Traceback" not in out + shown
    assert profiles(shared.euicc) == before
    assert profiles(new) == []
    assert status(shared.device) is None
    assert attach(service, shared.euicc, "voice")[0] == 0
