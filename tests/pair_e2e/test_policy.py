"""What the primary grants and asks, without an operator: the approval question,
the services a class may get, and the refusals decided before asking (over
in-memory streams; no token is signed when refused)."""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import PolicyError
from rspfed.federation.token import DeviceClass, Service
from rspfed.federation.types import Plan
from rspfed.network.service import DEVICE_CLASS_SERVICES
from rspfed.pki.eid import generate_eid
from rspfed.transfer import flows
from rspfed.transfer.flows import JoinAsk, Listener, LocalDevice, PrimaryAuthority
from rspfed.transport.stream import ByteStream, memory_stream_pair

NAMES = {
    Service.DATA: "data",
    Service.VOICE: "voice",
    Service.SMS: "SMS",
    Service.TETHERING: "tethering",
}


@pytest.mark.parametrize(
    "services",
    [frozenset(c) for n in range(len(Service) + 1) for c in itertools.combinations(Service, n)],
)
def test_describe_services_names_each_once(services: frozenset[Service]) -> None:
    text = flows.describe_services(services)
    if not services:
        assert text == "no services"
        return
    for service, name in NAMES.items():
        assert (name in text.replace(" only", "").replace(" and ", ", ").split(", ")) == (
            service in services
        )
    assert text.endswith(" only") == (len(services) == 1)
    assert (" and " in text) == (len(services) > 1)


def test_the_question() -> None:
    ask = JoinAsk("Ana's laptop", DeviceClass.LAPTOP, "0" * 32, frozenset({Service.DATA}), "x")
    assert ask.question == "Allow Ana's laptop \u2014 laptop, data only \u2014 to join?"


@pytest.mark.parametrize("device_class", list(DeviceClass))
def test_allowed_services_never_exceed_class_or_plan(device_class: DeviceClass) -> None:
    plan = Plan(pool_bytes=10**9, device_limit=3, services=frozenset({Service.DATA, Service.SMS}))
    everything = frozenset(Service)
    assert flows.allowed_services(device_class) == DEVICE_CLASS_SERVICES[device_class]
    granted = flows.allowed_services(device_class, everything, plan)
    assert granted == DEVICE_CLASS_SERVICES[device_class] & plan.services
    assert flows.allowed_services(device_class, frozenset(), plan) == frozenset()


class _Acceptor:
    def __init__(self, stream: ByteStream, discovery_id: bytes) -> None:
        self.stream = stream
        self.discovery_id = discovery_id

    async def accept(self, timeout: float | None = None) -> ByteStream:
        return self.stream

    async def aclose(self) -> None:
        return None


def _attempt(joiner: DeviceClass, plan: Plan | None) -> tuple[Any, Any, list[JoinAsk]]:
    asked: list[JoinAsk] = []

    async def approve(ask: JoinAsk) -> bool:
        asked.append(ask)
        return True

    async def enroller(*_: Any) -> Any:  # pragma: no cover - refused before any token
        raise AssertionError("no token may be granted")

    async def main() -> tuple[Any, Any]:
        a, b = memory_stream_pair()
        invitation = flows.make_invitation(name="phone")
        key = ec.generate_private_key(ec.SECP256R1())

        async def stream(*_: Any) -> ByteStream:
            return b

        offered, joined = await asyncio.gather(
            flows.offer_join(
                Listener([_Acceptor(a, invitation.discovery_ids[0])], None),
                invitation=invitation,
                local=LocalDevice("phone", DeviceClass.PHONE, generate_eid("890490", os.urandom)),
                authority=PrimaryAuthority(key, "sub", "https://operator.example", plan),
                approve=approve,
            ),
            flows.join(
                stream,
                target=str(invitation.code),
                local=LocalDevice("new", joiner, generate_eid("890490", os.urandom)),
                enroller=enroller,
            ),
            return_exceptions=True,
        )
        return offered, joined

    offered, joined = asyncio.run(main())
    return offered, joined, asked


def test_a_class_outside_the_plan_is_refused_without_asking() -> None:
    plan = Plan(pool_bytes=10**9, device_limit=3, device_classes=frozenset({DeviceClass.PHONE}))
    offered, joined, asked = _attempt(DeviceClass.LAPTOP, plan)
    assert asked == []
    assert (offered.joined, offered.refusal, offered.token_id) == (False, "denied", None)
    assert isinstance(joined, PolicyError)


def test_a_second_phone_is_refused_without_asking() -> None:
    offered, joined, asked = _attempt(DeviceClass.PHONE, None)
    assert asked == []
    assert offered.refusal == "denied"
    assert offered.token_id is None
    assert isinstance(joined, PolicyError)
