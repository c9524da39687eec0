"""Whole downloads by the LPA over real HTTPS on loopback.

The SM-DP+ is H2's aiohttp application around the sans-IO core (``rspfed.smdp``)
with a data directory made by ``init_data_dir`` (DPtls for ``localhost``);
the eUICC is a real :class:`rspfed.euicc.Euicc` driven over APDUs
(:class:`ApduEs10` on its card) or in process.  The server runs on the test's
event loop; a small aiohttp middleware stands in for the network where a test
needs to cut the link or watch the requests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web
from aiohttp.typedefs import Middleware
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.crypto.curves import Curve
from rspfed.errors import (
    ConfirmationCodeError,
    IntegrityError,
    MatchingIdError,
    PolicyError,
    RspfedError,
    SignatureError,
    StateError,
    TransportError,
    UntrustedCertificateError,
    UsageError,
)
from rspfed.euicc.euicc import Euicc
from rspfed.lpa import (
    ActivationCode,
    ApduEs10,
    Consent,
    DownloadStep,
    Es9Settings,
    InProcessEs10,
    Lpa,
    PcscEs10,
    ProfileMetadata,
    download,
    store_ci_certificates,
)
from rspfed.pki.testpki import TestPki
from rspfed.saip.install import install_package, load_profile
from rspfed.smdp import ItemState, ProfileType, Smdp
from rspfed.smdp.datadir import init_data_dir, load_config, open_store
from rspfed.smdp.http import make_app, server_ssl_context
from tests.paths import TS48

PACKAGE = (TS48 / "TS48v2_SAIP2.3_BERTLV.der").read_bytes()


def reserve_port() -> socket.socket:
    """A listening-ready socket on a free loopback port, held until the server starts."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@attrs.define
