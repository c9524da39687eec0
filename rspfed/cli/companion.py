"""``rspfed companion``: a watch set up and managed through its paired phone (issue H).

Commands::

    rspfed companion serve --euicc STORE --device STORE [--name NAME] [--pair]
                           [--operator URL] [--ca-file PEM] [--no-tls]
                           [--transport lan|ble] [--ble-hci SPEC] [--lan-address ADDR]...
                           [--once] [--timeout S] [--wait S] [--no-qr]
    rspfed companion add --device STORE --operator URL (--uri URI | --code CODE)
                         [--euicc STORE] [--quota SIZE] [--ttl 10m]
                         [--transport lan|ble] [--ble-hci SPEC] [--lan-address ADDR]...
                         [--timeout S] [--ca-file PEM] [--no-tls]
    rspfed companion profiles        --device STORE [--eid EID] [--json] [options]
    rspfed companion enable ICCID    --device STORE [--eid EID] [options]
    rspfed companion disable ICCID   --device STORE [--eid EID] [options]
    rspfed companion delete ICCID    --device STORE [--eid EID] [options]

``serve`` runs on the watch (``--euicc``: its software eUICC; ``--device``: its
device store, created if absent).  Not yet paired (or with ``--pair``) it
shows a pairing offer (QR code, ``rspfed:1:pair:`` URI, short code) and
waits for the phone; then it answers the phone's relayed ES10 requests with
its eUICC (behind the relay's allow-list) until the phone says bye, and
keeps the companion key in its device store.  Afterwards it waits for the
paired phone's reconnections (management).  ``--once`` ends after one
session; otherwise it serves until interrupted (exit 130).  With
``--operator URL`` the watch registers its own device key with the operator
(EAP-AKA' with its own USIM) after the session that enabled its profile,
as ``rspfed federation register`` would; TLS trust for it: the CIs of its
``--euicc`` store and ``--ca-file`` (``--no-tls`` for an ``http://`` operator).

``add`` runs on the phone (the subscription's primary, registered with
``rspfed federation register``): it pairs with the watch by the URI or the
short code, signs a watch-class federation token for the watch's EID,
redeems it at the operator, downloads the profile into the watch's eUICC
through the relay, enables it and delivers the watch's notifications.
``--euicc`` is the phone's own eUICC store: its CI certificates are trusted
for the operator's and the SM-DP+'s TLS (besides ``--ca-file``).

``profiles``/``enable``/``disable``/``delete`` run on the phone: they
reconnect to the paired watch with the stored key, do the operation through
the relay and deliver the watch's notifications.

Exit status: 0 done; 2 failure (one line on stderr); 130 interrupted.
Passphrases: ``RSPFED_DEVICE_PASSPHRASE`` (device stores) and
``RSPFED_EUICC_PASSPHRASE`` (eUICC stores).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from rspfed.cli._units import DurationType, SizeType
from rspfed.cli._util import reports_errors
from rspfed.cli.federation import DEVICE_PASSPHRASE_ENV, open_euicc, resolve_operator_url
from rspfed.cli.pair import (
    _open_store,
    _tls_for,
    _tls_options,
    _transport,
    _transport_options,
    operator_context,
    pairing_target,
    run_interruptible,
)
from rspfed.errors import UsageError
from rspfed.federation.token import DeviceClass

if TYPE_CHECKING:
    import ssl

    from rspfed.lpa.es9 import Es9Settings
    from rspfed.transfer.companion import CompanionEvent
    from rspfed.transfer.flows import Invitation, Listener

__all__ = ["companion"]


def _echo(event: CompanionEvent) -> None:
    click.echo(f"  {event.text}")


@click.group("companion")
def companion() -> None:
    """A watch set up and managed through its paired phone (ES10 relay, LAN or BLE)."""


# --------------------------------------------------------------------------
# serve (the watch)


@companion.command("serve")
@click.option(
    "--euicc",
    metavar="STORE",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="The watch's software eUICC store.",
)
@click.option(
    "--device",
    metavar="STORE",
    required=True,
    type=click.Path(dir_okay=False),
    help=f"The watch's device store (created if absent); passphrase from {DEVICE_PASSPHRASE_ENV}.",
)
@click.option("--name", default="watch", show_default=True, help="The watch's name.")
@click.option("--pair", "new_pair", is_flag=True, help="Show a new pairing offer even if paired.")
@click.option("--once", is_flag=True, help="End after one session.")
@click.option(
    "--wait",
    type=float,
    default=None,
    metavar="S",
    help="Give up when the phone does not connect within S seconds (default: wait).",
)
@click.option("--no-qr", is_flag=True, help="Do not print the QR code (the URI only).")
@click.option(
    "--operator",
    "operator_url",
    metavar="URL",
    default=None,
    help="Register the watch's own device key with this operator once its profile is "
    "enabled (default: do not register).",
)
@_transport_options
@_tls_options
@reports_errors
def serve_command(
    euicc: str,
    device: str,
    name: str,
    new_pair: bool,
    once: bool,
    wait: float | None,
    no_qr: bool,
    operator_url: str | None,
    transport: str,
    ble_hci: str | None,
    lan_addresses: tuple[str, ...],
    timeout: float,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Run the watch: show a pairing offer, then serve the phone's relayed ES10 requests."""
    from rspfed.lpa.download import DeviceInfo
    from rspfed.transfer.companion import WatchRegistration, companion_serve
    from rspfed.transfer.flows import LocalDevice

    config = _transport(transport, ble_hci, lan_addresses)
    with (
        _open_store(device, create=True) as store,
        open_euicc(euicc, ca_file=None, no_tls=False) as session,
    ):
        answer = _answerer(session.lpa.es10)
        registration: WatchRegistration | None = None
        if operator_url is not None:
            url = resolve_operator_url(operator_url, None, no_tls)
            context = _tls_for(session, ca_file, no_tls)(url)
            registration = WatchRegistration(url, session.euicc.card, context)

        def on_offer(invitation: Invitation, listener: Listener) -> None:
            from rspfed.federation.uri import RspfedUri

            if not no_qr:
                click.echo(RspfedUri.parse(invitation.uri).qr_terminal())
            click.echo(invitation.uri)
            click.echo(f"short code: {invitation.code}")
            where = "LAN" if config.kind == "lan" else "BLE"
            if listener.lan_hint is not None:
                where += f" {listener.lan_hint[0]}:{listener.lan_hint[1]}"
            click.echo(f"waiting for the phone to pair over {where} ...")

        served = run_interruptible(
            companion_serve(
                config,
                local=LocalDevice(name, DeviceClass.WATCH, session.eid),
                device_info=DeviceInfo(),
                answer=answer,
                store=store,
                pair=new_pair,
                once=once,
                on_offer=on_offer,
                progress=_echo,
                timeout=timeout,
                accept_timeout=wait,
                register_with=registration,
            ),
            "the watch stopped serving",
        )
    for done in served:
        kind = "paired with" if done.paired else "session with"
        click.echo(
            f"{kind} {done.peer_name}: {done.answered} ES10 request(s) answered, "
            f"{done.refused} refused"
        )


