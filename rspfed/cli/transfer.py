"""``rspfed transfer``: move a subscription to a new device (issue I, device change).

Commands::

    rspfed transfer send --device STORE --euicc STORE [--operator URL] [--yes]
                         [--transport lan|ble] [--ble-hci SPEC] [--timeout S]
                         [--lan-address ADDR]... [--name NAME] [--no-qr] [--wait S]
                         [--switch-timeout S] [--ca-file PEM] [--no-tls]
    rspfed transfer receive --device STORE --euicc STORE (--uri URI | --code CODE)
                         [--transport lan|ble] [--ble-hci SPEC] [--name NAME]
                         [--class CLASS] [--timeout S] [--lan-address ADDR]...
                         [--switch-timeout S] [--ca-file PEM] [--no-tls]
    rspfed transfer resume --device STORE --euicc STORE [--cancel] [--wait S]
                         [--ca-file PEM] [--no-tls]
    rspfed transfer status --device STORE [--json]

``send`` runs on the OLD device (registered with ``rspfed federation
register`` or ``pair join``): it prints a pairing offer (QR code, its
``rspfed:1:pair:`` URI and a short code) and waits for the new device.  When
the new device asks to take over it asks "Move your subscription to 'NAME'
(CLASS, EID ...)?" (``--yes`` answers yes for scripts), asks the operator for
the device-change order for the new EID (signed with its own key), sends the
order, waits for the new device to be served, deletes its old profile,
completes the change and hands its companion pairings (a watch) over.

``receive`` runs on the NEW device: it finds the offer (LAN: the QR code's
direct address, else zeroconf; BLE: a scan), pairs by ``--uri`` (scanned) or
``--code`` (typed), asks to take over as ``--name``/``--class``, downloads and
enables the ordered profile, waits for the network's switch, registers its own
device key (EAP-AKA' with the new USIM) and stores the companions.

``resume`` continues an interrupted change from the device store's journal
with the operator alone (either side; no second pairing); on the old device
``--cancel`` rolls it back before the switch.  ``status`` prints the journal.

TLS to the operator as for ``rspfed pair`` (the eUICC's CIs plus
``--ca-file``; ``--no-tls`` for an ``http://`` operator).  The stores'
passphrases come from ``RSPFED_DEVICE_PASSPHRASE`` and
``RSPFED_EUICC_PASSPHRASE``.

Exit status: 0 moved (or resumed to its end); 1 (``send``) the user said no:
nothing changed; 2 failure (one line on stderr; the journal says where to
resume); 130 interrupted.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from rspfed.cli._util import reports_errors
from rspfed.cli.federation import DEVICE_PASSPHRASE_ENV, open_euicc, resolve_operator_url
from rspfed.cli.pair import (
    _open_store,
    _tls_for,
    _tls_options,
    _transport,
    _transport_options,
    pairing_target,
    run_interruptible,
)
from rspfed.errors import UsageError
from rspfed.federation.token import DeviceClass

if TYPE_CHECKING:
    from rspfed.transfer.change_flows import ChangeAsk, TransferEvent
    from rspfed.transfer.flows import Invitation

__all__ = ["transfer"]


def _echo(event: TransferEvent) -> None:
    click.echo(f"  {event.text}")


def _device_option(*, exists: bool) -> Callable[[Any], Any]:
    return click.option(
        "--device",
        metavar="STORE",
        required=True,
        type=click.Path(dir_okay=False, exists=exists),
        help=f"This device's federation store; passphrase from {DEVICE_PASSPHRASE_ENV}.",
    )


def _euicc_option(func: Any) -> Any:
    return click.option(
        "--euicc",
        metavar="STORE",
        required=True,
        type=click.Path(dir_okay=False, exists=True),
        help="This device's software eUICC store.",
    )(func)


def _switch_option(func: Any) -> Any:
    return click.option(
        "--switch-timeout",
        type=float,
        default=120.0,
        show_default=True,
        metavar="S",
        help="Seconds to wait for the new profile's download, enable and the network's switch.",
    )(func)


@click.group("transfer")
def transfer() -> None:
    """Device change: move this subscription to a new device (LAN or BLE)."""


# --------------------------------------------------------------------------
# send


@transfer.command("send")
@_device_option(exists=True)
@_euicc_option
@click.option(
    "--operator",
    "operator_url",
    metavar="URL",
    default=None,
    help="The operator service (default: the device store's).",
)
@click.option("--yes", is_flag=True, help="Hand over without asking (scripts).")
@click.option("--name", default=None, help="This device's name as shown to the new one.")
@click.option("--no-qr", is_flag=True, help="Do not print the QR code (the URI only).")
@click.option(
    "--wait",
    type=float,
    default=None,
    metavar="S",
    help="Give up when no device connects within S seconds (default: wait).",
)
@_switch_option
@_transport_options
@_tls_options
@reports_errors
def send_command(
    device: str,
    euicc: str,
    operator_url: str | None,
    yes: bool,
    name: str | None,
    no_qr: bool,
    wait: float | None,
    switch_timeout: float,
    transport: str,
    ble_hci: str | None,
    lan_addresses: tuple[str, ...],
    timeout: float,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Hand this device's subscription over to a new device (the old device's side)."""
    from rspfed.federation.uri import RspfedUri
    from rspfed.transfer.change_flows import transfer_send
    from rspfed.transfer.flows import LocalDevice

    config = _transport(transport, ble_hci, lan_addresses)
    with _open_store(device, create=False) as store:
        record = store.record()
        if record is None or record.device_id is None or store.private_key() is None:
            raise UsageError("this device is not registered: run rspfed federation register first")
        url = resolve_operator_url(operator_url, record, no_tls)
        with open_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session:
            label = name or record.name or "phone"
            cls = record.device_class or DeviceClass.PHONE
            where = "LAN" if config.kind == "lan" else "BLE"

            def on_offer(invitation: Invitation) -> None:
                if not no_qr:
                    click.echo(RspfedUri.parse(invitation.uri).qr_terminal())
                click.echo(invitation.uri)
                click.echo(f"short code: {invitation.code}")
                click.echo(f"waiting for the new device over {where} (one attempt) ...")

            async def confirm(ask: ChangeAsk) -> bool:
                if yes:
                    click.echo(f"{ask.question} yes (--yes)")
                    return True
                answer = await asyncio.to_thread(click.confirm, ask.question, default=False)
                return bool(answer)

            outcome = run_interruptible(
                transfer_send(
                    config,
                    local=LocalDevice(label, cls, session.eid),
                    store=store,
                    lpa=session.lpa,
                    confirm=confirm,
                    operator_url=url,
                    ssl_for=_tls_for(session, ca_file, no_tls),
                    on_offer=on_offer,
                    progress=_echo,
                    timeout=timeout,
                    accept_timeout=wait,
                    switch_timeout=switch_timeout,
                ),
                "the offer is withdrawn; if a change was ordered, run rspfed transfer resume",
            )
    if outcome.moved:
        assert outcome.ask is not None
        click.echo(
            f"moved to {outcome.ask.name} (EID {outcome.ask.eid}): ICCID {outcome.old_iccid} "
            f"-> {outcome.new_iccid}"
            + ("; old profile deleted" if outcome.deleted else "")
            + (f"; {outcome.companions} companion(s) handed over" if outcome.companions else "")
        )
        return
    if outcome.refused is not None:
        click.echo("not moved: you said no; nothing changed")
        sys.exit(1)
    click.echo(
        f"not moved: the new device failed ({outcome.failure}); the change was cancelled",
        err=True,
    )
    sys.exit(2)


