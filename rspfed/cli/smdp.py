"""``rspfed smdp``: set up, fill and run an SM-DP+, and place operator orders (ES2+).

Commands::

    rspfed smdp init --data DIR --pki PKIDIR --address FQDN[:PORT] [--curve ...] [--operator NAME]
    rspfed smdp template add --data DIR NAME PACKAGE --metadata FILE
    rspfed smdp serve --data DIR [--bind H] [--port P] [--workers N] [--no-tls]
    rspfed smdp order --es2-url URL --cert PEM --key PEM --profile-type NAME
                      [--iccid ICCID] [--eid EID] [--confirmation-code CODE]
                      [--ca-file PEM] [--qr PNG | --qr-terminal]
    rspfed smdp inventory --data DIR [--profile-type NAME]

Keys in the data directory are encrypted with the passphrase in
``RSPFED_SMDP_PASSPHRASE`` if it is set (at ``init``; the same value is then
needed by ``serve`` and by ``order`` for the operator key).  Errors: exit
status 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import click

from rspfed.cli._datadir import (
    curves_of,
    echo_tls_files,
    init_options,
    open_test_pki,
    pki_passphrase_option,
    run_server,
)
from rspfed.cli._datadir import smdp_passphrase as _passphrase
from rspfed.cli._util import reports_errors
from rspfed.errors import UsageError

__all__ = ["smdp"]


@click.group("smdp")
def smdp() -> None:
    """An SM-DP+ (SGP.22): ES9+ for LPAs and ES2+ for operators, over HTTPS."""


@smdp.command("init")
@init_options(
    address_help="SM-DP+ address FQDN[:PORT], as activation codes will carry it.",
    operator_help="Operator name in the ES2+ client certificate (the ES2+ requester).",
)
@pki_passphrase_option
@reports_errors
def init_command(
    data: Path,
    pki_dir: str,
    address: str,
    curve: str,
    operator_name: str,
    callback_url: str | None,
    pki_passphrase_file: str | None,
) -> None:
    """Create an SM-DP+ data directory: certificates, keys, trust, config, store."""
    from rspfed.smdp.datadir import init_data_dir

    init_data_dir(
        data,
        open_test_pki(pki_dir, pki_passphrase_file),
        address=address,
        passphrase=_passphrase(),
        curves=curves_of(curve),
        operator=operator_name,
        progress_callback_url=callback_url,
    )
    click.echo(f"SM-DP+ data directory {data} created for {address}")
    echo_tls_files(data)


@smdp.group("template")
def template() -> None:
    """Profile types (templates) the SM-DP+ personalises."""


@template.command("add")
@click.option("--data", "data", required=True, type=click.Path(file_okay=False, exists=True))
@click.argument("name")
@click.argument("package", type=click.Path(dir_okay=False, exists=True))
@click.option(
    "--metadata",
    "metadata_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="JSON: serviceProviderName, profileName, profileClass, profilePolicyRules, "
    "notificationConfigurationInfo, ... (see docs/smdp.md).",
)
@reports_errors
def template_add_command(data: str, name: str, package: str, metadata_file: str) -> None:
    """Register profile type NAME from the SAIP PACKAGE (DER) and its metadata."""
    from rspfed.smdp import ProfileType, Smdp
    from rspfed.smdp.datadir import load_config, open_store

    try:
        metadata = json.loads(Path(metadata_file).read_bytes())
    except ValueError:
        raise UsageError(f"{metadata_file} is not JSON") from None
    profile_type = ProfileType.from_metadata(name, Path(package).read_bytes(), metadata)
    store = open_store(data)
    try:  # the core prepares (checks) the template before storing it
        core = Smdp(
            load_config(data, passphrase=_passphrase()), store, now=lambda: datetime.now(UTC)
        )
        core.add_profile_type(profile_type)
    finally:
        store.close()
    click.echo(f"profile type {name} registered ({profile_type.profile_name})")


@smdp.command("inventory")
@click.option("--data", "data", required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--profile-type", default=None, help="Only this profile type.")
@reports_errors
def inventory_command(data: str, profile_type: str | None) -> None:
    """List the profile inventory (ICCID, type, state, EID) of a data directory."""
    from rspfed.smdp.datadir import open_store

    store = open_store(data)
    try:
        items = store.items(profile_type)
    finally:
        store.close()
    for item in items:
        click.echo(f"{item.iccid}  {item.profile_type}  {item.state.value}  {item.eid or '-'}")


@smdp.command("serve")
@click.option("--data", "data", required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=None, type=int, help="Port (default: the address's port, else 443)."
)
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes.")
@click.option("--no-tls", is_flag=True, help="Plain HTTP, for local testing only (no ES2+).")
@reports_errors
def serve_command(data: str, bind: str, port: int | None, workers: int, no_tls: bool) -> None:
    """Serve ES9+ and ES2+ until SIGINT or SIGTERM."""
    from rspfed.smdp.http import serve

    run_server("smdp", data, bind=bind, port=port, workers=workers, no_tls=no_tls, serve=serve)


@smdp.command("order")
@click.option("--es2-url", required=True, help="SM-DP+ base URL, e.g. https://smdp.example:8443")
@click.option("--cert", required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--key", required=True, type=click.Path(dir_okay=False, exists=True))
@click.option("--profile-type", required=True, help="Profile type (rspfed smdp template add).")
@click.option("--iccid", default=None, help="Take this ICCID from the inventory.")
@click.option("--eid", default=None, help="Bind the order to this EID.")
@click.option("--confirmation-code", default=None, help="Code the end user must enter.")
@click.option("--matching-id", default=None, help="MatchingId to use (default: generated).")
@click.option(
    "--ca-file",
    default=None,
    type=click.Path(dir_okay=False, exists=True),
    help="Extra CA for the server certificate (e.g. DATA/tls/server-ca.pem).",
)
@click.option("--qr", "qr_png", default=None, type=click.Path(dir_okay=False))
@click.option("--qr-terminal", is_flag=True, help="Print the activation code as a QR code.")
@reports_errors
def order_command(
    es2_url: str,
    cert: str,
    key: str,
    profile_type: str,
    iccid: str | None,
    eid: str | None,
    confirmation_code: str | None,
    matching_id: str | None,
    ca_file: str | None,
    qr_png: str | None,
    qr_terminal: bool,
) -> None:
    """Place an order (DownloadOrder + ConfirmOrder) and print the activation code."""
    from rspfed.es2p import Es2Client, client_ssl_context
    from rspfed.es2p.client import requester_of

    if qr_png and qr_terminal:
        raise UsageError("--qr and --qr-terminal exclude each other")
    ctx = client_ssl_context(cert=cert, key=key, ca_file=ca_file, passphrase=_passphrase())

    async def run() -> tuple[str, str | None, str]:
        async with Es2Client(es2_url, requester=requester_of(cert), ssl_context=ctx) as es2:
            got = await es2.download_order(profile_type=profile_type, iccid=iccid, eid=eid)
            order = await es2.confirm_order(
                iccid=got,
                eid=eid,
                matching_id=matching_id,
                confirmation_code=confirmation_code,
                release_flag=True,
            )
            code = order.activation_code_for(
                confirmation_code_required=confirmation_code is not None
            )
            return got, code, order.matching_id

    got, code, mid = asyncio.run(run())
    if code is None:
        raise UsageError(f"the SM-DP+ did not send its address (matchingId {mid})")
    click.echo(f"ICCID {got}")
    click.echo(code)
    if qr_png or qr_terminal:
        import segno

        qr = segno.make(code, error="m")
        if qr_png:
            qr.save(qr_png, scale=8, border=4)
            click.echo(f"QR code written to {qr_png}")
        else:
            qr.terminal(compact=True)
