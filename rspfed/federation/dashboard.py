"""The usage dashboard: a server-rendered page per subscription, reached by a signed link.

Two sans-IO parts (the HTTP route is in :mod:`rspfed.federation.http`):

**The page** (:func:`render_dashboard`): plain HTML5 from a
:class:`DashboardView` -- the pool gauge (used / limit, percent), a bar per
device against its quota (name, class, used, quota, state), the alert history
(threshold, scope, when) and usage over time as an inline SVG chart with axis
labels.  No script, no external resource: one inline ``<style>`` whose
SHA-256 the response's Content-Security-Policy names
(:data:`CONTENT_SECURITY_POLICY`), gauges are ``<meter>`` elements, the chart
has an ``aria-label`` and a table of its points.  Every text from outside
(device names are user input, subscription ids) goes through
:func:`html.escape`.

**The link** (:func:`issue_link`, :func:`verify_link`): the primary device
signs a short-lived ``DashboardLink`` (subscription id, its key id, validity
window, a nonce) with its federation key, ECDSA P-256 / SHA-256, in the same
DER-plus-TR-03111 layout as a federation token; the URL carries it base64url
in the query (``/rspfed/v1/dashboard?t=...``, :func:`link_url`).  The format
is specified in ``docs/dashboard.md`` with a test vector.  Links are
read-only and may be opened several times within their window (the nonce
makes every link distinct; it is not a single-use ticket).

Sans-IO: time (``now``) and randomness (``rand``) are given by the caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Final

import attrs
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed import asn1
from rspfed.asn1 import _base as b
from rspfed.crypto import signature as ecdsa
from rspfed.errors import (
    DecodeError,
    EncodeError,
    IntegrityError,
    NotFoundError,
    PolicyError,
    RspfedError,
    SignatureError,
    StorageError,
    TokenRevokedError,
    UsageError,
)
from rspfed.federation.ledger import (
    Action,
    EnforcementPolicy,
    LedgerState,
    billing_period,
    current_epoch,
    enforcement,
    period_usage,
)
from rspfed.federation.pool import fold_switched_iccids
from rspfed.federation.store import KeyRecord
from rspfed.federation.token import primary_key_id, verify_signed_window
from rspfed.federation.types import Device, DeviceRole, DeviceState, Plan, Subscription

if TYPE_CHECKING:
    from rspfed.federation.operator import Operator
    from rspfed.federation.pool import UsageView

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "DASHBOARD_PATH",
    "DEFAULT_LINK_TTL",
    "LINK_NONCE_SIZE",
    "LINK_VERSION",
    "MAX_CHART_POINTS",
    "MAX_LINK_TEXT",
    "MAX_LINK_TTL",
    "RESPONSE_HEADERS",
    "AlertEntry",
    "DashboardLink",
    "DashboardView",
    "DeviceUsage",
    "UsagePoint",
    "authorize_link",
    "dashboard_answer",
    "error_page",
    "format_octets",
    "issue_link",
    "link_from_text",
    "link_text",
    "link_url",
    "operator_view",
    "parse_link",
    "percent",
    "pool_view",
    "render_dashboard",
    "verify_link",
    "view_from_ledger",
]

LINK_VERSION: Final = 1
"""The ``version`` of a ``DashboardLink`` this implementation writes and accepts."""

LINK_NONCE_SIZE: Final = 16
"""Octets of a link's random nonce."""

DEFAULT_LINK_TTL: Final = timedelta(minutes=10)
"""Default validity window of a dashboard link."""

MAX_LINK_TTL: Final = timedelta(hours=24)
"""Hard cap on a link's window, at issue and at verification (as for tokens)."""

MAX_LINK_TEXT: Final = 1024
"""Longest ``t`` query value accepted (a valid link is at most 548 characters, with 64
four-octet characters of subscription id; typically about 210)."""

MAX_CHART_POINTS: Final = 400
"""Most points the chart draws: more samples are thinned to the last one of each of
this many equal time slices (usage is cumulative, so the curve keeps its shape)."""

DASHBOARD_PATH: Final = "/rspfed/v1/dashboard"
"""The route that serves the page."""

_TYPE = "DashboardLink"
_TBS_TAG = b"\xa0"
_MAX_SUBSCRIPTION_ID = 64


# --------------------------------------------------------------------------
# ASN.1 (see docs/dashboard.md; AUTOMATIC TAGS)


class _Version(b.Integer):
    _asn1_name = "DashboardLink.version"
    _value_range = ((1, 255),)


