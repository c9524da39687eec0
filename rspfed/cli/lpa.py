"""``rspfed lpa``: download profiles and manage them on an eUICC (SGP.22 LPAd).

The eUICC is either a software eUICC store (``--euicc STORE``, driven over
APDUs through its card, so every change is saved as on a real card) or a card
in a PC/SC reader (``--pcsc READER``).  A passphrase for the store's keys is
read from ``RSPFED_EUICC_PASSPHRASE`` (as ``rspfed euicc`` does).

TLS trust for ``download`` and ``notifications --deliver``: the SM-DP+ TLS
certificate must chain to a CI the eUICC lists for verification.  The CIs
the LPA knows are, by default, the CI certificates stored in the eUICC store
(``ci-*``); ``--ci FILE`` adds CI certificates (PEM or DER, or a test-PKI
directory), needed with ``--pcsc``.  ``--ca-file PEM`` adds WebPKI CAs for
servers with public certificates; ``--no-tls`` is for local testing only.

Exit status: 0 success, 2 failure (one line on stderr, never a traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed.cli._util import reports_errors
from rspfed.errors import DecodeError, UsageError
from rspfed.lpa import (
    ActivationCode,
    ApduEs10,
    Consent,
    DownloadStep,
    Es9Settings,
    Es10,
    Lpa,
    PcscEs10,
    ProfileMetadata,
    store_ci_certificates,
)

__all__ = ["lpa"]

PASSPHRASE_ENV = "RSPFED_EUICC_PASSPHRASE"  # noqa: S105 (a variable name, not a secret)


def _passphrase() -> bytes | None:
    value = os.environ.get(PASSPHRASE_ENV)
    return value.encode() if value else None


def _read_cis(path: str) -> list[bytes]:
    """CI certificates from a file (PEM, possibly several, or DER) or a directory."""
    p = Path(path)
    if p.is_dir():
        from rspfed.pki.testpki import load_trust_directory

        return [c.public_bytes(Encoding.DER) for c in load_trust_directory(p).anchors]
    data = p.read_bytes()
    try:
        if data.lstrip().startswith(b"-----"):
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise DecodeError(f"{p.name} is not a certificate file (PEM or DER)") from None
    return [c.public_bytes(Encoding.DER) for c in certs]


@contextlib.contextmanager
def _link(euicc: str | None, pcsc: str | None) -> Iterator[tuple[Es10, list[bytes]]]:
    """The ES10 link and the CI certificates known from the eUICC store (if any)."""
    if (euicc is None) == (pcsc is None):
        raise UsageError("give exactly one of --euicc STORE and --pcsc READER")
    if pcsc is not None:
        with PcscEs10(pcsc) as reader:
            yield reader, []
        return
    assert euicc is not None
    from rspfed.euicc.euicc import Euicc

    with Euicc.open(euicc, passphrase=_passphrase()) as card:
        cis = list(store_ci_certificates(card.store))
        card.card.power_on()
        with ApduEs10(card.card) as link:
            yield link, cis


def _euicc_options(func: Any) -> Any:
    func = click.option(
        "--pcsc", "pcsc", metavar="READER", default=None, help="A card in this PC/SC reader."
    )(func)
    return click.option(
        "--euicc",
        "euicc",
        metavar="STORE",
        default=None,
        type=click.Path(dir_okay=False, exists=True),
        help="A software eUICC store (rspfed euicc create).",
    )(func)


def _trust_options(func: Any) -> Any:
    func = click.option(
        "--no-tls", is_flag=True, help="Plain HTTP to the SM-DP+ (local testing only)."
    )(func)
    func = click.option(
        "--ca-file",
        type=click.Path(dir_okay=False, exists=True),
        default=None,
        help="PEM file of extra CAs for SM-DP+ servers with public (WebPKI) certificates.",
    )(func)
    return click.option(
        "--ci",
        "cis",
        multiple=True,
        type=click.Path(exists=True),
        help="Extra trusted CI certificate(s): PEM/DER file or trust directory.",
    )(func)


def _settings(
    store_cis: list[bytes], cis: tuple[str, ...], ca_file: str | None, no_tls: bool
) -> Es9Settings:
    trust = list(store_cis)
    for path in cis:
        trust.extend(_read_cis(path))
    return Es9Settings(trust=tuple(trust), ca_file=ca_file, tls=not no_tls)


@click.group("lpa")
def lpa() -> None:
    """The LPA: download profiles with activation codes, manage profiles and notifications."""


# -- download -----------------------------------------------------------------------

_STEPS = [s for s in DownloadStep if s not in (DownloadStep.RETRY, DownloadStep.CANCEL_SESSION)]


class _Progress:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.start = time.perf_counter()

    def __call__(self, step: DownloadStep) -> None:
        if self.quiet:
            return
        elapsed = (time.perf_counter() - self.start) * 1000
        if step in _STEPS:
            n = _STEPS.index(step) + 1
            label = f"[{n:2}/{len(_STEPS)}]"
        else:
            label = "[ !! ]" if step is DownloadStep.CANCEL_SESSION else "[ ↻  ]"
        click.echo(f"{label} {step.value:34} {elapsed:8.1f} ms", err=True)


def _describe(metadata: ProfileMetadata) -> str:
    return (
        f"{metadata.profile_name!r} from {metadata.service_provider_name!r} "
        f"(ICCID {metadata.iccid}, class {metadata.profile_class})"
    )


@lpa.command("download")
@click.argument("code", required=False)
@_euicc_options
@click.option("--confirmation-code", default=None, help="The confirmation code, if one is needed.")
@_trust_options
@click.option("--yes", "-y", is_flag=True, help="Accept the profile without asking.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@reports_errors
def download_command(
    code: str | None,
    euicc: str | None,
    pcsc: str | None,
    confirmation_code: str | None,
    cis: tuple[str, ...],
    ca_file: str | None,
    no_tls: bool,
    yes: bool,
    quiet: bool,
) -> None:
    """Download a profile with the activation CODE (LPA:1$...), or from the
    eUICC's default SM-DP+ when CODE is omitted."""
    activation = ActivationCode.parse(code) if code is not None else None
    interactive = sys.stdin.isatty()

    def consent(metadata: ProfileMetadata) -> Consent:
        click.echo(f"Profile: {_describe(metadata)}", err=True)
        if yes:
            return Consent.ACCEPT
        if not interactive:
            click.echo("not accepted: use --yes to accept without a terminal", err=True)
            return Consent.REJECT
        return Consent.ACCEPT if click.confirm("Download it?", err=True) else Consent.REJECT

    def ask_code(metadata: ProfileMetadata) -> str | None:
        if not interactive:
            return None
        value: str = click.prompt("Confirmation code", hide_input=True, err=True)
        return value

    with _link(euicc, pcsc) as (link, store_cis):
        client = Lpa(link, settings=_settings(store_cis, cis, ca_file, no_tls))
        result = asyncio.run(
            client.download(
                activation,
                confirmation_code=confirmation_code,
                consent=consent,
                ask_confirmation_code=ask_code,
                progress=_Progress(quiet),
            )
        )
    click.echo(
        f"installed {result.iccid}: {result.metadata.profile_name} "
        f"[{result.metadata.service_provider_name}] ISD-P {result.isdp_aid.hex().upper()}"
    )
    note = result.notification
    if note is not None and not note.delivered:
        click.echo("installation notification not delivered (kept on the eUICC)", err=True)


