"""The SM-DP+ over HTTPS: an ``aiohttp`` application around the sans-IO core.

Endpoints (all ``POST``, ``Content-Type: application/json``, request header
``X-Admin-Protocol: gsma/rsp/v2.x.y`` required, sent back on every answer):

* ES9+ (the LPA) at ``/gsma/rsp2/es9plus/<function>`` (SGP.22 §6.5.2):
  initiateAuthentication, authenticateClient, getBoundProfilePackage,
  handleNotification (answered ``204 No Content``), cancelSession;
* ES2+ (the operator) at ``/gsma/rsp2/es2plus/<function>``: downloadOrder,
  confirmOrder, cancelOrder, releaseProfile — only over mutual TLS: the
  client certificate must chain to the data directory's ES2+ client CA, and
  its subject commonName is the requester the core sees.

Answers:

* success: HTTP 200 with ``header.functionExecutionStatus.status``
  ``Executed-Success`` and the response members (204 for handleNotification);
* an application error (the core raised a
  :class:`~rspfed.errors.FunctionExecutionError`): HTTP 200 with ``Failed`` and
  SGP.22's ``subjectCode``/``reasonCode``, as SGP.22 §6.5.1 says;
* a transport-level error: 400 (not JSON, bad base64 or members, missing or
  wrong ``X-Admin-Protocol``), 403 (ES2+ without a client certificate),
  404 (unknown path), 405 (not POST), 413 (body too large), 415 (not JSON
  content type) — each with a ``Failed`` header in a JSON body too;
* never a 5xx: an unexpected exception in the core is logged (its type and
  stack, never its text or the request) and answered ``Failed`` 1.2/4.2.

The core is synchronous and CPU-bound for a few milliseconds per call; it
runs inline on the event loop (see ``docs/smdp.md`` for the measurements).
HandleDownloadProgressInfo events the core records are delivered to the
operator's callback URL by a background task with exponential back-off; the
ES9+ path never waits for it.

:func:`serve` runs the whole thing from a data directory, in ``workers``
processes sharing the port through ``SO_REUSEPORT`` (Linux) and the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue as pyqueue
import signal
import socket
import ssl
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol, cast

import aiohttp
import attrs
from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import NameOID

from rspfed import es2p, es9p
from rspfed.errors import (
    DecodeError,
    FunctionExecutionError,
    RspfedError,
    TransportError,
    UsageError,
)
from rspfed.es9p import ADMIN_PROTOCOL, Status, StatusCodeData
from rspfed.smdp import DownloadProgressEvent, Smdp
from rspfed.smdp.datadir import (
    load_config,
    open_store,
    read_settings,
    tls_paths,
)

__all__ = [
    "ADMIN_PROTOCOL_PREFIX",
    "MAX_BODY",
    "SMDP_KEY",
    "AppFactory",
    "ProgressDelivery",
    "callback_ssl_context",
    "make_app",
    "progress_delivery",
    "serve",
    "served_app_options",
    "server_ssl_context",
    "smdp_factory",
]

logger = logging.getLogger("rspfed.smdp.http")

#: Accepted ``X-Admin-Protocol`` values start with this (SGP.22 v2.x).
ADMIN_PROTOCOL_PREFIX: Final = "gsma/rsp/v2."
#: Largest request body accepted (ES9+ requests are a few kB).
MAX_BODY: Final = 1024 * 1024
_JSON: Final = "application/json"

#: Where the application keeps its core (``app[SMDP_KEY]``, set when it starts).
SMDP_KEY: Final = web.AppKey("smdp", Smdp)

_ES2_SERVED: Final = ("downloadOrder", "confirmOrder", "cancelOrder", "releaseProfile")


# --------------------------------------------------------------------------
# Answers


def _json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=_JSON, charset="utf-8")


def _failed(
    data: StatusCodeData, http_status: int = 200, status: str = es9p.FAILED
) -> web.Response:
    return _json_response(es9p.encode_response(None, failure=data, status=status), http_status)


def _transport_error(http_status: int, message: str) -> web.Response:
    """A 4xx answer with a ``Failed`` header (subject 1.6 Function, reason by status)."""
    reason = "2.2" if "missing" in message else "2.1"
    data = StatusCodeData("1.6", reason, None, message[:200])
    return _failed(data, http_status)


async def _admin_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Admin-Protocol"] = ADMIN_PROTOCOL


def _check_request(request: web.Request) -> web.Response | None:
    """415 / 400 for a wrong content type or ``X-Admin-Protocol``; None when fine."""
    if request.content_type != _JSON:
        return _transport_error(415, "Content-Type must be application/json")
    admin = request.headers.get("X-Admin-Protocol")
    if admin is None:
        return _transport_error(400, "X-Admin-Protocol header missing")
    if not admin.startswith(ADMIN_PROTOCOL_PREFIX):
        return _transport_error(400, "X-Admin-Protocol not supported")
    return None


def _log_unexpected(function: str, exc: BaseException) -> None:
    """Log an unexpected exception: its type and where, never its text (may hold secrets)."""
    frames = "".join(traceback.format_tb(exc.__traceback__, limit=8))
    logger.error("%s: unexpected %s\n%s", function, type(exc).__name__, frames)


def _core_failure(function: str, exc: Exception) -> web.Response:
    if isinstance(exc, FunctionExecutionError):
        data = StatusCodeData(exc.subject_code, exc.reason_code, exc.subject_identifier)
        return _failed(data, status=exc.status if exc.status == es9p.EXPIRED else es9p.FAILED)
    if isinstance(exc, DecodeError):
        return _failed(Status.INVALID_FORMAT)
    if isinstance(exc, RspfedError):
        logger.warning("%s: %s from the core", function, type(exc).__name__)
        return _failed(Status.EXECUTION_ERROR)
    _log_unexpected(function, exc)
    return _failed(Status.EXECUTION_ERROR)


@web.middleware
async def _errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Router and body-size errors as JSON 4xx; never a 5xx."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 500:  # pragma: no cover - we raise none
            return _failed(Status.EXECUTION_ERROR)
        if exc.status == 405:
            resp = _transport_error(405, "method not allowed: use POST")
            resp.headers["Allow"] = "POST"
            return resp
        if exc.status == 404:
            return _transport_error(404, "no such function")
        if exc.status == 413:
            return _transport_error(413, "request body too large")
        return _transport_error(exc.status, exc.reason)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the one catch-all: answer, never 500
        _log_unexpected(request.path[:80], exc)
        return _failed(Status.EXECUTION_ERROR)


# --------------------------------------------------------------------------
# Handlers


def _wake(request: web.Request) -> None:
    delivery = request.app.get(_DELIVERY_KEY)
    if delivery is not None:
        delivery.wake()


def _after_es9(request: web.Request, name: str) -> None:
    """Call the application's ``after_es9`` hook; its failures are logged, never answered."""
    hook = request.app.get(_AFTER_ES9_KEY)
    if hook is None:
        return
    try:
        hook(name)
    except Exception as exc:  # the ES9+ answer stands whatever the hook does
        if isinstance(exc, RspfedError):
            logger.warning("after %s: %s from the hook", name, type(exc).__name__)
        else:
            _log_unexpected(f"after {name}", exc)