class _SubscriptionId(b.UTF8String):
    _asn1_name = "TBSDashboardLink.subscriptionId"
    _size_constraint = ((1, _MAX_SUBSCRIPTION_ID),)


class _KeyId(b.OctetString):
    _asn1_name = "TBSDashboardLink.primaryKeyId"
    _size_constraint = ((20, 20),)


class _Nonce(b.OctetString):
    _asn1_name = "TBSDashboardLink.nonce"
    _size_constraint = ((LINK_NONCE_SIZE, LINK_NONCE_SIZE),)


class _Signature(b.OctetString):
    _asn1_name = "DashboardLink.signature"
    _size_constraint = ((64, 64),)


class _TBSDashboardLink(b.Sequence):
    _asn1_name = "TBSDashboardLink"
    _fields = [  # noqa: RUF012 - asn1crypto's schema attribute
        ("version", _Version, {"implicit": ("context", 0)}),
        ("subscriptionId", _SubscriptionId, {"implicit": ("context", 1)}),
        ("primaryKeyId", _KeyId, {"implicit": ("context", 2)}),
        ("notBefore", b.GeneralizedTime, {"implicit": ("context", 3)}),
        ("notAfter", b.GeneralizedTime, {"implicit": ("context", 4)}),
        ("nonce", _Nonce, {"implicit": ("context", 5)}),
    ]


class _DashboardLink(b.Sequence):
    _asn1_name = "DashboardLink"
    _fields = [  # noqa: RUF012 - asn1crypto's schema attribute
        ("tbsLink", _TBSDashboardLink, {"implicit": ("context", 0)}),
        ("signature", _Signature, {"implicit": ("context", 1)}),
    ]


# --------------------------------------------------------------------------
# The link


@attrs.frozen
class DashboardLink:
    """The fields of a dashboard link (``TBSDashboardLink``).

    Valid while ``not_before <= now < not_after`` (timezone-aware UTC,
    whole seconds).  ``primary_key_id`` names the primary's federation key
    (:func:`~rspfed.federation.token.primary_key_id`).
    """

    subscription_id: str
    primary_key_id: bytes
    not_before: datetime
    not_after: datetime
    nonce: bytes = attrs.field(repr=False)
    version: int = LINK_VERSION


def _utc_seconds(when: datetime, name: str) -> datetime:
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise UsageError(f"{name} must be a timezone-aware datetime")
    return when.astimezone(UTC).replace(microsecond=0)


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def issue_link(
    primary_key: ec.EllipticCurvePrivateKey,
    *,
    subscription_id: str,
    now: datetime,
    rand: Callable[[int], bytes],
    ttl: timedelta = DEFAULT_LINK_TTL,
    deterministic: bool = False,
) -> bytes:
    """Sign a dashboard link; its DER (``DashboardLink``).

    ``notBefore`` is ``now`` (whole seconds, UTC), ``notAfter`` that plus
    ``ttl`` (whole seconds, 1 s to :data:`MAX_LINK_TTL`); the nonce is 16
    octets of ``rand``.  ``deterministic`` signs with RFC 6979 nonces (test
    vectors).  :class:`~rspfed.errors.UsageError` for a non-P-256 key, a
    subscription id of 0 or more than 64 characters, or a TTL outside the cap.
    """
    if not isinstance(primary_key, ec.EllipticCurvePrivateKey) or not isinstance(
        primary_key.curve, ec.SECP256R1
    ):
        raise UsageError("a dashboard link is signed with a P-256 private key")
    if not isinstance(subscription_id, str) or not (
        1 <= len(subscription_id) <= _MAX_SUBSCRIPTION_ID
    ):
        raise UsageError(f"subscription id must be 1 to {_MAX_SUBSCRIPTION_ID} characters")
    if not isinstance(ttl, timedelta):
        raise UsageError("ttl must be a timedelta")
    ttl = timedelta(seconds=int(ttl.total_seconds()))
    if ttl <= timedelta(0) or ttl > MAX_LINK_TTL:
        raise UsageError(f"ttl must be at least 1 s and at most {MAX_LINK_TTL}")
    not_before = _utc_seconds(now, "now")
    nonce = bytes(rand(LINK_NONCE_SIZE))
    if len(nonce) != LINK_NONCE_SIZE:
        raise UsageError(f"rand({LINK_NONCE_SIZE}) returned {len(nonce)} octets")
    tbs = _TBSDashboardLink(
        {
            "version": LINK_VERSION,
            "subscriptionId": subscription_id,
            "primaryKeyId": primary_key_id(primary_key.public_key()),
            "notBefore": not_before,
            "notAfter": not_before + ttl,
            "nonce": nonce,
        }
    )
    try:
        tbs_der = asn1.encode(tbs)
    except EncodeError as exc:  # pragma: no cover - every field is checked above
        raise UsageError(f"cannot encode the link: {exc}") from None
    signed = _TBS_TAG + tbs_der[1:]  # tbsLink as it appears: [0] constructed
    signature = ecdsa.sign(primary_key, signed, deterministic=deterministic)
    content = signed + b"\x81\x40" + signature
    return b"\x30" + _der_length(len(content)) + content


