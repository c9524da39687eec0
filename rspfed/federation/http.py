"""The operator service over HTTPS: its routes on the SM-DP+'s aiohttp application.

One application serves ES9+ and ES2+ (:func:`rspfed.smdp.http.make_app`) and
the operator's own API under ``/rspfed/v1/`` (all ``POST``, JSON bodies,
``Content-Type: application/json``; members in :mod:`rspfed.federation.wire`):

=================  ======  ==============================================================
route              signed  request → answer
=================  ======  ==============================================================
``eap``            no      ``{"eap-id", "purpose", "eid"?, "service"?, "plmn"?}`` then
                           ``{"session", "eap-relay-packet"}`` →
                           ``{"session", "eap-relay-packet", "done", "device"?, "services"?}``
``redeem``         no      ``{"token", "eid"}`` → Enrolment
``join``           no      ``{"subscription-id", "eid", "device-class", "name"}`` → JoinTicket
``join/collect``   no      ``{"request-id", "secret"}`` → Enrolment, or 202 ``{"state": "pending"}``
``requests``       yes     ``{}`` → ``{"requests": [JoinRequest]}``
``approve``        yes     ``{"request-id", "token"}`` → ``{"request": JoinRequest}``
``devices``        yes     ``{}`` → ``{"devices": [Device]}``
``remove``         yes     ``{"device-id"}`` → ``{"device": Device}``
``revoke``         yes     ``{"token-id"?}`` → ``{"cancelled": n}``
``status``         yes     ``{}`` → ``{"device": Device}``
``network/use``    no      ``{"bearer", "octets"}`` → UsageResult (the bearer id a finished
                           attach ``eap`` answer carries as ``"bearer"`` is the capability)
``network/cells``  no      ``{}`` → ``{"cells": [{"plmn", "rat", "signal_dbm", "country",
                           "name"}]}``: the simulated radio on air now, strongest first
                           (an attach's ``"plmn"`` must be on air and home or a roaming
                           partner: ``no-coverage``, ``plmn-not-allowed``)
``usage``          yes     ``{}`` → UsageView (primary: every device; others: the pool and
                           their own line)
``usage/state``    yes     ``{"since"?}`` → ``{"state": base64 DER LedgerState, "version"}``
                           (the delta written after version ``since``; all of it for 0)
``usage/report``   yes     ``{"batch": base64 DER DeviceUsageBatch}`` → ``{"merged": n}``
``alerts``         yes     ``{}`` → ``{"alerts": [FiredAlert]}`` (queued for the caller)
``alerts/ack``     yes     ``{"ids": [hex]}`` → ``{"acked": n}``
=================  ======  ==============================================================

Device change (docs/device-change-operator.md; ``DeviceChange`` as
:func:`rspfed.federation.change.device_change_to_json` writes it):

==========================  ======  =====================================================
route                       signed  request → answer
==========================  ======  =====================================================
``device-change``           yes     ``{"new-eid", "name"?, "device-class"?}`` →
                                    ``{"change": DeviceChange, "activation-code",
                                    "secret"}`` (the moving device signs)
``device-change/status``    no      ``{"change-id", "secret"}`` → ``{"change": DeviceChange}``
``device-change/cancel``    yes     ``{"change-id"}`` → ``{"change": DeviceChange}``
``device-change/complete``  no      ``{"change-id", "secret"}`` → ``{"change": DeviceChange}``
``device-change/latest``    yes     ``{}`` → ``{"change": DeviceChange or null}``
==========================  ======  =====================================================

``GET /rspfed/v1/dashboard?t=LINK`` serves the subscription's usage page
(HTML, :mod:`rspfed.federation.dashboard`) to a short-lived link the primary
signed; a refused link gets a plain error page (400, 401, 403), never a 5xx.

Signed routes need ``Authorization: RSPFED-SIG1 ...``
(:mod:`rspfed.federation.signing`) over the exact request target and body.

Errors are ``{"error": {"type": NAME, "message": TEXT}}`` with NAME the
:class:`~rspfed.errors.RspfedError` subclass the core raised
(:func:`error_status` picks the status: 400 malformed or misused, 401
signature, replay or failed authentication, 403 policy, 404 unknown, 409
state, 503 storage).  An unexpected exception is logged (its type and stack,
never its text) and answered 500 ``RspfedError`` "internal error"; bad input
never gets a 5xx.

The core is synchronous and called inline on the event loop, like the
SM-DP+'s.  :meth:`Operator.sync` runs after each successful ES9+
authenticateClient, handleNotification and cancelSession (so a token is
consumed and a device activated as soon as the SM-DP+ knows) and every
``sync_interval`` seconds in a background task (``full=True``: lapsed orders,
orphans, expired nonces and sessions).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import attrs
from aiohttp import web

from rspfed.errors import (
    CertificateError,
    DecodeError,
    FunctionExecutionError,
    IntegrityError,
    LocalError,
    NotFoundError,
    PolicyError,
    ProtocolError,
    RemoteError,
    ReplayError,
    RspfedError,
    SignatureError,
    StateError,
    StorageError,
    TransportError,
    UsageError,
)
from rspfed.federation.change import device_change_order_to_json, device_change_to_json
from rspfed.federation.dashboard import (
    DASHBOARD_PATH,
    RESPONSE_HEADERS,
    DashboardView,
    dashboard_answer,
    error_page,
    operator_view,
    pool_view,
)
from rspfed.federation.datadir import close_operator, open_operator, operator_config, sync_interval
from rspfed.federation.ledger import encode_state
from rspfed.federation.operator import Operator
from rspfed.federation.pool import PoolService
from rspfed.federation.signing import AUTH_SCHEME
from rspfed.federation.token import DeviceClass, Service
from rspfed.federation.types import Caller, DeviceRole, EapPurpose
from rspfed.federation.wire import (
    MAX_BODY,
    Reader,
    b64,
    device_to_json,
    dump,
    enrolment_to_json,
    error_to_json,
    fired_alert_to_json,
    join_request_to_json,
    join_ticket_to_json,
    parse_body,
    services_to_json,
    time_to_json,
    usage_result_to_json,
    usage_view_to_json,
)
from rspfed.smdp import Smdp
from rspfed.smdp.datadir import load_config
from rspfed.smdp.http import make_app, serve, served_app_options

__all__ = [
    "API_PREFIX",
    "DASHBOARD_VIEW_KEY",
    "OPERATOR_KEY",
    "POOL_KEY",
    "ROUTES",
    "SIGNED_ROUTES",
    "error_status",
    "make_operator_app",
    "operator_app_for",
    "serve_operator",
]

logger = logging.getLogger("rspfed.federation.http")

#: Where the operator's routes live.
API_PREFIX: Final = "/rspfed/v1"
#: Every route under :data:`API_PREFIX`.
ROUTES: Final = (
    "eap",
    "redeem",
    "join",
    "join/collect",
    "requests",
    "approve",
    "devices",
    "remove",
    "revoke",
    "status",
    "network/use",
    "network/cells",
    "usage",
    "usage/state",
    "usage/report",
    "alerts",
    "alerts/ack",
    "device-change",
    "device-change/status",
    "device-change/cancel",
    "device-change/complete",
    "device-change/latest",
)
#: The routes that need an ``RSPFED-SIG1`` signature.
SIGNED_ROUTES: Final = frozenset(
    {
        "requests",
        "approve",
        "devices",
        "remove",
        "revoke",
        "status",
        "usage",
        "usage/state",
        "usage/report",
        "alerts",
        "alerts/ack",
        "device-change",
        "device-change/cancel",
        "device-change/latest",
    }
)
#: Where the application keeps its operator core (set when it starts).
OPERATOR_KEY: Final = web.AppKey("operator", Operator)
#: How the dashboard route builds a subscription's view (default: the pool
#: service's, :func:`rspfed.federation.dashboard.pool_view`); set before the app starts.
DASHBOARD_VIEW_KEY: Final[web.AppKey[Callable[[Operator, str, datetime], DashboardView]]] = (
    web.AppKey("dashboard_view")
)
#: The application's shared data pool service (made when it starts).
POOL_KEY: Final = web.AppKey("pool", PoolService)
_POOLS: Final[dict[int, PoolService]] = {}
_SYNC_TASK: Final = web.AppKey("operator_sync", asyncio.Task[None])
_SYNC_AFTER: Final = frozenset({"authenticateClient", "handleNotification", "cancelSession"})
_JSON: Final = "application/json"

Answer = tuple[int, dict[str, Any]]
Handler = Callable[[Operator, Reader, Caller | None], Answer]


# --------------------------------------------------------------------------
# Errors


def error_status(exc: RspfedError) -> int:
    """The HTTP status of an error answer (see the module doc)."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ReplayError | SignatureError | IntegrityError):
        return 401
    if isinstance(exc, CertificateError | PolicyError):
        return 403
    if isinstance(exc, StateError | FunctionExecutionError):
        return 409
    if isinstance(exc, StorageError):
        return 503
    if isinstance(exc, TransportError):
        return 502
    return 400  # DecodeError, ProtocolError, UsageError, EncodeError, the rest