def _es9_handler(function: es9p.Es9Function) -> Callable[[web.Request], Awaitable[web.Response]]:
    name = function.name
    request_class = cast("type[attrs.AttrsInstance]", function.request)

    async def handle(request: web.Request) -> web.Response:
        refused = _check_request(request)
        if refused is not None:
            return refused
        body = await request.read()
        try:
            message: Any = es9p.decode_request(request_class, body, max_size=MAX_BODY)
        except DecodeError as exc:
            return _transport_error(400, str(exc))
        smdp = request.app[SMDP_KEY]
        try:
            if name == "initiateAuthentication":
                result: Any = smdp.initiate_authentication(message)
            elif name == "authenticateClient":
                result = smdp.authenticate_client(message)
            elif name == "getBoundProfilePackage":
                result = smdp.get_bound_profile_package(message)
            elif name == "handleNotification":
                smdp.handle_notification(message)
                result = None
            else:
                result = smdp.cancel_session(message)
        except Exception as exc:  # mapped onto SGP.22 status codes
            _wake(request)
            if function.response is None:
                # HandleNotification has no output: SGP.22 answers 204 even for a
                # notification the SM-DP+ discards, so the LPA stops resending it.
                if not isinstance(exc, RspfedError):
                    _log_unexpected(name, exc)
                else:
                    logger.info("%s: discarded (%s)", name, type(exc).__name__)
                return web.Response(status=204)
            return _core_failure(name, exc)
        _wake(request)
        _after_es9(request, name)
        if function.response is None:
            return web.Response(status=204)
        return _json_response(es9p.encode_response(result))

    return handle