def _decode(der: bytes) -> tuple[DashboardLink, bytes, bytes]:
    if not isinstance(der, bytes | bytearray | memoryview):
        raise UsageError("a dashboard link is bytes")
    value = asn1.decode(_DashboardLink, der)
    tbs = value["tbsLink"]
    version = int(tbs["version"].native)
    if version != LINK_VERSION:
        raise DecodeError(f"unsupported dashboard link version {version}", type_name=_TYPE)
    link = DashboardLink(
        subscription_id=tbs["subscriptionId"].native,
        primary_key_id=tbs["primaryKeyId"].native,
        not_before=tbs["notBefore"].native.astimezone(UTC),
        not_after=tbs["notAfter"].native.astimezone(UTC),
        nonce=tbs["nonce"].native,
        version=version,
    )
    return link, asn1.received_der(tbs), value["signature"].native


def parse_link(der: bytes) -> DashboardLink:
    """Decode a link *without* checking its signature or window (to find its key).

    :class:`~rspfed.errors.DecodeError` for anything but a strict-DER
    version-1 ``DashboardLink``.
    """
    return _decode(der)[0]


def verify_link(
    der: bytes, *, primary_public_key: ec.EllipticCurvePublicKey, now: datetime
) -> DashboardLink:
    """Check a link against the primary's registered public key and the time.

    In this order: strict DER, version 1 (:class:`~rspfed.errors.DecodeError`);
    ``primaryKeyId`` is the key's and the signature over ``tbsLink`` verifies
    (:class:`~rspfed.errors.SignatureError`); the window is not empty and at
    most :data:`MAX_LINK_TTL` (:class:`~rspfed.errors.TokenError`);
    ``notBefore <= now`` (:class:`~rspfed.errors.TokenNotYetValidError`);
    ``now < notAfter`` (:class:`~rspfed.errors.TokenExpiredError`).  Whether
    the key is the subscription's registered, still-active primary key is
    the caller's to check (the operator's route does, before this).
    """
    if not isinstance(primary_public_key, ec.EllipticCurvePublicKey) or not isinstance(
        primary_public_key.curve, ec.SECP256R1
    ):
        raise UsageError("the primary key must be a P-256 public key")
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise UsageError("now must be a timezone-aware datetime")
    link, tbs_der, signature = _decode(der)
    verify_signed_window(
        "dashboard link",
        key_id=link.primary_key_id,
        public_key=primary_public_key,
        tbs_der=tbs_der,
        signature=signature,
        not_before=link.not_before,
        not_after=link.not_after,
        now=now,
        cap=MAX_LINK_TTL,
    )
    return link


def link_text(der: bytes) -> str:
    """The ``t`` query value: base64url of the DER, no padding (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(bytes(der)).rstrip(b"=").decode("ascii")


def link_from_text(text: str) -> bytes:
    """The DER of a ``t`` query value; :class:`~rspfed.errors.DecodeError` unless it is
    canonical unpadded base64url of at most :data:`MAX_LINK_TEXT` characters."""
    if not isinstance(text, str) or not text or len(text) > MAX_LINK_TEXT:
        raise DecodeError("the link parameter t is missing or too long", type_name=_TYPE)
    if not text.isascii() or not all(c.isalnum() or c in "-_" for c in text):
        raise DecodeError("the link parameter t is not base64url", type_name=_TYPE)
    try:
        der = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise DecodeError("the link parameter t is not base64url", type_name=_TYPE) from None
    if link_text(der) != text:
        raise DecodeError("the link parameter t is not canonical base64url", type_name=_TYPE)
    return der


def link_url(operator_url: str, der: bytes) -> str:
    """The page's URL at ``operator_url`` (``https://host:port``) for a signed link."""
    if not isinstance(operator_url, str) or "://" not in operator_url:
        raise UsageError("the operator URL must be scheme://host[:port]")
    return f"{operator_url.rstrip('/')}{DASHBOARD_PATH}?t={link_text(der)}"


