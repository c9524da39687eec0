"""The negative matrix of issue C item 7, end to end over HTTPS with eUICCs on APDUs.

Every case checks three things: the SGP.22 subject/reason code the SM-DP+ put
on the wire (recorded by the observing middleware of the test app), the
:class:`~rspfed.errors.RspfedError` subclass :func:`rspfed.lpa.download`
raises, and the inventory (and the eUICC) afterwards.

Attacks on the link are played by :class:`Mitm`, an :class:`rspfed.lpa.Es9`
written here that forwards to the real HTTPS :class:`rspfed.lpa.Es9Client`
and may edit a request or an answer on the way (like a network attacker
between the LPA and the server) and records what passed, for replays.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest
from aiohttp import web
from aiohttp.typedefs import Middleware
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed.crypto.curves import Curve
from rspfed.errors import (
    ConfirmationCodeError,
    DownloadOrderError,
    EidError,
    EuiccVerificationError,
    FunctionExecutionError,
    MatchingIdError,
    PolicyError,
    ServerConfigurationError,
    SignatureError,
    TransactionIdError,
    UntrustedCertificateError,
)
from rspfed.es9p import (
    AuthenticateClientRequest,
    AuthenticateClientResponse,
    CancelSessionRequest,
    CancelSessionResponse,
    GetBoundProfilePackageRequest,
    GetBoundProfilePackageResponse,
    HandleNotificationRequest,
    InitiateAuthenticationRequest,
    InitiateAuthenticationResponse,
)
from rspfed.euicc.euicc import Euicc
from rspfed.lpa import (
    ActivationCode,
    ApduEs10,
    Consent,
    DownloadResult,
    DownloadStep,
    Es9Client,
    download,
)
from rspfed.pki.eid import generate_eid
from rspfed.pki.testpki import TestPki
from rspfed.smdp import ItemState, SmdpConfig
from rspfed.smdp.datadir import init_data_dir
from tests.e2e.conftest import (
    SmdpServer,
    euicc_has_no_session,
    iccids_on,
    make_euicc,
    run,
    settings_for,
    start_server,
)

CURVES = pytest.mark.parametrize("curve", [Curve.NIST, Curve.BRAINPOOL], ids=["nist", "brainpool"])

TID_UNKNOWN = ("8.10.1", "3.9")
MID_REFUSED = ("8.2.6", "3.8")
EUICC_ERROR = ("8.1", "4.2")  # the eUICC answered an error instead of a signed response


# -- the link attacker ------------------------------------------------------------------


Edit = Callable[[Any], Any]
R = TypeVar("R")
A = TypeVar("A")


@attrs.define
class Mitm:
    """An :class:`rspfed.lpa.Es9` between the LPA and the real HTTPS client."""

    inner: Es9Client
    edit_request: dict[str, Edit] = attrs.Factory(dict)
    edit_answer: dict[str, Edit] = attrs.Factory(dict)
    after: dict[str, Callable[[Any], Awaitable[None]]] = attrs.Factory(dict)
    requests: dict[str, Any] = attrs.Factory(dict)

    async def _pass(self, name: str, request: R, call: Callable[[R], Awaitable[A]]) -> A:
        if name in self.edit_request:
            request = self.edit_request[name](request)
        self.requests[name] = request
        answer = await call(request)
        if name in self.edit_answer:
            answer = self.edit_answer[name](answer)
        if name in self.after:
            await self.after[name](request)
        return answer

    async def initiate_authentication(
        self, request: InitiateAuthenticationRequest
    ) -> InitiateAuthenticationResponse:
        return await self._pass(
            "initiateAuthentication", request, self.inner.initiate_authentication
        )

    async def authenticate_client(
        self, request: AuthenticateClientRequest
    ) -> AuthenticateClientResponse:
        return await self._pass("authenticateClient", request, self.inner.authenticate_client)

    async def get_bound_profile_package(
        self, request: GetBoundProfilePackageRequest
    ) -> GetBoundProfilePackageResponse:
        return await self._pass(
            "getBoundProfilePackage", request, self.inner.get_bound_profile_package
        )

    async def cancel_session(self, request: CancelSessionRequest) -> CancelSessionResponse:
        return await self._pass("cancelSession", request, self.inner.cancel_session)

    async def handle_notification(self, request: HandleNotificationRequest) -> None:
        await self._pass("handleNotification", request, self.inner.handle_notification)


def flip_signature(der: bytes) -> bytes:
    """Flip one bit inside the first ``5F37 40`` signature of ``der`` (still valid DER)."""
    at = der.find(b"\x5f\x37\x40")
    assert at >= 0
    out = bytearray(der)
    out[at + 3 + 20] ^= 0x01
    return bytes(out)


def flip_last(der: bytes) -> bytes:
    out = bytearray(der)
    out[-1] ^= 0x01
    return bytes(out)


# -- helpers -----------------------------------------------------------------------------


def fetch(
    server: SmdpServer,
    euicc: Euicc,
    code: ActivationCode,
    *,
    mitm: Mitm | None = None,
    **kwargs: Any,
) -> DownloadResult:
    """One LPA download over APDUs and HTTPS (through ``mitm`` when given)."""
    settings = settings_for(euicc)

    async def body() -> DownloadResult:
        link = ApduEs10(euicc.card)
        try:
            if mitm is None:
                return await download(link, code, settings=settings, **kwargs)
            async with mitm.inner:
                return await download(link, code, es9=mitm, settings=settings, **kwargs)
        finally:
            link.close()

    return run(body)


def mitm_for(server: SmdpServer, euicc: Euicc) -> Mitm:
    settings = settings_for(euicc)
    return Mitm(Es9Client(server.address, trust=settings.trust))


def no_session_on(euicc: Euicc) -> bool:
    link = ApduEs10(euicc.card)
    try:
        return euicc_has_no_session(link)
    finally:
        link.close()


def first_failure(server: SmdpServer) -> tuple[str, tuple[str, str] | None]:
    failures = server.failures()
    assert failures, server.wire
    return failures[0]


# -- matchingId -----------------------------------------------------------------------------


def test_unknown_matching_id(tmp_path: Path, pki: TestPki, servers: list[SmdpServer]) -> None:
    server = start_server(tmp_path / "smdp", pki)
    servers.append(server)
    iccid, _ = server.order()
    before = server.states()
    with make_euicc(tmp_path / "e.db", pki) as euicc:
        with pytest.raises(MatchingIdError) as info:
            fetch(server, euicc, ActivationCode(server.address, "NO-SUCH-ORDER"))
        assert (info.value.subject_code, info.value.reason_code) == MID_REFUSED
        assert iccids_on(euicc) == []
        assert no_session_on(euicc)  # the LPA cancelled the eUICC's session
    assert first_failure(server) == ("authenticateClient", MID_REFUSED)
    assert server.calls()[:2] == ["initiateAuthentication", "authenticateClient"]
    assert server.states() == before == {iccid: ItemState.RELEASED}
    item = server.core.item(iccid)
    assert item is not None
    assert item.download_attempts == 0


def test_reused_and_retired_matching_ids(
    tmp_path: Path, pki: TestPki, servers: list[SmdpServer]
) -> None:
    server = start_server(tmp_path / "smdp", pki)
    servers.append(server)
    iccid, code = server.order()
    cancelled, old_code = server.order()
    server.core.cancel_order(iccid=cancelled)  # Available: the matchingId is retired
    with make_euicc(tmp_path / "e.db", pki) as euicc:
        assert fetch(server, euicc, code).iccid == iccid
        server.wire.clear()
        with pytest.raises(MatchingIdError) as reused:
            fetch(server, euicc, code)
        assert first_failure(server) == ("authenticateClient", MID_REFUSED)
        server.wire.clear()
        with pytest.raises(MatchingIdError) as retired:
            fetch(server, euicc, old_code)
        assert first_failure(server) == ("authenticateClient", MID_REFUSED)
        assert iccids_on(euicc) == [iccid]
        assert no_session_on(euicc)
    for info in (reused, retired):
        assert (info.value.subject_code, info.value.reason_code) == MID_REFUSED
    assert server.states() == {iccid: ItemState.INSTALLED, cancelled: ItemState.AVAILABLE}


# -- confirmation code --------------------------------------------------------------------


def test_wrong_confirmation_code_up_to_the_limit(
    tmp_path: Path, pki: TestPki, servers: list[SmdpServer]
) -> None:
    server = start_server(tmp_path / "smdp", pki)
    servers.append(server)
    limit = server.core.config.max_confirmation_code_attempts
    iccid, code = server.order(confirmation_code="2468")
    assert code.confirmation_code_required
    with make_euicc(tmp_path / "e.db", pki) as euicc:
        for attempt in range(1, limit + 1):
            server.wire.clear()
            with pytest.raises(ConfirmationCodeError) as info:
                fetch(server, euicc, code, confirmation_code="0000")
            expected = ("8.2.7", "6.4") if attempt == limit else ("8.2.7", "3.8")
            assert (info.value.subject_code, info.value.reason_code) == expected
            assert first_failure(server) == ("getBoundProfilePackage", expected)
            item = server.core.item(iccid)
            assert item is not None
            assert item.cc_attempts == attempt
            assert item.state is (ItemState.ERROR if attempt == limit else ItemState.RELEASED)
            assert no_session_on(euicc)
        # the order is in error: even the right code is refused at AuthenticateClient
        server.wire.clear()
        with pytest.raises(MatchingIdError):
            fetch(server, euicc, code, confirmation_code="2468")
        assert first_failure(server) == ("authenticateClient", MID_REFUSED)
        assert iccids_on(euicc) == []
    assert server.state(iccid) is ItemState.ERROR
    # the sessions of the wrong codes are gone, and a refused AuthenticateClient
    # ends its session too (SGP.22 §3.1.3: the SM-DP+ terminates it)
    assert server.live_sessions() == 0


# -- download attempts ---------------------------------------------------------------------


def test_download_attempts_limit(tmp_path: Path, pki: TestPki, servers: list[SmdpServer]) -> None:
    """Each authenticated session counts; past the limit the order goes to error (8.8.5/6.4)."""
    server = start_server(tmp_path / "smdp", pki)
    servers.append(server)
    limit = server.core.config.max_download_attempts
    iccid, code = server.order()
    with make_euicc(tmp_path / "e.db", pki) as euicc:
        for attempt in range(1, limit + 1):
            with pytest.raises(PolicyError, match="postponed"):
                fetch(server, euicc, code, consent=lambda m: Consent.POSTPONE)
            item = server.core.item(iccid)
            assert item is not None
            assert (item.state, item.download_attempts) == (ItemState.RELEASED, attempt)
        assert server.failures() == []  # postponing is no error: CancelSession succeeded
        assert server.calls().count("cancelSession") == limit
        with pytest.raises(DownloadOrderError) as info:
            fetch(server, euicc, code)
        assert (info.value.subject_code, info.value.reason_code) == ("8.8.5", "6.4")
        assert first_failure(server) == ("authenticateClient", ("8.8.5", "6.4"))
        assert iccids_on(euicc) == []
        assert no_session_on(euicc)
    assert server.state(iccid) is ItemState.ERROR
    assert server.live_sessions() == 0


# -- expired session ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "function"),
    [
        (DownloadStep.AUTHENTICATE_CLIENT, "authenticateClient"),
        (DownloadStep.GET_BOUND_PROFILE_PACKAGE, "getBoundProfilePackage"),
    ],
    ids=["before-authenticateClient", "before-getBoundProfilePackage"],
)
def test_expired_session(
    tmp_path: Path,
    pki: TestPki,
    servers: list[SmdpServer],
    step: DownloadStep,
    function: str,
) -> None:
    server = start_server(tmp_path / "smdp", pki)
    servers.append(server)
    ttl = server.core.config.session_ttl
    iccid, code = server.order()

    def later(announced: DownloadStep) -> None:
        if announced is step:  # the SM-DP+'s clock jumps past the session's lifetime
            server.clock.advance(ttl + timedelta(seconds=1))

    with make_euicc(tmp_path / "e.db", pki) as euicc:
        with pytest.raises(TransactionIdError) as info:
            fetch(server, euicc, code, progress=later)
        assert (info.value.subject_code, info.value.reason_code) == TID_UNKNOWN
        assert first_failure(server) == (function, TID_UNKNOWN)
        assert iccids_on(euicc) == []
        assert no_session_on(euicc)
        # the order is still downloadable: a new session (new clock) succeeds
        assert server.state(iccid) is ItemState.RELEASED
        assert server.live_sessions() == 0
        assert fetch(server, euicc, code).iccid == iccid
        assert iccids_on(euicc) == [iccid]
    assert server.state(iccid) is ItemState.INSTALLED


# -- replayed transaction id -----------------------------------------------------------------


def test_replayed_transaction_id(tmp_path: Path, pki: TestPki, servers: list[SmdpServer]) -> None:
    server = start_server(tmp_path / "smdp", pki)
    servers.append(server)
    iccid, code = server.order()
    replays: dict[str, BaseException | None] = {}

    with make_euicc(tmp_path / "e.db", pki) as euicc:
        mitm = mitm_for(server, euicc)

        async def replay(name: str, call: Callable[[Any], Awaitable[Any]], request: Any) -> None:
            try:
                await call(request)
                replays[name] = None
            except Exception as exc:
                replays[name] = exc

        # during the session: AuthenticateClient again after its answer, and
        # GetBoundProfilePackage again after the package was bound
        mitm.after["authenticateClient"] = lambda r: replay(
            "authenticateClient", mitm.inner.authenticate_client, r
        )
        mitm.after["getBoundProfilePackage"] = lambda r: replay(
            "getBoundProfilePackage", mitm.inner.get_bound_profile_package, r
        )
        result = fetch(server, euicc, code, mitm=mitm)
        assert result.iccid == iccid
        assert iccids_on(euicc) == [iccid]

        # after the session: the same three messages again
        async def later() -> None:
            async with Es9Client(server.address, trust=settings_for(euicc).trust) as again:
                await replay(
                    "authenticateClient-after",
                    again.authenticate_client,
                    mitm.requests["authenticateClient"],
                )
                await replay(
                    "getBoundProfilePackage-after",
                    again.get_bound_profile_package,
                    mitm.requests["getBoundProfilePackage"],
                )
                await replay(
                    "handleNotification-after",
                    again.handle_notification,
                    mitm.requests["handleNotification"],
                )

        run(later)
    for name in (
        "authenticateClient",
        "getBoundProfilePackage",
        "authenticateClient-after",
        "getBoundProfilePackage-after",
    ):
        error = replays[name]
        assert isinstance(error, TransactionIdError), (name, error)
        assert (error.subject_code, error.reason_code) == TID_UNKNOWN
    # the same installation result again is accepted and changes nothing
    assert replays["handleNotification-after"] is None
    assert [f for f, _ in server.failures()] == [
        "authenticateClient",
        "getBoundProfilePackage",
        "authenticateClient",
        "getBoundProfilePackage",
    ]
    assert {code for _, code in server.failures()} == {TID_UNKNOWN}
    assert server.states() == {iccid: ItemState.INSTALLED}
    assert server.live_sessions() == 0


# -- EID binding ------------------------------------------------------------------------------


def test_wrong_eid_for_an_eid_bound_order(
    tmp_path: Path, pki: TestPki, servers: list[SmdpServer]
) -> None:
    server = start_server(tmp_path / "smdp", pki)
    servers.append(server)
    bound_eid = generate_eid(pki.ein, os.urandom)
    iccid, code = server.order(order_eid=bound_eid)
    with make_euicc(tmp_path / "other.db", pki) as other:
        with pytest.raises(EidError) as info:
            fetch(server, other, code)
        assert (info.value.subject_code, info.value.reason_code) == ("8.1.1", "3.8")
        assert first_failure(server) == ("authenticateClient", ("8.1.1", "3.8"))
        assert iccids_on(other) == []
        assert no_session_on(other)
    item = server.core.item(iccid)
    assert item is not None
    assert (item.state, item.eid, item.download_attempts) == (ItemState.RELEASED, bound_eid, 0)
    # the eUICC the order names downloads it
    with make_euicc(tmp_path / "right.db", pki, eid=bound_eid) as right:
        assert fetch(server, right, code).iccid == iccid
        assert iccids_on(right) == [iccid]
    assert server.state(iccid) is ItemState.INSTALLED


# -- tampered signatures ------------------------------------------------------------------------


@CURVES
@pytest.mark.parametrize(
    ("target", "error", "refused_at", "code"),
    [
        # the SM-DP+'s signatures, tampered on the way: the eUICC refuses and the
        # LPA passes the eUICC's error answer on to the SM-DP+ (SGP.22 §3.1.3)
        ("serverSignature1", SignatureError, "authenticateClient", EUICC_ERROR),
        ("smdpSignature2", SignatureError, "getBoundProfilePackage", EUICC_ERROR),
        # the eUICC's signatures, tampered on the way: the SM-DP+ refuses
        ("euiccSignature1", EuiccVerificationError, "authenticateClient", ("8.1", "6.1")),
        ("euiccSignature2", EuiccVerificationError, "getBoundProfilePackage", ("8.1", "6.1")),
    ],
)
def test_tampered_signatures(
    tmp_path: Path,
    pki: TestPki,
    servers: list[SmdpServer],
    curve: Curve,
    target: str,
    error: type[Exception],
    refused_at: str,
    code: tuple[str, str],
) -> None:
    server = start_server(tmp_path / "smdp", pki)
    servers.append(server)
    iccid, activation = server.order()
    with make_euicc(tmp_path / "e.db", pki, curve) as euicc:
        mitm = mitm_for(server, euicc)
        if target == "serverSignature1":
            mitm.edit_answer["initiateAuthentication"] = lambda a: attrs.evolve(
                a, server_signature1=flip_last(a.server_signature1)
            )
        elif target == "smdpSignature2":
            mitm.edit_answer["authenticateClient"] = lambda a: attrs.evolve(
                a, smdp_signature2=flip_last(a.smdp_signature2)
            )
        elif target == "euiccSignature1":
            mitm.edit_request["authenticateClient"] = lambda r: attrs.evolve(
                r, authenticate_server_response=flip_signature(r.authenticate_server_response)
            )
        else:
            mitm.edit_request["getBoundProfilePackage"] = lambda r: attrs.evolve(
                r, prepare_download_response=flip_signature(r.prepare_download_response)
            )
        with pytest.raises(error) as info:
            fetch(server, euicc, activation, mitm=mitm)
        if code != EUICC_ERROR:  # the SM-DP+'s own refusal is what the LPA raises
            raised = info.value
            assert isinstance(raised, FunctionExecutionError)
            assert (raised.subject_code, raised.reason_code) == code
        assert first_failure(server) == (refused_at, code)
        assert iccids_on(euicc) == []
        assert no_session_on(euicc)
        item = server.core.item(iccid)
        assert item is not None
        if target == "euiccSignature2":
            # the LPA cancels the eUICC session (undefinedReason) and the signed
            # CancelSession reaches the SM-DP+: the order goes to error
            assert server.calls()[-1] == "cancelSession"
            assert server.wire[-1].status == "Executed-Success"
            assert item.state is ItemState.ERROR
        else:
            assert item.state is ItemState.RELEASED
            # nothing was bound: the same eUICC downloads the order untouched
            assert fetch(server, euicc, activation).iccid == iccid
            assert server.state(iccid) is ItemState.INSTALLED


# -- untrusted SM-DP+ chains ----------------------------------------------------------------


def resigned(der: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The same certificate (names, key, extensions, AKI naming the real CI) signed by ``key``."""
    cert = x509.load_der_x509_certificate(der)
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(cert.issuer)
        .public_key(cert.public_key())
        .serial_number(cert.serial_number)
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


