"""The pairing flows in one process, with real devices and a real operator over HTTPS.

:func:`rspfed.transfer.flows.offer_join` (the primary, its federation key from
its device store) and :func:`rspfed.transfer.flows.join` (a new device: its
software eUICC, LPA and device store, enrolled by
:func:`rspfed.transfer.flows.operator_enroller`) run against ``rspfed operator
serve``.  Over BLE on bumble's virtual radio (the bleak central on the
bumble-backed backend), and over in-memory streams cut at sampled points: a
cut before the token grant leaves nothing at the operator; a cut after the
grant, before the joiner's result, makes the primary revoke the token, which
the operator then refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from rspfed.cli.federation import open_euicc
from rspfed.errors import RspfedError, TokenError, TransportError
from rspfed.federation.client import OperatorClient, operator_tls_context
from rspfed.federation.device import DeviceStore
from rspfed.federation.ledger import encode_state
from rspfed.federation.token import DeviceClass
from rspfed.federation.token import Service as Svc
from rspfed.transfer import flows
from rspfed.transfer.flows import (
    FlowEvent,
    FlowStep,
    Invitation,
    JoinAsk,
    Listener,
    LocalDevice,
    PrimaryAuthority,
    TransportConfig,
)
from rspfed.transport.stream import ByteStream, memory_stream_pair
from tests.federation_cli.conftest import Service, cli
from tests.pair_cli.conftest import Primary, make_primary

LIMIT = 60.0


@pytest.fixture(scope="module")
def primary(service: Service) -> Primary:
    return make_primary(service, "flows", "--classes", "phone,laptop,tablet,watch")


class _Acceptor:
    """A listener's view of one in-memory stream end (what LanOffer/BleAcceptor give)."""

    def __init__(self, stream: ByteStream, discovery_id: bytes) -> None:
        self.stream = stream
        self.discovery_id = discovery_id

    async def accept(self, timeout: float | None = None) -> ByteStream:
        return self.stream

    async def aclose(self) -> None:
        return None


@contextlib.asynccontextmanager
async def _primary_side(service: Service, primary: Primary) -> AsyncIterator[dict[str, Any]]:
    """The primary's key, hello, operator client and its ledger/revoke callbacks."""
    with DeviceStore.open(primary.device) as store:
        record = store.record()
        key = store.private_key()
    assert record is not None
    assert record.subscription_id is not None
    assert key is not None
    eid = json.loads(cli("euicc", "info", str(primary.euicc), "--json").stdout)["eid"]
    context = operator_tls_context("localhost", ca_file=service.ca_file)
    async with OperatorClient(service.url, ssl_context=context) as client:
        revoked: list[bytes] = []

        async def ledger() -> bytes | None:
            state, _ = await client.usage_state(key, 0)
            return encode_state(state)

        async def revoke(token_id: bytes) -> None:
            revoked.append(token_id)
            await client.revoke(key, token_id)

        yield {
            "local": LocalDevice("Ana's phone", DeviceClass.PHONE, eid),
            "authority": PrimaryAuthority(key, record.subscription_id, service.url),
            "ledger": ledger,
            "revoke": revoke,
            "revoked": revoked,
            "client": client,
            "key": key,
        }