# --------------------------------------------------------------------------
# The view


@attrs.frozen
class DeviceUsage:
    """One device's bar: ``used`` against ``quota`` octets (0: no quota, unlimited).

    ``state`` is a short word for the page (``active``, ``throttled``,
    ``barred``, ...).
    """

    name: str
    device_class: str
    used: int
    quota: int = 0
    state: str = "active"


@attrs.frozen
class AlertEntry:
    """A fired alert: ``threshold`` percent of ``scope`` (``"pool"`` or a device's
    name), fired at ``fired_at`` (``None`` when not recorded)."""

    threshold: int
    scope: str
    fired_at: datetime | None = None


@attrs.frozen
class UsagePoint:
    """The pool's used octets at a moment."""

    at: datetime
    used: int


@attrs.frozen
class DashboardView:
    """What the page shows for one subscription (network figures).

    ``pool_limit`` 0 means no pool limit is known (the gauge then shows the
    figure only).  ``period_start``/``period_end`` bound the billing period,
    if known.  ``points`` are in time order (the chart sorts them anyway).
    """

    subscription_id: str
    pool_limit: int
    pool_used: int
    devices: tuple[DeviceUsage, ...] = ()
    alerts: tuple[AlertEntry, ...] = ()
    points: tuple[UsagePoint, ...] = ()
    period_start: datetime | None = None
    period_end: datetime | None = None


def view_from_ledger(
    state: LedgerState,
    *,
    plan: Plan,
    period: int,
    devices: Iterable[Device],
    period_end: int | None = None,
    fired_at: Mapping[tuple[str | None, int, int], datetime] | None = None,
    points: Iterable[UsagePoint] = (),
    policy: EnforcementPolicy | None = None,
    iccid_aliases: Mapping[str, str] | None = None,
) -> DashboardView:
    """A :class:`DashboardView` computed from a subscription's ledger (network figures).

    ``period`` is the billing period's id; the pool limit is its current
    epoch's (:func:`~rspfed.federation.ledger.current_epoch`), the usage
    :func:`~rspfed.federation.ledger.period_usage`'s; devices (removed ones
    left out unless they used data) show their name, class, quota and the
    enforcement decision (``active``, ``throttled``, ``barred``; ``ordered``
    before their profile is installed).  Alerts are the fired keys of the
    period, their time from ``fired_at`` (``(iccid or None, threshold,
    pool epoch)`` -> when) if known; ``points`` the usage samples to chart.
    ``iccid_aliases`` (old ICCID -> the device's current ICCID, after device
    changes; see :func:`rspfed.federation.pool.fold_switched_iccids`) makes a
    device's figures and alerts those of every ICCID it has held.
    """
    if iccid_aliases:
        state = fold_switched_iccids(state, iccid_aliases)
    usage = period_usage(state, period)
    epoch = current_epoch(state, plan, period)
    listed = [
        d
        for d in devices
        if d.state is not DeviceState.REMOVED or usage.by_iccid.get(d.iccid, 0) > 0
    ]
    decisions = enforcement(state, plan, period, {d.iccid: d.quota_bytes for d in listed}, policy)
    names = {d.iccid: d.name for d in listed}
    rows = []
    for d in listed:
        decision = decisions[d.iccid]
        word = _state_word(d.state, decision.action, decision.reason)
        rows.append(
            DeviceUsage(d.name, d.device_class.value, decision.used, d.quota_bytes or 0, word)
        )
    when = fired_at or {}
    alerts = [
        AlertEntry(
            k.threshold,
            "pool" if k.device is None else names.get(k.device, k.device),
            when.get((k.device, k.threshold, k.pool_epoch)),
        )
        for k in sorted(state.fired, key=lambda k: k.sort_key())
        if k.period == period
    ]
    return DashboardView(
        subscription_id=state.subscription_id,
        pool_limit=epoch.limit,
        pool_used=usage.total,
        devices=tuple(rows),
        alerts=tuple(alerts),
        points=tuple(points),
        period_start=datetime.fromtimestamp(period, UTC),
        period_end=None if period_end is None else datetime.fromtimestamp(period_end, UTC),
    )


def _state_word(state: DeviceState, action: Action, reason: str) -> str:
    if state is not DeviceState.ACTIVE:
        return str(state.value)
    if action is Action.ALLOW:
        return "active"
    return f"{action.value} ({reason})" if reason else str(action.value)