@CURVES
def test_dp_auth_not_issued_by_the_trusted_ci(
    tmp_path: Path, pki: TestPki, servers: list[SmdpServer], curve: Curve
) -> None:
    """A rogue SM-DP+ (trusted TLS) whose CERT.DPauth claims the eUICC's CI but is
    signed by another key: the eUICC refuses it (invalidCertificate)."""

    def forge(config: SmdpConfig) -> SmdpConfig:
        creds = tuple(
            attrs.evolve(
                c,
                dp_auth_certificate=resigned(
                    c.dp_auth_certificate, ec.generate_private_key(c.dp_auth_key.curve)
                ),
            )
            for c in config.credentials
        )
        return attrs.evolve(config, credentials=creds)

    server = start_server(tmp_path / "smdp", pki, edit=forge)
    servers.append(server)
    iccid, code = server.order()
    with make_euicc(tmp_path / "e.db", pki, curve) as euicc:
        with pytest.raises(UntrustedCertificateError):
            fetch(server, euicc, code)
        assert iccids_on(euicc) == []
        assert no_session_on(euicc)
    assert server.calls() == ["initiateAuthentication", "authenticateClient"]
    assert first_failure(server) == ("authenticateClient", EUICC_ERROR)
    assert server.state(iccid) is ItemState.RELEASED