def _client_identity(request: web.Request) -> str | None:
    """The subject commonName (else organisation) of the verified TLS client certificate."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:  # pragma: no cover - OpenSSL verified it
        return None
    for oid in (NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME):
        values = cert.subject.get_attributes_for_oid(oid)
        if values:
            return str(values[0].value)
    return None


def _es2_handler(
    function: es2p.Es2Function, requires_client_cert: bool
) -> Callable[[web.Request], Awaitable[web.Response]]:
    name = function.name

    async def handle(request: web.Request) -> web.Response:
        requester = _client_identity(request)
        if requester is None and requires_client_cert:
            return _failed(Status.REQUESTER_UNKNOWN, 403)
        refused = _check_request(request)
        if refused is not None:
            return refused
        body = await request.read()
        try:
            header, message = es2p.decode_es2_request(function.request, body, max_size=MAX_BODY)
        except DecodeError as exc:
            return _transport_error(400, str(exc))
        if requester is None:
            requester = header.function_requester_identifier
        smdp = request.app[SMDP_KEY]
        response: Any
        try:
            if isinstance(message, es2p.DownloadOrderRequest):
                iccid = smdp.download_order(
                    profile_type=message.profile_type,
                    iccid=message.iccid,
                    eid=message.eid,
                    requester=requester,
                )
                response = es2p.DownloadOrderResponse(iccid=iccid)
            elif isinstance(message, es2p.ConfirmOrderRequest):
                order = smdp.confirm_order(
                    iccid=message.iccid,
                    eid=message.eid,
                    matching_id=message.matching_id or None,
                    confirmation_code=message.confirmation_code,
                    smds_address=message.smds_address,
                    release_flag=message.release_flag,
                    requester=requester,
                )
                response = es2p.ConfirmOrderResponse(
                    matching_id=order.matching_id,
                    eid=order.eid,
                    smdp_address=order.smdp_address,
                )
            elif isinstance(message, es2p.CancelOrderRequest):
                smdp.cancel_order(
                    iccid=message.iccid,
                    eid=message.eid,
                    matching_id=message.matching_id,
                    final_profile_status_indicator=message.final_profile_status_indicator,
                    requester=requester,
                )
                response = None
            elif isinstance(message, es2p.ReleaseProfileRequest):
                smdp.release_profile(iccid=message.iccid, requester=requester)
                response = None
            else:  # pragma: no cover - routes are only the four above
                return _transport_error(404, "no such function")
        except Exception as exc:  # mapped onto SGP.22 status codes
            _wake(request)
            return _core_failure(name, exc)
        _wake(request)
        return _json_response(es9p.encode_response(response))

    return handle


# --------------------------------------------------------------------------
# HandleDownloadProgressInfo delivery


class ProgressDelivery:
    """Delivers the core's download progress events to the operator
    (ES2+ HandleDownloadProgressInfo).

    A background task takes events from the core (:meth:`Smdp.take_progress_events`)
    when woken after a request (at most once per ``min_interval`` seconds) and
    every ``poll_interval`` seconds, POSTs each
    to its callback URL (the event's, else ``default_url``) and retries a
    failure ``attempts`` times with exponential back-off from ``first_delay``
    seconds.  An event that still fails is dropped and logged (ICCID and point
    id only); events not yet delivered when the server stops go back into the
    store.  ``delivered`` and ``dropped`` count events (for tests and stats).
    """

    def __init__(
        self,
        smdp: Smdp,
        *,
        requester: str,
        default_url: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        attempts: int = 6,
        first_delay: float = 0.5,
        poll_interval: float = 2.0,
        min_interval: float = 0.1,
        timeout: float = 10.0,
    ) -> None:
        self.smdp = smdp
        self.requester = requester
        self.default_url = default_url
        self.ssl_context = ssl_context
        self.attempts = attempts
        self.first_delay = first_delay
        self.poll_interval = poll_interval
        self.min_interval = min(min_interval, poll_interval)
        self.timeout = timeout
        self.delivered = 0
        self.dropped = 0
        self._event = asyncio.Event()
        self._pending: list[tuple[float, int, DownloadProgressEvent]] = []
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._calls = 0

    def wake(self) -> None:
        """Look for new events now (called after every request that may create one)."""
        self._event.set()

    def start(self) -> None:
        """Start the background task (on the running loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the task and close the connection pool."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._requeue()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _requeue(self) -> None:
        """Put undelivered events back into the store (another worker or a restart sends them)."""
        left = [event for _when, _tries, event in self._pending]
        self._pending = []
        if not left:
            return
        store = self.smdp.store
        try:
            with store.transaction():
                for event in left:
                    store.add_progress_event(event)
        except Exception as exc:  # shutting down: log, do not raise
            _log_unexpected("requeue progress events", exc)
            return
        logger.info("%d undelivered progress events put back into the store", len(left))

    def _take(self) -> None:
        try:
            events = self.smdp.take_progress_events()
        except Exception as exc:  # keep delivering; the store may be busy
            _log_unexpected("take_progress_events", exc)
            return
        now = time.monotonic()
        for event in events:
            self._pending.append((now, 0, event))

    async def _run(self) -> None:
        while True:
            self._take()
            taken = now = time.monotonic()
            due = [p for p in self._pending if p[0] <= now]
            for item in due:
                _when, tries, event = item
                ok = await self._deliver(event)  # a cancel here leaves the item pending
                self._pending.remove(item)
                if ok:
                    self.delivered += 1
                elif tries + 1 >= self.attempts:
                    self.dropped += 1
                    logger.warning(
                        "HandleDownloadProgressInfo for ICCID %s point %s dropped after %d tries",
                        event.iccid,
                        event.notification_point_id,
                        tries + 1,
                    )
                else:
                    delay = self.first_delay * (2**tries)
                    self._pending.append((time.monotonic() + delay, tries + 1, event))
            wait = self.poll_interval
            if self._pending:
                wait = min(wait, max(0.0, min(p[0] for p in self._pending) - time.monotonic()))
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), timeout=wait)
            # at most one store look-up per min_interval, however busy the server is
            gap = self.min_interval - (time.monotonic() - taken)
            if gap > 0:
                await asyncio.sleep(gap)

    def _body(self, event: DownloadProgressEvent) -> bytes:
        status = (
            es2p.NotificationPointStatus(es9p.EXECUTED_SUCCESS)
            if event.status is None
            else es2p.NotificationPointStatus(
                es9p.FAILED, event.status.subject_code, event.status.reason_code
            )
        )
        self._calls += 1
        message = es2p.HandleDownloadProgressInfoRequest(
            iccid=event.iccid,
            profile_type=event.profile_type,
            timestamp=es2p.format_timestamp(event.timestamp),
            notification_point_id=event.notification_point_id,
            notification_point_status=status,
            eid=event.eid,
            result_data=event.result_data,
        )
        header = es2p.RequestHeader(self.requester, f"{os.getpid()}-{self._calls}")
        return es2p.encode_es2_request(message, header)

    async def _deliver(self, event: DownloadProgressEvent) -> bool:
        url = event.callback_url or self.default_url
        if not url:
            return True  # nobody to tell: done
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        target = url.rstrip("/")
        if not target.endswith("/handleDownloadProgressInfo"):
            target += es2p.FUNCTIONS["handleDownloadProgressInfo"].path
        try:
            body = self._body(event)
            async with self._session.post(
                target,
                data=body,
                headers={"Content-Type": _JSON, "X-Admin-Protocol": ADMIN_PROTOCOL},
                ssl=self.ssl_context if self.ssl_context is not None else True,
            ) as resp:
                await resp.read()
                return resp.status in (200, 204)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, RspfedError) as exc:
            logger.info(
                "HandleDownloadProgressInfo for ICCID %s: %s", event.iccid, type(exc).__name__
            )
            return False