def pool_view(usage: UsageView) -> DashboardView:
    """The :class:`DashboardView` of a :class:`rspfed.federation.pool.UsageView`
    (:meth:`PoolService.view <rspfed.federation.pool.PoolService.view>`): the
    same figures; device states from the enforcement decision, alert scopes by
    device name, alert times as recorded when they fired."""
    names = {d.device_id: d.name for d in usage.devices}
    return DashboardView(
        subscription_id=usage.subscription_id,
        pool_limit=usage.pool_limit,
        pool_used=usage.pool_used,
        devices=tuple(
            DeviceUsage(
                d.name,
                d.device_class.value,
                d.used,
                d.quota or 0,
                _state_word(d.state, d.action, d.reason),
            )
            for d in usage.devices
        ),
        alerts=tuple(
            AlertEntry(
                a.threshold,
                "pool" if a.key.device is None else names.get(a.device_id or "", a.key.device),
                a.fired,
            )
            for a in usage.alerts
        ),
        points=tuple(UsagePoint(p.at, p.used) for p in usage.points),
        period_start=usage.period.start,
        period_end=usage.period.end,
    )


def operator_view(
    op: Operator,
    subscription_id: str,
    now: datetime,
    *,
    ledger: LedgerState | None = None,
    fired_at: Mapping[tuple[str | None, int, int], datetime] | None = None,
    points: Iterable[UsagePoint] = (),
) -> DashboardView:
    """The view of a subscription of the operator ``op`` in the billing period holding ``now``.

    Its plan and devices come from the operator; the usage from ``ledger``
    (an empty ledger when ``None``), through :func:`view_from_ledger`.
    """
    sub = op.subscription(subscription_id)
    period = billing_period(sub.created, sub.plan.period, now)
    return view_from_ledger(
        ledger if ledger is not None else LedgerState(subscription_id),
        plan=sub.plan,
        period=period.id,
        period_end=int(period.end.timestamp()),
        devices=op.store.devices(subscription_id),
        fired_at=fired_at,
        points=points,
        iccid_aliases={old: now for old, _, now in op.store.switched_iccids(subscription_id)},
    )


# --------------------------------------------------------------------------
# Rendering

_UNITS: Final = (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3))

_CSS: Final = """
body{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:48rem;padding:0 1rem;
color:#1b1b1b;background:#fff}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}
meter{width:100%;height:1.2rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #ddd}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.over{color:#a40000;font-weight:bold}
figure{margin:0}svg{max-width:100%;height:auto}
footer{margin-top:2rem;color:#555;font-size:.85rem}
""".strip()

_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(_CSS.encode("utf-8")).digest()).decode()

CONTENT_SECURITY_POLICY: Final = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""The page's Content-Security-Policy: nothing may load or run but its own inline style."""

RESPONSE_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
"""Headers of every dashboard answer (the page and its error pages)."""


def format_octets(octets: int) -> str:
    """``octets`` in decimal units (``1.5 GB``, ``300 MB``, ``0 B``), as the CLI sizes."""
    for name, unit in _UNITS:
        if octets >= unit:
            text = f"{Decimal(octets) / unit:.2f}".rstrip("0").rstrip(".")
            return f"{text} {name}"
    return f"{octets} B"