def test_dp_auth_under_a_ci_the_euicc_does_not_list(
    tmp_path: Path, pki: TestPki, servers: list[SmdpServer]
) -> None:
    """An SM-DP+ (trusted TLS) whose DPauth/DPpb come from another CI: no common CI,
    the SM-DP+ refuses at InitiateAuthentication (8.8.2/3.1)."""
    other = TestPki.create(tmp_path / "other-pki", curves=[Curve.NIST], now=datetime.now(UTC))
    tls = tmp_path / "tls"
    init_data_dir(tls, pki, address="localhost:1", curves=(Curve.NIST,))
    server = start_server(tmp_path / "smdp", pki, pki_for_data=other, tls_data=tls)
    servers.append(server)
    iccid, code = server.order()
    with make_euicc(tmp_path / "e.db", pki) as euicc:
        with pytest.raises(ServerConfigurationError) as info:
            fetch(server, euicc, code)
        assert (info.value.subject_code, info.value.reason_code) == ("8.8.2", "3.1")
        assert no_session_on(euicc)
    assert server.failures() == [("initiateAuthentication", ("8.8.2", "3.1"))]
    assert server.state(iccid) is ItemState.RELEASED
    assert server.live_sessions() == 0


def test_dp_tls_untrusted_refused_before_any_request(
    tmp_path: Path, pki: TestPki, servers: list[SmdpServer]
) -> None:
    other = TestPki.create(tmp_path / "other-pki", curves=[Curve.NIST], now=datetime.now(UTC))
    server = start_server(tmp_path / "smdp", pki, pki_for_data=other)
    servers.append(server)
    iccid, code = server.order()
    with make_euicc(tmp_path / "e.db", pki) as euicc:
        with pytest.raises(UntrustedCertificateError):
            fetch(server, euicc, code)
        assert no_session_on(euicc)
    assert server.wire == []  # the TLS handshake failed: no request reached the app
    assert server.state(iccid) is ItemState.RELEASED
    assert server.live_sessions() == 0


