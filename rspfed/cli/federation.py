"""``rspfed federation``: a device's side of the operator's federation service.

Commands (``--device STORE`` is the device store, ``--euicc STORE`` a
software eUICC store, ``--operator URL`` the operator service)::

    rspfed federation register --device STORE --euicc STORE [--operator URL]
    rspfed federation token    --device STORE --eid EID --class CLASS [--services LIST]
                               [--quota 5GB] [--ttl 10m] [--qr-terminal | --qr PNG]
    rspfed federation redeem   TOKEN|URI|- [--euicc STORE | --eid EID] [--device STORE]
                               [--operator URL]
    rspfed federation join     --class CLASS [--name NAME] [--wait] [--subscription ID]
                               [--euicc STORE | --eid EID] [--device STORE] [--operator URL]
    rspfed federation requests --device STORE
    rspfed federation approve  REQUEST_ID --device STORE [--services LIST] [--quota SIZE]
                               [--ttl 10m]
    rspfed federation devices  --device STORE
    rspfed federation remove   DEVICE_ID --device STORE
    rspfed federation revoke   [TOKEN_ID | --all] --device STORE
    rspfed federation sync     --device STORE [--euicc STORE]
    rspfed federation dashboard --device STORE [--ttl 10m] [--check]

and on every command that talks to the operator ``--ca-file PEM`` and
``--no-tls``.

The device store
    (:mod:`rspfed.federation.device`) is created on first use by
    ``register``, ``redeem`` and ``join``.  It remembers the operator URL,
    the subscription id, the device id, its role and its key once the device
    registered (or redeemed / joined), so later commands need only
    ``--device``.  Its keys are encrypted with ``RSPFED_DEVICE_PASSPHRASE``
    when set; the eUICC store's with ``RSPFED_EUICC_PASSPHRASE`` (as
    ``rspfed euicc`` and ``rspfed lpa`` do).

TLS
    The operator's certificate is checked as the LPA checks an SM-DP+'s
    (:func:`rspfed.federation.client.operator_tls_context`): trusted are the
    CIs the eUICC lists for verification (read from ``--euicc STORE`` through
    the LPA) plus the CAs of ``--ca-file PEM``; a command given neither
    cannot reach an ``https://`` operator.  ``--no-tls`` talks plain HTTP to
    an ``http://`` URL (a ``rspfed operator serve --no-tls`` server), for
    local testing only; the URL's scheme and the flag must agree.  A URL
    without scheme gets ``https://`` (``http://`` with ``--no-tls``).

Sizes are decimal (``5GB`` = 5 * 10^9 octets), durations ``s``/``m``/``h``/``d``.

Exit status: 0 success, 2 failure (one line on stderr, never a traceback).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import attrs
import click

from rspfed.cli._units import DurationType, SizeType, format_size
from rspfed.cli._util import reports_errors
from rspfed.cli.operator import device_line, device_row, parse_services
from rspfed.errors import StateError, UsageError
from rspfed.federation.token import TOKEN_ID_SIZE, DeviceClass, Service

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from rspfed.euicc.euicc import Euicc
    from rspfed.federation.client import OperatorClient
    from rspfed.federation.device import DeviceRecord, DeviceStore
    from rspfed.federation.enrol import EnrolResult
    from rspfed.federation.types import Device, Enrolment
    from rspfed.lpa import Lpa

__all__ = [
    "DEVICE_PASSPHRASE_ENV",
    "EUICC_PASSPHRASE_ENV",
    "EuiccSession",
    "federation",
    "open_euicc",
    "operator_call",
    "resolve_operator_url",
    "usim_identity",
]

#: The device store's passphrase (never on the command line).
DEVICE_PASSPHRASE_ENV = "RSPFED_DEVICE_PASSPHRASE"  # noqa: S105 (a variable name)
#: The eUICC store's passphrase, as ``rspfed euicc`` and ``rspfed lpa`` read it.
EUICC_PASSPHRASE_ENV = "RSPFED_EUICC_PASSPHRASE"  # noqa: S105 (a variable name)

_POLL_SECONDS = 1.0
T = TypeVar("T")


def _env(name: str) -> bytes | None:
    value = os.environ.get(name)
    return value.encode() if value else None


# --------------------------------------------------------------------------
# The eUICC, the operator connection and the device store


@attrs.define
class EuiccSession:
    """An open software eUICC: the store, its LPA (over APDUs) and the CIs it knows."""

    euicc: Euicc
    lpa: Lpa
    cis: tuple[bytes, ...]

    @property
    def eid(self) -> str:
        """The eUICC's EID."""
        return self.euicc.eid


@contextlib.contextmanager
def open_euicc(path: str, *, ca_file: str | None, no_tls: bool) -> Iterator[EuiccSession]:
    """Open the eUICC store ``path``, power its card on and open its LPA link.

    The LPA's SM-DP+ trust is the store's CI certificates plus ``ca_file``
    (as ``rspfed lpa --euicc`` has it); ``no_tls`` downloads over plain HTTP.
    """
    from rspfed.euicc.euicc import Euicc
    from rspfed.lpa import ApduEs10, Es9Settings, Lpa, store_ci_certificates

    with Euicc.open(path, passphrase=_env(EUICC_PASSPHRASE_ENV)) as card:
        cis = tuple(store_ci_certificates(card.store))
        card.card.power_on()
        with ApduEs10(card.card) as link:
            settings = Es9Settings(trust=cis, ca_file=ca_file, tls=not no_tls)
            yield EuiccSession(card, Lpa(link, settings=settings), cis)