def percent(used: int, limit: int) -> str:
    """``used`` as a percentage of ``limit`` with one decimal (``"37.5 %"``); ``"–"``
    (no limit) when ``limit`` is 0."""
    if limit <= 0:
        return "–"
    tenths = (used * 1000 + limit // 2) // limit
    return f"{tenths // 10}.{tenths % 10} %"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _when(when: datetime | None) -> str:
    if when is None:
        return "<td>not recorded</td>"
    at = when.astimezone(UTC).replace(microsecond=0)
    stamp = _e(at.strftime("%Y-%m-%d %H:%M:%S"))
    return f'<td><time datetime="{_e(at.isoformat())}">{stamp} UTC</time></td>'


def _gauge(used: int, limit: int, label: str) -> str:
    """A ``<meter>`` (capped at its max; the text says the real figure)."""
    if limit <= 0:
        return ""
    value = min(used, limit)
    return (
        f'<meter min="0" max="{limit}" low="{limit // 2}" high="{limit * 9 // 10}" '
        f'optimum="0" value="{value}" aria-label="{_e(label)}">{_e(percent(used, limit))}</meter>'
    )


def _pool(view: DashboardView) -> str:
    used, limit = view.pool_used, view.pool_limit
    if limit > 0:
        pct = percent(used, limit)
        text = f"{format_octets(used)} of {format_octets(limit)} used ({pct})"
        over = ' class="over"' if used > limit else ""
    else:
        pct = "–"
        text = f"{format_octets(used)} used (no pool limit)"
        over = ""
    return (
        '<section aria-labelledby="pool-h"><h2 id="pool-h">Data pool</h2>'
        f'<p id="pool-text"{over}>{_e(text)}</p>'
        f'<p>Pool used: <data id="pool-percent" value="{_e(pct)}">{_e(pct)}</data></p>'
        f"{_gauge(used, limit, 'Pool used: ' + text)}</section>"
    )


def _devices(view: DashboardView) -> str:
    if not view.devices:
        return (
            '<section aria-labelledby="dev-h"><h2 id="dev-h">Devices</h2>'
            "<p>No devices use the pool yet.</p></section>"
        )
    rows = []
    for d in view.devices:
        quota = format_octets(d.quota) if d.quota > 0 else "unlimited"
        share = percent(d.used, d.quota) if d.quota > 0 else "–"
        share_class = "num share over" if d.quota > 0 and d.used > d.quota else "num share"
        label = f"{d.name}: {format_octets(d.used)} of {quota}"
        bar = _gauge(d.used, d.quota, label) if d.quota > 0 else "no quota"
        rows.append(
            f'<tr class="device"><th scope="row" class="name">{_e(d.name)}</th>'
            f'<td class="class">{_e(d.device_class)}</td>'
            f'<td class="num used" data-octets="{d.used}">{_e(format_octets(d.used))}</td>'
            f'<td class="num quota" data-octets="{d.quota}">{_e(quota)}</td>'
            f'<td class="{share_class}">{_e(share)}</td>'
            f"<td>{bar}</td>"
            f'<td class="state">{_e(d.state)}</td></tr>'
        )
    return (
        '<section aria-labelledby="dev-h"><h2 id="dev-h">Devices</h2><table id="devices">'
        "<caption>Each device's use against its quota</caption><thead><tr>"
        '<th scope="col">Device</th><th scope="col">Class</th><th scope="col" class="num">Used'
        '</th><th scope="col" class="num">Quota</th><th scope="col" class="num">Share</th>'
        '<th scope="col">Bar</th><th scope="col">State</th></tr></thead><tbody>'
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _alerts(view: DashboardView) -> str:
    if not view.alerts:
        body = "<p>No alerts yet.</p>"
    else:
        ordered = sorted(
            view.alerts,
            key=lambda a: (a.fired_at or datetime.min.replace(tzinfo=UTC), a.scope, a.threshold),
        )
        rows = "".join(
            f'<tr class="alert"><td class="num threshold">{a.threshold} %</td>'
            f'<td class="scope">{_e(a.scope)}</td>{_when(a.fired_at)}</tr>'
            for a in ordered
        )
        body = (
            '<table id="alerts"><caption>Alerts fired this period</caption><thead><tr>'
            '<th scope="col" class="num">Threshold</th><th scope="col">Scope</th>'
            f'<th scope="col">When</th></tr></thead><tbody>{rows}</tbody></table>'
        )
    return f'<section aria-labelledby="al-h"><h2 id="al-h">Alerts</h2>{body}</section>'


_W, _H = 640, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 80, 20, 20, 50


def _thin(points: list[UsagePoint]) -> list[UsagePoint]:
    """At most :data:`MAX_CHART_POINTS`: the last sample of each equal time slice."""
    if len(points) <= MAX_CHART_POINTS:
        return points
    t0 = points[0].at.timestamp()
    width = (points[-1].at.timestamp() - t0) / MAX_CHART_POINTS or 1.0
    last: dict[int, UsagePoint] = {}
    for p in points:
        last[min(int((p.at.timestamp() - t0) / width), MAX_CHART_POINTS - 1)] = p
    kept = [last[k] for k in sorted(last)]
    if kept[0] != points[0]:  # keep the first sample too, in place of slice 0's last
        kept = [points[0], *kept[1:]] if len(kept) == MAX_CHART_POINTS else [points[0], *kept]
    return kept


def _chart(view: DashboardView) -> str:
    samples = sorted(view.points, key=lambda p: p.at)
    head = '<section aria-labelledby="ch-h"><h2 id="ch-h">Usage over time</h2>'
    if not samples:
        return head + "<p>No usage recorded yet.</p></section>"
    points = _thin(samples)
    t0 = points[0].at.timestamp()
    t1 = points[-1].at.timestamp()
    span = max(t1 - t0, 1.0)
    top = max([p.used for p in points] + [view.pool_limit, 1])
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def xy(p: UsagePoint) -> tuple[float, float]:
        x = _LEFT + (p.at.timestamp() - t0) / span * plot_w if len(points) > 1 else _LEFT
        y = _TOP + plot_h - p.used / top * plot_h
        return round(x, 1), round(y, 1)

    coords = [xy(p) for p in points]
    line = " ".join(f"{x},{y}" for x, y in coords)
    circles = "".join(
        f'<circle class="point" cx="{x}" cy="{y}" r="3" fill="#0b57d0"/>' for x, y in coords
    )
    first = points[0].at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    last = points[-1].at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    x_axis = _TOP + plot_h
    limit_line = ""
    if view.pool_limit > 0:
        ly = round(_TOP + plot_h - view.pool_limit / top * plot_h, 1)
        limit_line = (
            f'<line x1="{_LEFT}" y1="{ly}" x2="{_W - _RIGHT}" y2="{ly}" stroke="#a40000" '
            f'stroke-dasharray="4 3"/><text x="{_W - _RIGHT}" y="{ly - 4}" text-anchor="end" '
            f'font-size="11" fill="#a40000">pool limit {_e(format_octets(view.pool_limit))}</text>'
        )
    thinned = f" (of {len(samples)} samples)" if len(samples) > len(points) else ""
    summary = (
        f"Line chart of pool usage: {len(points)} points{thinned} from {first} UTC to "
        f"{last} UTC, from {format_octets(points[0].used)} to {format_octets(points[-1].used)}"
    )
    svg = (
        f'<svg id="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" '
        f'width="{_W}" height="{_H}" role="img" aria-label="{_e(summary)}" '
        f'data-points="{len(points)}"><title>{_e(summary)}</title>'
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{x_axis}" stroke="#333"/>'
        f'<line x1="{_LEFT}" y1="{x_axis}" x2="{_W - _RIGHT}" y2="{x_axis}" stroke="#333"/>'
        f'<text x="{_LEFT - 6}" y="{x_axis}" text-anchor="end" font-size="11">0 B</text>'
        f'<text x="{_LEFT - 6}" y="{_TOP + 4}" text-anchor="end" font-size="11">'
        f"{_e(format_octets(top))}</text>"
        f'<text x="{_LEFT}" y="{x_axis + 16}" font-size="11">{_e(first)}</text>'
        f'<text x="{_W - _RIGHT}" y="{x_axis + 16}" text-anchor="end" font-size="11">'
        f"{_e(last)}</text>"
        f'<text class="axis-label" x="{_LEFT + plot_w / 2}" y="{_H - 8}" text-anchor="middle" '
        'font-size="12">time (UTC)</text>'
        f'<text class="axis-label" x="14" y="{_TOP + plot_h / 2}" text-anchor="middle" '
        f'font-size="12" transform="rotate(-90 14 {_TOP + plot_h / 2})">pool used</text>'
        f"{limit_line}"
        f'<polyline points="{line}" fill="none" stroke="#0b57d0" stroke-width="2"/>'
        f"{circles}</svg>"
    )
    rows = "".join(
        f"<tr>{_when(p.at)}<td class='num'>{_e(format_octets(p.used))}</td></tr>" for p in points
    )
    table = (
        '<details><summary>The chart as a table</summary><table id="points">'
        '<caption>Pool usage over time</caption><thead><tr><th scope="col">When</th>'
        f'<th scope="col" class="num">Pool used</th></tr></thead><tbody>{rows}</tbody>'
        "</table></details>"
    )
    return f"{head}<figure>{svg}<figcaption>{_e(summary)}</figcaption></figure>{table}</section>"


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def render_dashboard(view: DashboardView | UsageView, *, now: datetime) -> str:
    """The page for ``view`` as of ``now`` (HTML5 text; serve it with
    :data:`RESPONSE_HEADERS`).

    ``view`` is a :class:`DashboardView` or the pool service's
    :class:`rspfed.federation.pool.UsageView` (converted by :func:`pool_view`).
    """
    if not isinstance(view, DashboardView):
        from rspfed.federation.pool import UsageView as _UsageView

        if not isinstance(view, _UsageView):
            raise UsageError("view must be a DashboardView or a pool UsageView")
        view = pool_view(view)
    at = _utc_seconds(now, "now")
    period = ""
    if view.period_start is not None and view.period_end is not None:
        period = (
            f"<p>Billing period {_e(view.period_start.astimezone(UTC).date().isoformat())} to "
            f"{_e(view.period_end.astimezone(UTC).date().isoformat())}.</p>"
        )
    body = (
        f"<header><h1>Data usage of subscription {_e(view.subscription_id)}</h1>{period}"
        "</header><main>"
        + _pool(view)
        + _devices(view)
        + _alerts(view)
        + _chart(view)
        + "</main><footer>Network figures as of "
        f'<time datetime="{_e(at.isoformat())}">{_e(at.strftime("%Y-%m-%d %H:%M:%S"))} UTC'
        "</time>. This page is read-only; its link expires soon.</footer>"
    )
    return _page(f"Data usage – {view.subscription_id}", body)


def error_page(status: int, message: str) -> str:
    """A plain error page (``status`` and an explanation, escaped)."""
    reasons = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found"}
    title = f"{status} {reasons.get(status, 'Error')}"
    return _page(title, f"<main><h1>{_e(title)}</h1><p>{_e(message)}</p></main>")


# --------------------------------------------------------------------------
# Serving (the operator's route calls this)


def authorize_link(
    der: bytes,
    *,
    key: Callable[[bytes], KeyRecord | None],
    subscription: Callable[[str], Subscription],
    now: datetime,
) -> DashboardLink:
    """Check a link against the operator's records; the link when it may be shown.

    ``key`` looks a registered key up by id (``store.key``), ``subscription``
    a subscription by id (``Operator.subscription``, raising
    :class:`~rspfed.errors.NotFoundError`).  In order: the link decodes
    (:class:`~rspfed.errors.DecodeError`); its key is registered, is a primary
    key and belongs to the subscription the link names
    (:class:`~rspfed.errors.SignatureError`); it is still active -- a key
    replaced by a later registration no longer opens dashboards
    (:class:`~rspfed.errors.TokenRevokedError`); then :func:`verify_link`
    (signature, window); finally the link is not older than the primary's
    last "revoke all" (:class:`~rspfed.errors.TokenRevokedError`).
    """
    link = parse_link(der)
    record = key(link.primary_key_id)
    if record is None:
        raise SignatureError("the dashboard link is signed with an unknown key")
    if record.role is not DeviceRole.PRIMARY or record.subscription_id != link.subscription_id:
        raise SignatureError("the dashboard link is not signed by the subscription's primary key")
    if not record.active:
        raise TokenRevokedError("the key that signed the dashboard link was replaced")
    try:
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), record.public_key)
    except ValueError:  # pragma: no cover - the operator stores valid points only
        raise IntegrityError("the registered key is not a P-256 point") from None
    verified = verify_link(der, primary_public_key=public, now=now)
    sub = subscription(verified.subscription_id)
    revoked = sub.tokens_revoked_before
    if revoked is not None and verified.not_before <= revoked:
        raise TokenRevokedError("the primary revoked its outstanding links and tokens")
    return verified


