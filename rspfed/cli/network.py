"""``rspfed network``: use the operator's simulated network core.

Command::

    rspfed network attach --euicc STORE --operator URL
                          [--service data|voice|sms|tethering] [--ca-file PEM] [--no-tls]

    rspfed network use --euicc STORE --operator URL --bytes 300MB
                       [--device STORE] [--ca-file PEM] [--no-tls]

``attach`` runs EAP-AKA' (RFC 9048) with the operator, the eUICC's enabled
profile's USIM answering the challenge over APDUs, and prints the services
the network grants; with ``--service`` the network also checks that one.
TLS trust is as for ``rspfed federation`` (the CIs the eUICC lists plus
``--ca-file``); ``--no-tls`` only against an ``http://`` (``--no-tls``)
operator.  The eUICC store's passphrase is read from
``RSPFED_EUICC_PASSPHRASE``.

``use`` attaches for data the same way, then carries ``--bytes`` of
simulated traffic on the bearer the attach opened: the operator's packet
gateway meters it into the shared data pool and enforces the pool and the
device's quota.  It prints what was carried and the counters.  With
``--device`` (the device's registered federation store) the device also
reports its own count of the traffic, signed with its device key (a
``DeviceUsageBatch``; a new counter epoch per run, since the command keeps
no counters between runs): the operator shows it beside the network's
figures and never bills it.

Exit status: 0 attached (and the service granted; ``use``: all of it
carried), 1 refused by the network
(unknown, barred or removed IMSI, failed authentication, service not
allowed; ``use``: quota-exhausted or pool-exhausted, after carrying what was
allowed: one line on stderr naming the reason), 2 any other failure.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from rspfed.cli._units import SizeType, format_size
from rspfed.cli._util import reports_errors
from rspfed.cli.federation import (
    _open_device,
    _registered,
    open_euicc,
    operator_call,
    resolve_operator_url,
    usim_identity,
)
from rspfed.federation.token import Service

__all__ = ["REFUSED_EXIT", "network"]

#: Exit status of an attach (or service) the network refused.
REFUSED_EXIT = 1


def _usim_options(func: Any) -> Any:
    """``--euicc`` (the attaching USIM's store) and ``--operator``."""
    func = click.option(
        "--operator", "operator_url", metavar="URL", required=True, help="https://HOST[:PORT]"
    )(func)
    return click.option(
        "--euicc",
        "euicc",
        metavar="STORE",
        required=True,
        type=click.Path(dir_okay=False, exists=True),
        help="The software eUICC store whose enabled profile's USIM attaches.",
    )(func)


def _tls_options(func: Any) -> Any:
    """``--ca-file`` and ``--no-tls``."""
    func = click.option(
        "--no-tls", is_flag=True, help="Plain HTTP to an http:// (--no-tls) operator."
    )(func)
    return click.option(
        "--ca-file",
        type=click.Path(dir_okay=False, exists=True),
        default=None,
        help="PEM file of CAs trusted for the operator's TLS certificate, besides the eUICC's CIs.",
    )(func)


@click.group("network")
def network() -> None:
    """The operator's simulated network core: attach and service checks."""


@network.command("attach")
@_usim_options
@click.option(
    "--service",
    type=click.Choice([s.value for s in Service], case_sensitive=False),
    default=None,
    help="A service to use; the network refuses it when the device may not.",
)
@_tls_options
@reports_errors
def attach_command(
    euicc: str, operator_url: str, service: str | None, ca_file: str | None, no_tls: bool
) -> None:
    """Attach with the eUICC's enabled USIM (EAP-AKA'); print the services granted."""
    from rspfed.network import NetworkRefusedError, RefusalReason
    from rspfed.network.usim import eap_usim

    url = resolve_operator_url(operator_url, None, no_tls)
    wanted = None if service is None else Service(service.lower())
    with open_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session:
        card = session.euicc.card
        imsi, mnc_length = usim_identity(session)
        try:
            granted = operator_call(
                url,
                session,
                ca_file,
                lambda client: client.attach(
                    usim=eap_usim(card), imsi=imsi, mnc_length=mnc_length, service=wanted
                ),
            )
        except NetworkRefusedError as exc:
            what = "attach"
            if wanted is not None and exc.reason is RefusalReason.SERVICE_NOT_ALLOWED:
                what = f"service {wanted.value}"
            click.echo(f"rspfed: refused: {what} for IMSI {imsi}: {exc}", err=True)
            sys.exit(REFUSED_EXIT)
    names = ",".join(sorted(s.value for s in granted)) or "-"
    click.echo(f"attached IMSI {imsi}: services {names}")
    if wanted is not None:
        click.echo(f"service {wanted.value}: granted")


@network.command("use")
@_usim_options
@click.option("--bytes", "octets", required=True, type=SizeType(), help="Traffic: 300MB.")
@click.option(
    "--device",
    "device",
    metavar="STORE",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="This device's federation store: also report the device's own signed count.",
)
@_tls_options
@reports_errors
def use_command(
    euicc: str,
    operator_url: str,
    octets: int,
    device: str | None,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Attach for data and carry --bytes of traffic; print what was carried."""
    from rspfed.errors import UsageError
    from rspfed.federation.client import OperatorClient
    from rspfed.federation.pool import DeviceMeter, UsageResult
    from rspfed.network import NetworkRefusedError
    from rspfed.network.usim import eap_usim

    if octets <= 0:
        raise UsageError("--bytes must be at least 1B")
    url = resolve_operator_url(operator_url, None, no_tls)
    with open_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session:
        card = session.euicc.card
        imsi, mnc_length = usim_identity(session)

        own = None
        if device is not None:
            with _open_device(device, create=False) as store:
                own = _registered(store)

        async def work(client: OperatorClient) -> tuple[UsageResult, int]:
            bearer = await client.attach_data(usim=eap_usim(card), imsi=imsi, mnc_length=mnc_length)
            result = await client.use(bearer, octets)
            merged = 0
            if own is not None and result.carried:
                record, key = own
                if record.device_id is None or record.subscription_id is None:
                    raise UsageError("the device store names no device: register first")
                run = time.time_ns() // 1000  # a new counter epoch and sequence per run
                meter = DeviceMeter(record.device_id, result.iccid, counter_epoch=run)
                meter.add(result.period, result.carried)
                batch = meter.batch(key, record.subscription_id, run)
                merged = await client.report_usage(key, batch)
            return result, merged

        try:
            result, merged = operator_call(url, session, ca_file, work)
        except NetworkRefusedError as exc:
            click.echo(f"rspfed: refused: data for IMSI {imsi}: {exc}", err=True)
            sys.exit(REFUSED_EXIT)
    throttled = " (throttled)" if result.throttled else ""
    click.echo(
        f"IMSI {imsi} ICCID {result.iccid}: carried {format_size(result.carried)} of "
        f"{format_size(result.requested)}{throttled}"
    )
    click.echo(
        f"  gateway counter {format_size(result.counter)}, this period {format_size(result.used)}"
    )
    if merged:
        click.echo(f"  reported this device's own count: {format_size(result.carried)} (signed)")
    if result.refusal is not None:
        click.echo(f"rspfed: refused: data for IMSI {imsi}: {result.refusal.value}", err=True)
        sys.exit(REFUSED_EXIT)