def _answerer(es10: Any) -> Callable[[Any], Any]:
    """The watch's answer to a relayed request: the relay's allow-list
    (:class:`rspfed.transfer.relay.CompanionResponder`) in front of its eUICC."""
    from rspfed.transfer.relay import CompanionResponder

    answer: Callable[[Any], Any] = CompanionResponder(es10).answer
    return answer


# --------------------------------------------------------------------------
# the phone


def _device_option(func: Any) -> Any:
    return click.option(
        "--device",
        metavar="STORE",
        required=True,
        type=click.Path(dir_okay=False, exists=True),
        help=f"The phone's device store; passphrase from {DEVICE_PASSPHRASE_ENV}.",
    )(func)


def _euicc_option(func: Any) -> Any:
    return click.option(
        "--euicc",
        metavar="STORE",
        default=None,
        type=click.Path(dir_okay=False, exists=True),
        help="The phone's software eUICC store: its CIs are trusted for TLS.",
    )(func)


@contextlib.contextmanager
def _trust(
    euicc: str | None, ca_file: str | None, no_tls: bool
) -> Iterator[tuple[Es9Settings, Callable[[str], ssl.SSLContext | None]]]:
    """The LPA's ES9+ settings and ``url -> TLS context`` for the operator."""
    from rspfed.lpa import Es9Settings

    with contextlib.ExitStack() as stack:
        cis: tuple[bytes, ...] = ()
        pkids: list[bytes] | None = None
        if euicc is not None:
            session = stack.enter_context(open_euicc(euicc, ca_file=ca_file, no_tls=no_tls))
            cis = session.cis
            pkids = session.lpa.ci_pkids_for_verification()

        context = operator_context(cis=cis, ci_pkids=pkids, ca_file=ca_file, no_tls=no_tls)
        yield Es9Settings(trust=cis, ca_file=ca_file, tls=not no_tls), context


