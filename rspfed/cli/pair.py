"""``rspfed pair``: a new device joins the subscription through the primary, device to device.

Commands::

    rspfed pair show --device STORE --euicc STORE [--operator URL]
                     [--transport lan|ble] [--ble-hci SPEC] [--yes]
                     [--quota SIZE] [--ttl 10m] [--name NAME] [--timeout S]
                     [--lan-address ADDR]... [--no-qr] [--ca-file PEM] [--no-tls]
    rspfed pair join --device STORE --euicc STORE (--uri URI | --code CODE)
                     --class CLASS [--name NAME] [--services LIST]
                     [--transport lan|ble] [--ble-hci SPEC] [--timeout S]
                     [--lan-address ADDR]... [--ca-file PEM] [--no-tls]

``pair show`` runs on the primary (the phone registered with ``rspfed
federation register``).  It prints the pairing offer as a QR code
(terminal), its ``rspfed:1:pair:`` URI and a short code such as
``17-guitarist-revenge``, then waits for one device.  When the device asks
to join it asks "Allow Ana's laptop — laptop, data only — to join?"
(``--yes`` approves without asking, for scripts), signs a federation token
for the device's EID and class with the services its class may have, sends
it with the operator's URL, waits for the device's result, passes the
subscription's usage ledger on, and says bye.  One attempt: a failed or
refused attempt burns the offer and code (run ``pair show`` again).  A token
the device did not confirm is revoked at the operator.

``pair join`` runs on the new device: it finds the offer (LAN: the QR code's
direct address, else zeroconf; BLE: a scan), pairs by the URI (scanned) or
the code (typed), asks to join as ``--class``/``--name``, receives the
token, redeems it at the operator, downloads and enables the profile
through its LPA and registers its own device key (as ``federation redeem``
does), and reports the result to the primary.

Transports: ``--transport lan`` (default; ``--lan-address`` pins the IPv4
addresses to listen on / use for zeroconf) or ``ble`` (``--ble-hci SPEC``: a
bumble HCI transport such as ``tcp-client:127.0.0.1:9001``; without it, the
platform's Bluetooth adapter).

TLS to the operator as for ``rspfed federation`` (the eUICC's CIs plus
``--ca-file``; ``--no-tls`` for an ``http://`` operator).  The device
stores' passphrases come from ``RSPFED_DEVICE_PASSPHRASE`` and
``RSPFED_EUICC_PASSPHRASE``.

Exit status: 0 joined; 1 (``show``) the join was refused; 2 failure (one
line on stderr, never a traceback).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from rspfed.cli._units import DurationType, SizeType, format_size
from rspfed.cli._util import reports_errors
from rspfed.cli.federation import (
    DEVICE_PASSPHRASE_ENV,
    EuiccSession,
    open_euicc,
    resolve_operator_url,
)
from rspfed.errors import StateError, UsageError
from rspfed.federation.token import DeviceClass

if TYPE_CHECKING:
    from rspfed.federation.device import DeviceStore
    from rspfed.transfer.flows import FlowEvent, JoinAsk, TransportConfig

__all__ = ["pair"]


def _echo_progress(event: FlowEvent) -> None:
    click.echo(f"  {event.text}")


def _transport(kind: str, ble_hci: str | None, addresses: tuple[str, ...]) -> TransportConfig:
    from rspfed.transfer.flows import TransportConfig

    if kind == "ble" and addresses:
        raise UsageError("--lan-address goes with --transport lan")
    return TransportConfig(
        kind=kind,
        ble_hci=ble_hci,
        lan_addresses=addresses or None,
        lan_interfaces=addresses or None,
    )


def _open_store(path: str, *, create: bool) -> DeviceStore:
    from rspfed.federation.device import DeviceStore

    raw = os.environ.get(DEVICE_PASSPHRASE_ENV)
    passphrase = raw.encode() if raw else None
    if create and not Path(path).exists():
        return DeviceStore.create(path, passphrase=passphrase)
    return DeviceStore.open(path, passphrase=passphrase)


def operator_context(
    *, cis: Sequence[bytes], ci_pkids: Sequence[bytes] | None, ca_file: str | None, no_tls: bool
) -> Callable[[str], ssl.SSLContext | None]:
    """``url -> SSLContext | None`` as ``rspfed federation`` trusts the operator:
    ``cis`` (the eUICC's CI certificates) and ``ca_file``; plain HTTP only with
    ``--no-tls``."""
    from rspfed.federation.client import operator_tls_context

    def context(url: str) -> ssl.SSLContext | None:
        parts = urlsplit(url)
        if parts.scheme == "http":
            if not no_tls:
                raise UsageError(f"{url} is plain HTTP: add --no-tls (only for a --no-tls server)")
            return None
        if parts.scheme != "https":
            raise UsageError("the operator URL must be https://HOST[:PORT]")
        if no_tls:
            raise UsageError("--no-tls needs an http:// operator URL")
        return operator_tls_context(
            parts.hostname or "", trust=cis, ci_pkids=ci_pkids, ca_file=ca_file
        )

    return context


def _tls_for(session: EuiccSession, ca_file: str | None, no_tls: bool) -> Callable[[str], Any]:
    """:func:`operator_context` with the eUICC session's CIs."""
    return operator_context(
        cis=session.cis,
        ci_pkids=session.lpa.ci_pkids_for_verification(),
        ca_file=ca_file,
        no_tls=no_tls,
    )


def pairing_target(uri: str | None, code: str | None) -> str:
    """The offer to join: ``--uri`` or ``--code``, exactly one of them."""
    if uri is not None and code is None:
        return uri
    if code is not None and uri is None:
        return code
    raise UsageError("give --uri URI or --code CODE (one of them)")


def _transport_options(func: Any) -> Any:
    func = click.option(
        "--timeout",
        type=float,
        default=60.0,
        show_default=True,
        metavar="S",
        help="Seconds to wait for the other device at each step.",
    )(func)
    func = click.option(
        "--lan-address",
        "lan_addresses",
        multiple=True,
        metavar="ADDR",
        help="IPv4 address to listen on / discover on (repeatable; default: all).",
    )(func)
    func = click.option(
        "--ble-hci",
        default=None,
        metavar="SPEC",
        help="With --transport ble: a bumble HCI transport (tcp-client:HOST:PORT); "
        "default: the platform's adapter.",
    )(func)
    return click.option(
        "--transport",
        type=click.Choice(["lan", "ble"]),
        default="lan",
        show_default=True,
        help="How the devices reach each other.",
    )(func)


def _tls_options(func: Any) -> Any:
    func = click.option(
        "--no-tls",
        is_flag=True,
        help="Plain HTTP to an http:// operator (a --no-tls server; local testing only).",
    )(func)
    return click.option(
        "--ca-file",
        type=click.Path(dir_okay=False, exists=True),
        default=None,
        help="PEM file of CAs trusted for the operator's TLS certificate, besides the eUICC's CIs.",
    )(func)


@click.group("pair")
def pair() -> None:
    """Device to device: a new device joins by QR code or short code (LAN or BLE)."""


# --------------------------------------------------------------------------
# show


@pair.command("show")
@click.option(
    "--device",
    metavar="STORE",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help=f"The primary's federation store; passphrase from {DEVICE_PASSPHRASE_ENV}.",
)
@click.option(
    "--euicc",
    metavar="STORE",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="The primary's software eUICC store (its EID; its CIs trusted for the operator).",
)
@click.option(
    "--operator",
    "operator_url",
    metavar="URL",
    default=None,
    help="The operator service sent to the joining device (default: the device store's).",
)
@click.option("--yes", is_flag=True, help="Approve the join without asking (scripts).")
@click.option("--name", default=None, help="This device's name as shown to the other one.")
@click.option("--quota", type=SizeType(), default="0B", help="Per-device quota (0B: none).")
@click.option("--ttl", type=DurationType(), default="10m", show_default=True)
@click.option("--no-qr", is_flag=True, help="Do not print the QR code (the URI only).")
@click.option(
    "--wait",
    type=float,
    default=None,
    metavar="S",
    help="Give up when no device connects within S seconds (default: wait).",
)
@_transport_options
@_tls_options
@reports_errors
def show_command(
    device: str,
    euicc: str,
    operator_url: str | None,
    yes: bool,
    name: str | None,
    quota: int,
    ttl: timedelta,
    no_qr: bool,
    wait: float | None,
    transport: str,
    ble_hci: str | None,
    lan_addresses: tuple[str, ...],
    timeout: float,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Show a pairing offer (QR code and short code) and let one device join."""
    config = _transport(transport, ble_hci, lan_addresses)
    with _open_store(device, create=False) as store:
        record = store.record()
        key = store.private_key()
        if record is None or record.device_id is None or key is None:
            raise UsageError("this device is not registered: run rspfed federation register first")
        if record.role != "primary" or record.subscription_id is None:
            raise UsageError("only the primary device (the subscription's phone) may do this")
        url = resolve_operator_url(operator_url, record, no_tls)
        with open_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session:
            context = _tls_for(session, ca_file, no_tls)(url)
            label = name or record.name or "phone"
            outcome = _burnt_on_failure(
                _show(
                    config,
                    session=session,
                    key=key,
                    subscription_id=record.subscription_id,
                    url=url,
                    context=context,
                    label=label,
                    device_class=record.device_class or DeviceClass.PHONE,
                    yes=yes,
                    quota=quota,
                    ttl=ttl,
                    qr=not no_qr,
                    wait=wait,
                    timeout=timeout,
                )
            )
    if outcome.joined:
        assert outcome.peer is not None
        click.echo(
            f"{outcome.peer.name} joined: {outcome.peer.device_class.value}, ICCID "
            f"{outcome.iccid}, {_services(outcome.peer.services)}"
            + (", ledger shared" if outcome.ledger_sent else "")
        )
        return
    if outcome.refusal is not None:
        click.echo(f"not joined: refused ({outcome.refusal}); no token was issued")
        sys.exit(1)
    revoked = "; its token was revoked" if outcome.revoked else ""
    raise StateError(f"the device did not join ({outcome.failure}){revoked}")


def _burnt_on_failure(work: Any) -> Any:
    """Run the show coroutine; on failure say that the offer is spent."""
    from rspfed.errors import RspfedError

    try:
        return asyncio.run(work)
    except RspfedError:
        click.echo("the offer and its short code are spent: run rspfed pair show again", err=True)
        raise
    except KeyboardInterrupt:
        click.echo("interrupted: the offer is withdrawn", err=True)
        sys.exit(130)


def run_interruptible(work: Any, interrupted: str) -> Any:
    """Run the coroutine ``work``; Ctrl-C ends it with exit status 130 and the line
    ``interrupted: <interrupted>`` on stderr."""
    try:
        return asyncio.run(work)
    except KeyboardInterrupt:
        click.echo(f"interrupted: {interrupted}", err=True)
        sys.exit(130)


def _interruptible(work: Any) -> Any:
    """Run the join coroutine; Ctrl-C ends it with exit status 130."""
    return run_interruptible(work, "this device did not join")


def _services(services: frozenset[Any]) -> str:
    from rspfed.transfer.flows import describe_services

    return describe_services(services)


async def _show(
    config: TransportConfig,
    *,
    session: EuiccSession,
    key: Any,
    subscription_id: str,
    url: str,
    context: ssl.SSLContext | None,
    label: str,
    device_class: DeviceClass,
    yes: bool,
    quota: int,
    ttl: timedelta,
    qr: bool,
    wait: float | None,
    timeout: float,
) -> Any:
    from rspfed.federation.client import OperatorClient
    from rspfed.federation.ledger import encode_state
    from rspfed.federation.uri import RspfedUri
    from rspfed.transfer.code import SECRET_SIZE, ShortCode, discovery_id_from_secret
    from rspfed.transfer.flows import (
        LocalDevice,
        PrimaryAuthority,
        listen,
        make_invitation,
        offer_join,
    )

    secret = os.urandom(SECRET_SIZE)
    code = ShortCode.generate(os.urandom)
    ids = (discovery_id_from_secret(secret), code.discovery_id)
    async with (
        listen(config, ids) as listener,
        OperatorClient(url, ssl_context=context) as client,
    ):
        invitation = make_invitation(
            name=label,
            device_class=device_class,
            secret=secret,
            code=code,
            lan=config.kind == "lan",
            lan_hint=listener.lan_hint,
            ble=config.kind == "ble",
        )
        if qr:
            click.echo(RspfedUri.parse(invitation.uri).qr_terminal())
        click.echo(invitation.uri)
        click.echo(f"short code: {invitation.code}")
        where = "LAN" if config.kind == "lan" else "BLE"
        if listener.lan_hint is not None:
            where += f" {listener.lan_hint[0]}:{listener.lan_hint[1]}"
        click.echo(f"waiting for a device to join over {where} (one attempt) ...")

        async def approve(ask: JoinAsk) -> bool:
            if yes:
                click.echo(f"{ask.question} yes (--yes)")
                return True
            answer = await asyncio.to_thread(click.confirm, ask.question, default=False)
            return bool(answer)

        async def ledger() -> bytes | None:
            state, _ = await client.usage_state(key, 0)
            return encode_state(state)

        async def revoke(token_id: bytes) -> None:
            await client.revoke(key, token_id)

        return await offer_join(
            listener,
            invitation=invitation,
            local=LocalDevice(label, device_class, session.eid),
            authority=PrimaryAuthority(key, subscription_id, url),
            approve=approve,
            ledger=ledger,
            revoke=revoke,
            quota=quota,
            ttl=ttl,
            progress=_echo_progress,
            timeout=timeout,
            accept_timeout=wait,
        )


# --------------------------------------------------------------------------
# join


@pair.command("join")
@click.option(
    "--device",
    metavar="STORE",
    required=True,
    type=click.Path(dir_okay=False),
    help=f"This device's federation store (created if absent); passphrase from "
    f"{DEVICE_PASSPHRASE_ENV}.",
)
@click.option(
    "--euicc",
    metavar="STORE",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="This device's software eUICC store (the profile is installed there).",
)
@click.option("--uri", default=None, help="The offer's rspfed:1:pair: URI (scanned).")
@click.option("--code", default=None, help="The short code shown by the primary (typed).")
@click.option(
    "--class",
    "device_class",
    required=True,
    type=click.Choice([c.value for c in DeviceClass], case_sensitive=False),
    help="This device's class.",
)
@click.option("--name", default=None, help="This device's name (default: its class).")
@click.option(
    "--services",
    default=None,
    metavar="LIST",
    help="Services to ask for (default: all the class may have).",
)
@_transport_options
@_tls_options
@reports_errors
def join_command(
    device: str,
    euicc: str,
    uri: str | None,
    code: str | None,
    device_class: str,
    name: str | None,
    services: str | None,
    transport: str,
    ble_hci: str | None,
    lan_addresses: tuple[str, ...],
    timeout: float,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Join the primary's subscription by its offer URI or short code."""
    from rspfed.cli.operator import parse_services
    from rspfed.transfer.flows import LocalDevice, connect, join, operator_enroller

    target = pairing_target(uri, code)
    config = _transport(transport, ble_hci, lan_addresses)
    cls = DeviceClass(device_class.lower())
    label = name or cls.value
    wanted = parse_services(services) if services is not None else None
    with _open_store(device, create=True) as store:
        record = store.record()
        if record is not None and record.role == "primary":
            raise UsageError(
                f"the device store is the primary's (device {record.device_id}): "
                "give this device's own --device STORE"
            )
        with open_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session:
            enroller = operator_enroller(
                eid=session.eid,
                lpa=session.lpa,
                card=session.euicc.card,
                store=store,
                ssl_context=_tls_for(session, ca_file, no_tls),
                device_class=cls,
                name=label,
            )

            async def stream(discovery_id: bytes, hint: tuple[str, int] | None) -> Any:
                return await connect(config, discovery_id, timeout=timeout, direct=hint)

            outcome = _interruptible(
                join(
                    stream,
                    target=target,
                    local=LocalDevice(label, cls, session.eid),
                    enroller=enroller,
                    services=wanted,
                    progress=_echo_progress,
                    timeout=timeout,
                )
            )
    enrolled = outcome.enrolment
    quota = format_size(outcome.quota) if outcome.quota else "none"
    click.echo(
        f"joined {outcome.primary_name}'s subscription {enrolled.subscription_id}: "
        f"ICCID {enrolled.iccid}, {_services(outcome.services)}, quota {quota}"
    )
    if enrolled.device is not None:
        click.echo(
            f"  device {enrolled.device.id} registered (key id "
            f"{(enrolled.device.device_key_id or b'').hex()})"
        )
    if outcome.ledger is not None:
        click.echo(f"  usage ledger: {len(outcome.ledger.counters)} counter(s)")
    if enrolled.registration_error is not None:
        raise StateError(
            f"profile installed, but registering this device failed "
            f"({enrolled.registration_error}); run rspfed federation register later"
        )