# --------------------------------------------------------------------------
# receive


@transfer.command("receive")
@_device_option(exists=False)
@_euicc_option
@click.option("--uri", default=None, help="The offer's rspfed:1:pair: URI (scanned).")
@click.option("--code", default=None, help="The short code shown by the old device (typed).")
@click.option("--name", default=None, help="This device's name (default: its class).")
@click.option(
    "--class",
    "device_class",
    default="phone",
    show_default=True,
    type=click.Choice([c.value for c in DeviceClass], case_sensitive=False),
    help="This device's class.",
)
@_switch_option
@_transport_options
@_tls_options
@reports_errors
def receive_command(
    device: str,
    euicc: str,
    uri: str | None,
    code: str | None,
    name: str | None,
    device_class: str,
    switch_timeout: float,
    transport: str,
    ble_hci: str | None,
    lan_addresses: tuple[str, ...],
    timeout: float,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Take over the old device's subscription by its offer URI or short code."""
    from rspfed.transfer.change_flows import transfer_receive
    from rspfed.transfer.flows import LocalDevice

    target = pairing_target(uri, code)
    config = _transport(transport, ble_hci, lan_addresses)
    cls = DeviceClass(device_class.lower())
    label = name or cls.value
    with (
        _open_store(device, create=True) as store,
        open_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session,
    ):
        outcome = run_interruptible(
            transfer_receive(
                config,
                target=target,
                local=LocalDevice(label, cls, session.eid),
                store=store,
                lpa=session.lpa,
                card=session.euicc.card,
                ssl_for=_tls_for(session, ca_file, no_tls),
                progress=_echo,
                timeout=timeout,
                switch_timeout=switch_timeout,
            ),
            "run rspfed transfer resume to finish the change",
        )
    timings = ", ".join(f"{k} {v:.2f}s" for k, v in outcome.timings.items())
    click.echo(
        f"took over {outcome.old_name}'s subscription {outcome.subscription_id} as "
        f"{outcome.role} device {outcome.device_id}: ICCID {outcome.new_iccid}"
        + (f", {outcome.companions} companion(s)" if outcome.companions else "")
    )
    click.echo(f"  timings: {timings}")
    if not outcome.handed_over:
        click.echo(
            "  the old device went away before it confirmed: run rspfed transfer resume on it"
        )


# --------------------------------------------------------------------------
# resume, status


@transfer.command("resume")
@_device_option(exists=True)
@_euicc_option
@click.option(
    "--cancel",
    is_flag=True,
    help="Roll the change back instead (old device: before the switch; new device: "
    "before its profile is enabled).",
)
@click.option(
    "--wait",
    type=float,
    default=120.0,
    show_default=True,
    metavar="S",
    help="Seconds to wait for the network's switch.",
)
@_tls_options
@reports_errors
def resume_command(
    device: str, euicc: str, cancel: bool, wait: float, ca_file: str | None, no_tls: bool
) -> None:
    """Continue an interrupted device change from this device's journal."""
    from rspfed.transfer.change_flows import transfer_resume

    with (
        _open_store(device, create=False) as store,
        open_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session,
    ):
        outcome = run_interruptible(
            transfer_resume(
                store=store,
                lpa=session.lpa,
                card=session.euicc.card,
                ssl_for=_tls_for(session, ca_file, no_tls),
                cancel=cancel,
                progress=_echo,
                wait=wait,
            ),
            "run rspfed transfer resume again",
        )
    click.echo(
        f"{outcome.side} device: change {outcome.change_id} {outcome.before} -> {outcome.after} "
        f"(operator: {outcome.state})"
    )


@transfer.command("status")
@_device_option(exists=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def status_command(device: str, as_json: bool) -> None:
    """Print this device's device-change journal (secrets left out)."""
    with _open_store(device, create=False) as store:
        journal = store.change()
        record = store.record()
    if journal is None:
        if as_json:
            click.echo("null")
        else:
            click.echo("no device change")
        return
    row = {
        "side": journal.side,
        "change-id": journal.change_id,
        "phase": journal.phase,
        "finished": journal.finished,
        "operator": journal.operator_url,
        "new-eid": journal.new_eid,
        "old-iccid": journal.old_iccid,
        "new-iccid": journal.new_iccid,
        "role": journal.role,
        "subscription-id": journal.subscription_id,
        "device-id": journal.device_id,
        "replaced-iccid": journal.replaced_iccid,
        "companions": len(journal.companions),
        "updated": journal.updated.isoformat(),
        "record-device-id": None if record is None else record.device_id,
    }
    if as_json:
        click.echo(json.dumps(row, indent=2))
        return
    click.echo(f"{journal.side} device, change {journal.change_id}: {journal.phase}")
    for name, value in row.items():
        if name not in ("side", "change-id", "phase") and value is not None:
            click.echo(f"  {name}: {value}")