def resolve_operator_url(option: str | None, record: DeviceRecord | None, no_tls: bool) -> str:
    """The operator URL: ``--operator`` if given, else the device store's.

    A URL without scheme gets ``https://`` (``http://`` with ``--no-tls``);
    :class:`UsageError` when the scheme and ``--no-tls`` disagree.
    """
    url = option if option is not None else (record.operator_url if record else None)
    if not url:
        raise UsageError("give --operator URL (the device store does not know it yet)")
    if "://" not in url:
        url = ("http://" if no_tls else "https://") + url
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    url = f"{scheme}://{rest}"
    if scheme == "http" and not no_tls:
        raise UsageError(f"{url} is plain HTTP: add --no-tls (only for a --no-tls server)")
    if scheme == "https" and no_tls:
        raise UsageError("--no-tls needs an http:// operator URL")
    if scheme not in ("http", "https"):
        raise UsageError("the operator URL must be https://HOST[:PORT]")
    return url.rstrip("/")


def _tls(url: str, session: EuiccSession | None, ca_file: str | None) -> ssl.SSLContext | None:
    from rspfed.federation.client import operator_tls_context

    parts = urlsplit(url)
    if parts.scheme == "http":
        return None
    if session is None and ca_file is None:
        raise UsageError(
            "to trust the operator's TLS certificate give --euicc STORE (the CIs its eUICC "
            "lists) or --ca-file PEM"
        )
    trust = session.cis if session is not None else ()
    pkids = session.lpa.ci_pkids_for_verification() if session is not None else None
    return operator_tls_context(parts.hostname or "", trust=trust, ci_pkids=pkids, ca_file=ca_file)


def operator_call(
    url: str,
    session: EuiccSession | None,
    ca_file: str | None,
    work: Callable[[OperatorClient], Awaitable[T]],
) -> T:
    """Run ``work`` with an :class:`OperatorClient` for ``url`` (TLS as described above)."""
    from rspfed.federation.client import OperatorClient

    context = _tls(url, session, ca_file)

    async def run() -> T:
        async with OperatorClient(url, ssl_context=context) as client:
            return await work(client)

    return asyncio.run(run())


def _open_device(path: str, *, create: bool) -> DeviceStore:
    from rspfed.federation.device import DeviceStore

    passphrase = _env(DEVICE_PASSPHRASE_ENV)
    if create and not Path(path).exists():
        return DeviceStore.create(path, passphrase=passphrase)
    return DeviceStore.open(path, passphrase=passphrase)


@contextlib.contextmanager
def _maybe_device(path: str | None, *, create: bool) -> Iterator[DeviceStore | None]:
    if path is None:
        yield None
        return
    with _open_device(path, create=create) as store:
        yield store


def usim_identity(session: EuiccSession) -> tuple[str, int]:
    """IMSI and MNC length of the eUICC's enabled profile's USIM, with a hint when
    there is none (no profile enabled)."""
    from rspfed.errors import ProtocolError
    from rspfed.network.usim import read_usim_identity

    try:
        return read_usim_identity(session.euicc.card)
    except ProtocolError as exc:
        raise StateError(
            f"no usable USIM on eUICC {session.eid} ({exc}): is a profile enabled "
            "(rspfed lpa enable ICCID)?"
        ) from None


def _secondary_store(store: DeviceStore | None) -> None:
    """Refuse to turn a primary's device store into a secondary's."""
    record = None if store is None else store.record()
    if record is not None and record.role == "primary":
        raise UsageError(
            f"the device store is the primary's (device {record.device_id}): "
            "give this device's own --device STORE"
        )


def _registered(store: DeviceStore) -> tuple[DeviceRecord, ec.EllipticCurvePrivateKey]:
    record = store.record()
    key = store.private_key()
    if record is None or record.device_id is None or key is None:
        raise UsageError("this device is not registered: run rspfed federation register first")
    return record, key


def _primary(store: DeviceStore) -> tuple[DeviceRecord, ec.EllipticCurvePrivateKey]:
    record, key = _registered(store)
    if record.role != "primary":
        raise UsageError("only the primary device (the subscription's phone) may do this")
    if record.subscription_id is None:  # pragma: no cover - register stores it
        raise UsageError("the device store names no subscription: register again")
    return record, key


@contextlib.contextmanager
def _maybe_euicc(
    path: str | None, *, ca_file: str | None, no_tls: bool
) -> Iterator[EuiccSession | None]:
    if path is None:
        yield None
        return
    with open_euicc(path, ca_file=ca_file, no_tls=no_tls) as session:
        yield session


@attrs.frozen
class _Connected:
    """A registered device's store, optional eUICC session, record, key and
    operator URL, as the management and status commands open them."""

    store: DeviceStore
    session: EuiccSession | None
    record: DeviceRecord
    key: ec.EllipticCurvePrivateKey
    url: str
    ca_file: str | None

    def call(self, work: Callable[[OperatorClient], Awaitable[T]]) -> T:
        """:func:`operator_call` with this device's URL, session and CA file."""
        return operator_call(self.url, self.session, self.ca_file, work)