async def _run_join(
    service: Service,
    primary: Primary,
    name: str,
    device_class: DeviceClass,
    *,
    listener: Callable[[Invitation], Any],
    stream_factory: Callable[[bytes, tuple[str, int] | None], Awaitable[ByteStream]],
    by_code: bool,
    approve: bool = True,
    before_enrol: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
) -> tuple[Any, Any, list[FlowEvent], dict[str, Any]]:
    """Both flows, concurrently: (offer outcome or error, join outcome or error, events,
    the primary side)."""
    euicc, _ = service.euicc(name)
    events: list[FlowEvent] = []

    async def asked(ask: JoinAsk) -> bool:
        return approve

    async with _primary_side(service, primary) as side:
        invitation = flows.make_invitation(name="Ana's phone")
        with (
            DeviceStore.create(service.tmp / f"{name}.device") as store,
            open_euicc(str(euicc), ca_file=str(service.ca_file), no_tls=False) as session,
        ):
            enroller = flows.operator_enroller(
                eid=session.eid,
                lpa=session.lpa,
                card=session.euicc.card,
                store=store,
                ssl_context=lambda url: operator_tls_context(
                    "localhost", trust=session.cis, ca_file=service.ca_file
                ),
                device_class=device_class,
                name=name,
            )
            if before_enrol is not None:
                inner, hook = enroller, before_enrol

                async def enroller(token: bytes, url: str, progress: Any) -> Any:
                    await hook(side)
                    return await inner(token, url, progress)

            async with listener(invitation) as lst:
                offered, joined = await asyncio.wait_for(
                    asyncio.gather(
                        flows.offer_join(
                            lst,
                            invitation=invitation,
                            local=side["local"],
                            authority=side["authority"],
                            approve=asked,
                            ledger=side["ledger"],
                            revoke=side["revoke"],
                            timeout=10.0,
                        ),
                        flows.join(
                            stream_factory,
                            target=str(invitation.code) if by_code else invitation.uri,
                            local=LocalDevice(name, device_class, session.eid),
                            enroller=enroller,
                            progress=events.append,
                            timeout=10.0,
                        ),
                        return_exceptions=True,
                    ),
                    LIMIT,
                )
        return offered, joined, events, side


def _devices(primary: Primary) -> dict[str, dict[str, Any]]:
    out = cli(
        "federation",
        "devices",
        "--device",
        str(primary.device),
        "--euicc",
        str(primary.euicc),
        "--json",
    ).stdout
    return {str(d["eid"]): d for d in json.loads(out)}


def test_watch_joins_by_code_over_ble_virtual_radio(service: Service, primary: Primary) -> None:
    from rspfed.transport.ble import LocalRadio

    async def main() -> tuple[Any, Any, list[FlowEvent], dict[str, Any]]:
        radio = LocalRadio()
        offerer = TransportConfig(kind="ble", ble_hci=radio.endpoint())
        joiner = TransportConfig(kind="ble", ble_hci=radio.endpoint())

        async def stream(discovery_id: bytes, hint: tuple[str, int] | None) -> ByteStream:
            return await flows.connect(joiner, discovery_id, timeout=10.0)

        return await _run_join(
            service,
            primary,
            "wrist",
            DeviceClass.WATCH,
            listener=lambda inv: flows.listen(offerer, inv.discovery_ids),
            stream_factory=stream,
            by_code=True,
        )

    offered, joined, events, _ = asyncio.run(main())
    assert not isinstance(offered, BaseException), offered
    assert not isinstance(joined, BaseException), joined
    assert offered.joined
    assert offered.iccid == joined.enrolment.iccid
    assert joined.services == frozenset({Svc.DATA, Svc.VOICE, Svc.SMS})
    assert joined.enrolment.registered
    assert joined.ledger is not None
    assert any(e.text == "paired by short code: secure channel up" for e in events)
    assert any(e.text.startswith("connected: ble:") for e in events)
    listed = _devices(primary)[joined.enrolment.eid]
    assert (listed["class"], listed["state"], listed["iccid"]) == (
        "watch",
        "active",
        joined.enrolment.iccid,
    )


Factory = Callable[[bytes, tuple[str, int] | None], Awaitable[ByteStream]]


def _memory(cut_after: int | None) -> tuple[Callable[[Invitation], Any], Factory]:
    a, b = memory_stream_pair(cut_after=cut_after)

    @contextlib.asynccontextmanager
    async def listener(invitation: Invitation) -> AsyncIterator[Listener]:
        yield Listener([_Acceptor(a, invitation.discovery_ids[0])], None)

    async def factory(discovery_id: bytes, hint: tuple[str, int] | None) -> ByteStream:
        return b

    return listener, factory