# -- a link cut after GetBoundProfilePackage -------------------------------------------------


def cut_first_bpp() -> Middleware:
    done: list[bool] = []

    @web.middleware
    async def cut(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        response = await handler(request)  # the SM-DP+ binds the package ...
        if request.path.endswith("getBoundProfilePackage") and not done:
            done.append(True)
            assert request.transport is not None
            request.transport.abort()  # ... and the answer never arrives
        return response

    return cut


@CURVES
def test_link_cut_after_get_bound_profile_package(
    tmp_path: Path, pki: TestPki, servers: list[SmdpServer], curve: Curve
) -> None:
    server = start_server(tmp_path / "smdp", pki, middlewares=(cut_first_bpp(),))
    servers.append(server)
    iccid, code = server.order()
    at_retry: list[ItemState] = []

    def progress(step: DownloadStep) -> None:
        if step is DownloadStep.RETRY:
            at_retry.append(server.state(iccid))

    with make_euicc(tmp_path / "e.db", pki, curve) as euicc:
        result = fetch(server, euicc, code, progress=progress)
        assert result.iccid == iccid
        assert result.attempts == 2
        assert result.notification is not None
        assert result.notification.delivered
        assert iccids_on(euicc) == [iccid]  # one profile, installed once
        assert no_session_on(euicc)
    assert at_retry == [ItemState.DOWNLOADED]  # bound, kept for the retry
    assert server.calls() == [
        "initiateAuthentication",
        "authenticateClient",
        "getBoundProfilePackage",  # answered, but the answer was lost
        "initiateAuthentication",
        "authenticateClient",
        "getBoundProfilePackage",
        "handleNotification",
    ]
    assert server.failures() == []
    assert server.state(iccid) is ItemState.INSTALLED
    assert [n.event for n in server.core.notifications(iccid)] == ["install"]
    # the retry's session superseded the first one (bound, its answer lost); the
    # second ended with the installation: nothing is left
    assert server.live_sessions() == 0