@contextlib.contextmanager
def _connected(
    device: str,
    euicc: str | None,
    operator_url: str | None,
    ca_file: str | None,
    no_tls: bool,
    *,
    primary: bool,
) -> Iterator[_Connected]:
    """Open the device store (and the eUICC with ``euicc``), check the device is
    registered (and the primary with ``primary``) and resolve the operator URL."""
    with (
        _open_device(device, create=False) as store,
        _maybe_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session,
    ):
        record, key = _primary(store) if primary else _registered(store)
        url = resolve_operator_url(operator_url, record, no_tls)
        yield _Connected(store, session, record, key, url, ca_file)


# --------------------------------------------------------------------------
# Shared options


def _device_option(required: bool, create: bool = False) -> Callable[[Any], Any]:
    extra = " (created if absent)" if create else ""
    return click.option(
        "--device",
        "device",
        metavar="STORE",
        required=required,
        type=click.Path(dir_okay=False),
        help=f"This device's federation store{extra}; passphrase from {DEVICE_PASSPHRASE_ENV}.",
    )


def _euicc_option(help_text: str, required: bool = False) -> Callable[[Any], Any]:
    return click.option(
        "--euicc",
        "euicc",
        metavar="STORE",
        required=required,
        type=click.Path(dir_okay=False, exists=True),
        help=help_text,
    )


_TRUST_HELP = "A software eUICC store; the CIs it lists are trusted for the operator's TLS."


def _connection_options(func: Any) -> Any:
    func = click.option(
        "--no-tls",
        is_flag=True,
        help="Plain HTTP to an http:// operator (a --no-tls server; local testing only).",
    )(func)
    func = click.option(
        "--ca-file",
        type=click.Path(dir_okay=False, exists=True),
        default=None,
        help="PEM file of CAs trusted for the operator's TLS certificate "
        "(e.g. DATA/tls/server-ca.pem), besides the eUICC's CIs.",
    )(func)
    return click.option(
        "--operator",
        "operator_url",
        metavar="URL",
        default=None,
        help="The operator service, https://HOST[:PORT] (default: the device store's).",
    )(func)


def _device_class(value: str) -> DeviceClass:
    try:
        return DeviceClass(value.lower())
    except ValueError:
        known = ", ".join(c.value for c in DeviceClass)
        raise UsageError(f"unknown device class {value!r}: choose from {known}") from None


_CLASS_CHOICE = click.Choice([c.value for c in DeviceClass], case_sensitive=False)


def _services_of(text: str | None, device_class: DeviceClass) -> frozenset[Service]:
    from rspfed.network.service import DEVICE_CLASS_SERVICES

    if text is None:
        return DEVICE_CLASS_SERVICES[device_class]
    return parse_services(text)


def _names(values: frozenset[Service]) -> str:
    return ",".join(sorted(s.value for s in values)) or "-"


def _issue(
    key: ec.EllipticCurvePrivateKey,
    record: DeviceRecord,
    *,
    eid: str,
    device_class: DeviceClass,
    services: frozenset[Service],
    quota: int,
    ttl: timedelta,
) -> bytes:
    from rspfed.federation.token import issue_token

    assert record.subscription_id is not None
    return issue_token(
        primary_key=key,
        subscription_id=record.subscription_id,
        eid=eid,
        device_class=device_class,
        services=services,
        quota=quota,
        now=datetime.now(UTC),
        rand=os.urandom,
        ttl=ttl,
    )


@click.group("federation")
def federation() -> None:
    """One subscription across a person's devices: register, tokens, join, manage."""


# --------------------------------------------------------------------------
# register


def _register(
    session: EuiccSession,
    store: DeviceStore,
    url: str,
    ca_file: str | None,
) -> Device:
    """EAP-AKA' registration of a new key with the eUICC's enabled USIM; store updated."""
    from rspfed.federation.device import DeviceRecord
    from rspfed.federation.types import DeviceRole
    from rspfed.network.usim import eap_usim

    card = session.euicc.card
    imsi, mnc_length = usim_identity(session)
    key = store.generate_key()
    try:
        device = operator_call(
            url,
            session,
            ca_file,
            lambda client: client.register(
                usim=eap_usim(card), imsi=imsi, mnc_length=mnc_length, eid=session.eid, key=key
            ),
        )
    except BaseException:
        store.discard_pending_key()
        raise
    store.commit_key()
    store.set_record(
        DeviceRecord(
            operator_url=url,
            subscription_id=device.subscription_id,
            device_id=device.id,
            role="primary" if device.role is DeviceRole.PRIMARY else "secondary",
            eid=session.eid,
            device_class=device.device_class,
            name=device.name,
        )
    )
    return device


def _describe_registration(device: Device, rotated: bool) -> None:
    assert device.device_key_id is not None
    click.echo(
        f"registered {device.role.value} device {device.id} ({device.device_class.value} "
        f"{device.name!r}) of subscription {device.subscription_id}"
    )
    click.echo(f"  {'new ' if rotated else ''}key id {device.device_key_id.hex()}")