_DELIVERY_KEY: Final = web.AppKey("progress_delivery", ProgressDelivery)
_AFTER_ES9_KEY: Final = web.AppKey[Callable[[str], None]]("after_es9")


# --------------------------------------------------------------------------
# The application


def make_app(
    smdp: Smdp | Callable[[], Smdp],
    *,
    es2_requires_client_cert: bool = True,
    progress_callback_url: str | None = None,
    progress_ssl_context: ssl.SSLContext | None = None,
    progress_requester: str | None = None,
    deliver_progress: bool = True,
    progress_first_delay: float = 0.5,
    progress_poll_interval: float = 2.0,
    after_es9: Callable[[str], None] | None = None,
) -> web.Application:
    """The aiohttp application of an SM-DP+ (see the module doc for the endpoints).

    ``smdp`` is the core, or a factory called once when the application
    starts (so a core that holds a SQLite connection is created on the
    thread/process that serves).  ``es2_requires_client_cert`` false lets
    ES2+ work without a client certificate (the header's
    ``functionRequesterIdentifier`` is then the requester): for tests only.
    ``progress_*`` configure the HandleDownloadProgressInfo delivery
    (``progress_ssl_context`` verifies the operator's server and may carry
    the SM-DP+'s client certificate; ``progress_requester``, the
    ``functionRequesterIdentifier`` sent, defaults to the SM-DP+ address).
    ``after_es9(function_name)`` is called after each ES9+ function the core
    executed successfully (before the answer is sent; an exception it raises
    is logged and does not change the answer): the operator service uses it
    to reconcile its state with the SM-DP+'s.
    """
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_errors_middleware])
    app.on_response_prepare.append(_admin_header)
    if after_es9 is not None:
        app[_AFTER_ES9_KEY] = after_es9
    for function in es9p.FUNCTIONS.values():
        app.router.add_post(function.path, _es9_handler(function))
    for name in _ES2_SERVED:
        function2 = es2p.FUNCTIONS[name]
        app.router.add_post(function2.path, _es2_handler(function2, es2_requires_client_cert))

    async def startup(app: web.Application) -> None:
        core = smdp if isinstance(smdp, Smdp) else smdp()
        app[SMDP_KEY] = core
        if deliver_progress:
            delivery = ProgressDelivery(
                core,
                requester=progress_requester or core.config.address,
                default_url=progress_callback_url,
                ssl_context=progress_ssl_context,
                first_delay=progress_first_delay,
                poll_interval=progress_poll_interval,
            )
            app[_DELIVERY_KEY] = delivery
            delivery.start()

    async def cleanup(app: web.Application) -> None:
        delivery = app.get(_DELIVERY_KEY)
        if delivery is not None:
            await delivery.stop()
        core = app.get(SMDP_KEY)
        close = getattr(getattr(core, "store", None), "close", None)
        if callable(close):
            close()

    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)
    return app


