"""The demo's device-to-device join: a laptop joins the phone by short code over the LAN.

Both sides run in this process, each with only what it would have on its own
machine: the phone its federation key and the invitation it shows, the
laptop the short code typed by its user, its own eUICC and device store.
They meet through zeroconf on the loopback interface, pair (SPAKE2 with key
confirmation, then ``Noise_NNpsk0_25519_ChaChaPoly_SHA256``), and the phone's
token reaches the laptop over the secure channel
(:mod:`rspfed.transfer.flows`).
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

from rspfed.cli._demo_common import GB, DemoDevice, ok, say
from rspfed.federation.client import operator_tls_context
from rspfed.federation.device import DeviceStore
from rspfed.federation.token import DeviceClass, Service
from rspfed.lpa import ApduEs10, Consent, Es9Settings, Lpa, store_ci_certificates
from rspfed.transfer import flows
from rspfed.transfer.flows import (
    FlowEvent,
    JoinAsk,
    LocalDevice,
    PrimaryAuthority,
    TransportConfig,
)
from rspfed.transport.stream import ByteStream

__all__: list[str] = []

_LOOPBACK = TransportConfig(kind="lan", lan_addresses=("127.0.0.1",), lan_interfaces=("127.0.0.1",))
_TIMEOUT = 30.0


async def join_by_short_code(
    phone: DemoDevice,
    laptop: DemoDevice,
    *,
    subscription_id: str,
    operator_url: str,
    store_path: Path,
) -> str:
    """The laptop joins by the phone's short code over LAN; the laptop's ICCID.

    Sets ``laptop.key`` (its registered device key) and ``laptop.iccid``.
    """
    assert phone.key is not None
    invitation = flows.make_invitation(name="Ana's phone", device_class=DeviceClass.PHONE)
    code = str(invitation.code)
    say(f"   the phone shows its short code: {code} (and a QR code of {invitation.uri[:22]}...)")

    def phone_says(event: FlowEvent) -> None:
        say(f"   phone   . {event.text}")

    def laptop_says(event: FlowEvent) -> None:
        say(f"   laptop  . {event.text}")

    async def approve(ask: JoinAsk) -> bool:
        say(f"   phone   ? {ask.question}  [yes]")
        return True

    authority = PrimaryAuthority(
        key=phone.key, subscription_id=subscription_id, operator_url=operator_url
    )
    trust = store_ci_certificates(laptop.euicc.store)
    tls = operator_tls_context("localhost", trust=trust)
    es10 = ApduEs10(laptop.euicc.card)
    store = DeviceStore.create(store_path)
    try:
        lpa = Lpa(es10, settings=Es9Settings(trust=trust))
        enroller = flows.operator_enroller(
            eid=laptop.eid,
            lpa=lpa,
            card=laptop.euicc.card,
            store=store,
            ssl_context=lambda _url: tls,
            device_class=DeviceClass.LAPTOP,
            name="Ana's laptop",
            consent=lambda _metadata: Consent.ACCEPT,
        )

        async def connect(discovery_id: bytes, hint: tuple[str, int] | None) -> ByteStream:
            return await flows.connect(_LOOPBACK, discovery_id, timeout=_TIMEOUT, direct=hint)

        async with flows.listen(_LOOPBACK, invitation.discovery_ids) as listener:
            primary_side = flows.offer_join(
                listener,
                invitation=invitation,
                local=LocalDevice("Ana's phone", DeviceClass.PHONE, phone.eid),
                authority=authority,
                approve=approve,
                quota=5 * GB,
                now=lambda: datetime.now(UTC),
                rand=os.urandom,
                progress=phone_says,
                timeout=_TIMEOUT,
                accept_timeout=_TIMEOUT,
            )
            joiner_side = flows.join(
                connect,
                target=code,
                local=LocalDevice("Ana's laptop", DeviceClass.LAPTOP, laptop.eid),
                enroller=enroller,
                services=frozenset({Service.DATA}),
                progress=laptop_says,
                timeout=_TIMEOUT,
            )
            offered, joined = await asyncio.gather(primary_side, joiner_side)
        if not offered.joined or joined.enrolment.iccid is None:  # pragma: no cover
            raise RuntimeError("the laptop did not join")
        laptop.key = store.private_key()
        laptop.iccid = joined.enrolment.iccid
        ok(
            f"laptop joined by short code over LAN: its own profile {laptop.iccid} "
            f"(token {joined.token_id.hex()[:16]}..., quota {joined.quota // GB} GB)"
        )
        return laptop.iccid
    finally:
        store.close()
        es10.close()