def _phone(store: Any) -> Any:
    from rspfed.transfer.flows import LocalDevice

    record = store.record()
    key = store.private_key()
    if record is None or record.device_id is None or key is None:
        raise UsageError("this phone is not registered: run rspfed federation register first")
    if record.role != "primary" or record.subscription_id is None or record.eid is None:
        raise UsageError("only the primary device (the subscription's phone) may do this")
    local = LocalDevice(record.name or "phone", DeviceClass.PHONE, record.eid)
    return record, key, local


@companion.command("add")
@_device_option
@click.option(
    "--operator",
    "operator_url",
    metavar="URL",
    default=None,
    help="The operator service (default: the device store's).",
)
@click.option("--uri", default=None, help="The watch's rspfed:1:pair: URI (scanned).")
@click.option("--code", default=None, help="The short code the watch shows (typed).")
@_euicc_option
@click.option("--quota", type=SizeType(), default="0B", help="The watch's quota (0B: none).")
@click.option("--ttl", type=DurationType(), default="10m", show_default=True)
@_transport_options
@_tls_options
@reports_errors
def add_command(
    device: str,
    operator_url: str | None,
    uri: str | None,
    code: str | None,
    euicc: str | None,
    quota: int,
    ttl: timedelta,
    transport: str,
    ble_hci: str | None,
    lan_addresses: tuple[str, ...],
    timeout: float,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Pair with a watch and install its own profile through it (the phone's side)."""
    from rspfed.transfer.companion import companion_add
    from rspfed.transfer.flows import PrimaryAuthority

    target = pairing_target(uri, code)
    config = _transport(transport, ble_hci, lan_addresses)
    with _open_store(device, create=False) as store:
        record, key, local = _phone(store)
        url = resolve_operator_url(operator_url, record, no_tls)
        with _trust(euicc, ca_file, no_tls) as (settings, context):
            outcome = run_interruptible(
                companion_add(
                    config,
                    target=target,
                    local=local,
                    authority=PrimaryAuthority(key, record.subscription_id, url),
                    store=store,
                    settings=settings,
                    operator_ssl=context(url),
                    quota=quota,
                    ttl=ttl,
                    progress=_echo,
                    timeout=timeout,
                ),
                "the watch was not set up",
            )
    click.echo(
        f"{outcome.watch_name} set up: ICCID {outcome.iccid} enabled on its eUICC "
        f"(EID {outcome.watch_eid}); {outcome.notifications} notification(s) delivered"
    )


def _manage(
    operation: str,
    iccid: str | None,
    *,
    device: str,
    eid: str | None,
    euicc: str | None,
    as_json: bool,
    transport: str,
    ble_hci: str | None,
    lan_addresses: tuple[str, ...],
    timeout: float,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    from rspfed.transfer.companion import companion_manage

    with _open_store(device, create=False) as store:
        _, _, local = _phone(store)
        config = _transport(transport, ble_hci, lan_addresses)
        with _trust(euicc, ca_file, no_tls) as (settings, _):
            outcome = run_interruptible(
                companion_manage(
                    config,
                    operation,
                    local=local,
                    store=store,
                    settings=settings,
                    iccid=iccid,
                    eid=eid,
                    progress=None if as_json else _echo,
                    timeout=timeout,
                ),
                "the operation may not have been done",
            )
    if as_json:
        rows = [
            {
                "iccid": p.iccid,
                "state": p.state,
                "name": p.profile_name,
                "provider": p.service_provider_name,
                "class": p.profile_class,
            }
            for p in outcome.profiles
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{outcome.watch_name} (EID {outcome.watch_eid}):")
    for p in outcome.profiles:
        click.echo(f"  {p.iccid}  {p.state:8}  {p.profile_name} [{p.service_provider_name}]")
    if not outcome.profiles:
        click.echo("  no profiles")


def _manage_options(func: Any) -> Any:
    func = _tls_options(func)
    func = _transport_options(func)
    func = _euicc_option(func)
    func = click.option("--eid", default=None, help="The watch (default: the only paired one).")(
        func
    )
    return _device_option(func)


@companion.command("profiles")
@_manage_options
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@reports_errors
def profiles_command(**options: Any) -> None:
    """List the watch's profiles (through the paired watch's relay)."""
    _manage("profiles", None, **options)


def _iccid_command(operation: str, text: str) -> Any:
    @click.argument("iccid")
    @_manage_options
    @reports_errors
    def command(iccid: str, **options: Any) -> None:
        _manage(operation, iccid, as_json=False, **options)

    command.__doc__ = text
    return companion.command(operation)(command)


enable_command = _iccid_command("enable", "Enable one of the watch's profiles.")
disable_command = _iccid_command("disable", "Disable one of the watch's profiles.")
delete_command = _iccid_command("delete", "Delete one of the watch's profiles.")