class Server:
    """An SM-DP+ data directory, its core and (while running) its HTTPS server."""

    data: Path
    address: str
    port: int
    smdp: Smdp
    sock: socket.socket | None = None
    seen: list[str] = attrs.Factory(list)
    runner: web.AppRunner | None = None

    def order(self, **confirm: Any) -> tuple[str, ActivationCode]:
        iccid = self.smdp.download_order(profile_type="test")
        confirmed = self.smdp.confirm_order(iccid=iccid, **confirm)
        return iccid, ActivationCode.parse(confirmed.activation_code)

    def state(self, iccid: str) -> ItemState:
        item = self.smdp.item(iccid)
        assert item is not None
        return item.state

    async def start(self, *middlewares: Middleware) -> None:
        @web.middleware
        async def record(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            self.seen.append(request.path.rsplit("/", 1)[-1])
            return await handler(request)

        data = self.data

        def core() -> Smdp:  # the server's own core and store connection
            return Smdp(load_config(data), open_store(data), now=lambda: datetime.now(UTC))

        app = make_app(core, deliver_progress=False)
        app.middlewares.insert(0, record)
        for m in middlewares:
            app.middlewares.insert(1, m)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        context = server_ssl_context(self.data)
        site: web.BaseSite
        if self.sock is not None:  # the first start uses the reserved socket
            site = web.SockSite(self.runner, self.sock, ssl_context=context)
            self.sock = None
        else:
            site = web.TCPSite(
                self.runner, "127.0.0.1", self.port, ssl_context=context, reuse_address=True
            )
        await site.start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def make_server(tmp: Path, pki: TestPki, metadata: dict[str, Any] | None = None) -> Server:
    sock = reserve_port()
    port = int(sock.getsockname()[1])
    address = f"localhost:{port}"
    data = tmp / "smdp"
    init_data_dir(data, pki, address=address)
    smdp = Smdp(load_config(data), open_store(data), now=lambda: datetime.now(UTC))
    meta = metadata or {
        "serviceProviderName": "rspfed test",
        "profileName": "TS.48 test profile",
        "profileClass": "test",
        "notificationConfigurationInfo": [
            {"events": ["install", "enable", "disable", "delete"], "address": address}
        ],
    }
    smdp.add_profile_type(ProfileType.from_metadata("test", PACKAGE, meta))
    return Server(data, address, port, smdp, sock)


def make_euicc(tmp: Path, pki: TestPki, curve: Curve = Curve.NIST) -> Euicc:
    # a brainpool-only eUICC also lists the NIST CI for verification (DPtls is P-256)
    extra = (
        [pki.material(Curve.NIST).ci.public_bytes(Encoding.DER)] if curve is not Curve.NIST else []
    )
    return Euicc.create(
        tmp / f"euicc-{curve.value}.db",
        pki,
        curves=(curve,),
        extra_cis=extra,
        loader=load_profile,
        installer=lambda package: install_package(package).iccid,
    )


def store_cis(euicc: Euicc) -> tuple[bytes, ...]:
    """The CLI's default trust: the CI certificates in the eUICC store."""
    return store_ci_certificates(euicc.store)


def run(server: Server, body: Callable[[], Awaitable[Any]], *middlewares: Middleware) -> Any:
    async def main() -> Any:
        await server.start(*middlewares)
        try:
            return await body()
        finally:
            await server.stop()

    return asyncio.run(main())


@pytest.mark.parametrize("curve", [Curve.NIST, Curve.BRAINPOOL])
def test_download_over_https_and_apdus(tmp_path: Path, pki: TestPki, curve: Curve) -> None:
    server = make_server(tmp_path, pki)
    iccid, code = server.order()
    steps: list[DownloadStep] = []
    shown: list[ProfileMetadata] = []

    def consent(metadata: ProfileMetadata) -> bool:
        shown.append(metadata)
        return True

    with make_euicc(tmp_path, pki, curve) as euicc:
        link = ApduEs10(euicc.card)
        result = run(
            server,
            lambda: download(
                link,
                code,
                consent=consent,
                progress=steps.append,
                settings=Es9Settings(trust=store_cis(euicc)),
            ),
        )
        link.close()
        assert result.iccid == iccid
        assert result.attempts == 1
        assert shown[0].iccid == iccid
        assert shown[0].service_provider_name == "rspfed test"
        assert shown[0].profile_class == "test"
        assert steps[0] is DownloadStep.GET_EUICC_INFO
        assert steps[-1] is DownloadStep.DONE
        assert DownloadStep.CONFIRMATION_CODE not in steps
        assert result.notification is not None
        assert result.notification.delivered
        assert result.notification.removed
        # the eUICC has the profile (through its APDU front end, saved), nothing pending
        profiles = Lpa(InProcessEs10(euicc.isdr)).profiles()
        assert [(p.iccid, p.state) for p in profiles] == [(iccid, "disabled")]
        assert euicc.store.state.notifications == ()
        assert result.isdp_aid == profiles[0].isdp_aid
    # the SM-DP+ saw the whole flow and recorded the installation
    assert server.seen == [
        "initiateAuthentication",
        "authenticateClient",
        "getBoundProfilePackage",
        "handleNotification",
    ]
    assert server.state(iccid) is ItemState.INSTALLED
    assert result.timings["lpa"] > 0
    assert result.timings["total"] >= result.timings["euicc"] + result.timings["server"]


def test_profile_operations_and_notification_delivery(tmp_path: Path, pki: TestPki) -> None:
    server = make_server(tmp_path, pki)
    iccid, code = server.order()
    with make_euicc(tmp_path, pki) as euicc:
        lpa = Lpa(ApduEs10(euicc.card), settings=Es9Settings(trust=store_cis(euicc)))

        async def body() -> None:
            await lpa.download(code)
            lpa.enable(iccid)
            lpa.set_nickname(iccid, "work phone")
            [profile] = lpa.profiles()
            assert (profile.state, profile.nickname) == ("enabled", "work phone")
            with pytest.raises(StateError):
                lpa.delete(iccid)  # enabled: the eUICC refuses
            lpa.disable(profile.isdp_aid)  # by ISD-P AID this time
            pending = lpa.notifications()
            assert [n.event for n in pending] == ["enable", "disable"]
            assert all(n.iccid == iccid and n.address == server.address for n in pending)
            results = await lpa.deliver_notifications()
            assert [(d.delivered, d.removed) for d in results] == [(True, True)] * 2
            assert lpa.notifications() == []
            lpa.delete(iccid)
            assert lpa.profiles() == []
            [deleted] = lpa.notifications()
            assert deleted.event == "delete"
            assert [d.delivered for d in await lpa.deliver_notifications()] == [True]

        run(server, body)
    events = [n.event for n in server.smdp.notifications(iccid)]
    assert events == ["install", "enable", "disable", "delete"]
    assert server.state(iccid) is ItemState.UNAVAILABLE


def test_confirmation_code(tmp_path: Path, pki: TestPki) -> None:
    server = make_server(tmp_path, pki)
    iccid, code = server.order(confirmation_code="2468")
    assert code.confirmation_code_required
    asked: list[str] = []

    with make_euicc(tmp_path, pki) as euicc:
        link = ApduEs10(euicc.card)
        settings = Es9Settings(trust=store_cis(euicc))

        async def body() -> None:
            # none given: the LPA cancels (the session ends, the order stays)
            with pytest.raises(UsageError, match="confirmation code"):
                await download(link, code, settings=settings)
            # a wrong one: the SM-DP+'s 8.2.7 error
            with pytest.raises(ConfirmationCodeError) as info:
                await download(link, code, settings=settings, confirmation_code="0000")
            assert (info.value.subject_code, info.value.reason_code) == ("8.2.7", "3.8")

            # the right one, asked through the callback
            def ask(metadata: ProfileMetadata) -> str:
                asked.append(metadata.iccid)
                return "2468"

            # (trust given directly instead of settings)
            result = await download(link, code, trust=settings.trust, ask_confirmation_code=ask)
            with pytest.raises(UsageError):
                await download(link, code, settings=settings, tls=False)
            assert result.iccid == iccid

        run(server, body)
    assert asked == [iccid]
    assert server.state(iccid) is ItemState.INSTALLED


def test_retry_after_the_link_is_cut(tmp_path: Path, pki: TestPki) -> None:
    server = make_server(tmp_path, pki)
    iccid, code = server.order()
    otpks: list[bytes] = []
    cut = {"done": False}

    @web.middleware
    async def cut_first_bpp(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if not request.path.endswith("getBoundProfilePackage"):
            return await handler(request)
        body = json.loads(await request.read())
        prepared = asn1.decode(
            rsp.PrepareDownloadResponse,
            base64.b64decode(body["prepareDownloadResponse"]),
        )
        otpks.append(bytes(prepared.chosen["euiccSigned2"]["euiccOtpk"].native))
        response = await handler(request)  # the SM-DP+ binds the package ...
        if not cut["done"]:
            cut["done"] = True
            assert request.transport is not None
            request.transport.abort()  # ... and the answer never arrives
        return response

    steps: list[DownloadStep] = []
    with make_euicc(tmp_path, pki) as euicc:
        link = ApduEs10(euicc.card)
        result = run(
            server,
            lambda: download(
                link, code, settings=Es9Settings(trust=store_cis(euicc)), progress=steps.append
            ),
            cut_first_bpp,
        )
        assert [p.iccid for p in Lpa(link).profiles()] == [iccid]
    assert result.attempts == 2
    assert DownloadStep.RETRY in steps
    assert DownloadStep.CANCEL_SESSION not in steps
    # the eUICC reused its one-time key for the second session (SGP.22 otPK re-use)
    assert len(otpks) == 2
    assert otpks[0] == otpks[1]
    assert server.seen.count("initiateAuthentication") == 2
    assert server.state(iccid) is ItemState.INSTALLED


def test_link_cut_every_time_cancels_and_raises(tmp_path: Path, pki: TestPki) -> None:
    server = make_server(tmp_path, pki)
    iccid, code = server.order()

    @web.middleware
    async def always_cut(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        response = await handler(request)
        if request.path.endswith("getBoundProfilePackage"):
            assert request.transport is not None
            request.transport.abort()
        return response

    steps: list[DownloadStep] = []
    with make_euicc(tmp_path, pki) as euicc:
        link = ApduEs10(euicc.card)

        async def body() -> None:
            with pytest.raises(TransportError):
                await download(
                    link,
                    code,
                    settings=Es9Settings(trust=store_cis(euicc)),
                    retries=1,
                    progress=steps.append,
                )

        run(server, body, always_cut)
        assert Lpa(link).profiles() == []
    assert steps.count(DownloadStep.RETRY) == 1
    assert steps[-1] is DownloadStep.CANCEL_SESSION
    assert server.seen[-1] == "cancelSession"
    # reason timeout: the order stays downloadable
    assert server.state(iccid) is not ItemState.ERROR


def test_user_refusal_cancels_the_session(tmp_path: Path, pki: TestPki) -> None:
    server = make_server(tmp_path, pki)
    iccid, code = server.order()
    with make_euicc(tmp_path, pki) as euicc:
        link = ApduEs10(euicc.card)

        async def body() -> None:
            with pytest.raises(PolicyError):
                await download(
                    link,
                    code,
                    settings=Es9Settings(trust=store_cis(euicc)),
                    consent=lambda m: Consent.REJECT,
                )

        run(server, body)
        assert Lpa(link).profiles() == []
    assert server.seen == ["initiateAuthentication", "authenticateClient", "cancelSession"]
    assert server.state(iccid) is ItemState.ERROR


def test_postponed_keeps_the_order(tmp_path: Path, pki: TestPki) -> None:
    server = make_server(tmp_path, pki)
    iccid, code = server.order()
    with make_euicc(tmp_path, pki) as euicc:
        link = ApduEs10(euicc.card)
        settings = Es9Settings(trust=store_cis(euicc))

        async def later(metadata: ProfileMetadata) -> Consent:
            return Consent.POSTPONE

        async def body() -> None:
            with pytest.raises(PolicyError, match="postponed"):
                await download(link, code, settings=settings, consent=later)
            result = await download(link, code, settings=settings)
            assert result.iccid == iccid

        run(server, body)
    assert server.state(iccid) is ItemState.INSTALLED


def test_unknown_matching_id(tmp_path: Path, pki: TestPki) -> None:
    server = make_server(tmp_path, pki)
    server.order()
    with make_euicc(tmp_path, pki) as euicc:
        link = ApduEs10(euicc.card)
        bogus = ActivationCode(server.address, "NO-SUCH-ORDER")

        async def body() -> None:
            with pytest.raises(MatchingIdError) as info:
                await download(link, bogus, settings=Es9Settings(trust=store_cis(euicc)))
            assert info.value.subject_code == "8.2.6"

        run(server, body)
        assert Lpa(link).profiles() == []


def test_reused_matching_id(tmp_path: Path, pki: TestPki) -> None:
    server = make_server(tmp_path, pki)
    _, code = server.order()
    with make_euicc(tmp_path, pki) as euicc:
        link = ApduEs10(euicc.card)
        settings = Es9Settings(trust=store_cis(euicc))

        async def body() -> None:
            await download(link, code, settings=settings)
            with pytest.raises(MatchingIdError):
                await download(link, code, settings=settings)

        run(server, body)


def test_default_smdp_address_without_activation_code(tmp_path: Path, pki: TestPki) -> None:
    server = make_server(tmp_path, pki)
    with make_euicc(tmp_path, pki) as euicc:
        iccid, _ = server.order(eid=euicc.eid, matching_id="")
        link = ApduEs10(euicc.card)
        request = asn1.encode(rsp.SetDefaultDpAddressRequest({"defaultDpAddress": server.address}))
        assert asn1.decode(rsp.SetDefaultDpAddressResponse, link.transceive(request))[
            "setDefaultDpAddressResult"
        ].native in ("ok", 0)
        result = run(
            server, lambda: download(link, None, settings=Es9Settings(trust=store_cis(euicc)))
        )
        assert result.iccid == iccid
        assert result.smdp_address == server.address
    assert server.state(iccid) is ItemState.INSTALLED


def test_no_default_address(tmp_path: Path, pki: TestPki) -> None:
    with make_euicc(tmp_path, pki) as euicc, pytest.raises(UsageError, match="default SM-DP\\+"):
        asyncio.run(download(InProcessEs10(euicc.isdr), None))


def test_tls_trust_follows_the_euicc_list(tmp_path: Path, pki: TestPki) -> None:
    """The LPA knows the NIST CI but a brainpool-only eUICC does not list it: refused."""
    server = make_server(tmp_path, pki)
    _, code = server.order()
    with Euicc.create(tmp_path / "bp.db", pki, curves=(Curve.BRAINPOOL,)) as euicc:
        nist_ci = pki.material(Curve.NIST).ci.public_bytes(Encoding.DER)

        async def body() -> None:
            with pytest.raises(UntrustedCertificateError):
                await download(
                    InProcessEs10(euicc.isdr), code, settings=Es9Settings(trust=(nist_ci,))
                )

        run(server, body)
    assert server.seen == []


# -- a network attacker between the LPA and the SM-DP+: the eUICC must refuse ------------


def tamper_response(function: str, edit: Callable[[dict[str, Any]], None]) -> Middleware:
    @web.middleware
    async def middleware(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        response = await handler(request)
        if not request.path.endswith(function) or not isinstance(response, web.Response):
            return response
        assert isinstance(response.body, bytes)
        body = json.loads(response.body)
        if "header" in body and body["header"]["functionExecutionStatus"]["status"] == "Failed":
            return response
        edit(body)
        return web.Response(body=json.dumps(body).encode(), content_type="application/json")

    return middleware


def flip(body: dict[str, Any], field: str, at: int = -1) -> None:
    raw = bytearray(base64.b64decode(body[field]))
    raw[at] ^= 0x01
    body[field] = base64.b64encode(bytes(raw)).decode()


def other_dp_auth(tmp: Path) -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec

    from rspfed.pki import CertificateRole

    other = TestPki.create(tmp / "other-pki", now=datetime.now(UTC), curves=[Curve.NIST])
    key = ec.generate_private_key(ec.SECP256R1())
    cert = other.issue_smdp_certificate(CertificateRole.DPAUTH, key.public_key(), Curve.NIST)
    return cert.public_bytes(Encoding.DER)


@pytest.mark.parametrize(
    ("function", "edit_name", "error", "reported_by"),
    [
        ("initiateAuthentication", "signature1", SignatureError, "authenticateClient"),
        ("initiateAuthentication", "certificate", UntrustedCertificateError, "authenticateClient"),
        ("authenticateClient", "signature2", SignatureError, "getBoundProfilePackage"),
        ("getBoundProfilePackage", "bpp", IntegrityError, "handleNotification"),
    ],
)
def test_tampered_messages_are_refused_by_the_euicc(
    tmp_path: Path,
    pki: TestPki,
    function: str,
    edit_name: str,
    error: type[Exception],
    reported_by: str,
) -> None:
    server = make_server(tmp_path, pki)
    iccid, code = server.order()
    foreign = other_dp_auth(tmp_path)
    edits: dict[str, Callable[[dict[str, Any]], None]] = {
        "signature1": lambda b: flip(b, "serverSignature1"),
        "certificate": lambda b: b.__setitem__(
            "serverCertificate", base64.b64encode(foreign).decode()
        ),
        "signature2": lambda b: flip(b, "smdpSignature2"),
        "bpp": lambda b: flip(b, "boundProfilePackage", -40),
    }
    with make_euicc(tmp_path, pki) as euicc:
        link = ApduEs10(euicc.card)

        async def body() -> None:
            with pytest.raises(error):
                await download(link, code, settings=Es9Settings(trust=store_cis(euicc)))

        run(server, body, tamper_response(function, edits[edit_name]))
        assert Lpa(link).profiles() == []
        assert euicc.store.state.notifications == ()
    # the eUICC's refusal reached the SM-DP+ on the next function, and the order is out
    assert server.seen[-1] == reported_by
    assert server.state(iccid) is not ItemState.INSTALLED


@pytest.mark.timeout(120)
def test_download_through_pcsc(tmp_path: Path, pki: TestPki) -> None:
    """The same download with the eUICC served by ``rspfed euicc serve`` in a PC/SC
    reader (pcscd + vpcd, T=0) and the LPA on :class:`PcscEs10`."""
    from tests.euicc.test_serve_pcsc import serve

    server = make_server(tmp_path, pki)
    iccid, code = server.order()
    with make_euicc(tmp_path, pki) as euicc:
        trust = store_cis(euicc)
    path = tmp_path / "euicc-nist.db"
    with serve(path, tmp_path) as card, PcscEs10(str(card.reader)) as link:
        lpa = Lpa(link, settings=Es9Settings(trust=trust))

        async def body() -> None:
            result = await lpa.download(code)
            assert result.iccid == iccid
            lpa.enable(iccid)
            assert [(p.iccid, p.state) for p in lpa.profiles()] == [(iccid, "enabled")]
            assert [d.delivered for d in await lpa.deliver_notifications()] == [True]

        run(server, body)
    assert server.state(iccid) is ItemState.INSTALLED
    with Euicc.open(path) as again:  # the served card saved its state
        assert [p.status.value for p in again.store.state.profiles] == ["enabled"]


# -- a broken or hostile SM-DP+: the LPA raises only RspfedError and leaves nothing open ---


def replace_body(function: str, body: bytes, status: int = 200) -> Middleware:
    @web.middleware
    async def middleware(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        response = await handler(request)
        if not request.path.endswith(function):
            return response
        return web.Response(body=body, status=status, content_type="application/json")

    return middleware


def ok(**fields: str) -> bytes:
    return json.dumps(
        {"header": {"functionExecutionStatus": {"status": "Executed-Success"}}, **fields}
    ).encode()


B64 = base64.b64encode(b"\x30\x03\x02\x01\x00").decode()
HOSTILE = [
    ("initiateAuthentication", b"", False),
    ("initiateAuthentication", b"<html>", False),
    ("initiateAuthentication", b"[" * 100 + b"]" * 100, False),
    ("initiateAuthentication", ok(), False),
    (
        "initiateAuthentication",
        ok(
            transactionId="0102",
            serverSigned1="!!",
            serverSignature1=B64,
            euiccCiPKIdToBeUsed=B64,
            serverCertificate=B64,
        ),
        False,
    ),
    (
        "initiateAuthentication",
        ok(
            transactionId="0102",
            serverSigned1=B64,
            serverSignature1=B64,
            euiccCiPKIdToBeUsed=B64,
            serverCertificate=B64,
        ),
        False,
    ),
    ("authenticateClient", b"{}", True),
    ("authenticateClient", ok(transactionId="ZZ"), True),
    (
        "authenticateClient",
        ok(
            transactionId="0102",
            profileMetadata=B64,
            smdpSigned2=B64,
            smdpSignature2=B64,
            smdpCertificate=B64,
        ),
        True,
    ),
    ("getBoundProfilePackage", ok(transactionId="0102", boundProfilePackage=B64), True),
    ("getBoundProfilePackage", b"\xff\xfe", True),
]


@pytest.mark.parametrize(("function", "body", "cancels"), HOSTILE)
def test_hostile_answers(
    tmp_path: Path, pki: TestPki, function: str, body: bytes, cancels: bool
) -> None:
    server = make_server(tmp_path, pki)
    iccid, code = server.order()
    with make_euicc(tmp_path, pki) as euicc:
        link = ApduEs10(euicc.card)

        async def run_it() -> None:
            with pytest.raises(RspfedError):
                await download(link, code, settings=Es9Settings(trust=store_cis(euicc)))

        run(server, run_it, replace_body(function, body))
        assert Lpa(link).profiles() == []
        # the eUICC holds no session any more: a CancelSession now is refused
        answer = link.transceive(
            asn1.encode(rsp.CancelSessionRequest({"transactionId": b"\x01\x02", "reason": 0}))
        )
        assert asn1.decode(rsp.CancelSessionResponse, answer).name == "cancelSessionResponseError"
    assert (server.seen[-1] == "cancelSession") is cancels
    assert server.state(iccid) is not ItemState.INSTALLED


def test_http_error_status_mid_download(tmp_path: Path, pki: TestPki) -> None:
    server = make_server(tmp_path, pki)
    _, code = server.order()
    with make_euicc(tmp_path, pki) as euicc:
        link = ApduEs10(euicc.card)

        async def run_it() -> None:
            with pytest.raises(TransportError):
                await download(link, code, settings=Es9Settings(trust=store_cis(euicc)), retries=0)

        run(server, run_it, replace_body("getBoundProfilePackage", b"oops", 503))
    assert server.seen[-1] == "cancelSession"


def test_a_failing_consent_callback_still_cancels(tmp_path: Path, pki: TestPki) -> None:
    server = make_server(tmp_path, pki)
    _, code = server.order()

    def broken(metadata: ProfileMetadata) -> bool:
        raise KeyError("the UI crashed")

    with make_euicc(tmp_path, pki) as euicc:
        link = ApduEs10(euicc.card)

        async def run_it() -> None:
            with pytest.raises(KeyError):
                await download(
                    link, code, settings=Es9Settings(trust=store_cis(euicc)), consent=broken
                )

        run(server, run_it)
    assert server.seen[-1] == "cancelSession"