@federation.command("register")
@_device_option(required=True, create=True)
@_euicc_option("The software eUICC store whose enabled profile's USIM answers.", required=True)
@_connection_options
@reports_errors
def register_command(
    device: str, euicc: str, operator_url: str | None, ca_file: str | None, no_tls: bool
) -> None:
    """Register this device's key with the operator (EAP-AKA' with the eUICC's USIM).

    On the primary (the phone whose profile came from `operator subscribe`)
    this is the federation key that signs tokens; on a secondary, its device
    key.  Run again to rotate the key: the old one is retired (and a primary's
    outstanding tokens with it).  Remembers the operator URL, subscription,
    device id, role and key in the device store.
    """
    with _open_device(device, create=True) as store:
        record = store.record()
        url = resolve_operator_url(operator_url, record, no_tls)
        rotated = store.private_key() is not None
        with open_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session:
            registered = _register(session, store, url, ca_file)
    _describe_registration(registered, rotated)


# --------------------------------------------------------------------------
# token


@federation.command("token")
@_device_option(required=True)
@click.option("--eid", required=True, help="The secondary's EID (32 digits).")
@click.option(
    "--class", "device_class", required=True, type=_CLASS_CHOICE, help="The secondary's class."
)
@click.option(
    "--services",
    default=None,
    metavar="LIST",
    help="Services, comma-separated (data,voice,sms,tethering); default: all its class may have.",
)
@click.option(
    "--quota",
    type=SizeType(),
    default="0B",
    help="Per-device data quota (5GB; decimal); default 0B: no per-device limit.",
)
@click.option(
    "--ttl",
    type=DurationType(),
    default="10m",
    show_default=True,
    help="Validity of the token (at most the hard cap).",
)
@click.option("--qr", "qr_png", default=None, type=click.Path(dir_okay=False), metavar="PNG")
@click.option("--qr-terminal", is_flag=True, help="Also print the token as a QR code.")
@reports_errors
def token_command(
    device: str,
    eid: str,
    device_class: str,
    services: str | None,
    quota: int,
    ttl: timedelta,
    qr_png: str | None,
    qr_terminal: bool,
) -> None:
    """Sign a federation token for the secondary EID (primary only, offline).

    Prints the token as an rspfed: URI (stdout, first line), for `rspfed
    federation redeem` on the secondary; its id and validity go to stderr.
    """
    from rspfed.federation.token import parse_token
    from rspfed.federation.uri import RspfedUri

    if qr_png and qr_terminal:
        raise UsageError("--qr and --qr-terminal exclude each other")
    cls = _device_class(device_class)
    with _open_device(device, create=False) as store:
        record, key = _primary(store)
        der = _issue(
            key,
            record,
            eid=eid,
            device_class=cls,
            services=_services_of(services, cls),
            quota=quota,
            ttl=ttl,
        )
    token = parse_token(der)
    uri = RspfedUri(type="token", payload=der)
    click.echo(uri.to_text())
    click.echo(
        f"token {token.token_id.hex()} for {cls.value} {token.eid}: services "
        f"{_names(token.services)}, quota {format_size(token.quota) if token.quota else 'none'}, "
        f"valid until {token.not_after.isoformat()}",
        err=True,
    )
    if qr_png:
        uri.qr_png(qr_png)
        click.echo(f"QR code written to {qr_png}", err=True)
    elif qr_terminal:
        click.echo(uri.qr_terminal())


# --------------------------------------------------------------------------
# dashboard


def _open_once(url: str, ca_file: str | None) -> int:
    """GET the page once; its HTTP status."""
    import aiohttp

    context = _tls(url, None, ca_file)

    async def get() -> int:
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, ssl=context if context is not None else False) as response,
        ):
            return response.status

    try:
        return asyncio.run(get())
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        from rspfed.errors import TransportError

        raise TransportError(f"cannot reach the operator: {type(exc).__name__}") from None