def progress_delivery(app: web.Application) -> ProgressDelivery | None:
    """The application's progress delivery task, once started (None if disabled)."""
    return app.get(_DELIVERY_KEY)


# --------------------------------------------------------------------------
# TLS and serving


def server_ssl_context(
    data: str | os.PathLike[str], *, passphrase: bytes | None = None
) -> ssl.SSLContext:
    """TLS 1.2+ server context: CERT.DPtls and its key; a client certificate is
    requested (optional for ES9+, required by the ES2+ handlers) and verified
    against the ES2+ client CA.  TLS 1.2 suites: ECDHE-ECDSA with AES-GCM
    (SGP.22 §2.6.6) or ChaCha20-Poly1305."""
    files = tls_paths(data)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
    )
    try:
        ctx.load_cert_chain(files.server_chain, files.server_key, password=passphrase)
        ctx.load_verify_locations(cafile=files.client_ca)
    except ssl.SSLError:
        raise UsageError(
            "cannot load the TLS key (wrong passphrase? set RSPFED_SMDP_PASSPHRASE)"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


def callback_ssl_context(
    data: str | os.PathLike[str], *, passphrase: bytes | None = None
) -> ssl.SSLContext:
    """Client context for the operator's callback server: system CAs plus
    ``tls/callback-ca.pem`` if present; CERT.DPtls as the client certificate."""
    files = tls_paths(data)
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if files.callback_ca is not None:
            ctx.load_verify_locations(cafile=files.callback_ca)
        ctx.load_cert_chain(files.server_chain, files.server_key, password=passphrase)
    except ssl.SSLError:
        raise UsageError(
            "cannot load the TLS key (wrong passphrase? set RSPFED_SMDP_PASSPHRASE)"
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    return ctx


def smdp_factory(
    data: str | os.PathLike[str], *, passphrase: bytes | None = None
) -> Callable[[], Smdp]:
    """A factory for the core of a data directory (config, store, wall clock)."""
    root = Path(data)

    def make() -> Smdp:
        config = load_config(root, passphrase=passphrase)
        return Smdp(config, open_store(root), now=lambda: datetime.now(UTC))

    return make


class AppFactory(Protocol):
    """Builds the application :func:`serve` runs for a data directory.

    It must be a module-level function: with ``workers`` > 1 it is sent
    (by reference) to the worker processes.
    """

    def __call__(
        self, data: Path, *, tls: bool, passphrase: bytes | None
    ) -> web.Application:  # pragma: no cover - a protocol
        """The application for data directory ``data`` (``tls``: served over TLS)."""
        ...


def served_app_options(data: Path, *, tls: bool, passphrase: bytes | None) -> dict[str, Any]:
    """The :func:`make_app` keyword arguments :func:`serve` uses for a data directory:
    ES2+ over mutual TLS only, progress delivery to the configured callback URL
    (verified with :func:`callback_ssl_context` when ``tls``)."""
    settings = read_settings(data)
    url = settings.get("progress_callback_url")
    callback_ctx = callback_ssl_context(data, passphrase=passphrase) if tls else None
    return {
        "es2_requires_client_cert": True,
        "progress_callback_url": url if isinstance(url, str) and url else None,
        "progress_ssl_context": callback_ctx,
    }


def _app_for(data: Path, *, tls: bool, passphrase: bytes | None) -> web.Application:
    options = served_app_options(data, tls=tls, passphrase=passphrase)
    config = load_config(data, passphrase=passphrase)  # a wrong passphrase fails here

    def factory() -> Smdp:
        return Smdp(config, open_store(data), now=lambda: datetime.now(UTC))

    return make_app(factory, **options)


async def _start(
    data: Path,
    *,
    bind: str,
    port: int,
    tls: bool,
    reuse_port: bool,
    passphrase: bytes | None,
    app_for: AppFactory,
) -> tuple[web.AppRunner, int]:
    app = app_for(data, tls=tls, passphrase=passphrase)
    ctx = server_ssl_context(data, passphrase=passphrase) if tls else None
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, bind, port, ssl_context=ctx, reuse_port=reuse_port or None)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise TransportError(f"cannot listen on {bind}:{port}: {exc.strerror}") from None
    actual = port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            actual = int(address[1])
            break
    return runner, actual


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def _worker_main(
    data: str,
    bind: str,
    port: int,
    tls: bool,
    passphrase: bytes | None,
    queue: Any,
    app_for: AppFactory = _app_for,
) -> None:
    """Entry point of a worker process (spawned by :func:`serve`)."""

    async def run() -> None:
        stop = _stop_event()
        try:
            runner, _ = await _start(
                Path(data),
                bind=bind,
                port=port,
                tls=tls,
                reuse_port=True,
                passphrase=passphrase,
                app_for=app_for,
            )
        except RspfedError as exc:
            queue.put(("error", str(exc)))
            return
        queue.put(("ready", os.getpid()))
        await stop.wait()
        await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def _reserve_port(bind: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - Linux has it
        sock.close()
        raise UsageError("--workers > 1 needs SO_REUSEPORT (Linux, BSD)")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((bind, port))
    except OSError as exc:
        sock.close()
        raise TransportError(f"cannot bind {bind}:{port}: {exc.strerror}") from None
    return sock


async def serve(
    data: str | os.PathLike[str],
    *,
    bind: str = "127.0.0.1",
    port: int = 443,
    tls: bool = True,
    workers: int = 1,
    ready: Callable[[int], None] | None = None,
    passphrase: bytes | None = None,
    stop: asyncio.Event | None = None,
    app_factory: AppFactory | None = None,
) -> None:
    """Serve the SM-DP+ of data directory ``data`` until SIGINT/SIGTERM (or ``stop`` is set).

    ``workers`` > 1 starts ``workers - 1`` more processes that listen on the
    same port with ``SO_REUSEPORT`` (this process is the first); they share
    the store.  ``ready(port)`` is called once every worker listens (useful
    with ``port=0``).  ``tls`` false serves plain HTTP: for local testing only
    (ES2+ is then refused, having no client certificate).  ``app_factory``
    builds the application instead of the plain SM-DP+'s (the operator
    service serves its own this way, see :func:`rspfed.federation.http.serve_operator`).
    """
    app_for: AppFactory = app_factory or _app_for
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    root = Path(data)
    read_settings(root)  # fail early on a bad directory
    reserved: socket.socket | None = None
    children: list[multiprocessing.process.BaseProcess] = []
    if workers > 1:
        reserved = _reserve_port(bind, port)
        port = int(reserved.getsockname()[1])
    stop_event = stop or _stop_event()
    runner: web.AppRunner | None = None
    try:
        runner, port = await _start(
            root,
            bind=bind,
            port=port,
            tls=tls,
            reuse_port=workers > 1,
            passphrase=passphrase,
            app_for=app_for,
        )
        if workers > 1:
            spawn = multiprocessing.get_context("spawn")
            queue = spawn.Queue()
            for _ in range(workers - 1):
                child = spawn.Process(
                    target=_worker_main,
                    args=(str(root), bind, port, tls, passphrase, queue, app_for),
                    daemon=True,
                )
                child.start()
                children.append(child)
            loop = asyncio.get_running_loop()
            for _ in children:
                try:
                    kind, detail = await loop.run_in_executor(None, queue.get, True, 60.0)
                except pyqueue.Empty:
                    raise TransportError("a worker did not start within 60 s") from None
                if kind != "ready":
                    raise TransportError(f"a worker failed to start: {detail}")
        if ready is not None:
            ready(port)
        await stop_event.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        for worker in children:
            if worker.is_alive() and worker.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGTERM)
        for worker in children:
            worker.join(timeout=5)
            if worker.is_alive():  # pragma: no cover - a stuck worker
                worker.kill()
                worker.join(timeout=2)
        if reserved is not None:
            reserved.close()