# -- profiles ------------------------------------------------------------------------


@lpa.command("profiles")
@_euicc_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def profiles_command(euicc: str | None, pcsc: str | None, as_json: bool) -> None:
    """List the profiles on the eUICC."""
    with _link(euicc, pcsc) as (link, _):
        profiles = Lpa(link).profiles()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "iccid": p.iccid,
                        "isdpAid": p.isdp_aid.hex().upper(),
                        "state": p.state,
                        "nickname": p.nickname,
                        "serviceProviderName": p.service_provider_name,
                        "profileName": p.profile_name,
                        "profileClass": p.profile_class,
                    }
                    for p in profiles
                ],
                indent=2,
            )
        )
        return
    click.echo(f"{len(profiles)} profile(s)")
    for p in profiles:
        nick = f" ({p.nickname})" if p.nickname else ""
        click.echo(
            f"  {p.iccid} {p.state:8} {p.profile_name}{nick} "
            f"[{p.service_provider_name}] {p.profile_class}"
        )


@lpa.command("enable")
@click.argument("iccid")
@_euicc_options
@click.option("--no-refresh", is_flag=True, help="refreshFlag false.")
@reports_errors
def enable_command(iccid: str, euicc: str | None, pcsc: str | None, no_refresh: bool) -> None:
    """Enable the profile ICCID."""
    with _link(euicc, pcsc) as (link, _):
        Lpa(link).enable(iccid, refresh=not no_refresh)
    click.echo(f"enabled {iccid}")