def _grant_offset() -> int:
    """Octets of a whole QR pairing up to the joiner's join request (both ways counted):
    measured on an in-memory run with a refusal (nothing leaves the devices)."""

    async def main() -> int:
        a, b = memory_stream_pair()
        invitation = flows.make_invitation(name="p")
        eid = "89049032123451234512345678901235"
        lst = Listener([_Acceptor(a, invitation.discovery_ids[0])], None)
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        seen: list[int] = []

        async def approve(ask: JoinAsk) -> bool:
            seen.append(a.link.sent)
            return False

        async def enrol(*_: Any) -> Any:  # pragma: no cover - refused before
            raise AssertionError

        await asyncio.gather(
            flows.offer_join(
                lst,
                invitation=invitation,
                local=LocalDevice("p", DeviceClass.PHONE, eid),
                authority=PrimaryAuthority(key, "s", "https://x.example"),
                approve=approve,
            ),
            flows.join(
                lambda *_: asyncio.sleep(0, b),
                target=invitation.uri,
                local=LocalDevice("l", DeviceClass.LAPTOP, eid),
                enroller=enrol,
            ),
            return_exceptions=True,
        )
        return seen[0]

    return asyncio.run(main())


@pytest.mark.parametrize("where", ["handshake", "join-request", "grant", "result"])
def test_cut_leaves_no_usable_token(service: Service, primary: Primary, where: str) -> None:
    request_end = _grant_offset()
    cut = {
        "handshake": 40,
        "join-request": request_end - 5,
        "grant": request_end + 60,  # inside the token grant record
        "result": None,  # cut once the joiner holds the token, before its result
    }[where]
    listener, factory = _memory(cut)
    links: list[Any] = []

    async def cutting_factory(discovery_id: bytes, hint: tuple[str, int] | None) -> ByteStream:
        stream: ByteStream = await factory(discovery_id, hint)
        links.append(stream)
        return stream

    async def cut_then_wait(side: dict[str, Any]) -> None:
        # the token is here; the link dies before the result: the primary must revoke
        links[0].link.cut()
        async with asyncio.timeout(10):
            while not side["revoked"]:
                await asyncio.sleep(0.01)

    async def main() -> tuple[Any, Any, list[FlowEvent], dict[str, Any]]:
        return await _run_join(
            service,
            primary,
            f"cut-{where}",
            DeviceClass.LAPTOP,
            listener=listener,
            stream_factory=cutting_factory,
            by_code=False,
            before_enrol=cut_then_wait if where == "result" else None,
        )

    offered, joined, _, side = asyncio.run(main())
    assert isinstance(offered, TransportError), offered
    assert isinstance(joined, RspfedError), joined
    if where == "result":
        assert isinstance(joined, TokenError), joined  # redeeming the revoked token: refused
    assert not [d for d in _devices(primary).values() if d["name"] == f"cut-{where}"]
    if where in ("handshake", "join-request"):
        assert side["revoked"] == []  # no token was ever signed
    else:
        assert len(side["revoked"]) == 1  # the unconfirmed token was revoked


def test_operator_refuses_a_class_the_plan_excludes(service: Service, primary: Primary) -> None:
    """The plan (phone, laptop, tablet, watch) has no hotspot: the primary, not knowing
    the plan, grants; the operator refuses the redemption; the joiner reports the
    failed step, the primary learns it and revokes the token."""
    listener, factory = _memory(None)

    async def main() -> tuple[Any, Any, list[FlowEvent], dict[str, Any]]:
        return await _run_join(
            service,
            primary,
            "hotspot",
            DeviceClass.HOTSPOT,
            listener=listener,
            stream_factory=factory,
            by_code=False,
        )

    offered, joined, events, side = asyncio.run(main())
    assert not isinstance(offered, BaseException), offered
    assert isinstance(joined, RspfedError), joined
    assert not offered.joined
    assert offered.failure == "refused"
    assert offered.revoked
    assert side["revoked"] == [offered.token_id]
    assert any(e.step is FlowStep.TOKEN_RECEIVED for e in events)
    assert not [d for d in _devices(primary).values() if d["class"] == "hotspot"]