def _status(exc: RspfedError) -> int:
    if isinstance(exc, SignatureError | IntegrityError):
        return 401
    if isinstance(exc, PolicyError):
        return 403
    if isinstance(exc, NotFoundError):
        return 403  # the subscription went away: the link opens nothing
    if isinstance(exc, StorageError):
        return 503
    return 400


def dashboard_answer(
    values: list[str],
    *,
    key: Callable[[bytes], KeyRecord | None],
    subscription: Callable[[str], Subscription],
    view: Callable[[str], DashboardView],
    now: datetime,
) -> tuple[int, str]:
    """The status and HTML page answering ``GET /rspfed/v1/dashboard?t=...``.

    ``values`` are the query's ``t`` values (exactly one is accepted);
    ``key`` and ``subscription`` as for :func:`authorize_link`; ``view``
    builds the subscription's :class:`DashboardView`.  Refusals are a plain
    error page: 400 malformed, 401 forged or unknown key, 403 expired, not
    yet valid, replaced key or revoked; a :class:`~rspfed.errors.StorageError`
    is 503.  Any other :class:`~rspfed.errors.RspfedError` is 400; other
    exceptions propagate (the route logs them).
    """
    try:
        if len(values) != 1:
            raise DecodeError("give exactly one link parameter t", type_name=_TYPE)
        link = authorize_link(
            link_from_text(values[0]), key=key, subscription=subscription, now=now
        )
        return 200, render_dashboard(view(link.subscription_id), now=now)
    except RspfedError as exc:
        status = _status(exc)
        return status, error_page(status, str(exc) if status != 503 else "try again later")