@lpa.command("disable")
@click.argument("iccid")
@_euicc_options
@click.option("--no-refresh", is_flag=True, help="refreshFlag false.")
@reports_errors
def disable_command(iccid: str, euicc: str | None, pcsc: str | None, no_refresh: bool) -> None:
    """Disable the profile ICCID."""
    with _link(euicc, pcsc) as (link, _):
        Lpa(link).disable(iccid, refresh=not no_refresh)
    click.echo(f"disabled {iccid}")


@lpa.command("delete")
@click.argument("iccid")
@_euicc_options
@reports_errors
def delete_command(iccid: str, euicc: str | None, pcsc: str | None) -> None:
    """Delete the (disabled) profile ICCID."""
    with _link(euicc, pcsc) as (link, _):
        Lpa(link).delete(iccid)
    click.echo(f"deleted {iccid}")


@lpa.command("nickname")
@click.argument("iccid")
@click.argument("nickname")
@_euicc_options
@reports_errors
def nickname_command(iccid: str, nickname: str, euicc: str | None, pcsc: str | None) -> None:
    """Set the nickname of the profile ICCID (an empty NICKNAME clears it)."""
    with _link(euicc, pcsc) as (link, _):
        Lpa(link).set_nickname(iccid, nickname)
    click.echo(f"nickname of {iccid} set")