def _json(obj: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=dump(obj), status=status, content_type=_JSON, charset="utf-8")


def _error(exc: RspfedError, status: int | None = None) -> web.Response:
    code = error_status(exc) if status is None else status
    response = _json(error_to_json(exc), code)
    if code == 401:
        response.headers["WWW-Authenticate"] = AUTH_SCHEME
    return response


def _log_unexpected(where: str, exc: BaseException) -> web.Response:
    """Log an unexpected exception (type and stack only: its text may hold secrets)."""
    frames = "".join(traceback.format_tb(exc.__traceback__, limit=8))
    logger.error("%s: unexpected %s\n%s", where, type(exc).__name__, frames)
    return _json({"error": {"type": "RspfedError", "message": "internal error"}}, 500)


@web.middleware
async def _api_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Router and body-size errors on the operator's routes in its own error format."""
    if not request.path.startswith(API_PREFIX + "/") or request.path == DASHBOARD_PATH:
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status == 404:
            return _error(NotFoundError("no such operator function"), 404)
        if exc.status == 405:
            response = _error(UsageError("method not allowed: use POST"), 405)
            response.headers["Allow"] = "POST"
            return response
        if exc.status == 413:
            return _error(DecodeError("request body too large"), 413)
        return _error(ProtocolError(exc.reason), min(max(exc.status, 400), 499))