@federation.command("dashboard")
@_device_option(required=True)
@click.option(
    "--ttl",
    type=DurationType(),
    default="10m",
    show_default=True,
    help="Validity of the link (at most 24h).",
)
@click.option(
    "--check", is_flag=True, help="Open the link once (needs --ca-file for https) and report."
)
@_connection_options
@reports_errors
def dashboard_command(
    device: str,
    ttl: timedelta,
    check: bool,
    operator_url: str | None,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Print a short-lived link to the subscription's usage page (primary only).

    The link (stdout) is signed offline with the primary's federation key
    and opens the operator's read-only dashboard until it expires; anyone
    holding it may look, so share it as you would the figures.  --check
    opens it once and prints the HTTP status to stderr.
    """
    from rspfed.federation.dashboard import issue_link, link_url, parse_link

    with _open_device(device, create=False) as store:
        record, key = _primary(store)
        url = resolve_operator_url(operator_url, record, no_tls)
        assert record.subscription_id is not None
        der = issue_link(
            key,
            subscription_id=record.subscription_id,
            now=datetime.now(UTC),
            rand=os.urandom,
            ttl=ttl,
        )
    link = link_url(url, der)
    click.echo(link)
    valid = parse_link(der).not_after
    click.echo(f"dashboard link valid until {valid.isoformat()}", err=True)
    if check:
        status = _open_once(link, ca_file)
        click.echo(f"the operator answered {status}", err=True)
        if status != 200:
            raise StateError(f"the operator refused the link ({status})")


# --------------------------------------------------------------------------
# redeem and join: the secondary's enrolment


def _read_token(source: str) -> bytes:
    """A token from an rspfed: URI, ``-`` (stdin) or a file (URI text or DER)."""
    from rspfed.errors import DecodeError
    from rspfed.federation.uri import URI_SCHEME, token_from_uri

    if source.lower().startswith(URI_SCHEME + ":"):
        return token_from_uri(source)
    if source == "-":
        data = sys.stdin.buffer.read()
    else:
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"{source!r} is neither an rspfed: URI nor a file (or - for stdin)")
        data = path.read_bytes()
    if data[:1] == b"\x30":  # DER
        return data
    text = data.decode("utf-8", errors="replace")  # a terminal QR code may come along
    for word in text.split():
        if word.lower().startswith(URI_SCHEME + ":"):
            return token_from_uri(word)
    raise DecodeError("the token input is neither an rspfed: URI nor DER")


def _eid_of(session: EuiccSession | None, eid: str | None) -> str:
    if session is not None:
        if eid is not None and eid != session.eid:
            raise UsageError(f"--eid {eid} is not the EID of the eUICC ({session.eid})")
        return session.eid
    if eid is None:
        raise UsageError("give --euicc STORE (or --eid EID without a download)")
    return eid


def _enrolled(
    enrolment: Enrolment,
    *,
    session: EuiccSession | None,
    store: DeviceStore | None,
    url: str,
    ca_file: str | None,
    subscription_id: str,
    eid: str,
    device_class: DeviceClass | None,
    name: str | None,
) -> None:
    """Print the activation code; download, enable and register as the options allow
    (:func:`rspfed.federation.enrol.enrol`)."""
    from rspfed.federation.enrol import EnrolEvent, EnrolStep, enrol
    from rspfed.lpa import Consent

    def progress(event: EnrolEvent) -> None:
        if event.step is EnrolStep.REDEEMED:
            click.echo(f"device {enrolment.device_id}: profile ICCID {enrolment.iccid}")
            click.echo(enrolment.activation_code)
        elif event.step is EnrolStep.DOWNLOADED:
            assert event.download is not None
            note = event.download.notification
            if note is not None and not note.delivered:
                click.echo("installation notification not delivered (kept on the eUICC)", err=True)
        elif event.step is EnrolStep.ENABLED:
            assert event.download is not None
            metadata = event.download.metadata
            click.echo(
                f"installed and enabled {event.download.iccid}: {metadata.profile_name} "
                f"[{metadata.service_provider_name}]"
            )
        elif event.step is EnrolStep.REGISTERED:
            assert event.device is not None
            _describe_registration(event.device, False)

    async def work(client: OperatorClient) -> EnrolResult:
        return await enrol(
            enrolment,
            client=client,
            eid=eid,
            lpa=session.lpa if session is not None else None,
            card=session.euicc.card if session is not None else None,
            store=store,
            subscription_id=subscription_id,
            device_class=device_class,
            name=name,
            operator_url=url,
            consent=_accept(Consent),
            progress=progress,
        )

    result = operator_call(url, session, ca_file, work)
    if result.registration_error is not None:
        raise StateError(
            f"profile installed, but registering this device failed "
            f"({result.registration_error}); run rspfed federation register later"
        ) from None


def _accept(consent: Any) -> Callable[[Any], Any]:
    def accept(metadata: Any) -> Any:
        click.echo(
            f"Profile: {metadata.profile_name!r} from {metadata.service_provider_name!r} "
            f"(ICCID {metadata.iccid}): accepted",
            err=True,
        )
        return consent.ACCEPT

    return accept


@federation.command("redeem")
@click.argument("token", metavar="TOKEN|URI|-")
@_euicc_option(
    "Download and enable the profile on this software eUICC (through the LPA, over HTTPS) "
    "and take the EID from it."
)
@click.option("--eid", default=None, help="The EID to redeem for, without --euicc.")
@_device_option(required=False, create=True)
@_connection_options
@reports_errors
def redeem_command(
    token: str,
    euicc: str | None,
    eid: str | None,
    device: str | None,
    operator_url: str | None,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Redeem a federation token (an rspfed: URI, a file, or - for stdin) for this eUICC.

    Prints the device id and the activation code (LPA:1$...).  With --euicc,
    downloads and enables the profile through the LPA (as `rspfed lpa
    download` does; the download is accepted).  With --device too, remembers
    the operator and subscription and registers this device's key with its
    new USIM (as `rspfed federation register`), for `sync` later.
    """
    from rspfed.federation.token import parse_token

    der = _read_token(token)
    parsed = parse_token(der)
    with (
        _maybe_device(device, create=True) as store,
        _maybe_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session,
    ):
        _secondary_store(store)
        url = resolve_operator_url(operator_url, store.record() if store else None, no_tls)
        target = _eid_of(session, eid)
        enrolment = operator_call(url, session, ca_file, lambda client: client.redeem(der, target))
        _enrolled(
            enrolment,
            session=session,
            store=store,
            url=url,
            ca_file=ca_file,
            subscription_id=parsed.subscription_id,
            eid=target,
            device_class=parsed.device_class,
            name=None,
        )


@federation.command("join")
@click.option(
    "--class", "device_class", default=None, type=_CLASS_CHOICE, help="This device's class."
)
@click.option("--name", default=None, help="This device's name (default: its class).")
@click.option(
    "--subscription",
    "subscription_id",
    default=None,
    metavar="ID",
    help="The subscription to join (the cloud path must name it; the primary's user "
    "tells it). Default: the device store's.",
)
@click.option("--wait", is_flag=True, help="Wait until the primary approves, then enrol.")
@click.option(
    "--timeout",
    type=DurationType(),
    default=None,
    help="With --wait: give up after this long (default: when the request expires).",
)
@_euicc_option(
    "Download and enable the profile on this software eUICC once approved (through the "
    "LPA, over HTTPS); the EID is taken from it."
)
@click.option("--eid", default=None, help="The EID to join with, without --euicc.")
@_device_option(required=False, create=True)
@_connection_options
@reports_errors
def join_command(
    device_class: str | None,
    name: str | None,
    subscription_id: str | None,
    wait: bool,
    timeout: timedelta | None,
    euicc: str | None,
    eid: str | None,
    device: str | None,
    operator_url: str | None,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Ask to join a subscription (cloud enrolment); collect the activation code once
    the primary approves.

    The first run posts the join request (EID, class, name) and keeps its
    ticket in the device store; the primary lists it (`federation requests`)
    and approves it (`federation approve ID`).  Run again (or use --wait) to
    collect: prints the activation code and, with --euicc, downloads and
    enables the profile and registers this device's key.  Without --device
    the ticket cannot be kept: --wait is then required.
    """
    from rspfed.errors import NotFoundError
    from rspfed.federation.device import DeviceRecord

    if device is None and not wait:
        raise UsageError("without --device the join ticket cannot be kept: add --wait")
    with (
        _maybe_device(device, create=True) as store,
        _maybe_euicc(euicc, ca_file=ca_file, no_tls=no_tls) as session,
    ):
        _secondary_store(store)
        record = store.record() if store else None
        url = resolve_operator_url(operator_url, record, no_tls)
        target = _eid_of(session, eid)
        now = datetime.now(UTC)
        tickets = [] if store is None else store.joins()
        for stale in [t for t in tickets if t.expires <= now]:
            assert store is not None
            store.drop_join(stale.request_id)
        wanted = subscription_id or (record.subscription_id if record else None)
        tickets = [t for t in tickets if t.expires > now and wanted in (None, t.subscription_id)]
        cls = _device_class(device_class) if device_class else None
        if tickets:
            ticket = tickets[0]
            request_id, secret = ticket.request_id, ticket.secret
            sub_id, expires = ticket.subscription_id, ticket.expires
            click.echo(f"join request {request_id} to subscription {sub_id} (kept in the store)")
        else:
            if wanted is None:
                raise UsageError("give --subscription ID: the subscription to join")
            if cls is None:
                raise UsageError("give --class CLASS: this device's class")
            label = name or cls.value
            posted = operator_call(
                url, session, ca_file, lambda client: client.join(wanted, target, cls, label)
            )
            request_id, secret = posted.request.id, posted.secret
            sub_id, expires = posted.request.subscription_id, posted.request.expires
            if store is not None:
                store.add_join(request_id, secret, sub_id, expires)
                if record is None or record.device_id is None:
                    store.set_record(
                        DeviceRecord(
                            operator_url=url,
                            subscription_id=sub_id,
                            eid=target,
                            device_class=cls,
                            name=label,
                        )
                    )
            click.echo(
                f"join request {request_id} posted to subscription {sub_id} "
                f"({cls.value} {label!r}, EID {target}); expires {expires.isoformat()}"
            )
            click.echo(f"  the primary approves it with: rspfed federation approve {request_id}")
        deadline = expires if timeout is None else min(expires, now + timeout)

        async def collect(client: OperatorClient) -> Enrolment | None:
            while True:
                got = await client.collect(request_id, secret)
                if got is not None or not wait or datetime.now(UTC) >= deadline:
                    return got
                await asyncio.sleep(_POLL_SECONDS)

        if wait:
            click.echo("waiting for the primary's approval ...", err=True)
        try:
            enrolment = operator_call(url, session, ca_file, collect)
        except NotFoundError:
            if store is not None:  # expired or gone: the next run posts a new request
                store.drop_join(request_id)
            raise
        except KeyboardInterrupt:
            kept = " (its ticket is kept in the device store)" if store is not None else ""
            click.echo(f"interrupted: join request {request_id} still waits{kept}", err=True)
            sys.exit(130)
        if enrolment is None:
            if wait:
                raise StateError(f"join request {request_id} was not approved in time")
            click.echo(f"join request {request_id} is pending the primary's approval")
            return
        if store is not None:
            store.drop_join(request_id)
        _enrolled(
            enrolment,
            session=session,
            store=store,
            url=url,
            ca_file=ca_file,
            subscription_id=sub_id,
            eid=target,
            device_class=cls,
            name=name,
        )


# --------------------------------------------------------------------------
# the primary's management


def _manage_options(func: Any) -> Any:
    func = _connection_options(func)
    func = _euicc_option(_TRUST_HELP)(func)
    return _device_option(required=True)(func)


@federation.command("requests")
@_manage_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def requests_command(
    device: str,
    euicc: str | None,
    operator_url: str | None,
    ca_file: str | None,
    no_tls: bool,
    as_json: bool,
) -> None:
    """List the subscription's join requests (primary only)."""
    with _connected(device, euicc, operator_url, ca_file, no_tls, primary=True) as conn:
        found = conn.call(lambda client: client.requests(conn.key))
    if as_json:
        rows = [
            {
                "id": r.id,
                "eid": r.eid,
                "class": r.device_class.value,
                "name": r.name,
                "state": r.state.value,
                "created": r.created.isoformat(),
                "expires": r.expires.isoformat(),
                "deviceId": r.device_id,
            }
            for r in found
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{len(found)} join request(s)")
    for r in found:
        click.echo(
            f"  {r.id}  {r.state.value:9} {r.device_class.value:7} {r.name!r}  EID {r.eid}  "
            f"expires {r.expires.isoformat()}"
        )


@federation.command("approve")
@click.argument("request_id")
@_manage_options
@click.option(
    "--services",
    default=None,
    metavar="LIST",
    help="Services for the device (default: all its class may have).",
)
@click.option("--quota", type=SizeType(), default="0B", help="Per-device quota (default 0B: none).")
@click.option("--ttl", type=DurationType(), default="10m", show_default=True)
@reports_errors
def approve_command(
    request_id: str,
    device: str,
    euicc: str | None,
    operator_url: str | None,
    ca_file: str | None,
    no_tls: bool,
    services: str | None,
    quota: int,
    ttl: timedelta,
) -> None:
    """Approve join request REQUEST_ID: sign a token for its EID and class and post it."""
    from rspfed.errors import NotFoundError

    with _connected(device, euicc, operator_url, ca_file, no_tls, primary=True) as conn:

        async def approve(client: OperatorClient) -> Any:
            pending = {r.id: r for r in await client.requests(conn.key)}
            request = pending.get(request_id)
            if request is None:
                raise NotFoundError(f"no join request {request_id}")
            der = _issue(
                conn.key,
                conn.record,
                eid=request.eid,
                device_class=request.device_class,
                services=_services_of(services, request.device_class),
                quota=quota,
                ttl=ttl,
            )
            return await client.approve(conn.key, request_id, der)

        approved = conn.call(approve)
    click.echo(
        f"approved join request {approved.id}: {approved.device_class.value} "
        f"{approved.name!r} EID {approved.eid} ({approved.state.value})"
    )


@federation.command("devices")
@_manage_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def devices_command(
    device: str,
    euicc: str | None,
    operator_url: str | None,
    ca_file: str | None,
    no_tls: bool,
    as_json: bool,
) -> None:
    """List the subscription's devices (primary only)."""
    with _connected(device, euicc, operator_url, ca_file, no_tls, primary=True) as conn:
        found = conn.call(lambda client: client.devices(conn.key))
    if as_json:
        click.echo(json.dumps([device_row(d) for d in found], indent=2))
        return
    click.echo(f"{len(found)} device(s) in subscription {conn.record.subscription_id}")
    for d in found:
        click.echo(device_line(d))


@federation.command("remove")
@click.argument("device_id")
@_manage_options
@reports_errors
def remove_command(
    device_id: str,
    device: str,
    euicc: str | None,
    operator_url: str | None,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Remove secondary DEVICE_ID (primary only): its slot is freed and the network
    refuses its IMSI; the device's LPA deletes its profile at its next `sync`."""
    with _connected(device, euicc, operator_url, ca_file, no_tls, primary=True) as conn:
        removed = conn.call(lambda client: client.remove(conn.key, device_id))
    click.echo(
        f"removed device {removed.id} ({removed.device_class.value} {removed.name!r}, "
        f"ICCID {removed.iccid})"
    )


@federation.command("revoke")
@click.argument("token_id", required=False)
@click.option("--all", "revoke_all", is_flag=True, help="Revoke every outstanding token.")
@_manage_options
@reports_errors
def revoke_command(
    token_id: str | None,
    revoke_all: bool,
    device: str,
    euicc: str | None,
    operator_url: str | None,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Revoke the token TOKEN_ID (hex, as `federation token` prints it) or, with --all,
    every token signed so far; redeemed but not yet downloaded orders are cancelled."""
    if (token_id is None) == (not revoke_all):
        raise UsageError("give TOKEN_ID or --all (one of them)")
    raw: bytes | None = None
    if token_id is not None:
        try:
            raw = bytes.fromhex(token_id)
        except ValueError:
            raw = b""
        if len(raw) != TOKEN_ID_SIZE:
            raise UsageError(f"TOKEN_ID is {TOKEN_ID_SIZE} octets in hexadecimal")
    with _connected(device, euicc, operator_url, ca_file, no_tls, primary=True) as conn:
        cancelled = conn.call(lambda client: client.revoke(conn.key, raw))
    what = f"token {token_id}" if token_id is not None else "every outstanding token"
    click.echo(f"revoked {what}; {cancelled} pending order(s) cancelled")


# --------------------------------------------------------------------------
# sync


def _delete_profile(session: EuiccSession, iccid: str) -> bool:
    """Disable (if enabled) and delete the profile ``iccid``; whether it was there."""
    lpa = session.lpa
    profiles = {p.iccid: p for p in lpa.profiles()}
    profile = profiles.get(iccid)
    if profile is None:
        return False
    if profile.state == "enabled":
        lpa.disable(iccid)
    lpa.delete(iccid)
    return True


@federation.command("sync")
@_device_option(required=True)
@_euicc_option(
    "This device's software eUICC: a removed device's profile is deleted from it "
    "(through the LPA); its CIs are trusted for the operator's TLS."
)
@_connection_options
@reports_errors
def sync_command(
    device: str,
    euicc: str | None,
    operator_url: str | None,
    ca_file: str | None,
    no_tls: bool,
) -> None:
    """Ask the operator for this device's status; if the primary removed it, delete
    its profile through the LPA (with --euicc) and say so."""
    from rspfed.federation.device import DeviceRecord
    from rspfed.federation.types import DeviceState

    with _connected(device, euicc, operator_url, ca_file, no_tls, primary=False) as conn:
        status = conn.call(lambda client: client.status(conn.key))
        if status.state is not DeviceState.REMOVED:
            click.echo(
                f"device {status.id} ({status.role.value} {status.device_class.value} "
                f"{status.name!r}): {status.state.value}, ICCID {status.iccid}, services "
                f"{_names(status.services)}"
            )
            return
        click.echo(f"device {status.id} was removed from subscription {status.subscription_id}")
        if conn.session is None:
            click.echo(
                f"  its profile {status.iccid} is still on the eUICC: run sync with --euicc "
                "STORE to delete it"
            )
            return
        if _delete_profile(conn.session, status.iccid):
            click.echo(f"  deleted profile {status.iccid} from eUICC {conn.session.eid}")
        else:
            click.echo(f"  profile {status.iccid} is not on eUICC {conn.session.eid}")
        conn.store.set_record(
            DeviceRecord(
                operator_url=conn.record.operator_url,
                eid=conn.record.eid,
                device_class=conn.record.device_class,
                name=conn.record.name,
            )
        )


# --------------------------------------------------------------------------
# The shared data pool


def _percent(used: int, limit: int | None) -> str:
    return f"{100 * used / limit:5.1f} %" if limit else "     -"


def _alert_text(alert: dict[str, Any], names: dict[str, str]) -> str:
    scope = (
        "pool"
        if alert.get("scope") == "pool"
        else f"device {names.get(str(alert.get('device-id')), alert.get('device-id'))}"
    )
    return (
        f"{scope} at {alert['threshold']} % ({format_size(int(alert['used']))} of "
        f"{format_size(int(alert['limit']))}), pool epoch {alert['pool-epoch']}, "
        f"{alert['fired']}  [{alert['id']}]"
    )


@federation.command("usage")
@_manage_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def usage_command(
    device: str,
    euicc: str | None,
    operator_url: str | None,
    ca_file: str | None,
    no_tls: bool,
    as_json: bool,
) -> None:
    """Show the shared data pool: used/limit, each device against its quota, alerts.

    The primary sees every device; a secondary sees the pool and itself.
    Figures are the network's (billing); "reported" is the device's own count.
    """
    with _connected(device, euicc, operator_url, ca_file, no_tls, primary=False) as conn:
        view = conn.call(lambda client: client.usage(conn.key))
    if as_json:
        click.echo(json.dumps(view, indent=2))
        return
    pool = view["pool"]
    period = view["period"]
    click.echo(
        f"subscription {view['subscription-id']}: period {period['start']} .. {period['end']}"
    )
    click.echo(
        f"  pool  {format_size(int(pool['used']))} of {format_size(int(pool['limit']))} "
        f"({float(pool['percent']):.1f} %), pool epoch {pool['epoch']}"
    )
    click.echo(f"  {'device':20} {'class':8} {'used':>10} {'quota':>10} {'%':>7}  data")
    names: dict[str, str] = {}
    for d in view["devices"]:
        names[str(d["device-id"])] = str(d["name"])
        quota = d.get("quota") or None
        data = d["data"] + (f" ({d['reason']})" if d.get("reason") else "")
        click.echo(
            f"  {d['name'][:20]:20} {d['device-class']:8} {format_size(int(d['used'])):>10} "
            f"{format_size(int(quota)) if quota else '-':>10} "
            f"{_percent(int(d['used']), quota)}  {data}"
        )
    alerts = view["alerts"]
    click.echo(f"  {len(alerts)} alert(s) this period")
    for alert in alerts:
        click.echo("    " + _alert_text(alert, names))


@federation.command("alerts")
@_manage_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def alerts_command(
    device: str,
    euicc: str | None,
    operator_url: str | None,
    ca_file: str | None,
    no_tls: bool,
    as_json: bool,
) -> None:
    """Fetch this device's new usage alerts, print each, acknowledge them.

    The operator delivers each alert until it is acknowledged by its id, so
    every alert is printed once (twice only if the acknowledgement is lost).
    """
    from rspfed.federation.pool import FiredAlert
    from rspfed.federation.wire import fired_alert_to_json

    with _connected(device, euicc, operator_url, ca_file, no_tls, primary=False) as conn:

        async def work(client: OperatorClient) -> list[FiredAlert]:
            found = await client.alerts(conn.key)
            if found:
                await client.ack_alerts(conn.key, [a.id for a in found])
            return found

        alerts = conn.call(work)
    rows = [fired_alert_to_json(a) for a in alerts]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{len(rows)} new alert(s)")
    for row in rows:
        click.echo("  " + _alert_text(row, {}))