@lpa.command("notifications")
@_euicc_options
@click.option(
    "--deliver", is_flag=True, help="Send them to their servers and remove delivered ones."
)
@_trust_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def notifications_command(
    euicc: str | None,
    pcsc: str | None,
    deliver: bool,
    cis: tuple[str, ...],
    ca_file: str | None,
    no_tls: bool,
    as_json: bool,
) -> None:
    """List the pending notifications; with --deliver, send them."""
    with _link(euicc, pcsc) as (link, store_cis):
        client = Lpa(link, settings=_settings(store_cis, cis, ca_file, no_tls))
        pending = client.notifications()
        results = asyncio.run(client.deliver_notifications(pending)) if deliver else []
    outcome = {d.notification.seq_number: d for d in results}
    rows = []
    for n in pending:
        d = outcome.get(n.seq_number)
        status = "pending"
        if d is not None:
            status = "delivered" if d.delivered else f"failed: {d.error}"
        rows.append(
            {
                "seqNumber": n.seq_number,
                "event": n.event,
                "address": n.address,
                "iccid": n.iccid,
                "status": status,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(f"{len(rows)} notification(s)")
        for r in rows:
            click.echo(
                f"  #{r['seqNumber']} {r['event']:8} {r['iccid']} -> {r['address']}: {r['status']}"
            )
    if any(not d.delivered for d in results):
        sys.exit(2)


@lpa.command("qr")
@click.argument("code")
@click.option("--png", type=click.Path(dir_okay=False), default=None, help="Write a PNG here.")
@reports_errors
def qr_command(code: str, png: str | None) -> None:
    """Show the activation CODE as a QR code (terminal, or --png FILE)."""
    activation = ActivationCode.parse(code)
    if png is not None:
        activation.qr_png(png)
        click.echo(f"{activation.to_text()} -> {png}")
    else:
        click.echo(activation.qr_terminal())
        click.echo(activation.to_text())


# -- profile policy: switch, backup, country rules, watch ------------------------------


def _settings_option(func: Any) -> Any:
    return click.option(
        "--settings",
        "settings_path",
        metavar="PATH",
        default=None,
        type=click.Path(dir_okay=False),
        help="The LPA settings store (default: STORE.lpa beside --euicc; needed with --pcsc).",
    )(func)


def _settings_file(euicc: str | None, settings_path: str | None) -> Path:
    from rspfed.lpa.settings import default_path

    if settings_path is not None:
        return Path(settings_path)
    if euicc is None:
        raise UsageError("give --settings PATH (there is no --euicc STORE to put it beside)")
    return default_path(euicc)


def _echo_decisions(actions: list[Any]) -> None:
    for action in actions:
        text = getattr(action, "text", None) or getattr(action, "reason", None)
        if text:
            click.echo(text)


def _policy_run(
    euicc: str | None,
    pcsc: str | None,
    settings_path: str | None,
    trust: tuple[tuple[str, ...], str | None, bool] | None,
    work: Any,
) -> list[Any]:
    from datetime import UTC, datetime

    from rspfed.lpa.failover import Failover
    from rspfed.lpa.policy import ProfilePolicy
    from rspfed.lpa.settings import LpaSettings

    path = _settings_file(euicc, settings_path)
    with _link(euicc, pcsc) as (link, store_cis), LpaSettings.open(path) as store:
        es9 = (
            _settings(store_cis, *trust)
            if trust is not None
            else Es9Settings(trust=tuple(store_cis))
        )
        failover = Failover(Lpa(link, settings=es9), store, now=lambda: datetime.now(UTC))
        result: list[Any] = asyncio.run(work(ProfilePolicy(failover)))
        return result


@lpa.command("switch")
@click.argument("iccid")
@_euicc_options
@_settings_option
@_trust_options
@reports_errors
def switch_command(
    iccid: str,
    euicc: str | None,
    pcsc: str | None,
    settings_path: str | None,
    cis: tuple[str, ...],
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Enable the profile ICCID (the primary from now on) and notify each profile's SM-DP+.

    Refused (exit 2) when the enabled profile's PPR1 forbids disabling it.
    Undelivered notifications stay queued on the eUICC (``notifications --deliver``).
    """
    trust = (cis, ca_file, no_tls)
    actions = _policy_run(euicc, pcsc, settings_path, trust, lambda p: p.switch(iccid))
    _echo_decisions(actions)


@lpa.group("backup")
def backup_group() -> None:
    """The backup profile: enabled automatically when the primary's network is lost."""


@backup_group.command("set")
@click.argument("iccid")
@_euicc_options
@_settings_option
@reports_errors
def backup_set_command(
    iccid: str, euicc: str | None, pcsc: str | None, settings_path: str | None
) -> None:
    """Mark the profile ICCID as the backup."""
    _echo_decisions(_policy_run(euicc, pcsc, settings_path, None, lambda p: p.set_backup(iccid)))


@backup_group.command("clear")
@_euicc_options
@_settings_option
@reports_errors
def backup_clear_command(euicc: str | None, pcsc: str | None, settings_path: str | None) -> None:
    """Clear the backup marker (no more automatic fail-over)."""
    _echo_decisions(_policy_run(euicc, pcsc, settings_path, None, lambda p: p.clear_backup()))


@backup_group.command("show")
@_euicc_options
@_settings_option
@reports_errors
def backup_show_command(euicc: str | None, pcsc: str | None, settings_path: str | None) -> None:
    """Show the primary, the backup and the failover phase."""
    from rspfed.lpa.settings import LpaSettings

    with LpaSettings.open(_settings_file(euicc, settings_path)) as store:
        state = store.failover_state()
    click.echo(f"primary {state.primary or '-'}")
    click.echo(f"backup  {state.backup or '-'}")
    click.echo(f"phase   {state.phase.value}")


@lpa.group("rules")
def rules_group() -> None:
    """Country rules: "when the visited country is X, enable profile Y"."""


def _rules_options(func: Any) -> Any:
    func = _settings_option(func)
    return click.option(
        "--euicc",
        "euicc",
        metavar="STORE",
        default=None,
        type=click.Path(dir_okay=False),
        help="The software eUICC store (its settings are STORE.lpa).",
    )(func)


@rules_group.command("add")
@click.argument("country")
@click.argument("iccid")
@_rules_options
@reports_errors
def rules_add_command(
    country: str, iccid: str, euicc: str | None, settings_path: str | None
) -> None:
    """On arrival in COUNTRY (ISO 3166 alpha-2), enable the profile ICCID."""
    from rspfed.lpa.settings import LpaSettings

    with LpaSettings.open(_settings_file(euicc, settings_path)) as store:
        rule = store.add_rule(country, iccid)
    click.echo(f"rule {rule.position}: in {rule.country} enable {rule.iccid}")


@rules_group.command("list")
@_rules_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def rules_list_command(euicc: str | None, settings_path: str | None, as_json: bool) -> None:
    """List the country rules in order."""
    from rspfed.lpa.settings import LpaSettings

    with LpaSettings.open(_settings_file(euicc, settings_path)) as store:
        rules = store.rules()
    if as_json:
        click.echo(json.dumps([{"country": r.country, "iccid": r.iccid} for r in rules]))
        return
    click.echo(f"{len(rules)} rule(s)")
    for r in rules:
        click.echo(f"  {r.country} -> {r.iccid}")


@rules_group.command("remove")
@click.argument("country")
@_rules_options
@reports_errors
def rules_remove_command(country: str, euicc: str | None, settings_path: str | None) -> None:
    """Remove the rule for COUNTRY."""
    from rspfed.lpa.settings import LpaSettings

    with LpaSettings.open(_settings_file(euicc, settings_path)) as store:
        found = store.remove_rule(country)
    if not found:
        raise UsageError(f"no rule for {country.upper()}")
    click.echo(f"removed the rule for {country.upper()}")


def _seconds(value: float, name: str) -> Any:
    from datetime import timedelta

    if value < 0:
        raise UsageError(f"--{name} must not be negative")
    return timedelta(seconds=value)


@lpa.command("watch")
@click.option(
    "--euicc",
    "euicc",
    metavar="STORE",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="The software eUICC store.",
)
@click.option(
    "--operator",
    "operator_urls",
    metavar="URL",
    multiple=True,
    required=True,
    help="An operator (its cells make the radio; repeat for each carrier).",
)
@_settings_option
@click.option("--interval", default=5.0, show_default=True, help="Seconds between rounds.")
@click.option("--lost-after", default=30.0, show_default=True, help="Seconds lost → backup.")
@click.option("--seen-for", default=60.0, show_default=True, help="Seconds seen → trial back.")
@click.option(
    "--trial-timeout", default=30.0, show_default=True, help="Seconds to attach on trial."
)
@click.option("--hold", default=120.0, show_default=True, help="Seconds between auto switches.")
@click.option("--hpplmn-scale", default=1.0, show_default=True, help="EF.HPPLMN period factor.")
@click.option("--once", is_flag=True, help="One round, then exit.")
@click.option("--for", "duration", type=float, default=None, help="Run this many seconds.")
@_trust_options
@reports_errors
def watch_command(
    euicc: str,
    operator_urls: tuple[str, ...],
    settings_path: str | None,
    interval: float,
    lost_after: float,
    seen_for: float,
    trial_timeout: float,
    hold: float,
    hpplmn_scale: float,
    once: bool,
    duration: float | None,
    cis: tuple[str, ...],
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Run network selection and the failover policy; print one line per decision."""
    from rspfed.cli.federation import _tls, open_euicc, resolve_operator_url
    from rspfed.federation.client import OperatorClient
    from rspfed.lpa._failover_state import Timers
    from rspfed.lpa.watch import Watch, software_euicc

    if interval <= 0:
        raise UsageError("--interval must be positive")
    timers = Timers(
        _seconds(lost_after, "lost-after"),
        _seconds(seen_for, "seen-for"),
        _seconds(trial_timeout, "trial-timeout"),
        _seconds(hold, "hold"),
    )
    urls = [resolve_operator_url(u, None, no_tls) for u in operator_urls]
    with open_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session:
        contexts = [_tls(u, session, ca_file) for u in urls]
        es9 = _settings(list(session.cis), cis, ca_file, no_tls)
    path = _settings_file(euicc, settings_path)

    async def run() -> None:
        clients = [OperatorClient(u, ssl_context=c) for u, c in zip(urls, contexts, strict=True)]
        watch = Watch(
            open_device=lambda: software_euicc(euicc, passphrase=_passphrase(), settings=es9),
            settings_path=path,
            clients=clients,
            timers=timers,
            interval=_seconds(interval, "interval"),
            on_decision=click.echo,
            hpplmn_scale=hpplmn_scale,
        )
        try:
            if once:
                await watch.run(rounds=1)
            elif duration is not None:
                await watch.run(duration=_seconds(duration, "for"))
            else:
                await watch.run()
        finally:
            for client in clients:
                await client.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