# --------------------------------------------------------------------------
# Route handlers (synchronous: they call the core inline)


def _identity(r: Reader) -> bytes:
    text = r.text("eap-id", max_length=253)
    if not text.isascii() or not text.isprintable():
        raise DecodeError("eap-id: must be printable ASCII", type_name=r.where)
    return text.encode("ascii")


def _eap(op: Operator, r: Reader, _caller: Caller | None) -> Answer:
    if r.has("session"):
        step = op.eap_continue(r.text("session", max_length=64), r.b64("eap-relay-packet"))
    else:
        step = op.eap_start(
            _identity(r),
            purpose=r.enum("purpose", EapPurpose),
            eid=r.opt_text("eid", max_length=32),
            service=r.opt_enum("service", Service),
            plmn=r.opt_text("plmn", max_length=6),
        )
    answer: dict[str, Any] = {
        "session": step.session_id,
        "eap-relay-packet": b64(step.packet),
        "done": step.done,
    }
    if step.device is not None:
        answer["device"] = device_to_json(step.device)
    if step.services is not None:
        answer["services"] = services_to_json(step.services)
        session = op.store.eap_session(step.session_id)
        if Service.DATA in step.services and session is not None:
            bearer, expires = _pool(op).open_bearer(session.imsi, session.plmn)
            answer["bearer"] = bearer
            answer["bearer-expires"] = time_to_json(expires)
    return 200, answer


def _cells(op: Operator, _r: Reader, _caller: Caller | None) -> Answer:
    return 200, {"cells": [v.to_json() for v in op.cells()]}


def _redeem(op: Operator, r: Reader, _caller: Caller | None) -> Answer:
    enrolment = op.redeem(
        r.b64url("token"), r.text("eid", max_length=32), name=r.opt_text("name", max_length=64)
    )
    return 200, enrolment_to_json(enrolment)


def _join(op: Operator, r: Reader, _caller: Caller | None) -> Answer:
    ticket = op.join(
        r.text("subscription-id", max_length=64),
        r.text("eid", max_length=32),
        r.enum("device-class", DeviceClass),
        r.text("name", max_length=64),
    )
    return 200, join_ticket_to_json(ticket)


