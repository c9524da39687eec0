"""Pair two devices by short code and hand over a federation token, on any transport.

rspfed's pairing protocol (docs/pairing.md) is a sans-IO state machine in the
style of h11: a :class:`~rspfed.transfer.PairingConnection` never touches a
socket.  The application feeds it the octets its transport delivered, sends
what it produces, and reacts to events.  rspfed drives it over TCP (zeroconf)
and BLE GATT; an app can carry it over anything that moves bytes in order
(NFC, a USB cable, a WebSocket).  Here the "transport" is two lists.

The phone (the primary) shows a pairing offer: a QR code and, for a device
without a camera, a short code such as ``691-conformist-egghead``.  The
laptop's user types the code.  SPAKE2 turns the code into a shared key (an
eavesdropper, or a wrong guess, learns nothing and burns the code), Noise
``NNpsk0`` opens the encrypted channel, then the laptop asks to join and the
phone grants a federation token naming the laptop's EID.

Run: ``python examples/pairing_sans_io.py``
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.federation.token import DeviceClass, Service, issue_token, parse_token
from rspfed.transfer import (
    NEED_DATA,
    Bye,
    ByeReceived,
    Capability,
    ConnectionClosed,
    DeviceRole,
    Event,
    Hello,
    HelloReceived,
    JoinRequest,
    JoinRequested,
    JoinResult,
    JoinResultReceived,
    PairingConnection,
    PairingOffer,
    Role,
    ShortCode,
    TokenGrant,
    TokenGranted,
)

PHONE_EID = "89001012012341234012345678901224"
LAPTOP_EID = "89049032123451234512345678901235"
OPERATOR_URL = "https://operator.example"


def phone_app(conn: PairingConnection, event: Event, key: ec.EllipticCurvePrivateKey) -> None:
    """The primary: grant a token for the device that asks (after its user agreed)."""
    if isinstance(event, JoinRequested):
        request = event.message
        print(f"phone:  {request.name} asks to join as a {request.device_class.value}")
        assert conn.peer_hello is not None
        token = issue_token(
            primary_key=key,
            subscription_id="sub-0001",
            eid=conn.peer_hello.eid,  # bound to the eUICC at the other end of the channel
            device_class=request.device_class,
            services=request.services,
            quota=10**9,
            now=datetime.now(UTC),
            ttl=timedelta(minutes=10),
            rand=os.urandom,
        )
        conn.send(TokenGrant(token, OPERATOR_URL))
    elif isinstance(event, JoinResultReceived):
        print(f"phone:  the laptop reports {event.message}")
        conn.send(Bye())


def laptop_app(conn: PairingConnection, event: Event) -> None:
    """The secondary: ask to join; redeem the token (not shown) and report the result."""
    if isinstance(event, HelloReceived):
        print(f"laptop: paired with {event.message.name}")
        conn.send(
            JoinRequest(
                device_class=DeviceClass.LAPTOP, services={Service.DATA}, name="Ana's laptop"
            )
        )
    elif isinstance(event, TokenGranted):
        token = parse_token(event.message.token)
        print(f"laptop: got a token for EID {token.eid}, redeem at {event.message.operator_url}")
        conn.send(JoinResult.installed("8949000000000000001"))  # after download + enable


def pump(conn: PairingConnection, react: Callable[[PairingConnection, Event], None]) -> bytes:
    """Handle every event the connection has, then return the octets it wants to send."""
    while True:
        event = conn.next_event()  # a wrong code or bad frame raises an RspfedError here
        if event is NEED_DATA or isinstance(event, ConnectionClosed):
            return conn.data_to_send()
        if not isinstance(event, ByeReceived):
            react(conn, event)


def main() -> int:
    key = ec.generate_private_key(ec.SECP256R1())  # the primary's federation key
    hello = Hello(
        name="Ana's phone",
        device_class=DeviceClass.PHONE,
        role=DeviceRole.PRIMARY,
        eid=PHONE_EID,
        capabilities={Capability.JOIN},
    )
    offer = PairingOffer.generate(
        os.urandom,
        offerer_role=DeviceRole.PRIMARY,
        offerer_name=hello.name,
        device_class=DeviceClass.PHONE,
        ble=True,
    )
    code = ShortCode.generate(os.urandom)
    print(f"phone shows the QR {offer.to_uri()[:32]}... and the code {code}")

    phone = PairingConnection(Role.OFFERER, local=hello, offer=offer, code=code, rand=os.urandom)
    typed = ShortCode.parse(str(code))  # what the laptop's user typed
    laptop_hello = Hello(
        name="Ana's laptop",
        device_class=DeviceClass.LAPTOP,
        role=DeviceRole.SECONDARY,
        eid=LAPTOP_EID,
        capabilities={Capability.JOIN},
    )
    laptop = PairingConnection(Role.JOINER, local=laptop_hello, code=typed, rand=os.urandom)

    # The "transport": whatever one side sends, the other receives, until both are quiet.
    to_phone = laptop.data_to_send()  # the joiner opens
    for _ in range(50):
        if to_phone:
            phone.receive_data(to_phone)
        to_laptop = pump(phone, lambda c, e: phone_app(c, e, key))
        if to_laptop:
            laptop.receive_data(to_laptop)
        to_phone = pump(laptop, laptop_app)
        if not to_phone and not to_laptop:
            break
    print(f"done: phone {phone.state.value}, laptop {laptop.state.value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