def _collect(op: Operator, r: Reader, _caller: Caller | None) -> Answer:
    enrolment = op.collect(r.text("request-id", max_length=64), r.text("secret", max_length=64))
    if enrolment is None:
        return 202, {"state": "pending"}
    return 200, enrolment_to_json(enrolment)


def _signed(caller: Caller | None) -> Caller:
    if caller is None:  # pragma: no cover - the dispatcher authenticates signed routes
        raise SignatureError("the request is not signed")
    return caller


def _requests(op: Operator, _r: Reader, caller: Caller | None) -> Answer:
    found = op.requests(_signed(caller))
    return 200, {"requests": [join_request_to_json(j) for j in found]}


def _approve(op: Operator, r: Reader, caller: Caller | None) -> Answer:
    request = op.approve(_signed(caller), r.text("request-id", max_length=64), r.b64url("token"))
    return 200, {"request": join_request_to_json(request)}


def _devices(op: Operator, _r: Reader, caller: Caller | None) -> Answer:
    return 200, {"devices": [device_to_json(d) for d in op.devices(_signed(caller))]}


def _remove(op: Operator, r: Reader, caller: Caller | None) -> Answer:
    device = op.remove(_signed(caller), r.text("device-id", max_length=64))
    return 200, {"device": device_to_json(device)}


def _revoke(op: Operator, r: Reader, caller: Caller | None) -> Answer:
    return 200, {"cancelled": op.revoke(_signed(caller), r.opt_hex("token-id"))}


def _status(op: Operator, _r: Reader, caller: Caller | None) -> Answer:
    return 200, {"device": device_to_json(op.status(_signed(caller)))}


def _device_change(op: Operator, r: Reader, caller: Caller | None) -> Answer:
    order = op.device_change(
        _signed(caller),
        r.text("new-eid", max_length=32),
        name=r.opt_text("name", max_length=64),
        device_class=r.opt_enum("device-class", DeviceClass),
    )
    return 200, device_change_order_to_json(order)


def _change_status(op: Operator, r: Reader, _caller: Caller | None) -> Answer:
    change = op.device_change_status(
        r.text("change-id", max_length=64), r.text("secret", max_length=128)
    )
    return 200, {"change": device_change_to_json(change)}


def _change_cancel(op: Operator, r: Reader, caller: Caller | None) -> Answer:
    change = op.cancel_device_change(_signed(caller), r.text("change-id", max_length=64))
    return 200, {"change": device_change_to_json(change)}


def _change_complete(op: Operator, r: Reader, _caller: Caller | None) -> Answer:
    change = op.complete_device_change(
        r.text("change-id", max_length=64), r.text("secret", max_length=128)
    )
    return 200, {"change": device_change_to_json(change)}


def _change_latest(op: Operator, _r: Reader, caller: Caller | None) -> Answer:
    change = op.device_change_for(_signed(caller))
    return 200, {"change": None if change is None else device_change_to_json(change)}


def _pool(op: Operator) -> PoolService:
    found = _POOLS.get(id(op))
    if found is None:  # pragma: no cover - the application makes it at startup
        raise StateError("the operator's pool service is not running")
    return found


def _use(op: Operator, r: Reader, _caller: Caller | None) -> Answer:
    result = _pool(op).use(r.text("bearer", max_length=64), r.number("octets"))
    return 200, usage_result_to_json(result)


def _usage(op: Operator, _r: Reader, caller: Caller | None) -> Answer:
    signed = _signed(caller)
    view = _pool(op).view(signed.subscription_id)
    if signed.role is not DeviceRole.PRIMARY:
        view = attrs.evolve(
            view,
            devices=tuple(d for d in view.devices if d.device_id == signed.device_id),
            alerts=tuple(a for a in view.alerts if a.device_id in (None, signed.device_id)),
        )
    return 200, usage_view_to_json(view)


def _usage_state(op: Operator, r: Reader, caller: Caller | None) -> Answer:
    since = r.opt_number("since") or 0
    state, version = _pool(op).state_since(_signed(caller).subscription_id, since)
    return 200, {"state": b64(encode_state(state)), "version": version}


def _usage_report(op: Operator, r: Reader, caller: Caller | None) -> Answer:
    delta = _pool(op).ingest_device_batch(r.b64("batch"), device_id=_signed(caller).device_id)
    return 200, {"merged": len(delta.counters)}


def _alerts(op: Operator, _r: Reader, caller: Caller | None) -> Answer:
    found = _pool(op).pending_alerts(_signed(caller).device_id)
    return 200, {"alerts": [fired_alert_to_json(a) for a in found]}


def _alerts_ack(op: Operator, r: Reader, caller: Caller | None) -> Answer:
    ids = r.items("ids", _alert_id_hex)
    return 200, {"acked": _pool(op).ack_alerts(_signed(caller).device_id, ids)}


def _alert_id_hex(value: Any) -> bytes:
    if not isinstance(value, str) or len(value) != 32:
        raise DecodeError("ids: 32 hex digits each", type_name="alerts/ack")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise DecodeError("ids: 32 hex digits each", type_name="alerts/ack") from None


_HANDLERS: Final[dict[str, Handler]] = {
    "eap": _eap,
    "redeem": _redeem,
    "join": _join,
    "join/collect": _collect,
    "requests": _requests,
    "approve": _approve,
    "devices": _devices,
    "remove": _remove,
    "revoke": _revoke,
    "status": _status,
    "network/use": _use,
    "network/cells": _cells,
    "usage": _usage,
    "usage/state": _usage_state,
    "usage/report": _usage_report,
    "alerts": _alerts,
    "alerts/ack": _alerts_ack,
    "device-change": _device_change,
    "device-change/status": _change_status,
    "device-change/cancel": _change_cancel,
    "device-change/complete": _change_complete,
    "device-change/latest": _change_latest,
}


def _authenticate(op: Operator, request: web.Request, body: bytes) -> Caller:
    header = request.headers.get("Authorization")
    if header is None:
        raise SignatureError(f"the request is not signed (Authorization: {AUTH_SCHEME} missing)")
    return op.authenticate_request(header, request.method, request.raw_path, body)


def _route(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    handler = _HANDLERS[name]
    signed = name in SIGNED_ROUTES

    async def handle(request: web.Request) -> web.Response:
        if request.content_type != _JSON:
            return _error(DecodeError("Content-Type must be application/json"), 415)
        body = await request.read()
        op = request.app[OPERATOR_KEY]
        try:
            caller = _authenticate(op, request, body) if signed else None
        except (RemoteError, LocalError) as exc:  # malformed, stale, unknown key, replay
            return _error(exc, 401)
        except RspfedError as exc:
            return _error(exc)
        except Exception as exc:  # a bug: answer, log type and stack only
            return _log_unexpected(name, exc)
        try:
            status, answer = handler(op, Reader(parse_body(body, max_size=MAX_BODY), name), caller)
        except RspfedError as exc:
            if isinstance(exc, StorageError | TransportError):
                logger.warning("%s: %s", name, type(exc).__name__)
            return _error(exc)
        except Exception as exc:  # a bug: answer, log type and stack only
            return _log_unexpected(name, exc)
        return _json(answer, status)

    return handle


async def _dashboard(request: web.Request) -> web.Response:
    """``GET /rspfed/v1/dashboard?t=LINK``: the usage page (HTML), see the module doc."""
    op = request.app[OPERATOR_KEY]
    build = request.app.get(DASHBOARD_VIEW_KEY)
    pool = request.app.get(POOL_KEY)
    now = datetime.now(UTC)

    def view(subscription_id: str) -> DashboardView:
        if build is not None:
            return build(op, subscription_id, now)
        if pool is not None:  # the running pool service's figures
            return pool_view(pool.view(subscription_id))
        return operator_view(op, subscription_id, now)

    try:
        status, page = dashboard_answer(
            request.query.getall("t", []),
            key=op.store.key,
            subscription=op.subscription,
            view=view,
            now=now,
        )
    except Exception as exc:  # a bug: a plain page, log type and stack only
        _log_unexpected("dashboard", exc)
        status, page = 500, error_page(500, "internal error")
    response = web.Response(text=page, status=status, content_type="text/html", charset="utf-8")
    response.headers.update(RESPONSE_HEADERS)
    return response


# --------------------------------------------------------------------------
# The application


async def _sync_loop(op: Operator, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            op.sync(full=True)
        except RspfedError as exc:
            logger.warning("background sync: %s", type(exc).__name__)
        except Exception as exc:  # keep syncing whatever happens
            _log_unexpected("background sync", exc)


def _default_pool(op: Operator) -> PoolService:
    return PoolService(op, now=lambda: datetime.now(UTC), rand=os.urandom)


def make_operator_app(
    operator: Operator | Callable[[], Operator],
    *,
    sync_interval: float = 5.0,
    close: Callable[[Operator], None] | None = None,
    pool_factory: Callable[[Operator], PoolService] | None = None,
    **smdp_options: Any,
) -> web.Application:
    """The operator's application: the SM-DP+'s ES9+/ES2+ plus ``/rspfed/v1/...``.

    ``operator`` is the core, or a factory called once when the application
    starts (on the serving thread or process); ``close`` is called with it on
    cleanup (e.g. :func:`rspfed.federation.datadir.close_operator` for a core
    from :func:`~rspfed.federation.datadir.open_operator`; the SM-DP+ store
    is closed by the SM-DP+ application anyway).  ``sync_interval`` seconds
    between background :meth:`Operator.sync` runs.  ``pool_factory`` makes
    the shared data pool service (default: a
    :class:`~rspfed.federation.pool.PoolService` on the system clock).  ``smdp_options`` go to
    :func:`rspfed.smdp.http.make_app` (``es2_requires_client_cert``,
    ``progress_*``, ``deliver_progress``).
    """
    if sync_interval <= 0:
        raise UsageError("sync_interval must be positive")
    made: list[Operator] = []

    def core() -> Operator:
        if not made:
            made.append(operator if isinstance(operator, Operator) else operator())
        return made[0]

    def smdp() -> Smdp:
        return core().smdp

    def after_es9(function: str) -> None:
        if function in _SYNC_AFTER and made:
            made[0].sync()

    app = make_app(smdp, after_es9=after_es9, **smdp_options)
    app.middlewares.append(_api_errors)
    for name in ROUTES:
        app.router.add_post(f"{API_PREFIX}/{name}", _route(name))
    app.router.add_get(DASHBOARD_PATH, _dashboard)

    async def startup(app: web.Application) -> None:
        op = core()
        app[OPERATOR_KEY] = op
        pool = _POOLS.get(id(op))
        if pool is None or pool.operator is not op:
            pool = (pool_factory or _default_pool)(op)
            _POOLS[id(op)] = pool
        app[POOL_KEY] = pool
        app[_SYNC_TASK] = asyncio.get_running_loop().create_task(_sync_loop(op, sync_interval))

    async def cleanup(app: web.Application) -> None:
        task = app.get(_SYNC_TASK)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if made:
            _POOLS.pop(id(made[0]), None)
        if made and close is not None:
            close(made[0])

    app.on_startup.append(startup)
    app.on_cleanup.insert(0, cleanup)  # stop syncing before the SM-DP+ closes its store
    return app


def operator_app_for(data: Path, *, tls: bool, passphrase: bytes | None) -> web.Application:
    """The served application of an operator data directory (a
    :class:`rspfed.smdp.http.AppFactory` for :func:`rspfed.smdp.http.serve`)."""
    options = served_app_options(data, tls=tls, passphrase=passphrase)
    load_config(data, passphrase=passphrase)  # a wrong passphrase fails here, not at startup
    operator_config(data)  # so does a bad operator_service section
    interval = sync_interval(data)

    def factory() -> Operator:
        return open_operator(data, passphrase=passphrase)

    return make_operator_app(factory, sync_interval=interval, close=close_operator, **options)


async def serve_operator(
    data: str | os.PathLike[str],
    *,
    bind: str = "127.0.0.1",
    port: int = 443,
    tls: bool = True,
    workers: int = 1,
    ready: Callable[[int], None] | None = None,
    passphrase: bytes | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the operator of data directory ``data`` until SIGINT/SIGTERM (or ``stop``).

    Exactly :func:`rspfed.smdp.http.serve` (TLS with CERT.DPtls, ``workers``
    processes on one port sharing the stores, ``ready(port)``) with the
    operator's application (:func:`operator_app_for`).
    """
    await serve(
        data,
        bind=bind,
        port=port,
        tls=tls,
        workers=workers,
        ready=ready,
        passphrase=passphrase,
        stop=stop,
        app_factory=operator_app_for,
    )
